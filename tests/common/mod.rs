//! Builders for planner tests.
#![allow(dead_code)]

use ebb::model::*;
use ebb::plan::{Policy, apply::apply, plan};

pub const GIB: i64 = 1 << 30;

pub fn cpu_node(name: &str, cores: i64) -> Node {
    Node::new(name, Resources::new(cores * 1000, cores * 4 * GIB, 0))
}

pub fn gpu_node(name: &str, cores: i64, gpus: i64) -> Node {
    Node::new(name, Resources::new(cores * 1000, cores * 8 * GIB, gpus))
}

pub fn job(name: &str, min: u32, max: u32, trainer: Resources) -> Job {
    Job {
        namespace: "ml".into(),
        name: name.into(),
        queue: "default".into(),
        priority: 0,
        weight: 1.0,
        master: PodGroup {
            replicas: 1,
            resources: Resources::new(1000, GIB, 0),
        },
        pservers: PodGroup {
            replicas: 2,
            resources: Resources::new(1000, GIB, 0),
        },
        trainers: TrainerSpec {
            min,
            max,
            resources: trainer,
        },
        pods: Vec::new(),
        submit_time_s: 0.0,
        admitted: false,
        last_scale_time_s: None,
        speedup: Vec::new(),
        placement: Default::default(),
    }
}

pub fn one_cpu() -> Resources {
    Resources::new(1000, GIB, 0)
}

pub fn snapshot(nodes: Vec<Node>, jobs: Vec<Job>) -> Snapshot {
    Snapshot {
        time_s: 0.0,
        nodes,
        jobs,
        queues: Vec::new(),
        other_pods: Vec::new(),
        node_groups: Vec::new(),
    }
}

/// Plan and apply `ticks` times, advancing the clock by `dt` each time.
pub fn run(mut s: Snapshot, policy: &Policy, ticks: usize, dt: f64) -> (Snapshot, Plan) {
    let mut last = plan(&s, policy);
    for _ in 0..ticks {
        last = plan(&s, policy);
        s = apply(&s, &last);
        s.time_s += dt;
    }
    (s, last)
}

pub fn trainers(s: &Snapshot, name: &str) -> usize {
    s.jobs
        .iter()
        .find(|j| j.name == name)
        .map_or(0, |j| j.live_trainers().count())
}

pub fn key(name: &str) -> JobKey {
    JobKey::new("ml", name)
}

/// Requests of every pod bound to `node`.
pub fn used_on(s: &Snapshot, node: &str) -> Resources {
    let mut used = Resources::ZERO;
    for j in &s.jobs {
        for p in j.pods.iter().filter(|p| p.node.as_deref() == Some(node)) {
            used = used.add(&j.resources_of(p.role));
        }
    }
    for p in s
        .other_pods
        .iter()
        .filter(|p| p.node.as_deref() == Some(node))
    {
        used = used.add(&p.resources);
    }
    used
}

/// Requests bound to each node never exceed its allocatable.
pub fn assert_no_overcommit(s: &Snapshot) {
    for node in &s.nodes {
        let used = used_on(s, &node.name);
        assert!(
            used.fits_in(&node.allocatable),
            "node {} over-committed: {used} > {}",
            node.name,
            node.allocatable
        );
    }
}

pub fn bound(name: &str, role: Role, node: &str) -> JobPod {
    JobPod {
        name: name.into(),
        role,
        node: Some(node.into()),
        terminating: false,
    }
}

/// A pod ebb does not manage that wants `resources` and has no node yet (HPA demand).
pub fn unplaced_pod(name: &str, resources: Resources) -> OtherPod {
    OtherPod {
        namespace: "web".into(),
        name: name.into(),
        workload: None,
        resources,
        node: None,
        placement: Default::default(),
    }
}
