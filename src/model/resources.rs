//! A vector of the three resources ebb schedules: CPU, memory and GPUs.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Upper bounds that no real pod or node reaches. Anything above them is a typo or an
/// overflow attempt, and is refused rather than allowed to wrap sums.
pub const MAX_CPU_MILLI: i64 = 100_000_000; // 100,000 cores
pub const MAX_MEMORY_BYTES: i64 = 1 << 50; // 1 PiB
pub const MAX_GPUS: i64 = 4_096;

/// Requests or capacity. Signed so that a negative value from outside can be reported
/// as such instead of failing to parse with an unhelpful message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default)]
    pub cpu_milli: i64,
    #[serde(default)]
    pub memory_bytes: i64,
    #[serde(default)]
    pub gpus: i64,
}

/// Why a resource vector was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResourceError {
    #[error("{field}.{resource} is negative ({value})")]
    Negative {
        field: String,
        resource: &'static str,
        value: i64,
    },
    #[error("{field}.{resource} is absurdly large ({value} > {limit})")]
    TooLarge {
        field: String,
        resource: &'static str,
        value: i64,
        limit: i64,
    },
    #[error("{field} requests no resources at all; set cpu_milli, memory_bytes or gpus")]
    Empty { field: String },
}

impl Resources {
    pub const ZERO: Resources = Resources {
        cpu_milli: 0,
        memory_bytes: 0,
        gpus: 0,
    };
    pub const NAMES: [&'static str; 3] = ["cpu_milli", "memory_bytes", "gpus"];

    pub const fn new(cpu_milli: i64, memory_bytes: i64, gpus: i64) -> Self {
        Resources {
            cpu_milli,
            memory_bytes,
            gpus,
        }
    }

    pub fn cpu(cores: f64) -> Self {
        Resources::new((cores * 1000.0).round() as i64, 0, 0)
    }

    pub fn as_array(&self) -> [i64; 3] {
        [self.cpu_milli, self.memory_bytes, self.gpus]
    }

    pub fn from_array(a: [i64; 3]) -> Self {
        Resources::new(a[0], a[1], a[2])
    }

    pub fn as_f64(&self) -> [f64; 3] {
        self.as_array().map(|v| v as f64)
    }

    pub fn is_zero(&self) -> bool {
        self.as_array().iter().all(|&v| v == 0)
    }

    /// Saturating, so that a hostile snapshot cannot wrap a sum into a small number.
    pub fn add(&self, other: &Resources) -> Resources {
        Resources::new(
            self.cpu_milli.saturating_add(other.cpu_milli),
            self.memory_bytes.saturating_add(other.memory_bytes),
            self.gpus.saturating_add(other.gpus),
        )
    }

    pub fn sub(&self, other: &Resources) -> Resources {
        Resources::new(
            self.cpu_milli.saturating_sub(other.cpu_milli),
            self.memory_bytes.saturating_sub(other.memory_bytes),
            self.gpus.saturating_sub(other.gpus),
        )
    }

    pub fn times(&self, n: i64) -> Resources {
        Resources::new(
            self.cpu_milli.saturating_mul(n),
            self.memory_bytes.saturating_mul(n),
            self.gpus.saturating_mul(n),
        )
    }

    /// Component-wise max(0, self).
    pub fn clamp_non_negative(&self) -> Resources {
        Resources::from_array(self.as_array().map(|v| v.max(0)))
    }

    /// True when every requested component of `self` is at most the same component of
    /// `room`. As in Kubernetes, a resource that is not requested always fits, even where
    /// others over-committed it.
    pub fn fits_in(&self, room: &Resources) -> bool {
        self.as_array()
            .into_iter()
            .zip(room.as_array())
            .all(|(need, have)| need <= 0 || need <= have)
    }

    pub fn any_negative(&self) -> bool {
        self.as_array().iter().any(|&v| v < 0)
    }

    /// How many copies of `self` fit into `room` (u64::MAX when `self` is zero).
    pub fn copies_in(&self, room: &Resources) -> u64 {
        let mut n = u64::MAX;
        for (need, have) in self.as_array().into_iter().zip(room.as_array()) {
            if need > 0 {
                n = n.min((have.max(0) / need) as u64);
            }
        }
        n
    }

    /// The largest share this vector takes of `total` over the resources `total` has.
    pub fn dominant_share(&self, total: &Resources) -> f64 {
        self.as_array()
            .into_iter()
            .zip(total.as_array())
            .filter(|&(_, t)| t > 0)
            .map(|(v, t)| v as f64 / t as f64)
            .fold(0.0, f64::max)
    }

    /// Checks the bounds; `field` names where the vector came from in the error.
    pub fn validate(&self, field: &str, must_be_non_empty: bool) -> Result<(), ResourceError> {
        let limits = [MAX_CPU_MILLI, MAX_MEMORY_BYTES, MAX_GPUS];
        for ((value, limit), resource) in self.as_array().into_iter().zip(limits).zip(Self::NAMES) {
            if value < 0 {
                return Err(ResourceError::Negative {
                    field: field.to_string(),
                    resource,
                    value,
                });
            }
            if value > limit {
                return Err(ResourceError::TooLarge {
                    field: field.to_string(),
                    resource,
                    value,
                    limit,
                });
            }
        }
        if must_be_non_empty && self.is_zero() {
            return Err(ResourceError::Empty {
                field: field.to_string(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gib = self.memory_bytes as f64 / (1u64 << 30) as f64;
        write!(
            f,
            "cpu {}m, memory {:.1}Gi, gpus {}",
            self.cpu_milli, gib, self.gpus
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        let big = Resources::new(i64::MAX, 1, 1);
        assert_eq!(big.add(&big).cpu_milli, i64::MAX);
        assert_eq!(big.times(3).cpu_milli, i64::MAX);
    }

    #[test]
    fn fits_and_copies() {
        let room = Resources::new(4000, 8 << 30, 2);
        let pod = Resources::new(1000, 1 << 30, 1);
        assert!(pod.fits_in(&room));
        assert_eq!(pod.copies_in(&room), 2);
        assert_eq!(Resources::ZERO.copies_in(&room), u64::MAX);
        assert!(!Resources::new(1, 0, 3).fits_in(&room));
        // Not requesting GPUs fits a node whose GPUs others over-committed.
        assert!(
            pod.sub(&Resources::new(0, 0, 1))
                .fits_in(&Resources::new(4000, 8 << 30, -1))
        );
    }

    #[test]
    fn dominant_share_ignores_absent_resources() {
        let total = Resources::new(10_000, 100, 0);
        assert_eq!(Resources::new(1000, 50, 0).dominant_share(&total), 0.5);
    }

    #[test]
    fn validation_names_the_field() {
        let err = Resources::new(-5, 0, 0)
            .validate("trainers.resources", true)
            .unwrap_err();
        assert!(err.to_string().contains("trainers.resources.cpu_milli"));
        let err = Resources::new(0, 0, 100_000)
            .validate("master", false)
            .unwrap_err();
        assert!(matches!(
            err,
            ResourceError::TooLarge {
                resource: "gpus",
                ..
            }
        ));
        assert!(matches!(
            Resources::ZERO.validate("x", true),
            Err(ResourceError::Empty { .. })
        ));
    }
}
