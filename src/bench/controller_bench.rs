//! `ebb bench controller`: one controller tick (API objects -> snapshot -> plan ->
//! API calls decided) on a generated cluster, as the reflectors would hold it.

use super::generate::ClusterSpec;
use super::plan_bench::steady_snapshot;
use super::quantile::quantile;
use crate::cluster::kube::snapshot::{NVLINK_GROUP_ANNOTATION, RACK_LABEL, build_snapshot};
use crate::cluster::kube::{ClusterObjects, RenderConfig, decide};
use crate::model::{Job, Resources, Snapshot};
use crate::resource::names::{LABEL_JOB, LABEL_ROLE, role_label};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Serialize)]
pub struct ControllerBench {
    pub nodes: usize,
    pub jobs: usize,
    pub pods: usize,
    pub runs: usize,
    /// Reflector objects to Snapshot only.
    pub snapshot_median_ms: f64,
    /// The whole decision: snapshot, plan, actions.
    pub tick_median_ms: f64,
    pub tick_p99_ms: f64,
    pub actions: usize,
}

fn requests(r: &Resources) -> Value {
    json!({"cpu": format!("{}m", r.cpu_milli), "memory": r.memory_bytes.to_string(),
           "nvidia.com/gpu": r.gpus.to_string()})
}

fn parse<T: serde::de::DeserializeOwned>(v: Value) -> Option<Arc<T>> {
    serde_json::from_value(v).ok().map(Arc::new)
}

fn time_at(s: f64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(s as i64)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn quantity_spec(r: &Resources) -> Value {
    json!({"cpu": format!("{}m", r.cpu_milli), "memory": r.memory_bytes.to_string(), "gpus": r.gpus})
}

fn training_job(j: &Job, uid: &str) -> Value {
    // The generator makes some pserver-less (allreduce-style) jobs; a TrainingJob needs
    // at least one pserver, so those get a small one.
    let (pservers, ps_resources) = if j.pservers.replicas == 0 {
        (1, Resources::new(100, 128 << 20, 0))
    } else {
        (j.pservers.replicas, j.pservers.resources)
    };
    let mut tj = json!({
        "apiVersion": "ebb.dev/v1alpha1", "kind": "TrainingJob",
        "metadata": {"name": j.name, "namespace": j.namespace, "uid": uid, "generation": 1,
                     "creationTimestamp": time_at(j.submit_time_s)},
        "spec": {"queue": j.queue, "priority": j.priority, "weight": j.weight, "image": "trainer:1",
                 "dataset": "/data/x", "passes": 1,
                 "master": {"resources": quantity_spec(&j.master.resources)},
                 "pservers": {"replicas": pservers, "resources": quantity_spec(&ps_resources)},
                 "trainers": {"min": j.trainers.min, "max": j.trainers.max, "resources": quantity_spec(&j.trainers.resources)}}
    });
    if j.admitted {
        tj["status"] = json!({"phase": "Running", "conditions": [{"type": "Admitted", "status": "True",
            "reason": "Admitted", "message": "", "lastTransitionTime": time_at(j.submit_time_s)}]});
    }
    tj
}

/// The objects a controller's reflectors would hold for `s`.
pub fn kube_objects(s: &Snapshot) -> ClusterObjects {
    let mut o = ClusterObjects::default();
    for n in &s.nodes {
        let mut labels = n.labels.clone();
        if let Some(r) = &n.topology.rack {
            labels.insert(RACK_LABEL.into(), r.clone());
        }
        let annotations: serde_json::Map<String, Value> = n
            .topology
            .nvlink_group
            .iter()
            .map(|g| (NVLINK_GROUP_ANNOTATION.to_string(), json!(g)))
            .collect();
        o.nodes.extend(parse(json!({
            "metadata": {"name": n.name, "labels": labels, "annotations": annotations},
            "spec": {},
            "status": {"allocatable": requests(&n.allocatable),
                       "conditions": [{"type": "Ready", "status": "True"}]}
        })));
    }
    for q in &s.queues {
        o.queues.extend(parse(json!({
            "apiVersion": "ebb.dev/v1alpha1", "kind": "TrainingQueue",
            "metadata": {"name": q.name},
            "spec": {"weight": q.weight, "guaranteed": quantity_spec(&q.guaranteed), "parent": q.parent}
        })));
    }
    for (i, j) in s.jobs.iter().enumerate() {
        let uid = format!("job-{i}");
        o.jobs.extend(parse(training_job(j, &uid)));
        for p in &j.pods {
            let r = j.resources_of(p.role);
            o.pods.extend(parse(json!({
                "metadata": {"name": p.name, "namespace": j.namespace,
                             "labels": {LABEL_JOB: j.name, LABEL_ROLE: role_label(p.role)},
                             "ownerReferences": [{"apiVersion": "ebb.dev/v1alpha1", "kind": "TrainingJob",
                                                  "name": j.name, "uid": uid, "controller": true}]},
                "spec": {"nodeName": p.node, "schedulerName": "ebb",
                         "containers": [{"name": "c", "resources": {"requests": requests(&r)}}]},
                "status": {"phase": "Running"}
            })));
        }
    }
    for p in &s.other_pods {
        o.pods.extend(parse(json!({
            "metadata": {"name": p.name, "namespace": p.namespace},
            "spec": {"nodeName": p.node,
                     "containers": [{"name": "c", "resources": {"requests": requests(&p.resources)}}]},
            "status": {"phase": if p.node.is_some() { "Running" } else { "Pending" }}
        })));
    }
    o
}

pub fn run(spec: &ClusterSpec, runs: usize) -> ControllerBench {
    let (snapshot, policy) = steady_snapshot(spec);
    let objects = kube_objects(&snapshot);
    let now =
        Time(k8s_openapi::jiff::Timestamp::from_second(snapshot.time_s as i64).unwrap_or_default());
    let config = RenderConfig {
        runtime_image: "ebb:bench".into(),
    };
    let mut snapshot_ms = Vec::new();
    let mut tick_ms = Vec::new();
    let mut actions = 0;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let build = build_snapshot(&objects, &now);
        snapshot_ms.push(started.elapsed().as_secs_f64() * 1e3);
        drop(build);
        let started = Instant::now();
        let tick = decide(&objects, &policy, &config, &now);
        tick_ms.push(started.elapsed().as_secs_f64() * 1e3);
        actions = tick.actions.len();
    }
    ControllerBench {
        nodes: objects.nodes.len(),
        jobs: objects.jobs.len(),
        pods: objects.pods.len(),
        runs: runs.max(1),
        snapshot_median_ms: quantile(&mut snapshot_ms, 0.5),
        tick_median_ms: quantile(&mut tick_ms, 0.5),
        tick_p99_ms: quantile(&mut tick_ms, 0.99),
        actions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_objects_give_back_the_snapshot() {
        let spec = ClusterSpec {
            nodes: 20,
            jobs: 8,
            queues: 2,
            gpus_per_node: 4,
            seed: 3,
            constraints: Default::default(),
        };
        let (snapshot, _) = steady_snapshot(&spec);
        let objects = kube_objects(&snapshot);
        let now = Time(k8s_openapi::jiff::Timestamp::from_second(snapshot.time_s as i64).unwrap());
        let back = build_snapshot(&objects, &now);
        assert!(back.invalid_jobs.is_empty(), "{:?}", back.invalid_jobs);
        assert_eq!(back.snapshot.nodes.len(), snapshot.nodes.len());
        assert_eq!(back.snapshot.jobs.len(), snapshot.jobs.len());
        let pods = |s: &Snapshot| s.jobs.iter().map(|j| j.pods.len()).sum::<usize>();
        assert_eq!(pods(&back.snapshot), pods(&snapshot));
        for (a, b) in back.snapshot.nodes.iter().zip(&snapshot.nodes) {
            assert_eq!(a.allocatable, b.allocatable);
            assert_eq!(a.topology, b.topology);
        }
    }
}
