//! The reflectors' objects to the planner's `Snapshot`: a pure function, so a tick is
//! reproducible from recorded API objects.

use super::objects::ClusterObjects;
use crate::model::placement::Taint;
use crate::model::{self, JobKey, JobPod, OtherPod, Snapshot, Topology};
use crate::resource::failure::{failed_message, failure_line};
use crate::resource::names::{LABEL_JOB, LABEL_ROLE, role_from_label};
use crate::resource::placement::{pod_placement, pod_spec_field};
use crate::resource::pod_requests::{pod_requests, quantities};
use crate::resource::spec::{SpecError, job_model, queue_model};
use crate::resource::time::seconds;
use crate::resource::{JobPhase, TrainingJob};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::{BTreeMap, HashMap};

/// Label or annotation the node agent (or GPU feature discovery) sets.
pub const GPU_MODEL_LABEL: &str = "nvidia.com/gpu.product";
pub const NVLINK_GROUP_ANNOTATION: &str = "ebb.dev/nvlink-group";
/// GPUs the node agent found unhealthy: not offered to the planner.
pub const GPU_UNHEALTHY_ANNOTATION: &str = "ebb.dev/gpu-unhealthy";
pub const RACK_LABEL: &str = "ebb.dev/rack";
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// The labels autoscalers put on a node naming its group, in the order they are read:
/// Karpenter's NodePool, EKS managed node groups, GKE node pools, AKS agent pools.
pub const NODE_GROUP_LABELS: [&str; 4] = [
    "karpenter.sh/nodepool",
    "eks.amazonaws.com/nodegroup",
    "cloud.google.com/gke-nodepool",
    "kubernetes.azure.com/agentpool",
];

#[derive(Debug, Default)]
pub struct SnapshotBuild {
    pub snapshot: Snapshot,
    /// Jobs the planner never sees, with the field that is wrong.
    pub invalid_jobs: Vec<(JobKey, SpecError)>,
    pub invalid_queues: Vec<(String, SpecError)>,
    /// Jobs that just finished (their master pod ended), with the outcome and why.
    pub finished: Vec<(JobKey, JobPhase, String)>,
    /// Objects that were skipped or partly read (bad quantities on foreign pods...).
    pub warnings: Vec<String>,
}

pub fn build_snapshot(objects: &ClusterObjects, now: &Time) -> SnapshotBuild {
    let mut out = SnapshotBuild {
        snapshot: Snapshot {
            time_s: seconds(now),
            ..Snapshot::default()
        },
        ..SnapshotBuild::default()
    };
    for node in &objects.nodes {
        if let Some(n) = node_model(node, &mut out.warnings) {
            out.snapshot.nodes.push(n);
        }
    }
    for tq in &objects.queues {
        match queue_model(tq) {
            Ok(q) => out.snapshot.queues.push(q),
            Err(e) => out
                .invalid_queues
                .push((tq.metadata.name.clone().unwrap_or_default(), e)),
        }
    }
    let jobs_by_uid: HashMap<&str, &TrainingJob> = objects
        .jobs
        .iter()
        .filter_map(|j| Some((j.metadata.uid.as_deref()?, j.as_ref())))
        .collect();
    let mut pods_by_job: HashMap<&str, Vec<&Pod>> = HashMap::new();
    for pod in &objects.pods {
        match owning_job(pod, &jobs_by_uid) {
            Some(uid) => pods_by_job.entry(uid).or_default().push(pod),
            None => {
                if let Some(other) = other_pod(pod, &mut out.warnings) {
                    out.snapshot.other_pods.push(other);
                }
            }
        }
    }
    out.snapshot
        .other_pods
        .extend(hpa_wanted_pods(objects, &out.snapshot.other_pods));
    for tj in &objects.jobs {
        let key = JobKey::new(
            tj.metadata.namespace.clone().unwrap_or_default(),
            tj.metadata.name.clone().unwrap_or_default(),
        );
        let pods = tj
            .metadata
            .uid
            .as_deref()
            .and_then(|uid| pods_by_job.get(uid))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let finished_before = tj.status.as_ref().is_some_and(|s| s.phase.is_finished());
        let outcome = if finished_before {
            None
        } else {
            master_outcome(pods)
        };
        if finished_before || outcome.is_some() {
            // Its pods still hold their room until they are gone.
            let still_there = pods.iter().filter_map(|p| other_pod(p, &mut out.warnings));
            out.snapshot.other_pods.extend(still_there);
            if let Some((phase, why)) = outcome {
                out.finished.push((key, phase, why));
            }
            continue;
        }
        let submit = tj
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(out.snapshot.time_s, seconds);
        let mut job = match job_model(tj, submit) {
            Ok(job) => job,
            Err(e) => {
                out.invalid_jobs.push((key, e));
                continue;
            }
        };
        job.pods = pods.iter().filter_map(|p| job_pod(p)).collect();
        let status = tj.status.as_ref();
        job.admitted = status.is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Admitted" && c.status == "True")
        }) || job.pods.iter().any(|p| p.node.is_some() && !p.terminating);
        job.last_scale_time_s = status.and_then(|s| s.last_scale_time.as_ref()).map(seconds);
        out.snapshot.jobs.push(job);
    }
    out
}

fn node_model(node: &Node, warnings: &mut Vec<String>) -> Option<model::Node> {
    let name = node.metadata.name.clone()?;
    let status = node.status.as_ref();
    let unhealthy_gpus: i64 = node
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(GPU_UNHEALTHY_ANNOTATION))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let allocatable = match status.and_then(|s| s.allocatable.as_ref()) {
        Some(a) => {
            let mut problems = Vec::new();
            let mut r = quantities(a, &format!("node {name} allocatable"), &mut problems);
            warnings.extend(problems);
            r.gpus = (r.gpus - unhealthy_gpus.max(0)).max(0);
            r
        }
        None => {
            warnings.push(format!("node {name} reports no allocatable resources yet"));
            return None;
        }
    };
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let annotations = node.metadata.annotations.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    let spec = node.spec.as_ref();
    let cordoned = spec.and_then(|s| s.unschedulable).unwrap_or(false);
    let taints = spec
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .map(|t| Taint {
            key: t.key.clone(),
            value: t.value.clone().unwrap_or_default(),
            effect: t.effect.clone(),
        })
        .collect();
    Some(model::Node {
        gpu_model: labels.get(GPU_MODEL_LABEL).cloned(),
        group: NODE_GROUP_LABELS
            .iter()
            .find_map(|key| labels.get(*key))
            .cloned(),
        topology: Topology {
            nvlink_group: annotations
                .and_then(|a| a.get(NVLINK_GROUP_ANNOTATION))
                .cloned(),
            rack: labels
                .get(RACK_LABEL)
                .or_else(|| labels.get(ZONE_LABEL))
                .cloned(),
        },
        // Taints keep off only the pods that do not tolerate them (plan::eligibility).
        unschedulable: cordoned || !ready,
        taints,
        labels,
        name,
        allocatable,
    })
}

/// The uid of the TrainingJob that owns `pod`, when one does and still exists.
fn owning_job<'a>(pod: &Pod, jobs: &HashMap<&'a str, &TrainingJob>) -> Option<&'a str> {
    pod.metadata.labels.as_ref()?.get(LABEL_JOB)?;
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .filter(|o| o.kind == "TrainingJob")
        .find_map(|o| jobs.get_key_value(o.uid.as_str()).map(|(k, _)| *k))
}

fn pod_phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

fn is_finished(pod: &Pod) -> bool {
    matches!(pod_phase(pod), "Succeeded" | "Failed")
}

fn job_pod(pod: &Pod) -> Option<JobPod> {
    let role = role_from_label(pod.metadata.labels.as_ref()?.get(LABEL_ROLE)?)?;
    let finished = is_finished(pod);
    Some(JobPod {
        name: pod.metadata.name.clone()?,
        role,
        // A finished pod holds no resources but keeps its name taken until deleted.
        node: if finished {
            None
        } else {
            pod.spec.as_ref().and_then(|s| s.node_name.clone())
        },
        terminating: finished || pod.metadata.deletion_timestamp.is_some(),
    })
}

/// A job ends with its master: Succeeded when it exits 0, Failed when the pod fails.
fn master_outcome(pods: &[&Pod]) -> Option<(JobPhase, String)> {
    let master = pods.iter().find(|p| {
        p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_ROLE))
            .is_some_and(|r| r == "master")
    })?;
    let status = master.status.as_ref();
    match pod_phase(master) {
        "Succeeded" => Some((JobPhase::Succeeded, "the master finished every pass".into())),
        "Failed" => {
            let why = termination_message(master).unwrap_or_else(|| {
                status
                    .and_then(|s| s.message.clone().or_else(|| s.reason.clone()))
                    .unwrap_or_else(|| "the master pod failed".into())
            });
            Some((JobPhase::Failed, why))
        }
        _ => None,
    }
}

/// Why the pod's container last ended, from its termination message (the log's tail
/// under `FallbackToLogsOnError`): `POD failed N times (exit C): LINE`.
pub fn termination_message(pod: &Pod) -> Option<String> {
    let name = pod.metadata.name.as_deref()?;
    let container = pod.status.as_ref()?.container_statuses.as_ref()?.first()?;
    let ended = container
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .or_else(|| {
            container
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
        })?;
    let line = ended.message.as_deref().and_then(failure_line);
    let times = u32::try_from(container.restart_count).unwrap_or(0) + 1;
    Some(failed_message(
        name,
        times,
        Some(ended.exit_code),
        line.as_deref(),
    ))
}

fn other_pod(pod: &Pod, warnings: &mut Vec<String>) -> Option<OtherPod> {
    if is_finished(pod) {
        return None;
    }
    let (resources, problems) = pod_requests(pod);
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone()?;
    warnings.extend(
        problems
            .into_iter()
            .map(|p| format!("pod {namespace}/{name}: {p}")),
    );
    // The API server validated the spec; a constraint ebb cannot read is said, and the
    // planner's check reports the pod (it is given room nowhere its constraint rules out).
    let placement = pod.spec.as_ref().map(pod_placement).unwrap_or_default();
    if let Err(e) = placement.check() {
        warnings.push(format!(
            "pod {namespace}/{name}: spec.{}: {}",
            pod_spec_field(&e.field),
            e.message
        ));
    }
    Some(OtherPod {
        workload: workload_of(pod),
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        namespace,
        name,
        resources,
        placement,
    })
}

/// `Deployment/NAME` for a pod of a Deployment's ReplicaSet, `KIND/NAME` of any other owner.
fn workload_of(pod: &Pod) -> Option<String> {
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))?;
    if owner.kind == "ReplicaSet" {
        let hash = pod.metadata.labels.as_ref()?.get("pod-template-hash");
        if let Some(deployment) = hash.and_then(|h| owner.name.strip_suffix(&format!("-{h}"))) {
            return Some(format!("Deployment/{deployment}"));
        }
    }
    Some(format!("{}/{}", owner.kind, owner.name))
}

/// Replicas an HPA wants that have no pod yet: demand ebb makes room for before it grows
/// trainers, sized like the workload's existing pods.
fn hpa_wanted_pods(objects: &ClusterObjects, others: &[OtherPod]) -> Vec<OtherPod> {
    let mut by_workload: BTreeMap<(&str, &str), Vec<&OtherPod>> = BTreeMap::new();
    for p in others {
        if let Some(w) = p.workload.as_deref() {
            by_workload
                .entry((p.namespace.as_str(), w))
                .or_default()
                .push(p);
        }
    }
    let mut wanted = Vec::new();
    for hpa in &objects.hpas {
        let (spec, Some(status)) = (&hpa.spec, &hpa.status) else {
            continue;
        };
        let namespace = hpa.metadata.namespace.as_deref().unwrap_or_default();
        let target = format!(
            "{}/{}",
            spec.scale_target_ref.kind, spec.scale_target_ref.name
        );
        let existing = by_workload
            .get(&(namespace, target.as_str()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let Some(sample) = existing.first() else {
            continue;
        };
        let missing = i64::from(status.desired_replicas) - existing.len() as i64;
        for i in 0..missing.max(0) {
            wanted.push(OtherPod {
                namespace: namespace.to_string(),
                name: format!("{}-hpa-wanted-{i}", spec.scale_target_ref.name),
                workload: Some(target.clone()),
                resources: sample.resources,
                node: None,
                // The Deployment's replicas share its pod template.
                placement: sample.placement.clone(),
            });
        }
    }
    wanted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_master_says_why_from_its_termination_message() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "j-master-0", "labels": {"ebb.dev/role": "master"}},
            "status": {
                "phase": "Failed",
                "containerStatuses": [{
                    "name": "master", "image": "x", "imageID": "", "ready": false,
                    "restartCount": 4,
                    "state": {"terminated": {
                        "exitCode": 1,
                        "message": "INFO starting\nError: dataset: io on /data/d.csv: No such file or directory (os error 2)\n"
                    }}
                }]
            }
        }))
        .unwrap();
        let (phase, why) = master_outcome(&[&pod]).unwrap();
        assert_eq!(phase, JobPhase::Failed);
        assert_eq!(
            why,
            "j-master-0 failed 5 times (exit 1): dataset: io on /data/d.csv: No such file or directory (os error 2)"
        );
        let mut bare = pod.clone();
        bare.status.as_mut().unwrap().container_statuses = None;
        bare.status.as_mut().unwrap().message = Some("evicted".into());
        assert_eq!(master_outcome(&[&bare]).unwrap().1, "evicted");
    }
}
