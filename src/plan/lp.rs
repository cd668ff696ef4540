//! The fair-share stages as linear programmes (good_lp + microlp, pure Rust).
//!
//! This is the formulation written down in [`super::fairshare`]'s module doc for jobs of
//! one queue without guarantees or limits, also over pools where placement constraints
//! cut the cluster: then each job's demand of each resource is split over the pools its
//! group may use by variables of its own (the flow of [`super::pools`], written as
//! constraints), and a job is frozen when no LP lets it grow with the others held. Production uses the water-filling, which is
//! exact for the same problem and orders of magnitude faster; this module exists so the
//! two can be checked against each other, and to time the LP route in benchmarks.

// Index loops over parallel per-job and per-resource arrays read like the formulas.
#![allow(clippy::needless_range_loop)]

use super::fairshare::{FairPools, FairProblem, dominant_resource};
use good_lp::{
    Constraint, Expression, ProblemVariables, Solution, SolverModel, Variable, microlp, variable,
    variables,
};

#[derive(Debug, thiserror::Error)]
pub enum LpError {
    #[error("the LP route handles one queue without guarantees or limits")]
    Unsupported,
    #[error("LP solver failed: {0}")]
    Solver(String),
}

const EPS: f64 = 1e-7;

/// Continuous progressive filling by a sequence of LPs.
pub fn continuous(p: &FairProblem) -> Result<Vec<f64>, LpError> {
    let flat = p.queues.len() == 1
        && p.queues[0].guaranteed.iter().all(|&g| g == 0.0)
        && p.queues[0].limit.iter().all(|l| l.is_infinite());
    if !flat {
        return Err(LpError::Unsupported);
    }
    let n = p.jobs.len();
    let dom: Vec<Option<usize>> = p
        .jobs
        .iter()
        .map(|j| dominant_resource(&j.per_trainer, &p.capacity))
        .collect();
    // Some(x): frozen at x.
    let mut frozen: Vec<Option<f64>> = dom.iter().map(|d| d.map_or(Some(0.0), |_| None)).collect();
    let mut room_left = p.room;
    for job in &p.jobs {
        for k in 0..3 {
            room_left[k] -= job.base[k];
        }
    }
    // A resource the bases already over-fill has nothing to hand out: its users stay at
    // zero extra trainers, while jobs on other resources still grow (as the water-filling
    // does: the level-0 stage freezes exactly those users).
    for r in &mut room_left {
        *r = r.max(0.0);
    }
    let mut t_prev = 0.0;
    while frozen.iter().any(Option::is_none) {
        let mut vars = variables!();
        let t = vars.add(variable().min(t_prev));
        let xs: Vec<Option<Variable>> = (0..n)
            .map(|j| {
                frozen[j]
                    .is_none()
                    .then(|| vars.add(variable().min(0.0).max(f64::from(p.jobs[j].max_extra))))
            })
            .collect();
        let pooled = p.pools.as_ref().map(|fp| {
            let x: Vec<Expression> = (0..n)
                .map(|j| match (xs[j], frozen[j]) {
                    (Some(v), _) => v.into(),
                    (None, x) => Expression::from(x.unwrap_or(0.0)),
                })
                .collect();
            pool_constraints(&mut vars, fp, p, &x)
        });
        let mut model = vars.maximise(t).using(microlp);
        for c in pooled.into_iter().flatten() {
            model = model.with(c);
        }
        let mut fixed_use = [0.0; 3];
        for j in 0..n {
            if let Some(x) = frozen[j] {
                for k in 0..3 {
                    fixed_use[k] += x * p.jobs[j].per_trainer[k];
                }
            }
        }
        for k in 0..3 {
            let mut used = Expression::from(0.0);
            for (j, x) in xs.iter().enumerate() {
                if let Some(x) = x {
                    used += p.jobs[j].per_trainer[k] * *x;
                }
            }
            model = model.with(used.leq(room_left[k] - fixed_use[k]));
        }
        for (j, x) in xs.iter().enumerate() {
            if let (Some(x), Some(d)) = (x, dom[j]) {
                let job = &p.jobs[j];
                // b_d + r_d·x ≥ t·w·C_d
                let lhs = job.per_trainer[d] * *x - (job.weight * p.capacity[d]) * t;
                model = model.with(lhs.geq(-job.base[d]));
            }
        }
        let solution = model.solve().map_err(|e| LpError::Solver(e.to_string()))?;
        let level = solution.value(t);
        // Freeze jobs at their cap and jobs on resources left without slack.
        let required = |j: usize| -> f64 {
            let job = &p.jobs[j];
            let d = dom[j].unwrap_or(0);
            ((level * job.weight * p.capacity[d] - job.base[d]) / job.per_trainer[d])
                .clamp(0.0, f64::from(job.max_extra))
        };
        let mut use_at_level = fixed_use;
        for j in 0..n {
            if frozen[j].is_none() {
                for k in 0..3 {
                    use_at_level[k] += required(j) * p.jobs[j].per_trainer[k];
                }
            }
        }
        let saturated: Vec<usize> = (0..3)
            .filter(|&k| room_left[k] - use_at_level[k] <= EPS * room_left[k].max(1.0))
            .collect();
        let mut any = false;
        for j in 0..n {
            if frozen[j].is_some() {
                continue;
            }
            let x = required(j);
            let capped = x >= f64::from(p.jobs[j].max_extra) - EPS;
            let starved = saturated.iter().any(|&k| p.jobs[j].per_trainer[k] > 0.0);
            let confined = || {
                p.pools.as_ref().is_some_and(|fp| {
                    let held = |i: usize| frozen[i].unwrap_or_else(|| required(i));
                    !can_grow(fp, p, j, &held)
                })
            };
            if capped || starved || confined() {
                frozen[j] = Some(x);
                any = true;
            }
        }
        if !any {
            return Err(LpError::Solver(format!(
                "stage at level {level} froze no job"
            )));
        }
        t_prev = level;
    }
    Ok(frozen.into_iter().map(|x| x.unwrap_or(0.0)).collect())
}

/// Constraints that route every job's demand (`base + x·per_trainer`, with `x` its extra
/// trainers) and each group's fixed demand into the pools it may use, within each pool's
/// room: split variables are added to `vars`.
fn pool_constraints(
    vars: &mut ProblemVariables,
    fp: &FairPools,
    p: &FairProblem,
    x: &[Expression],
) -> Vec<Constraint> {
    let pools = &fp.pools;
    let mut into_pool: Vec<[Expression; 3]> = (0..pools.room.len())
        .map(|_| std::array::from_fn(|_| Expression::from(0.0)))
        .collect();
    let mut out = Vec::new();
    let mut split = |vars: &mut ProblemVariables, g: usize, demand: Expression, k: usize| {
        let mut routed = Expression::from(0.0);
        for &c in &pools.group_pools[g] {
            let f = vars.add(variable().min(0.0));
            routed += f;
            into_pool[c][k] += f;
        }
        out.push(routed.eq(demand));
    };
    for (j, job) in p.jobs.iter().enumerate() {
        for k in 0..3 {
            if job.base[k] > 0.0 || job.per_trainer[k] > 0.0 {
                split(
                    vars,
                    fp.job_group[j],
                    job.base[k] + job.per_trainer[k] * x[j].clone(),
                    k,
                );
            }
        }
    }
    for (g, fixed) in pools.group_fixed.iter().enumerate() {
        for k in 0..3 {
            if fixed[k] > 0.0 {
                split(vars, g, Expression::from(fixed[k]), k);
            }
        }
    }
    for (c, used) in into_pool.into_iter().enumerate() {
        for (k, e) in used.into_iter().enumerate() {
            out.push(e.leq(pools.room[c][k].max(0.0)));
        }
    }
    out
}

/// Whether job `j` could take more than `held(j)` extra trainers with every other job
/// at `held` and every demand routed into the pools.
fn can_grow(fp: &FairPools, p: &FairProblem, j: usize, held: &dyn Fn(usize) -> f64) -> bool {
    let mut vars = variables!();
    let now = held(j);
    let max = f64::from(p.jobs[j].max_extra);
    // A little below: the level's own answer holds it only up to the solver's precision.
    let xj = vars.add(variable().min((now - EPS).max(0.0)).max(max));
    let x: Vec<Expression> = (0..p.jobs.len())
        .map(|i| {
            if i == j {
                xj.into()
            } else {
                Expression::from(held(i))
            }
        })
        .collect();
    let constraints = pool_constraints(&mut vars, fp, p, &x);
    let mut model = vars.maximise(xj).using(microlp);
    for c in constraints {
        model = model.with(c);
    }
    model.solve().is_ok_and(|s| s.value(xj) > now + 1e3 * EPS)
}
