//! Gang admission: a job gets master + pservers + `min` trainers, or nothing.
//!
//! Jobs admitted earlier stay admitted. New jobs are considered in priority, then submit
//! order, against the aggregate room left once every admitted job is at its minimum:
//! the newcomer's minimum is a need that forces others to shrink. Whether the gang also
//! packs onto nodes is checked by packing, which can still send the job back to pending.
//! A job that could not run even on the empty cluster is pending as `NeverFits`, and
//! one whose placement constraints no schedulable node meets as `NoEligibleNode`, and
//! one that fits the aggregate room but not the nodes its trainers may use (routed into
//! the pools, see [`super::pools`]) as `InsufficientEligibleCapacity`.

use super::FastSet;
use super::never_fits::never_fits;
use super::policy::Policy;
use super::pools::{Pools, Routing};
use super::view::View;
use crate::model::{Job, Reason, Resources};

#[derive(Clone, Debug, PartialEq)]
pub enum Admission {
    Running,
    New,
    Pending(Reason),
}

impl Admission {
    pub fn admitted(&self) -> bool {
        !matches!(self, Admission::Pending(_))
    }
}

/// The order jobs are admitted in: priority (higher first), then submit time, then
/// namespace and name.
pub fn admission_order(a: &Job, b: &Job) -> std::cmp::Ordering {
    b.priority
        .cmp(&a.priority)
        .then(a.submit_time_s.total_cmp(&b.submit_time_s))
        .then_with(|| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)))
}

/// Queue and its ancestors, innermost first.
pub fn queue_path<'v>(view: &'v View, q: usize) -> &'v [usize] {
    &view.queue_paths[q]
}

pub fn admit(view: &View, policy: &Policy) -> Vec<Admission> {
    let mut out: Vec<Admission> = view
        .jobs
        .iter()
        .map(|j| match (&j.invalid, j.running) {
            (Some(reason), _) => Admission::Pending(reason.clone()),
            (None, true) => Admission::Running,
            (None, false) => Admission::New,
        })
        .collect();

    let mut free = view.room_for_jobs();
    let mut queue_use = vec![Resources::ZERO; view.queues.len()];
    // With pools, each gang must also fit the nodes its trainers may use.
    let mut routing = view
        .pools
        .as_ref()
        .map(|pm| Routing::with_fixed(&pm.pools).0);
    for (j, jv) in view.jobs.iter().enumerate() {
        if out[j] == Admission::Running {
            let gang = jv.job.gang();
            if let (Some(r), Some(pm)) = (&mut routing, &view.pools) {
                r.route(&pm.pools, pm.job_group[j], &gang.as_f64());
            }
            free = free.sub(&gang);
            for &q in queue_path(view, jv.queue) {
                queue_use[q] = queue_use[q].add(&gang);
            }
        }
    }
    // Each distinct node shape once: a cluster has few, and a job that fits no node
    // would otherwise be checked against every node (newcomers times nodes).
    let mut seen = FastSet::default();
    let node_shapes: Vec<Resources> = view
        .nodes
        .iter()
        .filter(|n| n.schedulable)
        .map(|n| n.allocatable)
        .filter(|shape| seen.insert(*shape))
        .collect();
    let schedulable_total = view
        .nodes
        .iter()
        .filter(|n| n.schedulable)
        .fold(Resources::ZERO, |a, n| a.add(&n.allocatable));

    let mut candidates: Vec<usize> = (0..view.jobs.len())
        .filter(|&j| out[j] == Admission::New)
        .collect();
    candidates.sort_by(|&a, &b| admission_order(view.jobs[a].job, view.jobs[b].job));
    let mut blocker: Option<usize> = None;
    for j in candidates {
        let jv = &view.jobs[j];
        if let Some(behind) = &blocker {
            out[j] = Admission::Pending(Reason::Queued {
                behind: view.jobs[*behind].job.key(),
            });
            continue;
        }
        // A job that can never fit says so, and never blocks a strict FIFO queue: waiting
        // behind it would be waiting for a bigger cluster.
        if let Some(reason) = view
            .eligibility
            .no_eligible_node(j, view)
            .or_else(|| never_fits(jv.job, &node_shapes, schedulable_total))
        {
            out[j] = Admission::Pending(reason);
            continue;
        }
        let gang = jv.job.gang();
        let verdict = if !gang.fits_in(&free) {
            Some(Reason::InsufficientCapacity { needed: gang, free })
        } else {
            queue_path(view, jv.queue)
                .iter()
                .copied()
                .find(|&q| {
                    view.queues[q]
                        .limit
                        .is_some_and(|l| !queue_use[q].add(&gang).fits_in(&l))
                })
                .map(|q| Reason::QueueLimit {
                    queue: view.queues[q].name.clone(),
                })
                .or_else(|| {
                    let (r, pm) = (routing.as_mut()?, view.pools.as_ref()?);
                    let g = pm.job_group[j];
                    (!r.try_route(&pm.pools, g, &gang.as_f64())).then(|| {
                        Reason::InsufficientEligibleCapacity {
                            needed: gang,
                            eligible_free: free_in(r, &pm.pools, g),
                        }
                    })
                })
        };
        match verdict {
            Some(reason) => {
                out[j] = Admission::Pending(reason);
                if policy.strict_fifo {
                    blocker = Some(j);
                }
            }
            None => {
                free = free.sub(&gang);
                for &q in queue_path(view, jv.queue) {
                    queue_use[q] = queue_use[q].add(&gang);
                }
            }
        }
    }
    out
}

/// Room left on the pools group `g` may use (rounded down to whole units).
fn free_in(routing: &Routing, pools: &Pools, g: usize) -> Resources {
    let mut free = [0.0f64; 3];
    for &p in &pools.group_pools[g] {
        for (f, s) in free.iter_mut().zip(routing.slack()[p]) {
            *f += s;
        }
    }
    Resources::from_array(free.map(|v| v.max(0.0).floor() as i64))
}
