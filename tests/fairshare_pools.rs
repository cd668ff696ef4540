//! The fair share where placement constraints cut the cluster into pools: each job is
//! owed only what the pools its trainers may use can hold, and is not held back by jobs
//! that could go elsewhere.

// Index loops over per-resource arrays read like the formulas.
#![allow(clippy::needless_range_loop)]

use ebb::plan::fairshare::{self, FairJob, FairPools, FairProblem, FairQueue, job_share};
use ebb::plan::lp;
use ebb::plan::pools::{self, Pools};
use proptest::prelude::*;

fn one_queue() -> Vec<FairQueue> {
    vec![FairQueue {
        parent: None,
        weight: 1.0,
        guaranteed: [0.0; 3],
        limit: [f64::INFINITY; 3],
    }]
}

fn gpu_job(queue: usize, max_extra: u32) -> FairJob {
    FairJob {
        queue,
        weight: 1.0,
        base: [1.0, 1.0, 1.0],
        per_trainer: [1.0, 1.0, 1.0],
        max_extra,
        current_extra: 0,
    }
}

/// Pool 0: 8 H100s, pool 1: 24 T4s (CPU and memory to spare on both).
fn two_models(job_group: Vec<usize>, group_pools: Vec<Vec<usize>>) -> FairPools {
    let groups = group_pools.len();
    FairPools {
        pools: Pools {
            room: vec![[100.0, 100.0, 8.0], [100.0, 100.0, 24.0]],
            group_pools,
            group_fixed: vec![[0.0; 3]; groups],
        },
        job_group,
    }
}

fn problem(jobs: Vec<FairJob>, queues: Vec<FairQueue>, pools: FairPools) -> FairProblem {
    let mut capacity = [0.0; 3];
    for r in &pools.pools.room {
        for k in 0..3 {
            capacity[k] += r[k];
        }
    }
    FairProblem {
        capacity,
        room: capacity,
        queues,
        jobs,
        pools: Some(pools),
    }
}

#[test]
fn a_job_confined_to_a_small_pool_does_not_hold_back_one_confined_to_a_large_pool() {
    // H100-only and T4-only: without pools each would be owed 16 GPUs; the H100 job can
    // hold only 8, and the T4 job takes all 24 T4s.
    let pools = two_models(vec![0, 1], vec![vec![0], vec![1]]);
    let p = problem(vec![gpu_job(0, 40), gpu_job(0, 40)], one_queue(), pools);
    let share = fairshare::solve(&p);
    assert_eq!(share.extra, vec![7, 23], "{share:?}");
    let mut unpooled = p.clone();
    unpooled.pools = None;
    assert_eq!(fairshare::solve(&unpooled).extra, vec![15, 15]);
}

#[test]
fn a_job_that_takes_either_model_fills_around_the_confined_ones() {
    // H100-only, T4-only and either: the confined jobs get their equal share of the
    // whole (32 / 3 each, as DRF over the cluster would say) where their pool allows; the
    // job that takes either grows into what they leave, on both models.
    let pools = two_models(vec![0, 1, 2], vec![vec![0], vec![1], vec![0, 1]]);
    let p = problem(
        vec![gpu_job(0, 40), gpu_job(0, 40), gpu_job(0, 40)],
        one_queue(),
        pools,
    );
    let share = fairshare::solve(&p);
    // H100-only is capped by its 8 GPUs; the other two split the remaining 24 equally.
    assert_eq!(share.extra, vec![7, 11, 11], "{share:?}");
    let lp = lp::continuous(&p).expect("LP solves");
    let water = fairshare::continuous(&p);
    for (a, b) in water.iter().zip(&lp) {
        assert!((a - b).abs() < 1e-4, "{water:?} vs {lp:?}");
    }
}

#[test]
fn a_guarantee_is_honoured_as_far_as_its_jobs_can_use_it() {
    // Queue "h100" is guaranteed 16 GPUs but its job may use only the 8 H100s: it gets
    // those 8, and the guarantee's other 8 are lent to the T4 job.
    let mut queues = one_queue();
    queues.push(FairQueue {
        parent: None,
        weight: 1.0,
        guaranteed: [0.0, 0.0, 16.0],
        limit: [f64::INFINITY; 3],
    });
    let pools = two_models(vec![0, 1], vec![vec![0], vec![1]]);
    let p = problem(vec![gpu_job(1, 40), gpu_job(0, 40)], queues, pools);
    assert_eq!(fairshare::solve(&p).extra, vec![7, 23]);
}

#[test]
fn demand_a_pool_cannot_hold_is_not_owed() {
    // Both jobs may use only the 8 H100s; the T4s stay idle for them.
    let pools = two_models(vec![0, 0], vec![vec![0]]);
    let p = problem(vec![gpu_job(0, 40), gpu_job(0, 40)], one_queue(), pools);
    assert_eq!(fairshare::solve(&p).extra, vec![3, 3]);
}

// ---- random pools --------------------------------------------------------------------

fn arb_pooled_problem() -> impl Strategy<Value = FairProblem> {
    let pool_room = prop::array::uniform3(0u32..30);
    let job = (
        0usize..4,
        prop::array::uniform3(0u32..4),
        prop::array::uniform3(0u32..2),
        0u32..12,
        1u32..4,
    );
    (
        prop::collection::vec(pool_room, 1..4),
        prop::collection::vec(1u32..16, 1..5),
        prop::collection::vec(job, 1..7),
        0u32..6,
    )
        .prop_map(|(rooms, masks, jobs, fixed_cpu)| {
            let n = rooms.len();
            let room: Vec<[f64; 3]> = rooms.iter().map(|r| r.map(f64::from)).collect();
            // Every group may use at least one pool.
            let group_pools: Vec<Vec<usize>> = masks
                .iter()
                .map(|&m| {
                    let mut ps: Vec<usize> = (0..n).filter(|&p| m >> p & 1 == 1).collect();
                    if ps.is_empty() {
                        ps.push(m as usize % n);
                    }
                    ps
                })
                .collect();
            let groups = group_pools.len();
            let mut group_fixed = vec![[0.0; 3]; groups];
            group_fixed[0][0] = f64::from(fixed_cpu);
            let mut capacity = [0.0; 3];
            for r in &room {
                for k in 0..3 {
                    capacity[k] += r[k];
                }
            }
            let (mut fair_jobs, mut job_group) = (Vec::new(), Vec::new());
            for (g, r, b, max_extra, w) in jobs {
                let mut per_trainer = r.map(f64::from);
                if per_trainer.iter().all(|&v| v == 0.0) {
                    per_trainer[2] = 1.0;
                }
                fair_jobs.push(FairJob {
                    queue: 0,
                    weight: f64::from(w),
                    base: b.map(f64::from),
                    per_trainer,
                    max_extra,
                    current_extra: 0,
                });
                job_group.push(g % groups);
            }
            let mut room_total = capacity;
            room_total[0] = (room_total[0] - f64::from(fixed_cpu)).max(0.0);
            FairProblem {
                capacity,
                room: room_total,
                queues: one_queue(),
                jobs: fair_jobs,
                pools: Some(FairPools {
                    pools: Pools {
                        room,
                        group_pools,
                        group_fixed,
                    },
                    job_group,
                }),
            }
        })
}

/// Demand no routing fits, with job `j` holding `extra(j)` trainers.
fn unplaced(p: &FairProblem, extra: impl Fn(usize) -> f64) -> [f64; 3] {
    let fp = p.pools.as_ref().expect("pooled problem");
    let mut demand = vec![[0.0; 3]; fp.pools.groups()];
    for (j, job) in p.jobs.iter().enumerate() {
        for k in 0..3 {
            demand[fp.job_group[j]][k] += job.base[k] + extra(j) * job.per_trainer[k];
        }
    }
    pools::unplaced(&fp.pools, &demand).1
}

fn bases_fit(p: &FairProblem) -> bool {
    unplaced(p, |_| 0.0).iter().all(|&v| v <= 1e-9)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// The water-filling over pools and the LP stages with split variables give the same
    /// continuous allocation.
    #[test]
    fn water_filling_agrees_with_the_lp_over_pools(p in arb_pooled_problem()) {
        prop_assume!(bases_fit(&p));
        let w = fairshare::continuous(&p);
        let l = lp::continuous(&p).expect("LP solves");
        for (j, (a, b)) in w.iter().zip(&l).enumerate() {
            prop_assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                "job {}: water {} vs lp {} in {:?}", j, a, b, p);
        }
    }

    /// A solve that starts from an earlier solve's bisections (the planner's
    /// verification round: pending service demand now bound in a pool) finds exactly
    /// what solving afresh finds, whether the earlier brackets still hold or not.
    #[test]
    fn solving_after_another_problem_is_solving_afresh(
        p in arb_pooled_problem(),
        pool in 0usize..4,
        also_room in 0u8..3,
    ) {
        let mut memory = None;
        let first = fairshare::solve_remembering(&p, &mut memory);
        prop_assert_eq!(&first, &fairshare::solve(&p));
        let mut bound = p.clone();
        let fp = bound.pools.as_mut().expect("pooled problem");
        let pool = pool % fp.pools.room.len();
        let fixed = std::mem::take(&mut fp.pools.group_fixed[0]);
        for k in 0..3 {
            fp.pools.room[pool][k] = (fp.pools.room[pool][k] - fixed[k]).max(0.0);
        }
        bound.room[2] = (bound.room[2] - f64::from(also_room)).max(0.0);
        prop_assert_eq!(
            fairshare::solve_remembering(&bound, &mut memory),
            fairshare::solve(&bound)
        );
    }

    /// Integer shares fit the pools, and are work-conserving over eligible capacity: a
    /// job below its max could not take one more trainer, in aggregate or in the pools
    /// its trainers may use.
    #[test]
    fn integer_shares_fit_the_pools_and_leave_no_usable_room(p in arb_pooled_problem()) {
        prop_assume!(bases_fit(&p));
        let out = fairshare::solve(&p);
        let extra = |j: usize| f64::from(out.extra[j]);
        prop_assert!(unplaced(&p, extra).iter().all(|&v| v <= 1e-9), "{:?}", out);
        for (i, job) in p.jobs.iter().enumerate() {
            if out.extra[i] >= job.max_extra { continue; }
            let grown = |j: usize| extra(j) + if j == i { 1.0 } else { 0.0 };
            let mut used = [0.0; 3];
            for (j, other) in p.jobs.iter().enumerate() {
                for k in 0..3 { used[k] += other.base[k] + grown(j) * other.per_trainer[k]; }
            }
            let over_room = (0..3).any(|k| job.per_trainer[k] > 0.0 && used[k] > p.room[k] + 1e-9);
            let over_pools = unplaced(&p, grown).iter().any(|&v| v > 1e-9);
            prop_assert!(over_room || over_pools, "job {} could still grow: {:?}", i, out);
        }
    }

    /// DRF within eligibility, up to one trainer: a job below its max cannot grow even
    /// with every trainer taken back from jobs that would stay richer than it.
    #[test]
    fn integer_shares_are_drf_fair_within_eligibility(p in arb_pooled_problem()) {
        prop_assume!(bases_fit(&p));
        let out = fairshare::solve(&p);
        for (i, job) in p.jobs.iter().enumerate() {
            if out.extra[i] >= job.max_extra { continue; }
            let mine = job_share(job, &p.capacity, f64::from(out.extra[i]) + 1.0);
            let kept: Vec<f64> = p.jobs.iter().enumerate().map(|(j, other)| {
                if j == i { return f64::from(out.extra[i]) + 1.0; }
                let richer = (1..=out.extra[j])
                    .filter(|&m| job_share(other, &p.capacity, f64::from(out.extra[j] - m)) > mine + 1e-9)
                    .count() as u32;
                f64::from(out.extra[j] - richer)
            }).collect();
            let mut used = [0.0; 3];
            for (j, other) in p.jobs.iter().enumerate() {
                for k in 0..3 { used[k] += other.base[k] + kept[j] * other.per_trainer[k]; }
            }
            let over_room = (0..3).any(|k| job.per_trainer[k] > 0.0 && used[k] > p.room[k] + 1e-9);
            let over_pools = unplaced(&p, |j| kept[j]).iter().any(|&v| v > 1e-9);
            prop_assert!(over_room || over_pools,
                "job {} could grow by taking only from richer jobs: {:?}", i, out);
        }
    }
}
