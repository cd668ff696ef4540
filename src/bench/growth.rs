//! `ebb bench plan --sweep`: the same benchmark at several cluster sizes, and how its
//! times grow with size.
//!
//! Growth is the exponent k of time ~ (nodes + jobs)^k, fitted by least squares on the
//! logarithms: 1 is linear. It is fitted for the tick and for the reference passes over
//! the same snapshots ([`super::input_floor`]), because on a real machine even those grow
//! faster than linearly once the snapshot outgrows the caches.

use super::generate::ClusterSpec;
use super::plan_bench::{self, PlanBench};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct PlanSweep {
    pub sizes: Vec<PlanBench>,
    pub exponent: Exponents,
}

/// Exponents of growth in nodes + jobs; `None` with fewer than two distinct sizes.
#[derive(Debug, Serialize, PartialEq)]
pub struct Exponents {
    pub median_ms: Option<f64>,
    pub input_clone_ms: Option<f64>,
    pub input_index_ms: Option<f64>,
}

/// Runs `ebb bench plan` at each node count of `nodes`, with jobs in the same ratio to
/// nodes as in `base` (at least one job where `base` has any).
pub fn sweep(base: &ClusterSpec, nodes: &[usize], runs: usize) -> PlanSweep {
    let sizes: Vec<PlanBench> = nodes
        .iter()
        .map(|&n| plan_bench::run(&scaled(base, n), runs))
        .collect();
    let fit = |time: fn(&PlanBench) -> f64| {
        let points: Vec<(f64, f64)> = sizes
            .iter()
            .map(|b| ((b.nodes + b.jobs) as f64, time(b)))
            .collect();
        exponent(&points)
    };
    let exponent = Exponents {
        median_ms: fit(|b| b.median_ms),
        input_clone_ms: fit(|b| b.input_clone_ms),
        input_index_ms: fit(|b| b.input_index_ms),
    };
    PlanSweep { sizes, exponent }
}

/// `base` with `nodes` nodes and its jobs scaled in proportion.
pub fn scaled(base: &ClusterSpec, nodes: usize) -> ClusterSpec {
    let jobs = if base.jobs == 0 {
        0
    } else {
        let ratio = base.jobs as f64 / base.nodes.max(1) as f64;
        ((nodes as f64 * ratio).round() as usize).max(1)
    };
    ClusterSpec {
        nodes,
        jobs,
        ..base.clone()
    }
}

/// The slope of log(time) against log(size) by least squares: k in time ~ size^k.
/// `None` when fewer than two distinct sizes, or any size or time not positive.
pub fn exponent(points: &[(f64, f64)]) -> Option<f64> {
    if points
        .iter()
        .any(|&(s, t)| !(s > 0.0 && t > 0.0 && s.is_finite() && t.is_finite()))
    {
        return None;
    }
    let logs: Vec<(f64, f64)> = points.iter().map(|&(s, t)| (s.ln(), t.ln())).collect();
    let n = logs.len() as f64;
    let mean_x = logs.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = logs.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = logs.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = logs.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    // Sizes that differ by less than this in log are one size measured twice.
    (sxx > 1e-12).then(|| sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn the_exponent_of_a_power_law_is_its_power() {
        for k in [0.5, 1.0, 1.17, 2.0] {
            let points: Vec<(f64, f64)> = [7e3, 14e3, 28e3, 70e3]
                .iter()
                .map(|&s: &f64| (s, 3.0 * s.powf(k)))
                .collect();
            assert!(
                close(exponent(&points), k),
                "k = {k}: {:?}",
                exponent(&points)
            );
        }
    }

    #[test]
    fn every_point_counts_not_only_the_ends() {
        // Linear ends (1 -> 8 for 1 -> 8 times the size) and one point twice as slow.
        // In log2: x = 0, 1, 2, 3 and y = 0, 2, 2, 3, so sxx = 5, sxy = 4.5, k = 0.9; a
        // line through the ends alone would say 1.
        let points = [(1e3, 1.0), (2e3, 4.0), (4e3, 4.0), (8e3, 8.0)];
        assert!(close(exponent(&points), 0.9), "{:?}", exponent(&points));
    }

    #[test]
    fn no_exponent_without_two_sizes_or_with_a_time_not_positive() {
        assert_eq!(exponent(&[]), None);
        assert_eq!(exponent(&[(5e3, 10.0)]), None);
        assert_eq!(exponent(&[(5e3, 10.0), (5e3, 12.0)]), None);
        assert_eq!(exponent(&[(5e3, 10.0), (5e4, 0.0)]), None);
        assert_eq!(exponent(&[(5e3, 10.0), (5e4, f64::NAN)]), None);
        assert_eq!(exponent(&[(0.0, 10.0), (5e4, 100.0)]), None);
    }

    #[test]
    fn jobs_keep_their_ratio_to_nodes() {
        let base = ClusterSpec {
            nodes: 5_000,
            jobs: 2_000,
            queues: 50,
            gpus_per_node: 8,
            seed: 1,
            constraints: Default::default(),
        };
        let s = scaled(&base, 35_000);
        assert_eq!((s.nodes, s.jobs, s.queues), (35_000, 14_000, 50));
        assert_eq!(scaled(&base, 1).jobs, 1);
        assert_eq!(scaled(&ClusterSpec { jobs: 0, ..base }, 100).jobs, 0);
    }

    #[test]
    fn a_sweep_reports_each_size_and_fits_the_three_times() {
        let base = ClusterSpec {
            nodes: 20,
            jobs: 8,
            queues: 2,
            gpus_per_node: 8,
            seed: 2,
            constraints: Default::default(),
        };
        let s = sweep(&base, &[20, 60], 2);
        let sizes: Vec<(usize, usize)> = s.sizes.iter().map(|b| (b.nodes, b.jobs)).collect();
        assert_eq!(sizes, vec![(20, 8), (60, 24)]);
        assert!(s.exponent.median_ms.is_some_and(f64::is_finite));
        assert!(s.exponent.input_clone_ms.is_some_and(f64::is_finite));
        assert!(s.exponent.input_index_ms.is_some_and(f64::is_finite));
    }
}
