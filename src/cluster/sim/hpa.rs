//! The HorizontalPodAutoscaler's replica rule, as Kubernetes computes it for an average
//! per-pod metric: desired = ceil(current * metric / target), nothing when the ratio is
//! within the tolerance of 1, clamped to [min, max], and on the way down the highest
//! recommendation of the stabilisation window wins. On the way up the default policy
//! limits one sync to the larger of doubling and four more pods.

use super::scenario::HpaSpec;
use std::collections::VecDeque;

#[derive(Clone, Debug)]
pub struct Hpa {
    spec: HpaSpec,
    /// (time, recommendation) of the syncs within the stabilisation window.
    recent: VecDeque<(f64, u32)>,
}

impl Hpa {
    pub fn new(spec: HpaSpec) -> Self {
        Hpa {
            spec,
            recent: VecDeque::new(),
        }
    }

    pub fn sync_period_s(&self) -> f64 {
        self.spec.sync_period_s
    }

    /// Replicas to run after a sync at `now`, given the replicas the Deployment has
    /// (`current`, placed or not) and the load they share. Pods not yet serving count as
    /// serving nothing, as Kubernetes assumes for unready pods when scaling up.
    pub fn desired(&mut self, now: f64, current: u32, qps: f64) -> u32 {
        let s = &self.spec;
        let current = current.max(1);
        let ratio = qps / (s.target_qps_per_pod * f64::from(current));
        let raw = if (ratio - 1.0).abs() <= s.tolerance {
            current
        } else {
            let d = (f64::from(current) * ratio).ceil();
            if d >= f64::from(u32::MAX) {
                u32::MAX
            } else {
                d.max(0.0) as u32
            }
        };
        let recommendation = raw.clamp(s.min_replicas, s.max_replicas);
        let window = s.scale_down_stabilization_s;
        while self.recent.front().is_some_and(|&(t, _)| now - t > window) {
            self.recent.pop_front();
        }
        self.recent.push_back((now, recommendation));
        let highest = self
            .recent
            .iter()
            .map(|&(_, r)| r)
            .max()
            .unwrap_or(recommendation);
        if recommendation < current {
            highest.min(current)
        } else {
            let step_limit = current.saturating_mul(2).max(current.saturating_add(4));
            recommendation.min(step_limit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> HpaSpec {
        HpaSpec {
            min_replicas: 2,
            max_replicas: 20,
            target_qps_per_pod: 100.0,
            tolerance: 0.1,
            sync_period_s: 15.0,
            scale_down_stabilization_s: 300.0,
        }
    }

    #[test]
    fn scales_up_by_the_ratio_and_clamps() {
        let mut h = Hpa::new(spec());
        assert_eq!(
            h.desired(0.0, 2, 1000.0),
            6,
            "at most four more pods at once"
        );
        assert_eq!(h.desired(15.0, 6, 1000.0), 10);
        assert_eq!(h.desired(30.0, 10, 1_000_000.0), 20);
        assert_eq!(h.desired(45.0, 20, 0.0), 20, "down waits out the window");
    }

    #[test]
    fn within_tolerance_nothing_moves() {
        let mut h = Hpa::new(spec());
        assert_eq!(h.desired(0.0, 10, 1090.0), 10);
        assert_eq!(h.desired(15.0, 10, 915.0), 10);
        assert_eq!(h.desired(30.0, 10, 1200.0), 12);
    }

    #[test]
    fn scale_down_waits_for_the_stabilisation_window() {
        let mut h = Hpa::new(spec());
        assert_eq!(h.desired(0.0, 10, 1000.0), 10);
        let mut t = 15.0;
        let mut replicas = 10;
        while t <= 300.0 {
            replicas = h.desired(t, replicas, 200.0);
            assert_eq!(replicas, 10, "at {t}");
            t += 15.0;
        }
        // The 10-replica recommendation of t=0 has left the window.
        assert_eq!(h.desired(315.0, replicas, 200.0), 2);
    }
}
