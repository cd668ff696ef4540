//! A heterogeneous cluster as the API server returns it (tests/data/kube/heterogeneous):
//! H100 nodes, a dedicated A100 pool tainted `dedicated=ml:NoSchedule`, a T4 spot node
//! tainted `spot=true:PreferNoSchedule`, CPU nodes for a web Deployment pinned to them
//! by a node selector and scaled by an HPA. Jobs that need H100s, that use the
//! dedicated pool, that take any GPU, that name a GPU no node has, and one with a typo
//! in its affinity. Planned over a few ticks through the controller's pure half.

mod kube_common;

use ebb::cluster::kube::render::{RenderConfig, render_pod};
use ebb::cluster::kube::snapshot::build_snapshot;
use ebb::model::{Reason, Role, Snapshot};
use ebb::plan::{Policy, apply::apply, plan};
use kube_common::*;

fn world() -> ebb::cluster::kube::objects::ClusterObjects {
    recorded_world_in("heterogeneous")
}

fn nodes_of(s: &Snapshot, job: &str) -> Vec<String> {
    let j = s.jobs.iter().find(|j| j.name == job).expect("the job");
    let mut n: Vec<String> = j.live_trainers().filter_map(|p| p.node.clone()).collect();
    n.sort();
    n.dedup();
    n
}

#[test]
fn each_job_runs_only_where_its_constraints_and_the_taints_allow() {
    let build = build_snapshot(&world(), &at("2026-11-23T10:00:00Z"));
    // The dedicated job's master and pserver go to its pool too (its template's selector
    // is every pod's); they tolerate the pool's taints as its template says.
    let dedicated = build
        .snapshot
        .jobs
        .iter()
        .find(|j| j.name == "dedicated")
        .unwrap();
    let pool = build
        .snapshot
        .nodes
        .iter()
        .find(|n| n.name == "a100-ded-a")
        .unwrap();
    assert!(dedicated.placement.master.admits(pool.facts()));
    // The typo is refused by name; the rest of the cluster is planned.
    let bad: Vec<String> = build
        .invalid_jobs
        .iter()
        .map(|(k, e)| format!("{}: {e}", k.name))
        .collect();
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(
        bad[0].starts_with(
            "typo: spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator"
        ),
        "{bad:?}"
    );
    assert!(bad[0].contains("\"Near\""), "{bad:?}");
    let t4 = build
        .snapshot
        .nodes
        .iter()
        .find(|n| n.name == "t4-spot-a")
        .unwrap();
    assert_eq!(t4.taints[1].effect, "PreferNoSchedule");

    let policy = Policy::default();
    let mut s = build.snapshot;
    let mut last = None;
    let mut reservations = Vec::new();
    for _ in 0..4 {
        let p = plan(&s, &policy);
        // Every pod it creates goes to a node its group may use.
        for c in p.create.iter().chain(&p.recreate_after_delete) {
            let job = s.jobs.iter().find(|j| j.key() == c.job).unwrap();
            let node = s.nodes.iter().find(|n| n.name == c.node).unwrap();
            assert!(job.placement.of(c.role).admits(node.facts()), "{c:?}");
        }
        reservations.extend(p.service_reservations.iter().cloned());
        s = apply(&s, &p);
        s.time_s += 30.0;
        last = Some(p);
    }
    let p = last.unwrap();
    let h100 = nodes_of(&s, "h100-only");
    assert!(
        !h100.is_empty() && h100.iter().all(|n| n.starts_with("h100-")),
        "{h100:?}"
    );
    let dedicated = nodes_of(&s, "dedicated");
    assert!(
        !dedicated.is_empty() && dedicated.iter().all(|n| n.starts_with("a100-ded-")),
        "{dedicated:?}"
    );
    // Takes any GPU its taints allow: never the dedicated pool, whose taint it does not
    // tolerate.
    let anywhere = nodes_of(&s, "anywhere");
    assert!(!anywhere.is_empty(), "{anywhere:?}");
    assert!(
        anywhere.iter().all(|n| !n.starts_with("a100-ded-")),
        "{anywhere:?}"
    );
    // No node has the model it names: NoEligibleNode, not an endless wait for capacity.
    match &p
        .job(&ebb::model::JobKey::new("ml", "b200-only"))
        .unwrap()
        .reason
    {
        Some(Reason::NoEligibleNode { constraint, .. }) => {
            assert_eq!(constraint, "gpu_models")
        }
        other => panic!("{other:?}"),
    }
    // The web Deployment's pods carry their node selector, and so do the replicas its
    // HPA wants: their room is held on the CPU nodes only.
    let web: Vec<_> = s
        .other_pods
        .iter()
        .filter(|o| o.workload.as_deref() == Some("Deployment/web"))
        .collect();
    assert_eq!(web.len(), 4, "3 pods and 1 the HPA wants");
    assert!(
        web.iter()
            .all(|o| o.placement.node_selector["node-role"] == "web")
    );
    assert!(!reservations.is_empty());
    for r in &reservations {
        assert!(r.node.starts_with("cpu-"), "{r:?}");
    }
}

#[test]
fn the_rendered_trainer_carries_the_gpu_models_as_node_affinity() {
    let jobs = world().jobs;
    let tj = jobs
        .iter()
        .find(|j| j.metadata.name.as_deref() == Some("h100-only"))
        .unwrap();
    let pod = render_pod(
        tj,
        Role::Trainer,
        "h100-only-trainer-0",
        &RenderConfig {
            runtime_image: "img".into(),
        },
    );
    let spec = pod.spec.expect("a pod spec");
    let placement = ebb::resource::placement::pod_placement(&spec);
    let build = build_snapshot(&world(), &at("2026-11-23T10:00:00Z"));
    let model = &build
        .snapshot
        .jobs
        .iter()
        .find(|j| j.name == "h100-only")
        .unwrap()
        .placement
        .trainers;
    // kubelet admits the rendered pod on exactly the nodes the model places it on.
    for node in &build.snapshot.nodes {
        assert_eq!(
            placement.admits(node.facts()),
            model.admits(node.facts()),
            "{}",
            node.name
        );
    }
    // The master, a CPU pod, is not narrowed to GPU models.
    let master = render_pod(
        tj,
        Role::Master,
        "h100-only-master-0",
        &RenderConfig {
            runtime_image: "img".into(),
        },
    );
    assert!(master.spec.unwrap().affinity.is_none());
}
