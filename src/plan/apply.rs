//! A perfect world: the snapshot that results when every action of a plan succeeds at
//! once. The simulator, the benchmarks and the fixed-point tests advance with it.

use super::FastMap;
use crate::model::{Job, JobKey, JobPod, OtherPod, Plan, PodPlacement, Snapshot};
use std::collections::hash_map::Entry;

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
/// its world this way every tick). Returns the index of every job it changed, each once,
/// ascending.
pub fn apply_in_place(snapshot: &mut Snapshot, plan: &Plan) -> Vec<usize> {
    let time_s = snapshot.time_s;
    apply_into(
        &mut snapshot.jobs,
        &mut snapshot.other_pods,
        time_s,
        plan,
        Deleted::Gone,
    )
}

fn apply_with(snapshot: &Snapshot, plan: &Plan, deleted: Deleted) -> Snapshot {
    let mut next = snapshot.clone();
    let time_s = next.time_s;
    apply_into(&mut next.jobs, &mut next.other_pods, time_s, plan, deleted);
    next
}

/// Changes only the jobs and pods the plan names: a borrowed one is copied then.
/// Returns the jobs changed, each once, ascending.
pub(crate) fn apply_into<J: Editable<Job>, P: Editable<OtherPod>>(
    jobs: &mut [J],
    other_pods: &mut [P],
    now: f64,
    plan: &Plan,
    deleted: Deleted,
) -> Vec<usize> {
    let mut edited = Vec::new();
    // Every job the plan names is found before any is changed: the index borrows its
    // names from the jobs.
    let (delete_at, create_at, admit) = {
        let index = JobsByKey::of(jobs);
        // A plan made on these very jobs lists them in their order: then its per-job
        // lines need no lookup (1,700 of them each tick of a long trace).
        let aligned = index.unique
            && plan.jobs.len() == jobs.len()
            && plan.jobs.iter().zip(jobs.iter()).all(|(jp, j)| {
                let j = j.read();
                jp.job.name == j.name && jp.job.namespace == j.namespace
            });
        let delete_at: Vec<Option<usize>> =
            plan.delete.iter().map(|d| index.find(&d.job)).collect();
        let create_at: Vec<Option<usize>> = plan
            .create
            .iter()
            .chain(&plan.recreate_after_delete)
            .map(|c| index.find(&c.job))
            .collect();
        let admit: Vec<usize> = plan
            .jobs
            .iter()
            .enumerate()
            .filter(|(_, jp)| jp.admitted)
            .filter_map(|(i, jp)| {
                if aligned {
                    Some(i)
                } else {
                    index.find(&jp.job)
                }
            })
            .collect();
        (delete_at, create_at, admit)
    };
    // Live trainers before, of the jobs the plan touches (scale times move with them).
    let mut before: FastMap<usize, usize> = FastMap::default();
    let mut note = |j: usize, jobs: &[J]| {
        before
            .entry(j)
            .or_insert_with(|| jobs[j].read().live_trainers().count());
    };
    for (d, at) in plan.delete.iter().zip(delete_at) {
        let Some(j) = at else { continue };
        if !jobs[j].read().pods.iter().any(|p| p.name == d.pod) {
            continue;
        }
        note(j, jobs);
        edited.push(j);
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
    let mut creates: FastMap<usize, Vec<&PodPlacement>> = FastMap::default();
    for (c, at) in plan
        .create
        .iter()
        .chain(&plan.recreate_after_delete)
        .zip(create_at)
    {
        if let Some(j) = at {
            creates.entry(j).or_default().push(c);
        }
    }
    for (j, list) in creates {
        note(j, jobs);
        edited.push(j);
        let slots = create_slots(&jobs[j].read().pods, &list);
        let pods = &mut jobs[j].edit().pods;
        for (c, slot) in list.into_iter().zip(slots) {
            match slot {
                Some(i) => {
                    pods[i].node = Some(c.node.clone());
                    pods[i].terminating = false;
                }
                None => pods.push(JobPod {
                    name: c.pod.clone(),
                    role: c.role,
                    node: Some(c.node.clone()),
                    terminating: false,
                }),
            }
        }
    }
    for j in admit {
        if !jobs[j].read().admitted {
            jobs[j].edit().admitted = true;
            edited.push(j);
        }
    }
    for (j, count) in before {
        if jobs[j].read().live_trainers().count() != count {
            jobs[j].edit().last_scale_time_s = Some(now);
        }
    }
    edited.sort_unstable();
    edited.dedup();
    if plan.service_reservations.is_empty() {
        return edited;
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
    edited
}

/// Jobs by namespace and name, borrowing the names from the jobs: the last job of a
/// name wins, as a map filled in order has it.
struct JobsByKey<'j> {
    /// By name, then namespace: a name rarely recurs in another namespace; those few
    /// wait in a list.
    by_name: FastMap<&'j str, (&'j str, usize)>,
    other_namespaces: Vec<(&'j str, &'j str, usize)>,
    /// No namespace and name appears twice.
    unique: bool,
}

impl<'j> JobsByKey<'j> {
    fn of<J: Editable<Job>>(jobs: &'j [J]) -> JobsByKey<'j> {
        let mut by_name: FastMap<&str, (&str, usize)> =
            FastMap::with_capacity_and_hasher(jobs.len(), Default::default());
        let mut other_namespaces: Vec<(&str, &str, usize)> = Vec::new();
        let mut unique = true;
        for (i, j) in jobs.iter().enumerate() {
            let j = j.read();
            let (name, ns) = (j.name.as_str(), j.namespace.as_str());
            match by_name.entry(name) {
                Entry::Vacant(v) => {
                    v.insert((ns, i));
                }
                Entry::Occupied(mut first) if first.get().0 == ns => {
                    first.get_mut().1 = i;
                    unique = false;
                }
                Entry::Occupied(_) => match other_namespaces
                    .iter_mut()
                    .find(|(n, s, _)| *n == name && *s == ns)
                {
                    Some(other) => {
                        other.2 = i;
                        unique = false;
                    }
                    None => other_namespaces.push((name, ns, i)),
                },
            }
        }
        JobsByKey {
            by_name,
            other_namespaces,
            unique,
        }
    }

    fn find(&self, key: &JobKey) -> Option<usize> {
        match self.by_name.get(key.name.as_str())? {
            &(ns, i) if ns == key.namespace => Some(i),
            _ => self
                .other_namespaces
                .iter()
                .find(|&&(n, ns, _)| n == key.name && ns == key.namespace)
                .map(|&(_, _, i)| i),
        }
    }
}

/// For each pod to create, in order: the index of the job's pod of that name, or None
/// for a new pod. A job gains hundreds of trainers in one plan; looking each name up in
/// a list of hundreds made that quadratic.
fn create_slots(pods: &[JobPod], creates: &[&PodPlacement]) -> Vec<Option<usize>> {
    // The first pod of a name, as a search from the front would find it.
    let mut by_name: FastMap<&str, usize> = FastMap::default();
    for (i, p) in pods.iter().enumerate() {
        by_name.entry(p.name.as_str()).or_insert(i);
    }
    let mut len = pods.len();
    creates
        .iter()
        .map(|c| match by_name.get(c.pod.as_str()) {
            // Possibly a pod this very list pushed earlier: it exists by then.
            Some(&i) => Some(i),
            None => {
                by_name.insert(c.pod.as_str(), len);
                len += 1;
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{JobKey, Role};

    fn pod(name: &str, node: Option<&str>) -> JobPod {
        JobPod {
            name: name.into(),
            role: Role::Trainer,
            node: node.map(Into::into),
            terminating: node.is_none(),
        }
    }

    fn create(name: &str, node: &str) -> PodPlacement {
        PodPlacement {
            job: JobKey::new("ns", "j"),
            pod: name.into(),
            role: Role::Trainer,
            node: node.into(),
        }
    }

    /// What a search from the front of the list, pod by pod, would do.
    fn slots_by_search(pods: &[JobPod], creates: &[&PodPlacement]) -> Vec<Option<usize>> {
        let mut names: Vec<&str> = pods.iter().map(|p| p.name.as_str()).collect();
        creates
            .iter()
            .map(|c| match names.iter().position(|&n| n == c.pod) {
                Some(i) => Some(i),
                None => {
                    names.push(&c.pod);
                    None
                }
            })
            .collect()
    }

    #[test]
    fn a_pod_to_create_finds_the_first_pod_of_its_name_even_one_just_created() {
        let pods = vec![
            pod("a", Some("n1")),
            pod("b", None),
            pod("a", None), // a duplicate name: the first one wins
        ];
        let list = [
            create("b", "n2"),
            create("c", "n3"),
            create("c", "n4"), // the pod created just before
            create("a", "n5"),
            create("d", "n6"),
        ];
        let refs: Vec<&PodPlacement> = list.iter().collect();
        let slots = create_slots(&pods, &refs);
        assert_eq!(slots, vec![Some(1), None, Some(3), Some(0), None]);
        assert_eq!(slots, slots_by_search(&pods, &refs));
    }
}
