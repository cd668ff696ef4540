//! Knobs of the planner that operators may tune.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// A rebalance takes trainers from a job only when it holds more than its fair share
    /// by over max(`tolerance_trainers`, `tolerance_fraction` × its size), and another
    /// job is short of its fair share by as much. Growth into idle capacity is free.
    pub tolerance_fraction: f64,
    pub tolerance_trainers: u32,
    /// A job that changed size less than this long ago is not shrunk for fairness alone
    /// (it still yields to services, newcomers' minimum and guarantee reclaim).
    pub scale_down_cooldown_s: f64,
    /// Stop admitting at the first job whose gang does not fit (no backfill).
    pub strict_fifo: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            tolerance_fraction: 0.1,
            tolerance_trainers: 1,
            scale_down_cooldown_s: 60.0,
            strict_fifo: false,
        }
    }
}

impl Policy {
    /// The dead band for a job of `size` trainers.
    pub fn tolerance(&self, size: u32) -> u32 {
        let frac = (self.tolerance_fraction.max(0.0) * f64::from(size)).ceil();
        self.tolerance_trainers
            .max(frac.min(f64::from(u32::MAX)) as u32)
    }
}
