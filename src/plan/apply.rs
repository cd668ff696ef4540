//! A perfect world: the snapshot that results when every action of a plan succeeds at
//! once. The simulator, the benchmarks and the fixed-point tests advance with it.

use super::FastMap;
use crate::model::{JobPod, Plan, Snapshot};

pub fn apply(snapshot: &Snapshot, plan: &Plan) -> Snapshot {
    apply_with(snapshot, plan, Deleted::Gone)
}

/// The world a moment after the plan's API calls: deleted pods have freed their node but
/// their objects still hold their names, so a plan made on it never hands a deleted
/// pod's name to a new pod (the planner composes rounds on it, see [`super::plan`]).
pub fn apply_keeping_names(snapshot: &Snapshot, plan: &Plan) -> Snapshot {
    apply_with(snapshot, plan, Deleted::NameHeld)
}

#[derive(Clone, Copy, PartialEq)]
enum Deleted {
    Gone,
    NameHeld,
}

/// [`apply`] on a snapshot the caller owns, without copying it (the simulator advances
/// its world this way every tick).
pub fn apply_in_place(snapshot: &mut Snapshot, plan: &Plan) {
    apply_into(snapshot, plan, Deleted::Gone);
}

fn apply_with(snapshot: &Snapshot, plan: &Plan, deleted: Deleted) -> Snapshot {
    let mut next = snapshot.clone();
    apply_into(&mut next, plan, deleted);
    next
}

fn apply_into(next: &mut Snapshot, plan: &Plan, deleted: Deleted) {
    // Keys are copied once so that jobs can be changed while they are looked up.
    let keys: Vec<(String, String)> = next
        .jobs
        .iter()
        .map(|j| (j.namespace.clone(), j.name.clone()))
        .collect();
    let job_index: FastMap<(&str, &str), usize> = keys
        .iter()
        .enumerate()
        .map(|(i, (ns, name))| ((ns.as_str(), name.as_str()), i))
        .collect();
    let find = |key: &crate::model::JobKey| {
        job_index
            .get(&(key.namespace.as_str(), key.name.as_str()))
            .copied()
    };
    let before: Vec<usize> = next
        .jobs
        .iter()
        .map(|j| j.live_trainers().count())
        .collect();
    for d in &plan.delete {
        let Some(j) = find(&d.job) else { continue };
        let pods = &mut next.jobs[j].pods;
        match deleted {
            Deleted::Gone => pods.retain(|p| p.name != d.pod),
            Deleted::NameHeld => {
                for p in pods.iter_mut().filter(|p| p.name == d.pod) {
                    p.node = None;
                    p.terminating = true;
                }
            }
        }
    }
    // Deletions complete at once here, so pods waiting for their name follow at once.
    for c in plan.create.iter().chain(&plan.recreate_after_delete) {
        let Some(j) = find(&c.job) else { continue };
        let pods = &mut next.jobs[j].pods;
        match pods.iter_mut().find(|p| p.name == c.pod) {
            Some(p) => {
                p.node = Some(c.node.clone());
                p.terminating = false;
            }
            None => pods.push(JobPod {
                name: c.pod.clone(),
                role: c.role,
                node: Some(c.node.clone()),
                terminating: false,
            }),
        }
    }
    for jp in &plan.jobs {
        if let Some(j) = find(&jp.job)
            && jp.admitted
        {
            next.jobs[j].admitted = true;
        }
    }
    let now = next.time_s;
    for (j, job) in next.jobs.iter_mut().enumerate() {
        if job.live_trainers().count() != before[j] {
            job.last_scale_time_s = Some(now);
        }
    }
    let reserved: FastMap<&str, &str> = plan
        .service_reservations
        .iter()
        .map(|r| (r.pod.as_str(), r.node.as_str()))
        .collect();
    for pod in &mut next.other_pods {
        if pod.node.is_none()
            && let Some(node) = reserved.get(pod.key().as_str())
        {
            pod.node = Some(node.to_string());
        }
    }
}
