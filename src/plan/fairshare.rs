//! Fair share: how many trainers above `min` each admitted job gets.
//!
//! # Formulation
//!
//! Capacity `C` (a vector over cpu, memory, gpus) is what the cluster's schedulable
//! nodes hold; `R` is what jobs may use after pods ebb does not manage and their unplaced
//! demand are taken off. Each admitted job `j` already holds its *base* `b_j` (master +
//! pservers + `min` trainers) and receives `x_j ∈ [0, max_j − min_j]` extra trainers of
//! shape `r_j`.
//!
//! * A job's **share** is linear in `x_j`: `s_j(x) = (b_j[d] + x·r_j[d]) / (C[d]·w_j)`
//!   where `d` is the dominant resource of the trainer shape (`argmax_k r_j[k]/C[k]`) and
//!   `w_j` the job's weight. Linearity is what makes the LP below exact.
//! * A queue's share is `σ_q(U) = max_k (U[k] − G_q[k])⁺ / C[k] / W_q` over its usage `U`
//!   (its jobs' and sub-queues' base + extras), guarantee `G_q` and weight `W_q`. Usage
//!   inside the guarantee is free, so guarantees fill first; unused guarantees are lent
//!   to everyone, and come back at the next plan when the owner asks (reclaim).
//! * **Progressive filling** (weighted DRF): a common level `t` rises from 0. At level `t`
//!   each top-level queue takes the largest internal level `u` with `σ_q(U_q(u)) ≤ t`
//!   and `U_q(u) ≤ L_q` (its limit); recursively, each child of a queue does the same at
//!   the parent's internal level; a job at level `u` holds
//!   `x_j(u) = clamp((u·w_j·C[d] − b_j[d]) / r_j[d], 0, max_j − min_j)`.
//!   The level stops at the largest `t` where the total usage still fits in `R`. The
//!   resources that bind there are saturated: every job that uses one of them is frozen
//!   where it is, and filling resumes for the others (a CPU-only job keeps growing when
//!   GPUs run out). At most one stage per resource.
//!
//! For one queue level the usage `U_q(u)` is piecewise linear in `u` with breakpoints
//! where jobs start and stop growing, so a queue's level is found by binary search over
//! its sorted breakpoints and one linear solve; deeper trees bisect on their children.
//! The outer level is found by bisection (the usage is monotone in `t`).
//!
//! Integer trainers: each `x_j` is rounded down, then the leftover goes one trainer at a
//! time down the tree: to the poorest top-level queue, its poorest child, and so on, and
//! there to the job whose share with the trainer is lowest, while it fits in `R` and in
//! every limit: the result is work-conserving in aggregate.
//!
//! # Pools: fair share within eligibility
//!
//! Placement constraints (node selectors, affinity, GPU models, taints) cut the nodes
//! into *pools*: classes of nodes that every job's trainer eligibility treats alike
//! ([`super::pools`]). A job of group `g` may use only the pools `P_g`, and its demand
//! `D_j = b_j + x_j·r_j` must be routable into them: for each resource `k`, the flow
//! from groups to pools with `Σ_{j∈g} D_j[k]` out of each group and at most `R_p[k]`
//! into each pool. Shares are still measured against the whole capacity `C` (so that
//! shares compare across jobs and queues), and the level rises as above; in addition a
//! level is feasible only while the routing places every demand (no more unplaced than
//! the bases alone leave). Where it binds, the jobs frozen are exactly those whose group
//! cannot route one more unit of a resource its trainers use (no augmenting path from
//! the group to a pool with room, i.e. every pool it could reach, directly or by moving
//! others aside, is full); the others keep growing. This is max-min fairness with
//! constraints (the CMMF of Ghodsi et al., "Choosy", EuroSys'13) over dominant shares,
//! and the water-filling per pool in the simple case: a job that may use only H100s is
//! owed what the H100s hold, and a T4-only job is never held back by it. Work
//! conservation is over eligible capacity: a job below its max could not take one more
//! trainer in any pool it may use. Rounding checks each trainer against the routing
//! too. At most one stage per resource and group.
//!
//! Queue guarantees and limits stay per resource over the whole cluster. A guarantee
//! still makes its queue's usage free up to `G_q`, so its jobs fill first, but only as
//! far as the pools they may use hold: a guarantee of 16 GPUs whose jobs may only use 8
//! H100s is honoured with those 8, and the rest is lent to everyone (when guarantees
//! alone over-fill a pool, the guaranteed queues fill it with their levels scaled
//! alike).
//!
//! # The same problem as a linear programme
//!
//! For jobs in one queue (no guarantees or limits), stage `k` of progressive filling is
//! the LP `max t  s.t.  x_j ≥ (t·w_j·C[d_j] − b_j[d_j]) / r_j[d_j]` and `x_j ≥ 0` for
//! active jobs, `x_j = x̄_j` for frozen ones, `0 ≤ x_j ≤ max_j − min_j`,
//! `Σ_j b_j + x_j·r_j ≤ R`; solved with good_lp on the pure-Rust microlp backend in
//! [`super::lp`]. A job capped at its max or using a resource with no slack at the
//! optimum is frozen and the next stage runs. With pools, each job's demand of each
//! resource is split over its pools by variables of its own, and a job is frozen when
//! no LP lets it grow with the others held. The tests check that both give the same
//! continuous allocation where both exist.

// Index loops over parallel per-job and per-resource arrays read like the formulas.
#![allow(clippy::needless_range_loop)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::binary_heap::PeekMut;

use super::bisection::{self, Walk};
use super::pools::{self, Pools, Routing};

pub type Res3 = [f64; 3];

const BISECTION_STEPS: usize = 64;
const EPS: f64 = 1e-9;
/// Relative width at which a bisection stops (see [`settled`]).
const SETTLED: f64 = 1e-12;

#[derive(Clone, Debug, PartialEq)]
pub struct FairQueue {
    /// Index into the same list; None for a top-level queue.
    pub parent: Option<usize>,
    pub weight: f64,
    pub guaranteed: Res3,
    /// `f64::INFINITY` components for "no limit".
    pub limit: Res3,
}

#[derive(Clone, Debug)]
pub struct FairJob {
    pub queue: usize,
    pub weight: f64,
    /// What the job holds before any extra trainer: overhead + min trainers.
    pub base: Res3,
    pub per_trainer: Res3,
    pub max_extra: u32,
    /// Extra trainers held now: ties in rounding go to the current holder, so a plan
    /// does not move a trainer from one job to an equal one.
    pub current_extra: u32,
}

#[derive(Clone, Debug)]
pub struct FairProblem {
    pub capacity: Res3,
    pub room: Res3,
    pub queues: Vec<FairQueue>,
    pub jobs: Vec<FairJob>,
    /// Where the jobs' placement constraints cut the cluster into pools (None: one
    /// pool, every job may use all of `room`).
    pub pools: Option<FairPools>,
}

/// The pools of a constrained cluster and each job's group in them (see
/// [`super::pools`]).
#[derive(Clone, Debug, PartialEq)]
pub struct FairPools {
    pub pools: Pools,
    /// Per job of the problem, in job order.
    pub job_group: Vec<usize>,
}

impl FairPools {
    /// Each group's demand when the jobs hold `extra` trainers above their bases.
    fn demand(&self, jobs: &[FairJob], extra: impl Fn(usize) -> f64) -> Vec<Res3> {
        let mut d = vec![[0.0; 3]; self.pools.groups()];
        for (j, job) in jobs.iter().enumerate() {
            let g = &mut d[self.job_group[j]];
            add_scaled(g, &job.base, 1.0);
            add_scaled(g, &job.per_trainer, extra(j));
        }
        d
    }

    /// Per resource, the demand no routing into the pools fits.
    fn unplaced(&self, jobs: &[FairJob], extra: impl Fn(usize) -> f64) -> (Routing, Res3) {
        pools::unplaced(&self.pools, &self.demand(jobs, extra))
    }

    /// Whether `left` unplaced is no more than `baseline` on the resources `room` marks
    /// live (finite), within the bisection's noise.
    fn holds(&self, left: &Res3, room: &Res3, baseline: &Res3) -> bool {
        let slop = self.slop();
        (0..3).all(|k| !room[k].is_finite() || left[k] <= baseline[k] + slop[k])
    }

    /// Tolerance on unplaced demand, per resource: rounding noise of the bisection.
    fn slop(&self) -> Res3 {
        let mut s = [1.0; 3];
        for r in &self.pools.room {
            add_scaled(&mut s, r, 1.0);
        }
        s.map(|v| v * 1e-9)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct FairShare {
    /// The continuous progressive-filling answer.
    pub continuous: Vec<f64>,
    /// Integer extra trainers per job.
    pub extra: Vec<u32>,
}

/// Per-job constants of `x_j(u) = clamp(a·u − b, 0, cap)`.
#[derive(Clone, Copy, Debug)]
struct Line {
    a: f64,
    b: f64,
    cap: f64,
}

impl Line {
    fn x_at(&self, u: f64) -> f64 {
        (self.a * u - self.b).clamp(0.0, self.cap)
    }
    /// The job level at which the job stops growing.
    fn top(&self) -> f64 {
        (self.cap + self.b) / self.a
    }
}

pub(crate) fn dominant_resource(per_trainer: &Res3, capacity: &Res3) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for k in 0..3 {
        if per_trainer[k] <= 0.0 {
            continue;
        }
        if capacity[k] <= 0.0 {
            return None; // needs something the cluster does not have
        }
        let s = per_trainer[k] / capacity[k];
        if best.is_none_or(|(_, b)| s > b) {
            best = Some((k, s));
        }
    }
    best.map(|(k, _)| k)
}

/// The job's weighted share holding `extra` trainers above its base.
pub fn job_share(job: &FairJob, capacity: &Res3, extra: f64) -> f64 {
    share_on(
        job,
        capacity,
        dominant_resource(&job.per_trainer, capacity),
        extra,
    )
}

/// [`job_share`], the job's dominant resource `dominant` known.
fn share_on(job: &FairJob, capacity: &Res3, dominant: Option<usize>, extra: f64) -> f64 {
    match dominant {
        Some(d) => (job.base[d] + extra * job.per_trainer[d]) / capacity[d] / job.weight,
        None => f64::INFINITY,
    }
}

fn add_scaled(acc: &mut Res3, v: &Res3, s: f64) {
    for k in 0..3 {
        acc[k] += v[k] * s;
    }
}

/// Whether a bisection's bracket is as narrow as it usefully gets: past a few units in
/// the last place of `hi`, halving only repeats the same level (each step of the
/// solver's bisection costs a routing of every pool).
fn settled(lo: f64, hi: f64) -> bool {
    hi - lo <= SETTLED * hi.abs()
}

/// Strict up to rounding noise: a frozen job must never hold more than the room, or the
/// next stage would find every level infeasible.
fn fits(u: &Res3, room: &Res3) -> bool {
    (0..3).all(|k| u[k] <= room[k] + 1e-12 * room[k].abs().max(1.0))
}

fn queue_share(q: &FairQueue, usage: &Res3, capacity: &Res3) -> f64 {
    let mut s: f64 = 0.0;
    for k in 0..3 {
        if capacity[k] > 0.0 {
            s = s.max((usage[k] - q.guaranteed[k]).max(0.0) / capacity[k]);
        }
    }
    s / q.weight
}

/// One solve: the static tree plus the jobs frozen so far.
struct Solver<'a> {
    p: &'a FairProblem,
    lines: Vec<Option<Line>>,
    frozen: Vec<Option<f64>>,
    child_queues: Vec<Vec<usize>>,
    top_queues: Vec<usize>,
    queue_jobs: Vec<Vec<usize>>,
    /// For queues whose children are all jobs: the piecewise-linear usage curve.
    curves: Vec<Option<Curve>>,
    /// With pools, for the same queues: the usage curve of the queue's jobs of each pool
    /// group, as (group, curve). A level's demand on the pools is then a sum over queues
    /// and groups, not over every job, at each of the bisection's many steps.
    group_curves: Vec<Vec<(usize, Curve)>>,
    /// A queue with no sibling (queue or job) competes with nobody: its level is its
    /// parent's. Mapping it through its own share would make the level jump where that
    /// share is flat (held up by a resource its trainers do not use).
    alone: Vec<bool>,
}

/// What one solve found (see [`Solver::solve`]).
struct Solved {
    continuous: Vec<f64>,
    first_stage: Vec<f64>,
    walks: Vec<Walk>,
}

/// Usage of a flat queue as a function of its internal level: sorted breakpoints with
/// the usage at each and the slope after it.
#[derive(Debug)]
struct Curve {
    at: Vec<f64>,
    usage: Vec<Res3>,
    slope: Vec<Res3>,
}

impl Curve {
    fn build(fixed: Res3, jobs: &[(Line, Res3)]) -> Curve {
        // events: (level, slope change vector)
        let mut events: Vec<(f64, Res3, f64)> = Vec::with_capacity(jobs.len() * 2);
        let mut usage0 = fixed;
        for (line, r) in jobs {
            let start = line.b / line.a; // x starts growing
            let stop = line.top();
            let per_level = line.a;
            if stop <= 0.0 {
                add_scaled(&mut usage0, r, line.cap);
                continue;
            }
            if start <= 0.0 {
                add_scaled(&mut usage0, r, line.x_at(0.0));
                events.push((0.0, *r, per_level));
            } else {
                events.push((start, *r, per_level));
            }
            events.push((stop, *r, -per_level));
        }
        events.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut at = vec![0.0];
        let mut usage = vec![usage0];
        let mut slope = vec![[0.0; 3]];
        for (level, r, dir) in events {
            let last = at.len() - 1;
            if level > at[last] {
                let mut u = usage[last];
                add_scaled(&mut u, &slope[last], level - at[last]);
                let s = slope[last];
                at.push(level);
                usage.push(u);
                slope.push(s);
            }
            let last = at.len() - 1;
            add_scaled(&mut slope[last], &r, dir);
        }
        // Clean tiny negative slopes left by cancelling floating-point sums.
        for s in &mut slope {
            for v in s.iter_mut() {
                if v.abs() < 1e-12 {
                    *v = 0.0;
                }
            }
        }
        Curve { at, usage, slope }
    }

    fn usage_at(&self, u: f64) -> Res3 {
        let i = self.at.partition_point(|&a| a <= u).saturating_sub(1);
        let mut out = self.usage[i];
        add_scaled(&mut out, &self.slope[i], u - self.at[i]);
        out
    }

    /// Largest internal level whose usage keeps the queue's share ≤ t and within limit.
    fn level_for(&self, q: &FairQueue, t: f64, capacity: &Res3) -> f64 {
        let ok = |u: &Res3| {
            queue_share(q, u, capacity) <= t + EPS && (0..3).all(|k| u[k] <= q.limit[k] + EPS)
        };
        // The last breakpoint whose usage is acceptable.
        let n = self.at.len();
        let (mut lo, mut hi) = (0usize, n); // invariant: ok(at[< lo]) ; !ok(at[>= hi])
        if !ok(&self.usage[0]) {
            return 0.0;
        }
        lo = lo.max(1);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if ok(&self.usage[mid]) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let i = lo - 1;
        let (base_u, s) = (self.usage[i], self.slope[i]);
        let mut du = f64::INFINITY;
        for k in 0..3 {
            if s[k] <= 0.0 {
                continue;
            }
            if capacity[k] > 0.0 {
                let bound = t * q.weight * capacity[k] + q.guaranteed[k];
                du = du.min((bound - base_u[k]) / s[k]);
            }
            if q.limit[k].is_finite() {
                du = du.min((q.limit[k] - base_u[k]) / s[k]);
            }
        }
        // Past the last breakpoint every job has stopped growing (slope zero), so the
        // last breakpoint is the top; an infinite level would make `0 · ∞` a NaN usage.
        let end = if i + 1 < n {
            self.at[i + 1]
        } else {
            self.at[i]
        };
        let level = self.at[i] + du.max(0.0);
        level.min(end)
    }
}

impl<'a> Solver<'a> {
    fn new(p: &'a FairProblem) -> Self {
        let nq = p.queues.len();
        let mut child_queues = vec![Vec::new(); nq];
        let mut top_queues = Vec::new();
        for (i, q) in p.queues.iter().enumerate() {
            match q.parent {
                Some(parent) => child_queues[parent].push(i),
                None => top_queues.push(i),
            }
        }
        let mut queue_jobs = vec![Vec::new(); nq];
        let mut lines = Vec::with_capacity(p.jobs.len());
        for (j, job) in p.jobs.iter().enumerate() {
            queue_jobs[job.queue].push(j);
            lines.push(
                dominant_resource(&job.per_trainer, &p.capacity).map(|d| Line {
                    a: job.weight * p.capacity[d] / job.per_trainer[d],
                    b: job.base[d] / job.per_trainer[d],
                    cap: f64::from(job.max_extra),
                }),
            );
        }
        let alone = (0..nq)
            .map(|q| match p.queues[q].parent {
                None => top_queues.len() == 1,
                Some(parent) => child_queues[parent].len() == 1 && queue_jobs[parent].is_empty(),
            })
            .collect();
        let frozen = lines
            .iter()
            .map(|l| if l.is_none() { Some(0.0) } else { None })
            .collect();
        let mut s = Solver {
            p,
            lines,
            frozen,
            child_queues,
            top_queues,
            queue_jobs,
            curves: Vec::new(),
            group_curves: Vec::new(),
            alone,
        };
        s.rebuild_curves();
        s
    }

    /// The usage curves of every flat queue (see [`Solver::rebuild_curves_of`]).
    fn rebuild_curves(&mut self) {
        let all = vec![true; self.p.queues.len()];
        self.rebuild_curves_of(&all);
    }

    /// Builds again the curves of the flat queues marked in `changed` (those with a job
    /// frozen since they were built): the others' jobs are as they were.
    fn rebuild_curves_of(&mut self, changed: &[bool]) {
        let nq = self.p.queues.len();
        self.curves.resize_with(nq, || None);
        if self.p.pools.is_some() {
            self.group_curves.resize_with(nq, Vec::new);
        }
        for q in (0..nq).filter(|&q| changed[q] && self.child_queues[q].is_empty()) {
            self.curves[q] = Some(self.curve_of(q, |_| true));
            if let Some(fp) = &self.p.pools {
                self.group_curves[q] = self.queue_group_curves(q, fp);
            }
        }
    }

    /// The usage curve of the jobs of flat queue `q` that `counted` picks.
    fn curve_of(&self, q: usize, counted: impl Fn(usize) -> bool) -> Curve {
        let mut fixed = [0.0; 3];
        let mut active = Vec::new();
        for &j in self.queue_jobs[q].iter().filter(|&&j| counted(j)) {
            let job = &self.p.jobs[j];
            add_scaled(&mut fixed, &job.base, 1.0);
            match (self.frozen[j], self.lines[j]) {
                (Some(x), _) => add_scaled(&mut fixed, &job.per_trainer, x),
                (None, Some(line)) => active.push((line, job.per_trainer)),
                (None, None) => {}
            }
        }
        Curve::build(fixed, &active)
    }

    /// Flat queue `q`'s usage curve per pool group its jobs are in, as (group, curve)
    /// in group order.
    fn queue_group_curves(&self, q: usize, fp: &FairPools) -> Vec<(usize, Curve)> {
        let mut groups: Vec<usize> = self.queue_jobs[q]
            .iter()
            .map(|&j| fp.job_group[j])
            .collect();
        groups.sort_unstable();
        groups.dedup();
        groups
            .into_iter()
            .map(|g| (g, self.curve_of(q, |j| fp.job_group[j] == g)))
            .collect()
    }

    fn add_group_demand(&self, fp: &FairPools, q: usize, u: f64, d: &mut [Res3]) {
        if self.curves[q].is_some() {
            for (g, curve) in &self.group_curves[q] {
                add_scaled(&mut d[*g], &curve.usage_at(u), 1.0);
            }
            return;
        }
        for &j in &self.queue_jobs[q] {
            let job = &self.p.jobs[j];
            let g = &mut d[fp.job_group[j]];
            add_scaled(g, &job.base, 1.0);
            add_scaled(g, &job.per_trainer, self.job_x(j, u));
        }
        for &c in &self.child_queues[q] {
            let lc = self.queue_level(c, u);
            self.add_group_demand(fp, c, lc, d);
        }
    }

    fn job_x(&self, j: usize, u: f64) -> f64 {
        match (self.frozen[j], self.lines[j]) {
            (Some(x), _) => x,
            (None, Some(line)) => line.x_at(u),
            (None, None) => 0.0,
        }
    }

    /// Usage of queue `q` at its own internal level `u`.
    fn queue_usage_at(&self, q: usize, u: f64) -> Res3 {
        if let Some(curve) = &self.curves[q] {
            return curve.usage_at(u);
        }
        let mut out = [0.0; 3];
        for &j in &self.queue_jobs[q] {
            let job = &self.p.jobs[j];
            add_scaled(&mut out, &job.base, 1.0);
            add_scaled(&mut out, &job.per_trainer, self.job_x(j, u));
        }
        for &c in &self.child_queues[q] {
            let lc = self.queue_level(c, u);
            add_scaled(&mut out, &self.queue_usage_at(c, lc), 1.0);
        }
        out
    }

    /// The highest internal level of queue `q` at which nothing grows any more.
    fn queue_top_level(&self, q: usize) -> f64 {
        let mut top: f64 = 0.0;
        for &j in &self.queue_jobs[q] {
            if let (None, Some(line)) = (self.frozen[j], self.lines[j]) {
                top = top.max(line.top());
            }
        }
        for &c in &self.child_queues[q] {
            top = top.max(self.queue_reach(c));
        }
        top
    }

    /// The parent level at which queue `q` stops growing.
    fn queue_reach(&self, q: usize) -> f64 {
        let top = self.queue_top_level(q);
        if self.alone[q] {
            top
        } else {
            let full = self.queue_usage_at(q, top);
            queue_share(&self.p.queues[q], &full, &self.p.capacity)
        }
    }

    /// The internal level queue `q` takes when its parent's level is `t`.
    fn queue_level(&self, q: usize, t: f64) -> f64 {
        let queue = &self.p.queues[q];
        let alone = self.alone[q];
        if let Some(curve) = &self.curves[q] {
            return if alone {
                curve
                    .level_for(queue, f64::INFINITY, &self.p.capacity)
                    .min(t)
            } else {
                curve.level_for(queue, t, &self.p.capacity)
            };
        }
        let ok = |u: f64| {
            let usage = self.queue_usage_at(q, u);
            let share_ok = if alone {
                u <= t + EPS
            } else {
                queue_share(queue, &usage, &self.p.capacity) <= t + EPS
            };
            share_ok && (0..3).all(|k| usage[k] <= queue.limit[k] + EPS)
        };
        let mut hi = self.queue_top_level(q);
        if ok(hi) {
            return hi;
        }
        let mut lo = 0.0;
        if !ok(lo) {
            return 0.0;
        }
        for _ in 0..BISECTION_STEPS {
            let mid = 0.5 * (lo + hi);
            if ok(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }

    fn total_at(&self, t: f64) -> Res3 {
        let mut out = [0.0; 3];
        for &q in &self.top_queues {
            let u = self.queue_level(q, t);
            add_scaled(&mut out, &self.queue_usage_at(q, u), 1.0);
        }
        out
    }

    /// Every job's extra trainers when the common level is `t`.
    fn allocation_at(&self, t: f64, out: &mut [f64]) {
        for &q in &self.top_queues {
            let u = self.queue_level(q, t);
            self.fill_queue(q, u, out);
        }
    }

    fn fill_queue(&self, q: usize, u: f64, out: &mut [f64]) {
        for &j in &self.queue_jobs[q] {
            out[j] = self.job_x(j, u);
        }
        for &c in &self.child_queues[q] {
            let lc = self.queue_level(c, u);
            self.fill_queue(c, lc, out);
        }
    }

    /// The continuous allocation, the allocation where the first resource saturated
    /// (the point up to which integer trainers can be handed out without asking who
    /// is blocked: see [`round`]) and the bisections' walks. `hints` are an earlier
    /// solve's walks, in order: they make a bisection cheaper, never different.
    fn solve(mut self, hints: &[Walk]) -> Solved {
        let p = self.p;
        let mut x = vec![0.0; p.jobs.len()];
        let mut scratch = vec![0.0; p.jobs.len()];
        let mut first_stage: Option<Vec<f64>> = None;
        let mut walks = Vec::new();
        // One stage per saturated resource, plus one to notice that all are done; with
        // pools, one per saturated resource of each group.
        let stages = 4 + p.pools.as_ref().map_or(0, |fp| 3 * fp.pools.groups());
        for _stage in 0..stages {
            if self.frozen.iter().all(Option::is_some) {
                break;
            }
            // Only resources that an active job's trainers use change with the level;
            // the rest hold constant usage, and their rounding noise from frozen jobs
            // must not make every level look infeasible.
            let room = self.live_room();
            // What the pools cannot take with the active jobs at their bases (bases a
            // pool cannot hold): a level is feasible when it leaves no more unplaced.
            let baseline = p
                .pools
                .as_ref()
                .map(|fp| fp.unplaced(&p.jobs, |j| self.frozen[j].unwrap_or(0.0)).1);
            let t_hi = self
                .top_queues
                .iter()
                .map(|&q| self.queue_reach(q))
                .fold(0.0, f64::max);
            if self.feasible(t_hi, &room, baseline.as_ref()) {
                self.allocation_at(t_hi, &mut x);
                let first_stage = first_stage.unwrap_or_else(|| x.clone());
                return Solved {
                    continuous: x,
                    first_stage,
                    walks,
                };
            }
            let (lo, hi) = (0.0, t_hi);
            if !fits(&self.total_at(lo), &room) {
                // Even the level-0 allocation does not fit (guarantees or bases exceed
                // the room): hand out nothing here; rounding fills what fits.
                self.allocation_at(0.0, &mut x);
                first_stage.get_or_insert_with(|| x.clone());
                let over = self.total_at(0.0);
                self.freeze_saturated(&x, &over, &[]);
                continue;
            }
            if !self.feasible(lo, &room, baseline.as_ref()) {
                // Guarantees alone ask more of a pool than it holds: fill them only as
                // far as the pools allow, each queue's level scaled alike.
                let walk = bisection::bisect((0.0, 1.0), hints.get(walks.len()), settled, |s| {
                    self.allocation_scaled(s, &mut scratch);
                    self.pools_hold(&scratch, &room, baseline.as_ref())
                });
                walks.push(walk);
                let s_lo = walk.end.0;
                self.allocation_scaled(s_lo, &mut x);
                first_stage.get_or_insert_with(|| x.clone());
                let confined = self.confined(&x, &room);
                self.freeze_saturated(&x, &[0.0; 3], &confined);
                continue;
            }
            let walk = bisection::bisect((lo, hi), hints.get(walks.len()), settled, |t| {
                self.feasible(t, &room, baseline.as_ref())
            });
            walks.push(walk);
            let (lo, hi) = walk.end;
            self.allocation_at(lo, &mut x);
            first_stage.get_or_insert_with(|| x.clone());
            let mut binding = self.total_at(hi);
            // After 64 halvings `hi` overshoots by rounding noise only: a resource binds
            // when it is over the room at `hi` or has no slack left at `lo`.
            let at_lo = self.total_at(lo);
            for k in 0..3 {
                if room[k] - at_lo[k] <= 1e-7 * room[k].abs().max(1.0) {
                    binding[k] = binding[k].max(room[k] * (1.0 + 2.0 * EPS) + 2.0 * EPS);
                }
            }
            let confined = self.confined(&x, &room);
            self.freeze_saturated(&x, &binding, &confined);
        }
        for (j, f) in self.frozen.iter().enumerate() {
            if let Some(v) = f {
                x[j] = *v;
            }
        }
        let first_stage = first_stage.unwrap_or_else(|| x.clone());
        Solved {
            continuous: x,
            first_stage,
            walks,
        }
    }

    fn live_room(&self) -> Res3 {
        let mut room = [f64::INFINITY; 3];
        for (j, job) in self.p.jobs.iter().enumerate() {
            if self.frozen[j].is_none() {
                for k in 0..3 {
                    if job.per_trainer[k] > 0.0 {
                        room[k] = self.p.room[k];
                    }
                }
            }
        }
        room
    }

    /// Whether level `t` fits the room and, with pools, leaves no more demand unplaced
    /// than `baseline` on any resource an active job uses.
    fn feasible(&self, t: f64, room: &Res3, baseline: Option<&Res3>) -> bool {
        let (Some(fp), Some(baseline)) = (&self.p.pools, baseline) else {
            return fits(&self.total_at(t), room);
        };
        // Each top-level queue's level once, for both the total and the pools' demand.
        let mut total = [0.0; 3];
        let mut demand = vec![[0.0; 3]; fp.pools.groups()];
        for &q in &self.top_queues {
            let u = self.queue_level(q, t);
            add_scaled(&mut total, &self.queue_usage_at(q, u), 1.0);
            if !fits(&total, room) {
                return false;
            }
            self.add_group_demand(fp, q, u, &mut demand);
        }
        let left = pools::unplaced(&fp.pools, &demand).1;
        fp.holds(&left, room, baseline)
    }

    /// Whether the pools hold allocation `x` up to `baseline` (see [`Solver::feasible`]).
    fn pools_hold(&self, x: &[f64], room: &Res3, baseline: Option<&Res3>) -> bool {
        let (Some(fp), Some(baseline)) = (&self.p.pools, baseline) else {
            return true;
        };
        let left = fp.unplaced(&self.p.jobs, |j| x[j]).1;
        fp.holds(&left, room, baseline)
    }

    /// The level-0 allocation with each top-level queue's internal level scaled by `s`.
    fn allocation_scaled(&self, s: f64, out: &mut [f64]) {
        for &q in &self.top_queues {
            let u = self.queue_level(q, 0.0) * s;
            self.fill_queue(q, u, out);
        }
    }

    /// Active jobs that cannot grow at allocation `x` because every pool their group
    /// could reach is full of a resource their trainers use (`room` finite marks the
    /// resources active jobs use).
    fn confined(&self, x: &[f64], room: &Res3) -> Vec<usize> {
        let Some(fp) = &self.p.pools else {
            return Vec::new();
        };
        let (routing, _) = fp.unplaced(&self.p.jobs, |j| x[j]);
        let mut stuck = vec![[false; 3]; fp.pools.groups()];
        for (g, s) in stuck.iter_mut().enumerate() {
            for k in 0..3 {
                s[k] = room[k].is_finite() && !routing.can_grow(&fp.pools, g, k);
            }
        }
        (0..self.p.jobs.len())
            .filter(|&j| {
                let g = fp.job_group[j];
                self.frozen[j].is_none()
                    && (0..3).any(|k| stuck[g][k] && self.p.jobs[j].per_trainer[k] > 0.0)
            })
            .collect()
    }

    /// Freezes the active jobs that use a resource `over` the room, and `also`.
    fn freeze_saturated(&mut self, x: &[f64], over: &Res3, also: &[usize]) {
        let saturated: Vec<usize> = (0..3)
            .filter(|&k| over[k] > self.p.room[k] * (1.0 + EPS) + EPS)
            .collect();
        let p = self.p;
        let mut changed = vec![false; p.queues.len()];
        let mut freeze = |frozen: &mut Option<f64>, j: usize| {
            *frozen = Some(x[j]);
            changed[p.jobs[j].queue] = true;
        };
        for &j in also {
            if self.frozen[j].is_none() {
                freeze(&mut self.frozen[j], j);
            }
        }
        for j in 0..p.jobs.len() {
            if self.frozen[j].is_none() && saturated.iter().any(|&k| p.jobs[j].per_trainer[k] > 0.0)
            {
                freeze(&mut self.frozen[j], j);
            }
        }
        let any = changed.contains(&true);
        if !any {
            // Nothing identifiable binds (numerical corner): stop where we are.
            for j in 0..p.jobs.len() {
                if self.frozen[j].is_none() {
                    self.frozen[j] = Some(x[j]);
                }
            }
            return;
        }
        // Once every job is frozen no level is asked for again.
        if self.frozen.iter().any(Option::is_none) {
            self.rebuild_curves_of(&changed);
        }
    }
}

/// Continuous progressive filling only (see the module doc).
pub fn continuous(p: &FairProblem) -> Vec<f64> {
    Solver::new(p).solve(&[]).continuous
}

/// The integer fair share: continuous filling, rounded down, leftover handed out.
pub fn solve(p: &FairProblem) -> FairShare {
    solve_remembering(p, &mut None)
}

/// The continuous answer to a problem, kept for the next one: it does not depend on
/// `current_extra` (which only breaks ties in rounding), so a problem that differs in
/// that alone needs only the rounding. Any other problem is solved with this one's
/// bisections as hints: the planner's verification round, on the world its plan
/// leaves, differs mostly in where pending services' demand sits, and its levels
/// mostly fall in the same brackets.
pub struct Remembered {
    problem: FairProblem,
    solved: Solved,
}

pub fn solve_remembering(p: &FairProblem, memory: &mut Option<Remembered>) -> FairShare {
    let known = memory
        .as_ref()
        .is_some_and(|m| same_but_current(p, &m.problem));
    let m = match memory {
        Some(m) if known => m,
        _ => {
            let hints = memory.as_ref().map_or(&[][..], |m| &m.solved.walks[..]);
            let solved = Solver::new(p).solve(hints);
            memory.insert(Remembered {
                problem: p.clone(),
                solved,
            })
        }
    };
    let extra = round(p, &m.solved.first_stage);
    FairShare {
        continuous: m.solved.continuous.clone(),
        extra,
    }
}

fn same_but_current(a: &FairProblem, b: &FairProblem) -> bool {
    a.capacity == b.capacity
        && a.room == b.room
        && a.pools == b.pools
        && a.queues == b.queues
        && a.jobs.len() == b.jobs.len()
        && a.jobs.iter().zip(&b.jobs).all(|(x, y)| {
            x.queue == y.queue
                && x.weight == y.weight
                && x.base == y.base
                && x.per_trainer == y.per_trainer
                && x.max_extra == y.max_extra
        })
}

fn ancestors(p: &FairProblem, q: usize) -> Vec<usize> {
    let mut path = vec![q];
    let mut cur = q;
    while let Some(parent) = p.queues[cur].parent {
        if path.len() > p.queues.len() {
            break; // cycles are rejected before this point; never loop forever
        }
        path.push(parent);
        cur = parent;
    }
    path
}

/// Integer trainers by discrete progressive filling: one trainer at a time to the
/// poorest candidate (see the key below); a job whose next trainer does not fit drops
/// out for good, since room only shrinks.
///
/// Filling from zero would cost one heap operation per trainer, so it starts from the
/// continuous allocation at the first saturation level `t1`, rounded down: every
/// trainer there has share ≤ `t1`, below the next trainer of any job that can still
/// be blocked, so discrete filling from zero would have handed out the same ones
/// first. Starting from the *final* continuous answer would not do: a job frozen there
/// by a resource that rounding leaves unsaturated would keep a trainer its poorer
/// neighbour needs.
fn round(p: &FairProblem, start: &[f64]) -> Vec<u32> {
    let mut has_jobs = vec![false; p.queues.len()];
    for job in &p.jobs {
        has_jobs[job.queue] = true;
    }
    let shallow = (0..p.queues.len())
        .filter(|&q| has_jobs[q])
        .all(|q| ancestors(p, q).len() < INLINE_SHARES);
    round_keyed(p, start, shallow)
}

/// Discrete filling in progress: trainers handed out so far and what they use.
struct Filling<'p> {
    p: &'p FairProblem,
    /// Each queue's path to the top, itself first (a job's path is its queue's).
    paths: Vec<Vec<usize>>,
    extra: Vec<u32>,
    queue_usage: Vec<Res3>,
    total: Res3,
    /// Each queue's share of the capacity now, refreshed on the path of a served job.
    shares_now: Vec<f64>,
    /// Keys in fixed slots (every path must fit them) or in vectors.
    inline: bool,
    /// Each job's dominant resource (None: it needs one the cluster lacks), worked out
    /// once: every trainer handed out asks for its job's share anew.
    dominant: Vec<Option<usize>>,
    /// With pools: the demand handed out so far, routed into them.
    routing: Option<Routing>,
}

/// Takes back trainers that rounding up pushed past what the pools hold (as the room
/// check above does for the aggregate), and routes what is left.
fn pool_rounding(
    p: &FairProblem,
    fp: &FairPools,
    continuous: &[f64],
    extra: &mut [u32],
) -> Routing {
    let baseline = fp.unplaced(&p.jobs, |_| 0.0).1;
    let slop = fp.slop();
    loop {
        let (routing, left) = fp.unplaced(&p.jobs, |j| f64::from(extra[j]));
        let culprit = (0..3)
            .filter(|&k| left[k] > baseline[k] + slop[k])
            .find_map(|k| {
                (0..p.jobs.len())
                    .filter(|&j| {
                        p.jobs[j].per_trainer[k] > 0.0 && f64::from(extra[j]) > continuous[j]
                    })
                    .max_by(|&a, &b| {
                        (f64::from(extra[a]) - continuous[a])
                            .total_cmp(&(f64::from(extra[b]) - continuous[b]))
                    })
            });
        match culprit {
            Some(j) => extra[j] -= 1,
            None => return routing,
        }
    }
}

impl<'p> Filling<'p> {
    fn start(p: &'p FairProblem, continuous: &[f64], inline: bool) -> Self {
        let mut extra: Vec<u32> = continuous
            .iter()
            .zip(&p.jobs)
            .map(|(&x, job)| ((x + 1e-6).floor().max(0.0) as u32).min(job.max_extra))
            .collect();
        // Rounding 2.9999999 up to 3 must not push the total past the room: take back
        // from the jobs rounded up the most until it fits. (A resource the bases alone
        // over-fill has no extra trainer on it to take back, and is left as it is.)
        loop {
            let mut total = [0.0; 3];
            for (j, job) in p.jobs.iter().enumerate() {
                add_scaled(&mut total, &job.base, 1.0);
                add_scaled(&mut total, &job.per_trainer, f64::from(extra[j]));
            }
            let culprit = (0..3)
                .filter(|&k| total[k] > p.room[k] + 1e-9 * p.room[k].abs().max(1.0))
                .find_map(|k| {
                    (0..p.jobs.len())
                        .filter(|&j| extra[j] > 0 && p.jobs[j].per_trainer[k] > 0.0)
                        .max_by(|&a, &b| {
                            (f64::from(extra[a]) - continuous[a])
                                .total_cmp(&(f64::from(extra[b]) - continuous[b]))
                        })
                });
            match culprit {
                Some(j) => extra[j] -= 1,
                None => break,
            }
        }
        let routing = p
            .pools
            .as_ref()
            .map(|fp| pool_rounding(p, fp, continuous, &mut extra));
        let paths: Vec<Vec<usize>> = (0..p.queues.len()).map(|q| ancestors(p, q)).collect();
        let mut queue_usage = vec![[0.0; 3]; p.queues.len()];
        let mut total = [0.0; 3];
        for (j, job) in p.jobs.iter().enumerate() {
            let mut u = job.base;
            add_scaled(&mut u, &job.per_trainer, f64::from(extra[j]));
            add_scaled(&mut total, &u, 1.0);
            for &q in &paths[job.queue] {
                add_scaled(&mut queue_usage[q], &u, 1.0);
            }
        }
        let shares_now = p
            .queues
            .iter()
            .zip(&queue_usage)
            .map(|(q, u)| queue_share(q, u, &p.capacity))
            .collect();
        Filling {
            p,
            paths,
            extra,
            queue_usage,
            total,
            shares_now,
            inline,
            routing,
            dominant: p
                .jobs
                .iter()
                .map(|job| dominant_resource(&job.per_trainer, &p.capacity))
                .collect(),
        }
    }

    /// Whether job `j` takes part at all: below its max, and its trainer uses something.
    fn candidate(&self, j: usize) -> bool {
        let job = &self.p.jobs[j];
        self.extra[j] < job.max_extra && self.dominant[j].is_some()
    }

    /// What orders jobs within one queue: the job's share with one more trainer, then
    /// whether it already holds that trainer, then its index. Changes only when the job
    /// itself is served.
    fn own_key(&self, j: usize) -> OwnKey {
        let job = &self.p.jobs[j];
        let own = share_on(
            job,
            &self.p.capacity,
            self.dominant[j],
            f64::from(self.extra[j]) + 1.0,
        );
        OwnKey::new(own, job.current_extra <= self.extra[j], j)
    }

    /// Key of giving job j one more trainer, lower served first: the discrete form of
    /// progressive filling. From the top of the tree down, the current share of each
    /// queue on the job's path (the poorest queue is served first), then the job's own
    /// key. Current, not "after", for queues: in one queue every job would otherwise be
    /// ranked by how much its trainer moves the queue's dominant resource rather than by
    /// its own share.
    fn key(&self, j: usize) -> FullKey {
        self.key_with(self.own_key(j))
    }

    /// [`Filling::key`] of the job whose [`Filling::own_key`] is `own_key` (a queue's heap
    /// holds them, exact).
    fn key_with(&self, own_key: OwnKey) -> FullKey {
        let (own, tail) = own_key.parts();
        let queue_shares = self.paths[self.p.jobs[own_key.job()].queue]
            .iter()
            .rev()
            .map(|&q| ordered_bits(self.shares_now[q]));
        let shares = if self.inline {
            let mut a = [PAST_THE_PATH; INLINE_SHARES];
            for (slot, s) in a.iter_mut().zip(queue_shares.chain([own])) {
                *slot = s;
            }
            PathShares::Inline(a)
        } else {
            PathShares::Spilled(queue_shares.chain([own]).collect())
        };
        FullKey { shares, tail }
    }

    /// Gives job `j` one more trainer if it fits the room and every limit on its path;
    /// false (and nothing changed) otherwise.
    fn serve(&mut self, j: usize) -> bool {
        let p = self.p;
        let r = p.jobs[j].per_trainer;
        let mut t = self.total;
        add_scaled(&mut t, &r, 1.0);
        let within_limits = self.paths[p.jobs[j].queue]
            .iter()
            .all(|&q| (0..3).all(|k| self.queue_usage[q][k] + r[k] <= p.queues[q].limit[k] + EPS));
        // Only what the trainer uses: bases may over-fill a resource it does not touch.
        let fits_room =
            (0..3).all(|k| r[k] <= 0.0 || t[k] <= p.room[k] + 1e-12 * p.room[k].abs().max(1.0));
        if !fits_room || !within_limits {
            return false;
        }
        if let (Some(routing), Some(fp)) = (&mut self.routing, &p.pools)
            && !routing.try_route(&fp.pools, fp.job_group[j], &r)
        {
            return false;
        }
        self.total = t;
        for &q in &self.paths[p.jobs[j].queue] {
            add_scaled(&mut self.queue_usage[q], &r, 1.0);
            self.shares_now[q] = queue_share(&p.queues[q], &self.queue_usage[q], &p.capacity);
        }
        self.extra[j] += 1;
        true
    }
}

/// Serves the job with the least `key` until none can take a trainer. Jobs of one
/// queue share every share on their path, so their order never changes but by serving
/// one of them: each queue keeps its own heap by `own_key` (exact, never stale), and
/// only the queues' front jobs meet in a heap of full keys. A full key only grows (the
/// shares on its path grow), so a front entry is checked when popped and re-queued if
/// it grew meanwhile; with flat queues that never happens. A job whose next trainer
/// does not fit drops out for good, since room only shrinks.
fn round_keyed(p: &FairProblem, start: &[f64], inline: bool) -> Vec<u32> {
    let mut f = Filling::start(p, start, inline);
    let mut per_queue: Vec<BinaryHeap<Reverse<OwnKey>>> =
        (0..p.queues.len()).map(|_| BinaryHeap::new()).collect();
    for j in 0..p.jobs.len() {
        if f.candidate(j) {
            per_queue[p.jobs[j].queue].push(Reverse(f.own_key(j)));
        }
    }
    let mut alone: Vec<bool> = p.queues.iter().map(|q| q.parent.is_none()).collect();
    for q in &p.queues {
        if let Some(parent) = q.parent {
            alone[parent] = false;
        }
    }
    let mut fronts = BinaryHeap::new();
    for heap in &per_queue {
        if let Some(Reverse(own)) = heap.peek() {
            fronts.push(Reverse(f.key_with(*own)));
        }
    }
    let mut next_front = fronts.pop().map(|Reverse(k)| k);
    while let Some(k) = next_front.take() {
        let q = p.jobs[k.job()].queue;
        // Only a queue's own front entry serves it: the entry of a queue alone in its
        // tree (most trees are flat) is never stale.
        if !alone[q] {
            let fresh = f.key(k.job());
            if fresh > k {
                // A queue on its path grew since.
                next_front = Some(exchange_least(&mut fronts, fresh));
                continue;
            }
        }
        if let Some(mut front) = per_queue[q].peek_mut() {
            let j = front.0.job();
            // The served job's entry is re-keyed in place: one sift, not a pop and a push.
            if f.serve(j) && f.extra[j] < p.jobs[j].max_extra {
                *front = Reverse(f.own_key(j));
            } else {
                PeekMut::pop(front);
            }
        }
        if let Some(Reverse(next)) = per_queue[q].peek() {
            next_front = Some(exchange_least(&mut fronts, f.key_with(*next)));
            continue;
        }
        next_front = fronts.pop().map(|Reverse(k)| k);
    }
    f.extra
}

/// Puts `key` into `heap` and takes out the least key, which may be `key` itself: a
/// key below the top is handed straight back (keys are unique, they end in the job's
/// index), any other replaces the top in one sift.
fn exchange_least<K: Ord>(heap: &mut BinaryHeap<Reverse<K>>, key: K) -> K {
    match heap.peek_mut() {
        Some(mut top) if top.0 < key => std::mem::replace(&mut *top, Reverse(key)).0,
        _ => key,
    }
}

/// Shares on a job's path, root first, then the job's own, as [`ordered_bits`]:
/// compared lexicographically, a shorter path first on a tie. Inline, the slots after
/// the path hold a value below every share (also below a NaN), which keeps exactly that
/// order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PathShares {
    Inline([u64; INLINE_SHARES]),
    /// Trees deeper than the inline slots (every key of a run is one or the other).
    Spilled(Vec<u64>),
}

/// The deepest path the planner lets through (`MAX_QUEUE_DEPTH` queues) and the job's own
/// share: smaller keys move faster through the heaps.
const INLINE_SHARES: usize = crate::model::MAX_QUEUE_DEPTH + 1;

/// The least key in [`ordered_bits`] order: that of the least `f64` in `total_cmp` order
/// (a negative NaN with every payload bit).
const PAST_THE_PATH: u64 = 0;

/// A job's key in its queue's heap: its share with one more trainer, then whether it
/// holds that trainer already, then its index, packed so that the heap compares one
/// integer per step (rounding sifts these tens of thousands of times a tick).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct OwnKey(u128);

impl OwnKey {
    /// `not_held` (the job does not hold that trainer yet: holders go first) takes the
    /// bit above the index: no snapshot holds 2^63 jobs.
    fn new(share: f64, not_held: bool, job: usize) -> OwnKey {
        OwnKey(u128::from(ordered_bits(share)) << 64 | u128::from(tail(not_held, job)))
    }

    fn job(self) -> usize {
        job_of_tail(self.0 as u64)
    }

    /// (share, tail): the share's [`ordered_bits`] and (not held, job).
    fn parts(self) -> (u64, u64) {
        ((self.0 >> 64) as u64, self.0 as u64)
    }
}

/// (whether the job does not hold the trainer yet, its index) in one integer, in that
/// order.
fn tail(not_held: bool, job: usize) -> u64 {
    u64::from(not_held) << 63 | job as u64
}

fn job_of_tail(tail: u64) -> usize {
    (tail & !(1 << 63)) as usize
}

/// A job's key among the queues' front jobs: the shares on its path, then (not held, job).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct FullKey {
    shares: PathShares,
    tail: u64,
}

impl FullKey {
    fn job(&self) -> usize {
        job_of_tail(self.tail)
    }
}

/// `f64::total_cmp`'s order as an unsigned integer's: a negative float has every bit
/// flipped (further from zero sorts lower), any other gains the sign bit.
fn ordered_bits(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// f64 with a total order, for heap keys.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct OrdF(pub f64);
impl Eq for OrdF {}
impl PartialOrd for OrdF {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrdF {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;

    /// The plain form of `round_keyed`: every candidate job in one heap of full keys,
    /// re-queued whenever a sibling's growth made its key stale. Slower (a queue of n
    /// jobs re-queues up to n keys per trainer), and the reference the fast one must
    /// match trainer for trainer.
    pub(super) fn round_one_heap(p: &FairProblem, start: &[f64], inline: bool) -> Vec<u32> {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let mut f = Filling::start(p, start, inline);
        let mut heap: BinaryHeap<_> = (0..p.jobs.len())
            .filter(|&j| f.candidate(j))
            .map(|j| Reverse(f.key(j)))
            .collect();
        while let Some(Reverse(k)) = heap.pop() {
            let j = k.job();
            let fresh = f.key(j);
            if fresh > k {
                heap.push(Reverse(fresh));
                continue;
            }
            if f.serve(j) && f.extra[j] < p.jobs[j].max_extra {
                heap.push(Reverse(f.key(j)));
            }
        }
        f.extra
    }

    /// A three-level tree: both key forms must hand out the same trainers.
    #[test]
    fn inline_and_spilled_keys_round_alike() {
        let queue = |parent: Option<usize>, weight: f64| FairQueue {
            parent,
            weight,
            guaranteed: [0.0; 3],
            limit: [f64::INFINITY; 3],
        };
        let queues = vec![
            queue(None, 1.0),
            queue(Some(0), 2.0),
            queue(Some(1), 1.0),
            queue(None, 3.0),
        ];
        for seed in 0..50u32 {
            let jobs: Vec<FairJob> = (0..7u32)
                .map(|i| {
                    let v = f64::from((seed * 7 + i * 13) % 5 + 1);
                    FairJob {
                        queue: (i % 4) as usize,
                        weight: f64::from(i % 3 + 1),
                        base: [1.0, 1.0, 0.0],
                        per_trainer: [v, 1.0, f64::from(i % 2)],
                        max_extra: 3 + (seed + i) % 11,
                        current_extra: (seed + i) % 4,
                    }
                })
                .collect();
            let p = FairProblem {
                capacity: [100.0, 200.0, 8.0],
                room: [90.0, 200.0, 8.0],
                queues: queues.clone(),
                jobs,
                pools: None,
            };
            let start = vec![0.0; p.jobs.len()];
            let fast = round_keyed(&p, &start, true);
            assert_eq!(fast, round_keyed(&p, &start, false), "seed {seed}");
            assert_eq!(fast, round_one_heap(&p, &start, true), "seed {seed}");
            assert_eq!(fast, round_one_heap(&p, &start, false), "seed {seed}");
        }
    }

    #[test]
    fn a_remembered_continuous_answer_is_reused_only_where_it_holds() {
        let queue = |weight| FairQueue {
            parent: None,
            weight,
            guaranteed: [0.0; 3],
            limit: [f64::INFINITY; 3],
        };
        let job = |queue, v: f64, current_extra| FairJob {
            queue,
            weight: 1.0,
            base: [1.0, 1.0, 0.0],
            per_trainer: [v, 1.0, 0.0],
            max_extra: 20,
            current_extra,
        };
        let p = FairProblem {
            capacity: [60.0, 200.0, 0.0],
            room: [60.0, 200.0, 0.0],
            queues: vec![queue(1.0), queue(2.0)],
            jobs: vec![job(0, 1.0, 0), job(0, 2.0, 5), job(1, 3.0, 1)],
            pools: None,
        };
        let mut memory = None;
        assert_eq!(solve_remembering(&p, &mut memory), solve(&p));
        // Only the trainers held now differ: the continuous answer is the same.
        let mut moved = p.clone();
        moved.jobs[1].current_extra = 0;
        moved.jobs[2].current_extra = 7;
        assert!(same_but_current(&moved, &p));
        assert_eq!(solve_remembering(&moved, &mut memory), solve(&moved));
        // Anything else differs: solved afresh.
        let mut smaller = p.clone();
        smaller.room[0] = 30.0;
        assert!(!same_but_current(&smaller, &p));
        assert_eq!(solve_remembering(&smaller, &mut memory), solve(&smaller));
        assert_ne!(solve(&smaller), solve(&p), "the change matters");
        let mut reweighted = p.clone();
        reweighted.queues[1].weight = 0.5;
        assert_eq!(
            solve_remembering(&reweighted, &mut memory),
            solve(&reweighted)
        );
    }
}

#[cfg(test)]
mod rounding_properties {
    use super::*;
    use proptest::prelude::*;

    prop_compose! {
        /// Small integer shapes so that ties between jobs and between queues are common.
        fn problem()(
            parents in proptest::collection::vec(0usize..4, 1..7),
            queue_weights in proptest::collection::vec(1u8..4, 7),
            limits in proptest::collection::vec(proptest::option::of(5u8..60), 7),
            jobs in proptest::collection::vec(
                (0usize..7, 1u8..4, 0u8..4, 0u8..3, 0u8..2, 0u32..12, 0u32..5),
                1..14,
            ),
            room_cpu in 20u8..120,
        ) -> FairProblem {
            let nq = parents.len();
            // Queue i's parent is an earlier queue (or none): trees as deep as the
            // planner takes them (`MAX_QUEUE_DEPTH`).
            let mut depth = vec![1usize; nq];
            let mut parent = vec![None; nq];
            for i in 1..nq {
                let p = parents[i] % i;
                if parents[i] > 0 && depth[p] < crate::model::MAX_QUEUE_DEPTH {
                    parent[i] = Some(p);
                    depth[i] = depth[p] + 1;
                }
            }
            let queues = (0..nq)
                .map(|i| FairQueue {
                    parent: parent[i],
                    weight: f64::from(queue_weights[i]),
                    guaranteed: [0.0; 3],
                    limit: match limits[i] {
                        Some(l) => [f64::from(l), f64::INFINITY, f64::INFINITY],
                        None => [f64::INFINITY; 3],
                    },
                })
                .collect();
            let jobs = jobs
                .into_iter()
                .map(|(q, w, cpu, mem, gpu, max_extra, current)| FairJob {
                    queue: q % nq,
                    weight: f64::from(w),
                    base: [1.0, 1.0, 0.0],
                    per_trainer: [f64::from(cpu), f64::from(mem), f64::from(gpu)],
                    max_extra,
                    current_extra: current,
                })
                .collect();
            FairProblem {
                capacity: [128.0, 256.0, 16.0],
                room: [f64::from(room_cpu), 256.0, 16.0],
                queues,
                jobs,
                pools: None,
            }
        }
    }

    proptest! {
        /// Heap keys compare shares as integers: every pair of floats (NaNs, zeros and
        /// infinities of both signs included) must keep `total_cmp`'s order.
        #[test]
        fn ordered_bits_keep_total_cmp_order(a in any::<u64>(), b in any::<u64>(), pick in 0usize..8) {
            let special = [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, -f64::NAN, 1e-310, -1e-310];
            let (a, b) = (f64::from_bits(a), f64::from_bits(b));
            for (x, y) in [(a, b), (a, special[pick]), (special[pick], b), (a, a)] {
                prop_assert_eq!(ordered_bits(x).cmp(&ordered_bits(y)), x.total_cmp(&y), "{} vs {}", x, y);
            }
            prop_assert_eq!(ordered_bits(f64::from_bits(u64::MAX)), PAST_THE_PATH);
        }
    }

    proptest! {
        // 500: each case runs the continuous solver, whose nested bisections make a
        // three-level tree cost ~40 ms in a debug build.
        #![proptest_config(ProptestConfig::with_cases(500))]
        /// Per-queue heaps hand out exactly the trainers one heap of full keys does,
        /// from zero and from the continuous first stage the planner starts from.
        #[test]
        fn per_queue_heaps_round_like_one_heap(p in problem()) {
            let first_stage = Solver::new(&p).solve(&[]).first_stage;
            for start in [vec![0.0; p.jobs.len()], first_stage] {
                let fast = round_keyed(&p, &start, false);
                prop_assert_eq!(&fast, &key_tests::round_one_heap(&p, &start, false));
                prop_assert_eq!(&fast, &round_keyed(&p, &start, true));
            }
        }
    }
}
