//! The fair-share stages as linear programmes (good_lp + microlp, pure Rust).
//!
//! This is the formulation written down in [`super::fairshare`]'s module doc for jobs of
//! one queue without guarantees or limits. Production uses the water-filling, which is
//! exact for the same problem and orders of magnitude faster; this module exists so the
//! two can be checked against each other, and to time the LP route in benchmarks.

// Index loops over parallel per-job and per-resource arrays read like the formulas.
#![allow(clippy::needless_range_loop)]

use super::fairshare::{FairProblem, dominant_resource};
use good_lp::{Expression, Solution, SolverModel, Variable, microlp, variable, variables};

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
        let mut model = vars.maximise(t).using(microlp);
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
            if capped || starved {
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
