//! Everything the planner sees of the world at one instant.

use super::{Job, Node, NodeGroup, OtherPod, Queue, Resources};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

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
    /// Groups an autoscaler can grow: the planner asks for their nodes when a gang
    /// cannot pack on the nodes there are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_groups: Vec<NodeGroup>,
}

impl Snapshot {
    /// Requests of everything bound to each node (job pods, terminating too, and other
    /// pods), in one pass.
    pub fn usage_by_node(&self) -> HashMap<&str, Resources> {
        let mut usage: HashMap<&str, Resources> = HashMap::new();
        for j in &self.jobs {
            for p in &j.pods {
                if let Some(node) = &p.node {
                    let u = usage.entry(node.as_str()).or_default();
                    *u = u.add(&j.resources_of(p.role));
                }
            }
        }
        for p in &self.other_pods {
            if let Some(node) = &p.node {
                let u = usage.entry(node.as_str()).or_default();
                *u = u.add(&p.resources);
            }
        }
        usage
    }
}
