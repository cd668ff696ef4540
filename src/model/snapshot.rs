//! Everything the planner sees of the world at one instant.

use super::{Job, Node, OtherPod, Queue};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Seconds on whatever clock the backend uses; only differences matter.
    pub time_s: f64,
    pub nodes: Vec<Node>,
    #[serde(default)]
    pub jobs: Vec<Job>,
    /// Queues named by jobs but absent here are refused; "default" always exists.
    #[serde(default)]
    pub queues: Vec<Queue>,
    #[serde(default)]
    pub other_pods: Vec<OtherPod>,
}
