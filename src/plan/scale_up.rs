//! Nodes to ask an autoscaler for: per job whose gang cannot pack on the nodes there
//! are, the new nodes of the snapshot's node groups that would hold it.
//!
//! Cluster Autoscaler and Karpenter add nodes only for pods that are pending and
//! unschedulable (or for a ProvisioningRequest). ebb binds its own pods and shows none
//! pending, so it says itself what must run: the gang (master, pservers and `min`
//! trainers) of each job admission would take but packing could not place, and the
//! missing minimum of an admitted job below it. Never elastic extras (the queue's room
//! for those is what exists), and never a job its queue's limit holds back, with the
//! gangs already asked for counted: a node bought for a job that may not run is a
//! node nobody uses.
//!
//! The rule, per job in admission order (priority, then submit time): picture the
//! gang's pods, largest first, each on the first node it fits and may use of: the room
//! the existing nodes have left once the plan is carried out, the job's pictured new
//! nodes, else a new node of the group the job already uses, else of the cheapest
//! group whose node template its placement admits (selector, affinity, GPU models,
//! taints: the filters packing applies) and holds the pod, within each group's max.
//! All of the gang or nothing: a job some pod of which nothing can hold asks for no
//! node, and takes no room from the jobs after it. Pictured nodes are the job's own (a
//! request that fails or is granted in part leaves no other job short); the existing
//! room a job's picture takes is not offered to later jobs.

use super::admission::{admission_order, queue_path};
use super::view::View;
use crate::model::{
    GroupNodes, JobPlan, NoScaleUp, Node, NodeGroup, Problem, Reason, Resources, Role, ScaleUp,
};
use std::collections::BTreeMap;

/// What [`requests`] found.
pub struct Asked {
    pub requests: Vec<ScaleUp>,
    /// Jobs that need nodes but ask for none, and why.
    pub refused: Vec<NoScaleUp>,
    /// What is wrong with the groups left out.
    pub problems: Vec<Problem>,
}

/// The scale-up requests for the jobs of `plan_jobs` (the plan's per-job lines, in
/// `view`'s job order) on `view` (the world the plan leaves).
pub fn requests(view: &View<'_>, groups: &[NodeGroup], plan_jobs: &[JobPlan]) -> Asked {
    let (groups, problems) = sound_groups(groups);
    let mut asked = Asked {
        requests: Vec::new(),
        refused: Vec::new(),
        problems,
    };
    if groups.is_empty() {
        return asked;
    }
    // Nodes each group has now, and nodes left to ask for below its max.
    let mut now = vec![0u32; groups.len()];
    for n in &view.node_refs {
        if let Some(g) = n
            .group
            .as_deref()
            .and_then(|name| groups.iter().position(|g| g.name == name))
        {
            now[g] = now[g].saturating_add(1);
        }
    }
    let mut spare: Vec<u32> = groups
        .iter()
        .zip(&now)
        .map(|(g, &n)| g.max.saturating_sub(n))
        .collect();
    // A new node of each group, as placements judge it.
    let pictured: Vec<Node> = groups.iter().map(|g| g.pictured_node(0)).collect();
    let mut queue_use = admitted_gangs(view, plan_jobs);
    // The existing nodes with room left, and that room.
    let mut free: Vec<NodeRoom> = (0..view.nodes.len())
        .filter(|&n| view.nodes[n].schedulable)
        .map(|n| (n, view.nodes[n].allocatable.sub(&view.used[n])))
        .filter(|(_, room)| room.as_array().iter().all(|&v| v >= 0) && !room.is_zero())
        .collect();
    for (j, missing) in candidates(view, plan_jobs) {
        let jv = &view.jobs[j];
        let gang = pods_total(&missing);
        let new_job = !plan_jobs[j].admitted;
        let refuse = |why: String| NoScaleUp {
            job: jv.job.key(),
            why,
        };
        if new_job && let Some(q) = held_by_limit(view, jv.queue, &queue_use, &gang) {
            asked.refused.push(refuse(format!(
                "no nodes asked for: queue {q}'s limit would not let its gang run"
            )));
            continue;
        }
        // Most gangs that cannot be held fail here, before a pod-by-pod picture (a
        // job that never fits can ask for thousands of pods).
        let reachable = free
            .iter()
            .map(|(_, room)| *room)
            .chain(
                groups
                    .iter()
                    .zip(&spare)
                    .map(|(g, &n)| g.template.allocatable.times(i64::from(n))),
            )
            .fold(Resources::ZERO, |a, r| a.add(&r));
        let picture = gang
            .fits_in(&reachable)
            .then(|| picture(&missing, view, j, &free, &groups, &pictured, &spare))
            .flatten();
        let Some((opened, room_left)) = picture else {
            asked.refused.push(refuse(
                "no nodes asked for: no node group it may use can hold its gang within the \
                 group's max"
                    .into(),
            ));
            continue;
        };
        free = room_left;
        if opened.is_empty() {
            // The existing room holds the gang: packing will place it as room frees.
            continue;
        }
        let mut counts: BTreeMap<usize, u32> = BTreeMap::new();
        for g in opened {
            *counts.entry(g).or_default() += 1;
        }
        for (&g, &n) in &counts {
            spare[g] -= n;
        }
        if new_job {
            for &q in queue_path(view, jv.queue) {
                queue_use[q] = queue_use[q].add(&gang);
            }
        }
        asked.requests.push(ScaleUp {
            job: jv.job.key(),
            nodes: counts
                .into_iter()
                .map(|(g, count)| GroupNodes {
                    group: groups[g].name.clone(),
                    count,
                })
                .collect(),
        });
    }
    asked
}

/// The groups that pass their checks, first of each name; the others as problems.
fn sound_groups(groups: &[NodeGroup]) -> (Vec<&NodeGroup>, Vec<Problem>) {
    let mut sound: Vec<&NodeGroup> = Vec::new();
    let mut problems = Vec::new();
    for g in groups {
        let verdict = match g.check() {
            Err(e) => Some(e.to_string()),
            Ok(()) if sound.iter().any(|s| s.name == g.name) => {
                Some("name: another group has this name".into())
            }
            Ok(()) => None,
        };
        match verdict {
            Some(message) => problems.push(Problem::InvalidNodeGroup {
                group: g.name.clone(),
                message,
            }),
            None => sound.push(g),
        }
    }
    (sound, problems)
}

/// Per queue, the gangs of the admitted jobs below it (as admission counts them).
fn admitted_gangs(view: &View<'_>, plan_jobs: &[JobPlan]) -> Vec<Resources> {
    let mut used = vec![Resources::ZERO; view.queues.len()];
    for (jv, jp) in view.jobs.iter().zip(plan_jobs) {
        if jp.admitted {
            for &q in queue_path(view, jv.queue) {
                used[q] = used[q].add(&jv.job.gang());
            }
        }
    }
    used
}

/// The queue on `queue`'s path whose limit `gang` would break, if any.
fn held_by_limit<'v>(
    view: &'v View<'_>,
    queue: usize,
    used: &[Resources],
    gang: &Resources,
) -> Option<&'v str> {
    queue_path(view, queue)
        .iter()
        .find(|&&q| {
            view.queues[q]
                .limit
                .is_some_and(|l| !used[q].add(gang).fits_in(&l))
        })
        .map(|&q| view.queues[q].name.as_str())
}

/// One pod to picture: its role and requests.
type Pod = (Role, Resources);

/// An existing node (its index) and the room it has left.
type NodeRoom = (usize, Resources);

/// The jobs that need new nodes, in admission order, each with the pods it misses.
fn candidates(view: &View<'_>, plan_jobs: &[JobPlan]) -> Vec<(usize, Vec<Pod>)> {
    let mut order: Vec<usize> = (0..view.jobs.len().min(plan_jobs.len()))
        .filter(|&j| plan_jobs[j].job == view.jobs[j].job.key())
        .collect();
    order.sort_by(|&a, &b| admission_order(view.jobs[a].job, view.jobs[b].job));
    order
        .into_iter()
        .filter_map(|j| {
            let job = view.jobs[j].job;
            let trainers = |n: u32| (0..n).map(|_| (Role::Trainer, job.trainers.resources));
            let missing: Vec<Pod> = match plan_jobs[j].reason.as_ref()? {
                Reason::InsufficientCapacity { .. }
                | Reason::InsufficientEligibleCapacity { .. }
                | Reason::NotPackable
                | Reason::NeverFits { .. }
                | Reason::NoEligibleNode { .. }
                    if !plan_jobs[j].admitted =>
                {
                    (0..job.master.replicas)
                        .map(|_| (Role::Master, job.master.resources))
                        .chain(
                            (0..job.pservers.replicas)
                                .map(|_| (Role::Pserver, job.pservers.resources)),
                        )
                        .chain(trainers(job.trainers.min))
                        .collect()
                }
                Reason::BelowMin { placed, min } if plan_jobs[j].admitted => {
                    trainers(min.saturating_sub(*placed)).collect()
                }
                _ => return None,
            };
            (!missing.is_empty()).then_some((j, missing))
        })
        .collect()
}

fn pods_total(pods: &[Pod]) -> Resources {
    pods.iter().fold(Resources::ZERO, |a, (_, r)| a.add(r))
}

/// The group of each new node job `j`'s `pods` would take, pictured as the module doc
/// says, and the existing room left after; None when some pod fits nowhere.
fn picture(
    pods: &[Pod],
    view: &View<'_>,
    j: usize,
    free: &[NodeRoom],
    groups: &[&NodeGroup],
    pictured: &[Node],
    spare: &[u32],
) -> Option<(Vec<usize>, Vec<NodeRoom>)> {
    let job = view.jobs[j].job;
    let mut free = free.to_vec();
    let mut pods = pods.to_vec();
    // Largest first: GPUs, then CPU, then memory.
    pods.sort_by_key(|(_, r)| std::cmp::Reverse((r.gpus, r.cpu_milli, r.memory_bytes)));
    // The job's pictured nodes: (group, room left).
    let mut opened: Vec<(usize, Resources)> = Vec::new();
    let mut left = spare.to_vec();
    for (role, r) in pods {
        let placement = job.placement.of(role);
        let admits = |g: usize| placement.admits(pictured[g].facts());
        if let Some(slot) = free
            .iter_mut()
            .find(|(n, room)| r.fits_in(room) && view.eligibility.allows(j, role, *n))
        {
            slot.1 = slot.1.sub(&r);
            continue;
        }
        if let Some(slot) = opened
            .iter_mut()
            .find(|(g, room)| r.fits_in(room) && admits(*g))
        {
            slot.1 = slot.1.sub(&r);
            continue;
        }
        let usable =
            |g: usize| left[g] > 0 && r.fits_in(&groups[g].template.allocatable) && admits(g);
        let already = |g: usize| opened.iter().any(|&(o, _)| o == g);
        let g = (0..groups.len()).filter(|&g| usable(g)).min_by(|&a, &b| {
            already(b)
                .cmp(&already(a))
                .then(price(groups[a]).total_cmp(&price(groups[b])))
                .then_with(|| groups[a].name.cmp(&groups[b].name))
        })?;
        left[g] -= 1;
        opened.push((g, groups[g].template.allocatable.sub(&r)));
    }
    Some((opened.into_iter().map(|(g, _)| g).collect(), free))
}

/// A group without a price sorts after every priced one: nothing says it is cheap.
fn price(g: &NodeGroup) -> f64 {
    g.price_per_node_hour.unwrap_or(f64::INFINITY)
}
