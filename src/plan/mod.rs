//! The brain: one pure function from a [`Snapshot`] to a [`Plan`].
//!
//! No I/O, no async, no clock: time is `snapshot.time_s`. The same function runs in the
//! Kubernetes controller, the local backend and the simulator.
//!
//! Steps: [`view`] checks and indexes the snapshot; [`admission`] admits gangs;
//! [`fairshare`] computes each job's weighted DRF share; [`stability`] applies hysteresis;
//! [`packing`] places pods on nodes and picks victims.

pub mod admission;
pub mod apply;
pub mod fairshare;
pub mod lp;
mod nodes;
pub mod packing;
pub mod policy;
pub mod stability;
pub mod topology;
pub mod view;

use crate::model::{JobPlan, Plan, Reason, Resources, Snapshot};
use admission::{Admission, queue_path};
use fairshare::{FairJob, FairProblem, FairQueue};
pub use policy::Policy;
use stability::StabilityJob;
use topology::TopologyIndex;
use view::View;

pub fn plan(snapshot: &Snapshot, policy: &Policy) -> Plan {
    let view = View::build(snapshot);
    let mut admission = admission::admit(&view, policy);
    let capacity = view.capacity();
    let room = view.room_for_jobs();

    let admitted: Vec<usize> = (0..view.jobs.len())
        .filter(|&j| admission[j].admitted())
        .collect();
    let problem = fair_problem(&view, &admitted, capacity, room);
    let fair = fairshare::solve(&problem);
    let fair_trainers: Vec<u32> = admitted
        .iter()
        .zip(&fair.extra)
        .map(|(&j, &x)| view.jobs[j].job.trainers.min + x)
        .collect();

    let yield_to_reclaim = reclaiming_queues(&view, &admitted, &fair_trainers, policy);
    let stability_jobs: Vec<StabilityJob> = admitted
        .iter()
        .zip(&fair_trainers)
        .map(|(&j, &fair)| {
            let jv = &view.jobs[j];
            let job = jv.job;
            let top = *queue_path(&view, jv.queue).last().unwrap_or(&jv.queue);
            StabilityJob {
                min: job.trainers.min,
                max: job.trainers.max,
                current: (admission[j] == Admission::Running)
                    .then_some(jv.live_trainers.len() as u32),
                fair,
                in_cooldown: job
                    .last_scale_time_s
                    .is_some_and(|t| snapshot.time_s - t < policy.scale_down_cooldown_s),
                must_yield_to_reclaim: yield_to_reclaim.get(top).copied().unwrap_or(false),
                per_trainer: job.trainers.resources,
                overhead: job.overhead(),
            }
        })
        .collect();
    let stable = stability::stabilize(&stability_jobs, room, policy);
    let mut targets = vec![0; view.jobs.len()];
    let mut fair_of = vec![0; view.jobs.len()];
    for (i, &j) in admitted.iter().enumerate() {
        targets[j] = stable[i];
        fair_of[j] = fair_trainers[i];
    }

    let topo = TopologyIndex::build(&view.node_refs);
    let packed = packing::pack(&view, &topo, &mut admission, &targets, capacity);

    let jobs = view
        .jobs
        .iter()
        .enumerate()
        .map(|(j, jv)| {
            let current = jv.live_trainers.len() as u32;
            let (admitted, target, reason) = match &admission[j] {
                Admission::Pending(reason) => {
                    (false, current.min(packed.trainers[j]), Some(reason.clone()))
                }
                _ => {
                    let t = packed.trainers[j];
                    let min = jv.job.trainers.min;
                    (
                        true,
                        t,
                        (t < min).then_some(Reason::BelowMin { placed: t, min }),
                    )
                }
            };
            JobPlan {
                job: jv.key.clone(),
                admitted,
                reason,
                current_trainers: current,
                target_trainers: target,
                fair_trainers: if admitted { fair_of[j] } else { 0 },
            }
        })
        .collect();
    Plan {
        jobs,
        create: packed.create,
        delete: packed.delete,
        recreate_after_delete: packed.recreate_after_delete,
        service_reservations: packed.reservations,
        problems: view.problems,
    }
}

fn fair_problem(
    view: &View,
    admitted: &[usize],
    capacity: Resources,
    room: Resources,
) -> FairProblem {
    let queues = view
        .queues
        .iter()
        .map(|q| FairQueue {
            parent: q.parent,
            weight: q.weight,
            guaranteed: q.guaranteed.as_f64(),
            limit: q.limit.map_or([f64::INFINITY; 3], |l| l.as_f64()),
        })
        .collect();
    let jobs = admitted
        .iter()
        .map(|&j| {
            let jv = &view.jobs[j];
            let job = jv.job;
            FairJob {
                queue: jv.queue,
                weight: job.weight,
                base: job.gang().as_f64(),
                per_trainer: job.trainers.resources.as_f64(),
                max_extra: job.trainers.max - job.trainers.min,
                current_extra: (jv.live_trainers.len() as u32).saturating_sub(job.trainers.min),
            }
        })
        .collect();
    FairProblem {
        capacity: capacity.as_f64(),
        room: room.as_f64(),
        queues,
        jobs,
    }
}

/// Top-level queues that must give back borrowed room now, ignoring cooldowns: some
/// other top-level queue holds less than its guarantee while one of its jobs is short of
/// its fair share.
fn reclaiming_queues(view: &View, admitted: &[usize], fair: &[u32], policy: &Policy) -> Vec<bool> {
    let nq = view.queues.len();
    let mut held = vec![Resources::ZERO; nq];
    let mut top_of = Vec::with_capacity(admitted.len());
    for &j in admitted {
        let jv = &view.jobs[j];
        let top = *queue_path(view, jv.queue).last().unwrap_or(&jv.queue);
        top_of.push(top);
        let n = jv.live_trainers.len() as i64;
        held[top] = held[top]
            .add(&jv.job.overhead())
            .add(&jv.job.trainers.resources.times(n));
    }
    let reclaiming: Vec<usize> = admitted
        .iter()
        .enumerate()
        .filter(|&(i, &j)| {
            let live = view.jobs[j].live_trainers.len() as u32;
            let q = top_of[i];
            fair[i] > live + policy.tolerance(live.max(fair[i]))
                && !view.queues[q].guaranteed.fits_in(&held[q])
        })
        .map(|(i, _)| top_of[i])
        .collect();
    (0..nq)
        .map(|q| {
            !reclaiming.is_empty()
                && !reclaiming.contains(&q)
                && !held[q].fits_in(&view.queues[q].guaranteed)
        })
        .collect()
}
