//! A perfect world: the snapshot that results when every action of a plan succeeds at
//! once. The simulator, the benchmarks and the fixed-point tests advance with it.

use super::FastMap;
use crate::model::{Job, JobPod, OtherPod, Plan, Snapshot};

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
pub(crate) enum Deleted {
    Gone,
    NameHeld,
}

/// An item of a world that a plan may change: owned, or borrowed and copied on the first
/// change (see [`super::world::World`]).
pub(crate) trait Editable<T> {
    fn read(&self) -> &T;
    fn edit(&mut self) -> &mut T;
}

impl Editable<Job> for Job {
    fn read(&self) -> &Job {
        self
    }
    fn edit(&mut self) -> &mut Job {
        self
    }
}

impl Editable<OtherPod> for OtherPod {
    fn read(&self) -> &OtherPod {
        self
    }
    fn edit(&mut self) -> &mut OtherPod {
        self
    }
}

/// [`apply`] on a snapshot the caller owns, without copying it (the simulator advances
/// its world this way every tick).
pub fn apply_in_place(snapshot: &mut Snapshot, plan: &Plan) {
    let time_s = snapshot.time_s;
    apply_into(
        &mut snapshot.jobs,
        &mut snapshot.other_pods,
        time_s,
        plan,
        Deleted::Gone,
    );
}

fn apply_with(snapshot: &Snapshot, plan: &Plan, deleted: Deleted) -> Snapshot {
    let mut next = snapshot.clone();
    let time_s = next.time_s;
    apply_into(&mut next.jobs, &mut next.other_pods, time_s, plan, deleted);
    next
}

/// Changes only the jobs and pods the plan names: a borrowed one is copied then.
pub(crate) fn apply_into<J: Editable<Job>, P: Editable<OtherPod>>(
    jobs: &mut [J],
    other_pods: &mut [P],
    now: f64,
    plan: &Plan,
    deleted: Deleted,
) {
    // Keys are copied once so that jobs can be changed while they are looked up.
    let keys: Vec<(String, String)> = jobs
        .iter()
        .map(|j| {
            let j = j.read();
            (j.namespace.clone(), j.name.clone())
        })
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
    // Live trainers before, of the jobs the plan touches (scale times move with them).
    let mut before: FastMap<usize, usize> = FastMap::default();
    let mut note = |j: usize, jobs: &[J]| {
        before
            .entry(j)
            .or_insert_with(|| jobs[j].read().live_trainers().count());
    };
    for d in &plan.delete {
        let Some(j) = find(&d.job) else { continue };
        if !jobs[j].read().pods.iter().any(|p| p.name == d.pod) {
            continue;
        }
        note(j, jobs);
        let pods = &mut jobs[j].edit().pods;
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
        note(j, jobs);
        let pods = &mut jobs[j].edit().pods;
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
            && !jobs[j].read().admitted
        {
            jobs[j].edit().admitted = true;
        }
    }
    for (j, count) in before {
        if jobs[j].read().live_trainers().count() != count {
            jobs[j].edit().last_scale_time_s = Some(now);
        }
    }
    if plan.service_reservations.is_empty() {
        return;
    }
    let reserved: FastMap<&str, &str> = plan
        .service_reservations
        .iter()
        .map(|r| (r.pod.as_str(), r.node.as_str()))
        .collect();
    for pod in other_pods.iter_mut() {
        if pod.read().node.is_none()
            && let Some(node) = reserved.get(pod.read().key().as_str())
        {
            pod.edit().node = Some(node.to_string());
        }
    }
}
