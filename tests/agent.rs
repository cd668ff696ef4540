//! The node agent on recorded NVML answers (a DGX-like NVSwitch box, a PCIe-only box, a
//! mixed box with a bad GPU): graph, groups, health, what is published on the Node, how
//! the controller reads it back, and `ebb agent --print`.

mod kube_common;

use ebb::agent::devices::{GpuDevices, Recorded};
use ebb::agent::publish::{LABEL_NVLINK_DOMAIN, desired, patch_for};
use ebb::agent::topology::{Discovery, discover};
use ebb::cluster::kube::ClusterObjects;
use ebb::cluster::kube::snapshot::build_snapshot;
use k8s_openapi::api::core::v1::Node;
use kube_common::*;
use serde_json::json;

fn recorded(file: &str) -> Recorded {
    let path = format!("{}/tests/data/gpus/{file}", env!("CARGO_MANIFEST_DIR"));
    Recorded::parse(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn discovered(file: &str) -> Discovery {
    discover(&recorded(file)).unwrap()
}

#[test]
fn an_nvswitch_box_is_one_group_of_eight() {
    let d = discovered("dgx-h100-8.json");
    assert_eq!(d.gpus.len(), 8);
    assert_eq!(d.healthy(), 8);
    assert_eq!(d.links.len(), 28, "every pair");
    assert!(
        d.links.iter().all(|l| l.nvlink && l.nvlinks == 0),
        "through switches, not wired"
    );
    assert_eq!(d.nvlink_groups, vec![(0..8).collect::<Vec<u32>>()]);
    assert_eq!(d.model(), Some("NVIDIA H100 80GB HBM3"));
}

#[test]
fn a_pcie_box_has_no_nvlink_groups_larger_than_one() {
    let d = discovered("pcie-l4-4.json");
    assert_eq!(d.nvlink_groups, vec![vec![0], vec![1], vec![2], vec![3]]);
    assert!(d.links.iter().all(|l| !l.nvlink));
    let same_switch = d.links.iter().find(|l| (l.a, l.b) == (0, 1)).unwrap();
    assert_eq!(
        same_switch.ancestor,
        Some(ebb::agent::devices::Ancestor::Switch)
    );
}

#[test]
fn bridges_pair_gpus_and_a_bad_gpu_leaves_its_group() {
    let d = discovered("mixed-a100-4.json");
    let bridged = d.links.iter().find(|l| (l.a, l.b) == (0, 1)).unwrap();
    assert_eq!(bridged.nvlinks, 3, "three active links wired GPU to GPU");
    assert!(!d.gpus[3].healthy);
    assert!(
        d.gpus[3].problems[0].contains("ECC"),
        "{:?}",
        d.gpus[3].problems
    );
    assert_eq!(
        d.nvlink_groups,
        vec![vec![0, 1], vec![2]],
        "GPU 3 is not offered"
    );
}

#[test]
fn bus_ids_match_in_either_nvml_spelling_and_a_silent_gpu_is_unhealthy() {
    let mut r = recorded("mixed-a100-4.json");
    for l in &mut r.devices[0].nvlinks {
        if let Some(id) = &mut l.remote_pci_bus_id {
            *id = id.replacen("00000000:", "0000:", 1).to_lowercase();
        }
    }
    r.pairs.retain(|p| (p.a, p.b) != (0, 1)); // no P2P answer: the wiring alone links them
    r.devices.remove(2); // GPU 2 does not answer
    struct WithCount(Recorded);
    impl GpuDevices for WithCount {
        fn count(&self) -> Result<u32, ebb::agent::devices::DeviceError> {
            Ok(4)
        }
        fn device(
            &self,
            i: u32,
        ) -> Result<ebb::agent::devices::DeviceAnswer, ebb::agent::devices::DeviceError> {
            self.0.device(i)
        }
        fn pair(
            &self,
            a: u32,
            b: u32,
        ) -> Result<ebb::agent::devices::PairAnswer, ebb::agent::devices::DeviceError> {
            self.0.pair(a, b)
        }
    }
    let d = discover(&WithCount(r)).unwrap();
    assert_eq!(d.gpus.len(), 4);
    assert!(!d.gpus[2].healthy && d.gpus[2].problems[0].contains("not recorded"));
    assert_eq!(d.nvlink_groups, vec![vec![0, 1]]);
}

fn node_with(labels: serde_json::Value, annotations: serde_json::Value) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": "gpu-7", "labels": labels, "annotations": annotations},
        "spec": {},
        "status": {
            "allocatable": {"cpu": "64", "memory": "512Gi", "nvidia.com/gpu": "4"},
            "conditions": [{"type": "Ready", "status": "True"}]
        }
    }))
    .unwrap()
}

#[test]
fn published_once_read_back_by_the_controller_and_not_patched_again() {
    let d = discovered("mixed-a100-4.json");
    let want = desired("gpu-7", None, &d);
    assert_eq!(want.labels["ebb.dev/gpu.model"], "NVIDIA-A100-80GB-PCIe");
    assert_eq!(want.labels["ebb.dev/gpu.healthy"], "3");
    assert_eq!(want.labels["ebb.dev/nvlink.largest-group"], "2");
    assert_eq!(want.annotations["ebb.dev/gpu-unhealthy"], "1");
    assert_eq!(want.annotations["ebb.dev/nvlink-group"], "gpu-7/nvlink");

    let bare = node_with(json!({"stale": "x", "ebb.dev/gpu.old": "1"}), json!({}));
    let patch = patch_for(&bare, &want).expect("a first publish patches");
    assert_eq!(
        patch["metadata"]["labels"]["ebb.dev/gpu.old"],
        serde_json::Value::Null
    );
    assert!(
        patch["metadata"]["labels"].get("stale").is_none(),
        "not ours"
    );

    let labels = serde_json::to_value(&want.labels).unwrap();
    let annotations = serde_json::to_value(&want.annotations).unwrap();
    let published = node_with(labels, annotations);
    assert_eq!(patch_for(&published, &want), None, "unchanged: no patch");

    // The controller offers 3 of the 4 GPUs, in the node's NVLink group.
    let objects = ClusterObjects {
        nodes: vec![std::sync::Arc::new(published)],
        ..ClusterObjects::default()
    };
    let build = build_snapshot(&objects, &at("2026-11-23T10:00:00Z"));
    let node = &build.snapshot.nodes[0];
    assert_eq!(node.allocatable.gpus, 3);
    assert_eq!(node.topology.nvlink_group.as_deref(), Some("gpu-7/nvlink"));
}

#[test]
fn an_operators_nvlink_domain_groups_nodes_across_machines() {
    let d = discovered("dgx-h100-8.json");
    let want = desired("gpu-1", Some("nvl72-rack-3"), &d);
    assert_eq!(want.annotations["ebb.dev/nvlink-group"], "nvl72-rack-3");
    let node = node_with(json!({LABEL_NVLINK_DOMAIN: "nvl72-rack-3"}), json!({}));
    let patch = patch_for(&node, &want).unwrap();
    assert!(
        patch["metadata"]["labels"]
            .get(LABEL_NVLINK_DOMAIN)
            .is_none(),
        "left alone"
    );
}

#[test]
fn print_without_nvml_is_an_empty_list_and_with_a_recording_the_groups() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ebb"))
        .args(["agent", "--print"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    if d.get("error").is_some() {
        // No NVIDIA library here (CI): said once, 0 GPUs.
        assert_eq!(d["gpus"], json!([]));
        assert!(String::from_utf8_lossy(&out.stderr).contains("no GPUs can be read"));
    } else {
        assert!(
            !d["gpus"].as_array().unwrap().is_empty(),
            "NVML answered: {d}"
        );
    }
    let file = format!(
        "{}/tests/data/gpus/dgx-h100-8.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ebb"))
        .args(["agent", "--print", "--recorded", &file])
        .output()
        .unwrap();
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["nvlink_groups"], json!([[0, 1, 2, 3, 4, 5, 6, 7]]));
}

#[tokio::test]
async fn publish_reads_the_node_and_patches_only_on_change() {
    use http::{Method, StatusCode};
    use std::sync::{Arc, Mutex};
    let node = Arc::new(Mutex::new(
        serde_json::to_value(node_with(json!({}), json!({}))).unwrap(),
    ));
    let state = node.clone();
    let (client, seen) = api_server(Box::new(move |request, _| {
        let mut n = state.lock().unwrap();
        if request.method == Method::PATCH {
            // Apply the merge patch the way the API server would.
            for part in ["labels", "annotations"] {
                for (k, v) in request.body["metadata"][part].as_object().unwrap() {
                    if v.is_null() {
                        n["metadata"][part].as_object_mut().unwrap().remove(k);
                    } else {
                        n["metadata"][part][k] = v.clone();
                    }
                }
            }
        }
        (StatusCode::OK, n.clone())
    }));
    let d = discovered("dgx-h100-8.json");
    assert!(
        ebb::agent::publish::publish(&client, "gpu-7", &d)
            .await
            .unwrap()
    );
    assert!(
        !ebb::agent::publish::publish(&client, "gpu-7", &d)
            .await
            .unwrap(),
        "unchanged"
    );
    let calls: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert_eq!(
        calls,
        [
            "GET /api/v1/nodes/gpu-7",
            "PATCH /api/v1/nodes/gpu-7",
            "GET /api/v1/nodes/gpu-7"
        ]
    );
    assert_eq!(
        node.lock().unwrap()["metadata"]["labels"]["ebb.dev/gpu.count"],
        "8"
    );
}

#[test]
fn a_critical_xid_takes_a_gpu_out_of_its_group() {
    let mut r = recorded("dgx-h100-8.json");
    r.devices[5].xid_errors = vec![79];
    let d = discover(&r).unwrap();
    assert!(!d.gpus[5].healthy);
    assert!(
        d.gpus[5].problems[0].contains("XID"),
        "{:?}",
        d.gpus[5].problems
    );
    assert_eq!(d.nvlink_groups, vec![vec![0, 1, 2, 3, 4, 6, 7]]);
}
