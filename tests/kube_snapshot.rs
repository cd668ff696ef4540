//! Recorded API-server objects (tests/data/kube) through the controller's pure half:
//! snapshot building, pod rendering, and the actions of one tick.

mod kube_common;

use ebb::cluster::kube::render::{RenderConfig, render_pod, render_services};
use ebb::cluster::kube::snapshot::build_snapshot;
use ebb::cluster::kube::{Action, decide};
use ebb::model::placement::Taint;
use ebb::model::{Resources, Role};
use ebb::plan::Policy;
use ebb::resource::TrainingJob;
use kube_common::*;

const KI: i64 = 1024;
const GI: i64 = 1 << 30;

#[test]
fn nodes_keep_gpus_topology_and_cordons() {
    let build = build_snapshot(&recorded_world(), &at("2026-11-23T10:00:00Z"));
    let nodes = &build.snapshot.nodes;
    assert_eq!(nodes.len(), 4);
    let gpu_a = &nodes[0];
    assert_eq!(
        gpu_a.allocatable,
        Resources::new(191_450, 2_061_184_000 * KI, 8)
    );
    assert_eq!(gpu_a.gpu_model.as_deref(), Some("NVIDIA-H100-80GB-HBM3"));
    assert_eq!(gpu_a.topology.nvlink_group.as_deref(), Some("gpu-a/nvl0"));
    assert_eq!(gpu_a.topology.rack.as_deref(), Some("rack-1"));
    assert!(
        !gpu_a.unschedulable,
        "the GPU taint is tolerated by ebb's GPU pods"
    );
    let cpu_a = &nodes[2];
    assert_eq!(cpu_a.allocatable.gpus, 0);
    assert_eq!(
        cpu_a.topology.rack.as_deref(),
        Some("us-east-1b"),
        "zone when no rack label"
    );
    assert!(nodes[3].unschedulable, "cordoned node");
    // spec.taints reach the model as written (an absent value is empty).
    assert_eq!(
        gpu_a.taints,
        [Taint {
            key: "nvidia.com/gpu".into(),
            value: "present".into(),
            effect: "NoSchedule".into(),
        }]
    );
    assert!(cpu_a.taints.is_empty());
    // The autoscaler's group label names the node's group.
    assert_eq!(gpu_a.group.as_deref(), Some("gpu-h100"));
    assert_eq!(cpu_a.group, None);
    assert_eq!(
        (
            nodes[3].taints[0].key.as_str(),
            nodes[3].taints[0].value.as_str()
        ),
        ("node.kubernetes.io/unschedulable", "")
    );
    assert_eq!(build.snapshot.time_s, 1_795_428_000.0);
}

#[test]
fn other_workloads_and_hpa_wishes_become_demand() {
    let build = build_snapshot(&recorded_world(), &at("2026-11-23T10:00:00Z"));
    let others = &build.snapshot.other_pods;
    let names: Vec<&str> = others.iter().map(|p| p.name.as_str()).collect();
    assert!(
        !names.contains(&"db-migrate-4hx8d"),
        "finished pods hold nothing"
    );
    let nginx: Vec<_> = others
        .iter()
        .filter(|p| p.workload.as_deref() == Some("Deployment/nginx"))
        .collect();
    assert_eq!(nginx.len(), 5, "3 pods + 2 the HPA wants: {names:?}");
    assert!(
        nginx
            .iter()
            .all(|p| p.resources == Resources::new(4000, 8 * GI, 0))
    );
    assert_eq!(nginx.iter().filter(|p| p.node.is_none()).count(), 3);
    let plugin = others
        .iter()
        .find(|p| p.name.starts_with("nvidia-device-plugin"))
        .expect("daemonset pod");
    // Largest init container (500m, 64Mi) beats empty containers, plus 250m overhead.
    assert_eq!(plugin.resources, Resources::new(750, 64 << 20, 0));
    assert_eq!(
        plugin.workload.as_deref(),
        Some("DaemonSet/nvidia-device-plugin-daemonset")
    );
}

#[test]
fn job_pods_and_bad_specs() {
    let build = build_snapshot(&recorded_world(), &at("2026-11-23T10:00:00Z"));
    let jobs = &build.snapshot.jobs;
    assert_eq!(
        jobs.len(),
        2,
        "resnet and bert; broken and absurd are refused"
    );
    let resnet = &jobs[0];
    assert!(resnet.admitted);
    assert_eq!(resnet.trainers.resources, Resources::new(8000, 64 * GI, 1));
    assert_eq!(resnet.last_scale_time_s, Some(1_795_424_405.0));
    let live: Vec<&str> = resnet.live_trainers().map(|p| p.name.as_str()).collect();
    assert_eq!(live, ["resnet-trainer-0", "resnet-trainer-1"]);
    let failed = resnet
        .pods
        .iter()
        .find(|p| p.name == "resnet-trainer-2")
        .unwrap();
    assert!(
        failed.terminating && failed.node.is_none(),
        "ended: no resources, name kept"
    );
    let leaving = resnet
        .pods
        .iter()
        .find(|p| p.name == "resnet-trainer-3")
        .unwrap();
    assert_eq!(
        (leaving.terminating, leaving.node.as_deref()),
        (true, Some("gpu-b"))
    );
    assert!(!jobs[1].admitted && jobs[1].pods.is_empty());
    let bad: Vec<String> = build
        .invalid_jobs
        .iter()
        .map(|(k, e)| format!("{}: {e}", k.name))
        .collect();
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(
        bad[0].starts_with("broken: spec.trainers.resources.cpu"),
        "{bad:?}"
    );
    assert!(bad[0].contains("\"lots\""), "{bad:?}");
    assert!(
        // The user's quantity, not the model's internal field and value.
        bad[1].starts_with("absurd: spec.trainers.resources.cpu: 1e9 is more than 100000 cores"),
        "{bad:?}"
    );
}

fn resnet() -> std::sync::Arc<TrainingJob> {
    recorded::<TrainingJob>("trainingjobs.json").remove(0)
}

#[test]
fn trainer_pods_are_owned_bound_by_ebb_and_know_their_peers() {
    let config = RenderConfig {
        runtime_image: "ghcr.io/ebb-dev/ebb:test".into(),
    };
    let pod = render_pod(&resnet(), Role::Trainer, "resnet-trainer-7", &config);
    let v = serde_json::to_value(&pod).unwrap();
    // Node autoscalers may evict a trainer, never a master or pserver.
    let annotations = &v["metadata"]["annotations"];
    assert_eq!(
        annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"],
        "true"
    );
    assert!(annotations.get("karpenter.sh/do-not-disrupt").is_none());
    let master = serde_json::to_value(render_pod(
        &resnet(),
        Role::Master,
        "resnet-master",
        &config,
    ))
    .unwrap();
    let annotations = &master["metadata"]["annotations"];
    assert_eq!(
        annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"],
        "false"
    );
    assert_eq!(annotations["karpenter.sh/do-not-disrupt"], "true");
    assert_eq!(v["spec"]["schedulerName"], "ebb");
    assert!(
        v["spec"].get("nodeName").is_none(),
        "bound later through pods/binding"
    );
    let owner = &v["metadata"]["ownerReferences"][0];
    assert_eq!(
        (owner["kind"].as_str(), owner["controller"].as_bool()),
        (Some("TrainingJob"), Some(true))
    );
    assert_eq!(owner["uid"], "3f0c9a7e-5d4b-4e21-8a61-7c9d2b1e0f11");
    assert_eq!(v["metadata"]["labels"]["ebb.dev/role"], "trainer");
    let c = &v["spec"]["containers"][0];
    assert_eq!(c["image"], "registry.example.com/ml/resnet:2026.11");
    assert_eq!(c["args"], serde_json::json!(["--model", "mlp"]));
    assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"], "1");
    let env: std::collections::BTreeMap<String, String> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().into(),
                e["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(env["EBB_TRAINER_ID"], "7");
    assert_eq!(env["EBB_JOB"], "resnet");
    assert_eq!(env["EBB_MASTER"], "resnet-master.ml.svc:7164");
    assert_eq!(
        env["EBB_PSERVERS"],
        "resnet-pserver-0.resnet-pserver.ml.svc:7165"
    );
    assert_eq!(env["EBB_DATA"], "/data/mnist.csv");
    assert_eq!(env["LOG_LEVEL"], "info", "the job's own env is kept");
    assert_eq!(v["spec"]["tolerations"][0]["key"], "nvidia.com/gpu");

    let pserver = serde_json::to_value(render_pod(
        &resnet(),
        Role::Pserver,
        "resnet-pserver-0",
        &config,
    ))
    .unwrap();
    assert_eq!(pserver["spec"]["subdomain"], "resnet-pserver");
    assert_eq!(pserver["spec"]["hostname"], "resnet-pserver-0");
    assert_eq!(
        pserver["spec"]["containers"][0]["image"],
        "ghcr.io/ebb-dev/ebb:test"
    );
    let [master_svc, pserver_svc] = render_services(&resnet());
    assert_eq!(master_svc.metadata.name.as_deref(), Some("resnet-master"));
    let headless = pserver_svc.spec.unwrap();
    assert_eq!(headless.cluster_ip.as_deref(), Some("None"));
}

#[test]
fn the_template_is_merged_under_ebbs_fields() {
    let mut tj = (*resnet()).clone();
    tj.spec.template = Some(
        serde_json::from_value(serde_json::json!({
            "metadata": {"labels": {"team": "vision", "ebb.dev/role": "spoofed"}},
            "spec": {
                "serviceAccountName": "trainer",
                "nodeName": "somewhere",
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "datasets"}}],
                "containers": [{"name": "x", "image": "ignored",
                                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                                "env": [{"name": "EBB_JOB", "value": "spoofed"}, {"name": "HTTP_PROXY", "value": "p"}]}]
            }
        }))
        .unwrap(),
    );
    let config = RenderConfig {
        runtime_image: "img".into(),
    };
    let v =
        serde_json::to_value(render_pod(&tj, Role::Trainer, "resnet-trainer-0", &config)).unwrap();
    assert_eq!(v["metadata"]["labels"]["team"], "vision");
    assert_eq!(v["metadata"]["labels"]["ebb.dev/role"], "trainer");
    assert_eq!(v["spec"]["serviceAccountName"], "trainer");
    assert!(v["spec"].get("nodeName").is_none());
    let env = v["spec"]["containers"][0]["env"].as_array().unwrap();
    let get = |n: &str| {
        env.iter()
            .find(|e| e["name"] == n)
            .map(|e| e["value"].clone())
    };
    assert_eq!(get("EBB_JOB"), Some("resnet".into()));
    assert_eq!(get("HTTP_PROXY"), Some("p".into()));
    assert_eq!(
        v["spec"]["containers"][0]["image"],
        "registry.example.com/ml/resnet:2026.11"
    );
    // The master reads the dataset too: it keeps the template's mount beside its state.
    let master =
        serde_json::to_value(render_pod(&tj, Role::Master, "resnet-master-0", &config)).unwrap();
    let mounts: Vec<&str> = master["spec"]["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert_eq!(mounts, ["/data", "/var/lib/ebb"]);
    let volumes = master["spec"]["volumes"].as_array().unwrap();
    assert_eq!(volumes.len(), 2, "the dataset claim and the state dir");
}

#[test]
fn one_tick_on_the_recorded_cluster() {
    let config = RenderConfig {
        runtime_image: "img".into(),
    };
    let now = at("2026-11-23T10:00:00Z");
    let tick = decide(&recorded_world(), &Policy::default(), &config, &now);
    let deleted: Vec<&str> = tick
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::DeletePod { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        deleted.contains(&"resnet-trainer-2"),
        "the failed trainer is collected: {deleted:?}"
    );
    assert!(
        !deleted.contains(&"resnet-trainer-3"),
        "already terminating"
    );
    // bert is admitted: its master and pserver go to the CPU node, trainers to GPUs.
    let binds: Vec<(&str, &str)> = tick
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Bind { pod, node, .. } => Some((pod.as_str(), node.as_str())),
            _ => None,
        })
        .collect();
    assert!(binds.contains(&("bert-master-0", "cpu-a")), "{binds:?}");
    assert!(binds.contains(&("bert-pserver-0", "cpu-a")), "{binds:?}");
    assert!(
        binds
            .iter()
            .filter(|(p, _)| p.starts_with("bert-trainer-"))
            .all(|(_, n)| n.starts_with("gpu-"))
    );
    // Every created pod is bound right after it is created.
    for (i, a) in tick.actions.iter().enumerate() {
        if let Action::CreatePod(p) = a {
            let name = p.metadata.name.as_deref().unwrap();
            assert!(matches!(&tick.actions[i + 1], Action::Bind { pod, .. } if pod == name));
        }
    }
    let statuses: Vec<(&str, &ebb::resource::TrainingJobStatus)> = tick
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::PatchStatus { job, status, .. } => Some((job.as_str(), status.as_ref())),
            _ => None,
        })
        .collect();
    let broken = statuses
        .iter()
        .find(|(j, _)| *j == "broken")
        .expect("broken gets a status")
        .1;
    assert_eq!(broken.conditions[0].reason, "InvalidSpec");
    assert!(
        broken.conditions[0]
            .message
            .starts_with("spec.trainers.resources.cpu")
    );
    let bert = statuses.iter().find(|(j, _)| *j == "bert").unwrap().1;
    assert_eq!(bert.phase, ebb::resource::JobPhase::Running);
    assert!(bert.target_trainers >= 1);
}

#[test]
fn a_finished_jobs_running_pods_still_hold_their_room() {
    use ebb::cluster::kube::ClusterObjects;
    let objects = ClusterObjects {
        nodes: vec![parse(node("n1", "8", "16Gi", 4))],
        pods: vec![
            parse(job_pod("done", "master", 0, "n1", "Succeeded")),
            parse(job_pod("done", "pserver", 0, "n1", "Running")),
            parse(job_pod("done", "trainer", 0, "n1", "Running")),
        ],
        hpas: vec![],
        jobs: vec![parse(training_job("done", 1, 1, Some(admitted_status(1))))],
        unreadable_jobs: Vec::new(),
        queues: vec![],
    };
    let build = build_snapshot(&objects, &at("2026-11-23T10:00:00Z"));
    assert!(build.snapshot.jobs.is_empty(), "the job is over");
    let holding: Vec<&str> = build
        .snapshot
        .other_pods
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(
        holding,
        ["done-pserver-0", "done-trainer-0"],
        "until they are gone"
    );
    assert_eq!(build.finished.len(), 1);
}

#[test]
fn pods_carry_the_templates_placement_and_the_model_reads_the_same() {
    let mut tj = (*resnet()).clone();
    tj.spec.template = Some(
        serde_json::from_value(serde_json::json!({
            "spec": {
                "containers": [],
                "nodeSelector": {"pool": "ml"},
                "affinity": {"nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In",
                                               "values": ["NVIDIA-H100-80GB-HBM3"]}]}
                    ]}
                }},
                "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml",
                                 "effect": "NoSchedule"}]
            }
        }))
        .unwrap(),
    );
    let config = RenderConfig {
        runtime_image: "img".into(),
    };
    // kubelet admits a bound pod only if it matches the node: every role's pod carries
    // the template's selector and affinity, so kubelet judges what ebb judged.
    for (role, name) in [
        (Role::Master, "resnet-master-0"),
        (Role::Pserver, "resnet-pserver-0"),
        (Role::Trainer, "resnet-trainer-0"),
    ] {
        let v = serde_json::to_value(render_pod(&tj, role, name, &config)).unwrap();
        assert_eq!(v["spec"]["nodeSelector"]["pool"], "ml", "{role:?}");
        assert_eq!(
            v["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                ["nodeSelectorTerms"][0]["matchExpressions"][0]["values"][0],
            "NVIDIA-H100-80GB-HBM3",
            "{role:?}"
        );
        let tolerations = v["spec"]["tolerations"].as_array().unwrap();
        assert!(
            tolerations.iter().any(|t| t["key"] == "dedicated"),
            "{role:?}"
        );
        if role == Role::Trainer {
            // GPU trainers also keep the GPU taint's toleration ebb adds.
            assert!(
                tolerations.iter().any(|t| t["key"] == "nvidia.com/gpu"),
                "{tolerations:?}"
            );
        }
    }
    let job = ebb::resource::spec::job_model(&tj, 0.0).expect("a valid job");
    let trainers = &job.placement.trainers;
    assert_eq!(trainers.node_selector["pool"], "ml");
    assert_eq!(trainers.tolerations[0].key, "dedicated");
    // The model's tolerations are the rendered pod's: GPU trainers also tolerate the GPU
    // taint, the CPU-only master does not.
    assert_eq!(trainers.tolerations[1].key, "nvidia.com/gpu");
    assert_eq!(job.placement.master.tolerations.len(), 1);
    assert_eq!(job.placement.master.node_selector, trainers.node_selector);

    // A constraint the API server's schema lets through (the template is free-form) but
    // Kubernetes would refuse: the job is InvalidSpec naming the field.
    tj.spec.template = Some(
        serde_json::from_value(serde_json::json!({"spec": {
            "containers": [],
            "tolerations": [{"key": "dedicated", "operator": "Matches", "value": "ml"}]
        }}))
        .unwrap(),
    );
    let e = ebb::resource::spec::job_model(&tj, 0.0).unwrap_err();
    assert_eq!(e.field(), "spec.template.spec.tolerations[0].operator");
}
