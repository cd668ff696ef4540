//! The brain: one pure function from a [`Snapshot`] to a [`Plan`].
//!
//! No I/O, no async, no clock: time is `snapshot.time_s`. The same function runs in the
//! Kubernetes controller, the local backend and the simulator.
//!
//! The decision's steps, in the order a round runs them (the modules below are listed
//! the same way):
//! 1. [`view`] checks the snapshot (a bad job is pending with the field named),
//!    indexes each job's pods, and lists per constrained pod group the nodes it may use
//!    (`eligibility`: node selector, required affinity, GPU models, taints);
//! 2. [`admission`] admits gangs (master + pservers + `min` trainers) in priority, then
//!    submit order (`never_fits` tells a job that could not run even on the empty
//!    cluster from one that waits for room, `NoEligibleNode` one that no node meets);
//! 3. [`fairshare`] gives each admitted job its weighted dominant-resource share of the
//!    cluster over the queue tree, with guarantees, limits and borrowing;
//! 4. [`stability`] turns shares into trainer targets with a dead band and a cooldown;
//! 5. [`packing`] places pods on nodes (services first, gangs, growth, top-up) and picks
//!    victims; sizing repeats within a round when packing fell short of a size that
//!    cost others trainers;
//! 6. [`compose`] folds the rounds into one plan: rounds repeat on the world the plan
//!    leaves ([`world`]) until one changes nothing, so that re-planning an applied plan
//!    is a fixed point;
//! 7. [`explain`] says per job why it got what it got.
//!
//! The indexes that make the steps fast (free room per node, trainers per node,
//! topology, memos kept between searches and between plans) are in [`index`]; they
//! change how fast a plan is found, never which plan. [`policy`] holds the operator's
//! knobs, [`speedup`] a job's measured scaling, [`file`] the snapshot and plan files,
//! [`apply`] the world a plan leaves when every action succeeds, and [`lp`] the fair
//! share as linear programmes for cross-checking.

// The steps, in the order a round runs them (kept apart so that nothing sorts them).
pub mod view;

pub mod admission;
mod never_fits;

mod bisection;
pub mod fairshare;

pub mod stability;

mod eligibility;
mod node_classes;
pub mod packing;
pub mod pools;

mod scale_up;

mod compose;

pub mod world;

pub mod explain;

pub mod index;

pub mod apply;
pub mod file;
pub mod lp;
pub mod policy;
pub mod speedup;

use crate::model::{JobPlan, Plan, Reason, Resources, Snapshot};
use admission::{Admission, queue_path};
use fairshare::{FairJob, FairPools, FairProblem, FairQueue};
pub use index::index_cache::{JobIndexCache, plan_cached};
use index::topology::TopologyIndex;
pub use policy::Policy;
use stability::StabilityJob;
use view::{View, ViewMemo};
use world::World;

/// Hash maps keyed by names and indices inside one plan: foldhash instead of SipHash
/// (a tenth of a tick went to hashing), with a fixed seed so that nothing about a plan
/// can vary from run to run. Keys come from the snapshot, not from an adversary.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;
pub(crate) type FastSet<K> = std::collections::HashSet<K, foldhash::fast::FixedState>;

/// Planning rounds at most per call. Packing is greedy and a round's own changes can
/// flip a condition (a gang fits once another job's growth is placed, a repair after a
/// lost node, a queue drops below its guarantee): one more round on the resulting world
/// finds that, and composing the rounds gives the controller a plan that re-planning
/// leaves alone, rather than a change spread over several ticks.
const MAX_ROUNDS: usize = 4;

/// Sizing passes at most per round (see `plan_round`).
const MAX_PASSES: usize = 4;

pub fn plan(snapshot: &Snapshot, policy: &Policy) -> Plan {
    plan_from(snapshot, policy, None, None, false).0
}

/// The rounds of a plan, the first reusing `memo` and `topo` (this snapshot's
/// topology, if known); with `keep`, also what the last round knew of each job the plan
/// leaves unchanged (nothing when the rounds ran out unsettled: the last one's changes
/// are applied after its view). The topology comes back too.
fn plan_from<'s>(
    snapshot: &'s Snapshot,
    policy: &Policy,
    memo: Option<ViewMemo<'s>>,
    mut topo: Option<TopologyIndex>,
    keep: bool,
) -> (Plan, Option<ViewMemo<'s>>, Option<TopologyIndex>) {
    // Rounds plan worlds that differ only in pods (applying a plan never touches a
    // node), so the topology is indexed once.
    let mut fair_memory = None;
    let mut world = World::of(snapshot);
    let (mut composed, view) = plan_round(&world, memo, policy, &mut topo, &mut fair_memory, 0);
    if compose::is_quiet(&composed) {
        ask_for_nodes(&mut composed, &view, &world);
        return (composed, keep.then(|| view.into_memo(&world)), topo);
    }
    let mut memo = view.into_memo(&world);
    world.apply_keeping_names(&composed);
    for round_index in 1..MAX_ROUNDS {
        let (round, view) = plan_round(
            &world,
            Some(memo),
            policy,
            &mut topo,
            &mut fair_memory,
            round_index,
        );
        if compose::is_quiet(&round) {
            ask_for_nodes(&mut composed, &view, &world);
            return (composed, keep.then(|| view.into_memo(&world)), topo);
        }
        memo = view.into_memo(&world);
        world.apply_keeping_names(&round);
        composed = compose::compose(snapshot, composed, round);
    }
    if !world.node_groups.is_empty() {
        ask_for_nodes(&mut composed, &View::build(&world), &world);
    }
    (composed, None, topo)
}

/// The plan's scale-up requests ([`scale_up`]), made on `view` of `world`, the world
/// the plan leaves.
fn ask_for_nodes(plan: &mut Plan, view: &View, world: &World) {
    if world.node_groups.is_empty() {
        return;
    }
    let asked = scale_up::requests(view, world.node_groups, &plan.jobs);
    plan.scale_up = asked.requests;
    plan.no_scale_up = asked.refused;
    plan.problems.extend(asked.problems);
}

/// Round `round_index` on `world`, and its view (what it knows of the jobs the next
/// round's world may still share with the snapshot).
fn plan_round<'w, 's>(
    world: &'w World<'s>,
    memo: Option<ViewMemo<'s>>,
    policy: &Policy,
    topo: &mut Option<TopologyIndex>,
    fair_memory: &mut Option<fairshare::Remembered>,
    round_index: usize,
) -> (Plan, View<'w>) {
    let mut view = View::build_reusing(world, memo);
    let mut admission = admission::admit(&view, policy);
    if topo
        .as_ref()
        .is_some_and(|t| t.group_of.len() != view.node_refs.len())
    {
        *topo = None;
    }
    let topo: &TopologyIndex = topo.get_or_insert_with(|| TopologyIndex::build(&view.node_refs));
    // Packing can fall short of the sizes asked for: a gang admitted on aggregate room
    // does not pack, a repair or growth finds no node. When that room was taken from
    // others (a gang, a shrink), it was taken in vain, and the next tick would take it
    // again and hand it on, one step at a time. So plan again, the failed gang pending
    // and each short job capped at what was placed. Growth that merely falls short
    // needs no second pass: the top-up already hands its room on.
    // Most rounds pack once: the first pass takes the start as built, and a later one
    // builds it again (the same start: see `packing::start`) rather than every pass
    // copying it, which on a large cluster moved megabytes per pass.
    let mut start = Some(packing::start(&view, topo, &admission));
    let mut placeable = vec![None; view.jobs.len()];
    let mut pass = 0;
    let mut fair = fair_shares(&view, &admission, fair_memory);
    let mut sizes = size(world.time_s, &view, &admission, &fair, &placeable, policy);
    let (fair_of, packed) = loop {
        pass += 1;
        let this_start = start
            .take()
            .unwrap_or_else(|| packing::start(&view, topo, &admission));
        let packed = packing::pack(
            &view,
            topo,
            this_start,
            &mut admission,
            &sizes.targets,
            view.capacity(),
        );
        let gang_failed = packed.gang_failed;
        if gang_failed {
            fair = fair_shares(&view, &admission, fair_memory);
        }
        let mut short = false;
        let mut shrinks = false;
        let mut capped_now = vec![false; view.jobs.len()];
        for (j, (&asked, &got)) in sizes.targets.iter().zip(&packed.trainers).enumerate() {
            if !admission[j].admitted() {
                continue;
            }
            if got < asked {
                placeable[j] = Some(got);
                capped_now[j] = true;
                short = true;
            }
            shrinks |= (got as usize) < view.jobs[j].live_trainers.len();
        }
        let again = gang_failed || short && shrinks;
        if !again || pass == MAX_PASSES {
            break (sizes.fair, packed);
        }
        let next = size(world.time_s, &view, &admission, &fair, &placeable, policy);
        // When capping the short jobs at what they got changes no other job's size, the
        // room the others gave up was not taken in vain: nobody would get it back, and
        // this pass's pods already hold every size the next pass would ask for.
        let only_caps_moved = !gang_failed
            && (0..view.jobs.len())
                .filter(|&j| admission[j].admitted())
                .all(|j| {
                    next.targets[j] == sizes.targets[j]
                        || capped_now[j] && next.targets[j] == packed.trainers[j]
                });
        if only_caps_moved {
            break (next.fair, packed);
        }
        sizes = next;
    };
    // A later round that changes nothing is dropped (see `plan`): its per-job lines,
    // a copy of every job's name, would be written for nothing.
    let dropped = round_index > 0
        && packed.create.is_empty()
        && packed.delete.is_empty()
        && packed.recreate_after_delete.is_empty();
    let jobs: Vec<JobPlan> = view
        .jobs
        .iter()
        .take(if dropped { 0 } else { view.jobs.len() })
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
                job: jv.job.key(),
                admitted,
                reason,
                current_trainers: current,
                target_trainers: target,
                fair_trainers: if admitted { fair_of[j] } else { 0 },
            }
        })
        .collect();
    let plan = Plan {
        jobs,
        create: packed.placements(&view),
        delete: packed.delete,
        recreate_after_delete: packed.recreate_after_delete,
        service_reservations: packed.reservations,
        problems: std::mem::take(&mut view.problems),
        scale_up: Vec::new(),
        no_scale_up: Vec::new(),
    };
    (plan, view)
}

/// Fair share and stability for the admission as it stands: the size each job asks of
/// packing.
fn size(
    now_s: f64,
    view: &View,
    admission: &[Admission],
    fair: &FairShares,
    placeable: &[Option<u32>],
    policy: &Policy,
) -> Sizes {
    let room = view.room_for_jobs();
    let (admitted, fair_trainers) = (fair.admitted.as_slice(), fair.trainers.as_slice());

    let yield_to_reclaim = reclaiming_queues(view, admitted, fair_trainers, policy);
    let mut limit_index = vec![None; view.queues.len()];
    let mut limits = Vec::new();
    for (q, queue) in view.queues.iter().enumerate() {
        if let Some(l) = queue.limit {
            limit_index[q] = Some(limits.len());
            limits.push(l);
        }
    }
    let stability_jobs: Vec<StabilityJob> = admitted
        .iter()
        .zip(fair_trainers)
        .map(|(&j, &fair)| {
            let jv = &view.jobs[j];
            let job = jv.job;
            let top = *queue_path(view, jv.queue).last().unwrap_or(&jv.queue);
            StabilityJob {
                min: job.trainers.min,
                max: jv.max_trainers,
                current: (admission[j] == Admission::Running)
                    .then_some(jv.live_trainers.len() as u32),
                fair,
                in_cooldown: job
                    .last_scale_time_s
                    .is_some_and(|t| now_s - t < policy.scale_down_cooldown_s),
                must_yield_to_reclaim: yield_to_reclaim.get(top).copied().unwrap_or(false),
                per_trainer: job.trainers.resources,
                overhead: job.overhead(),
                placeable: placeable[j],
                limited_queues: if limits.is_empty() {
                    Vec::new()
                } else {
                    queue_path(view, jv.queue)
                        .iter()
                        .filter_map(|&q| limit_index[q])
                        .collect()
                },
            }
        })
        .collect();
    let stable = stability::stabilize(&stability_jobs, room, &limits, policy);
    let mut targets = vec![0; view.jobs.len()];
    let mut fair_of = vec![0; view.jobs.len()];
    for (i, &j) in admitted.iter().enumerate() {
        targets[j] = stable[i];
        fair_of[j] = fair_trainers[i];
    }

    Sizes {
        fair: fair_of,
        targets,
    }
}

/// Weighted DRF share, in trainers, of each admitted job (in `admitted` order).
struct FairShares {
    admitted: Vec<usize>,
    trainers: Vec<u32>,
}

/// Depends on the admission only, so sizing passes that only cap short jobs reuse it.
fn fair_shares(
    view: &View,
    admission: &[Admission],
    memory: &mut Option<fairshare::Remembered>,
) -> FairShares {
    let admitted: Vec<usize> = (0..view.jobs.len())
        .filter(|&j| admission[j].admitted())
        .collect();
    let problem = fair_problem(view, &admitted, view.capacity(), view.room_for_jobs());
    let fair = fairshare::solve_remembering(&problem, memory);
    let trainers = admitted
        .iter()
        .zip(&fair.extra)
        .map(|(&j, &x)| view.jobs[j].job.trainers.min + x)
        .collect();
    FairShares { admitted, trainers }
}

/// One sizing, per job of the view: fair share, and the size asked of packing.
struct Sizes {
    fair: Vec<u32>,
    targets: Vec<u32>,
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
                max_extra: jv.max_trainers - job.trainers.min,
                current_extra: (jv.live_trainers.len() as u32).saturating_sub(job.trainers.min),
            }
        })
        .collect();
    let pools = view.pools.as_ref().map(|pm| FairPools {
        pools: pm.pools.clone(),
        job_group: admitted.iter().map(|&j| pm.job_group[j]).collect(),
    });
    FairProblem {
        capacity: capacity.as_f64(),
        room: room.as_f64(),
        queues,
        jobs,
        pools,
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
