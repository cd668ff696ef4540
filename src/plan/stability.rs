//! Hysteresis between the fair share and what jobs hold now, so that jobs do not thrash.
//!
//! Rules, in order:
//! 1. Every admitted job keeps what it has, clamped to [min, max]; a newcomer starts at min.
//! 2. Fairness rebalance: a job above its fair share by more than the tolerance is cut
//!    to its fair share, but only if some job is short of its fair share by more than
//!    its tolerance, and only outside the job's cooldown (unless a queue reclaims its
//!    guarantee). Inside the dead band nothing moves, which is what rules out the EDL
//!    +1/−1 oscillation: a change happens only when it closes a gap larger than a trainer.
//! 3. Forced: while the kept sizes do not fit in the room (services grew, a newcomer's
//!    minimum arrived), the job furthest above its fair share gives up trainers.
//!    Fair shares fit by construction, so this always ends.
//! 4. Jobs below their fair share grow toward it as far as the room allows, biggest gap
//!    first. Growth into idle capacity needs no tolerance.

use super::policy::Policy;
use crate::model::Resources;

#[derive(Clone, Debug)]
pub struct StabilityJob {
    pub min: u32,
    pub max: u32,
    /// Live trainers now; None for a job admitted by this plan.
    pub current: Option<u32>,
    pub fair: u32,
    pub in_cooldown: bool,
    /// Its queue holds more than its guarantee while another queue reclaims its own.
    pub must_yield_to_reclaim: bool,
    pub per_trainer: Resources,
    pub overhead: Resources,
    /// Indices (into `stabilize`'s `limits`) of the queues on the job's path that have a
    /// limit.
    pub limited_queues: Vec<usize>,
    /// Trainers packing managed to place when asked for more (None: not limited). Room
    /// kept for trainers that cannot be placed would be taken from others in vain.
    pub placeable: Option<u32>,
}

impl StabilityJob {
    fn ceiling(&self) -> u32 {
        self.placeable.map_or(self.max, |p| p.min(self.max))
    }

    /// The fair share as far as it can be placed.
    fn wanted(&self) -> u32 {
        self.fair.min(self.ceiling())
    }
}

/// `limits`: the limit of each queue that has one, as `limited_queues` index them.
pub fn stabilize(
    jobs: &[StabilityJob],
    room: Resources,
    limits: &[Resources],
    policy: &Policy,
) -> Vec<u32> {
    let mut size: Vec<u32> = jobs
        .iter()
        .map(|j| {
            let min = j.min.min(j.ceiling());
            j.current
                .map_or(min, |c| c.clamp(min, j.ceiling().max(min)))
        })
        .collect();
    let tol = |j: usize, size: &[u32]| policy.tolerance(size[j].max(jobs[j].fair));

    let someone_short = (0..jobs.len()).any(|j| jobs[j].wanted() > size[j] + tol(j, &size));
    if someone_short {
        for j in 0..jobs.len() {
            let job = &jobs[j];
            let over = size[j].saturating_sub(job.fair);
            if over > tol(j, &size) && (!job.in_cooldown || job.must_yield_to_reclaim) {
                size[j] = job.fair;
            }
        }
    }

    let usage = |size: &[u32]| {
        jobs.iter().zip(size).fold(Resources::ZERO, |acc, (j, &n)| {
            acc.add(&j.overhead).add(&j.per_trainer.times(i64::from(n)))
        })
    };
    let mut used = usage(&size);
    // Forced shrink; bounded by the total number of trainers above fair share.
    while !used.fits_in(&room) {
        let Some((j, cut)) = forced_cut(jobs, &size, used.sub(&room), |_| true) else {
            break;
        };
        size[j] -= cut;
        used = used.sub(&jobs[j].per_trainer.times(i64::from(cut)));
    }

    // Forced as well: a queue over its limit (a newcomer's minimum was admitted under it
    // while a sibling in its cooldown holds more than its fair share).
    let mut queue_used = vec![Resources::ZERO; limits.len()];
    for (j, job) in jobs.iter().enumerate() {
        let held = job.overhead.add(&job.per_trainer.times(i64::from(size[j])));
        for &q in &job.limited_queues {
            queue_used[q] = queue_used[q].add(&held);
        }
    }
    for q in 0..limits.len() {
        while !queue_used[q].fits_in(&limits[q]) {
            let over = queue_used[q].sub(&limits[q]);
            let in_queue = |j: usize| jobs[j].limited_queues.contains(&q);
            let Some((j, cut)) = forced_cut(jobs, &size, over, in_queue) else {
                break;
            };
            size[j] -= cut;
            let freed = jobs[j].per_trainer.times(i64::from(cut));
            used = used.sub(&freed);
            for &lq in &jobs[j].limited_queues {
                queue_used[lq] = queue_used[lq].sub(&freed);
            }
        }
    }

    let mut growers: Vec<usize> = (0..jobs.len())
        .filter(|&j| size[j] < jobs[j].wanted())
        .collect();
    growers.sort_by_key(|&j| (std::cmp::Reverse(jobs[j].wanted() - size[j]), j));
    for j in growers {
        let per = jobs[j].per_trainer;
        let fit = jobs[j]
            .limited_queues
            .iter()
            .map(|&q| per.copies_in(&limits[q].sub(&queue_used[q])))
            .fold(per.copies_in(&room.sub(&used)), u64::min);
        let add = u64::from(jobs[j].wanted() - size[j]).min(fit) as u32;
        size[j] += add;
        let grown = per.times(i64::from(add));
        used = used.add(&grown);
        for &q in &jobs[j].limited_queues {
            queue_used[q] = queue_used[q].add(&grown);
        }
    }
    size
}

/// One forced shrink toward `over` (what is over the room or a limit): in the resource
/// most over, the eligible job furthest above its fair share gives up the trainers that
/// cover it, never going below its fair share. None when no job can give.
fn forced_cut(
    jobs: &[StabilityJob],
    size: &[u32],
    over: Resources,
    eligible: impl Fn(usize) -> bool,
) -> Option<(usize, u32)> {
    let over = over.as_array();
    let k = (0..3).filter(|&k| over[k] > 0).max_by_key(|&k| over[k])?;
    let j = (0..jobs.len())
        .filter(|&j| eligible(j) && size[j] > jobs[j].fair && jobs[j].per_trainer.as_array()[k] > 0)
        .max_by_key(|&j| (size[j] - jobs[j].fair, j))?;
    let per = jobs[j].per_trainer.as_array()[k];
    let needed = u32::try_from((over[k] + per - 1) / per).unwrap_or(u32::MAX);
    Some((j, needed.min(size[j] - jobs[j].fair).max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(current: Option<u32>, fair: u32, cooldown: bool) -> StabilityJob {
        StabilityJob {
            min: 1,
            max: 100,
            current,
            fair,
            in_cooldown: cooldown,
            must_yield_to_reclaim: false,
            per_trainer: Resources::cpu(1.0),
            overhead: Resources::ZERO,
            placeable: None,
            limited_queues: Vec::new(),
        }
    }

    #[test]
    fn small_gaps_do_not_move_anyone() {
        let jobs = [job(Some(21), 20, false), job(Some(19), 20, false)];
        let out = stabilize(&jobs, Resources::cpu(40.0), &[], &Policy::default());
        assert_eq!(out, vec![21, 19]);
    }

    #[test]
    fn large_gaps_rebalance_outside_cooldown_only() {
        let jobs = [job(Some(35), 20, false), job(Some(5), 20, false)];
        assert_eq!(
            stabilize(&jobs, Resources::cpu(40.0), &[], &Policy::default()),
            vec![20, 20]
        );
        let jobs = [job(Some(35), 20, true), job(Some(5), 20, false)];
        assert_eq!(
            stabilize(&jobs, Resources::cpu(40.0), &[], &Policy::default()),
            vec![35, 5]
        );
    }

    #[test]
    fn newcomer_minimum_forces_shrink_even_in_cooldown() {
        let mut newcomer = job(None, 20, false);
        newcomer.min = 10;
        let jobs = [job(Some(40), 20, true), newcomer];
        let out = stabilize(&jobs, Resources::cpu(40.0), &[], &Policy::default());
        assert!(out[1] >= 10, "{out:?}");
        assert!(out[0] + out[1] <= 40, "{out:?}");
    }

    #[test]
    fn growth_into_idle_room_needs_no_tolerance() {
        let jobs = [job(Some(19), 20, false)];
        assert_eq!(
            stabilize(&jobs, Resources::cpu(40.0), &[], &Policy::default()),
            vec![20]
        );
    }
}
