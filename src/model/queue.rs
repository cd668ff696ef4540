//! A queue: the unit of quota that cluster operators tune.

use super::Resources;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    pub name: String,
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Capacity the queue gets before any other queue's fair share, when it asks.
    #[serde(default)]
    pub guaranteed: Resources,
    /// Hard cap on everything the queue's jobs hold; none means the whole cluster.
    #[serde(default)]
    pub limit: Option<Resources>,
    /// Parent queue for a tree of quotas; none means a top-level queue.
    #[serde(default)]
    pub parent: Option<String>,
}

fn default_weight() -> f64 {
    1.0
}

impl Queue {
    pub fn new(name: impl Into<String>) -> Self {
        Queue {
            name: name.into(),
            weight: 1.0,
            guaranteed: Resources::ZERO,
            limit: None,
            parent: None,
        }
    }
}
