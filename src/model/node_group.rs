//! A group of alike nodes that an autoscaler grows and shrinks (a Cluster Autoscaler
//! node group, a Karpenter NodePool, an EKS managed node group, a GKE node pool).

use super::Node;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeGroup {
    pub name: String,
    /// What one new node of the group looks like; its `name` is a prefix for the names
    /// of the nodes the planner pictures.
    pub template: Node,
    /// Nodes the autoscaler keeps at least and at most. The group's current size is
    /// the number of the snapshot's nodes that name it (`Node::group`).
    #[serde(default)]
    pub min: u32,
    pub max: u32,
    /// How long a requested node takes to join, in seconds.
    #[serde(default)]
    pub delay_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_per_node_hour: Option<f64>,
}

/// What is wrong with a node group (it is left out of scale-up requests).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NodeGroupError {
    #[error("name: must not be empty")]
    EmptyName,
    #[error("min: {min} is more than max ({max})")]
    MinAboveMax { min: u32, max: u32 },
    #[error("delay_s: {0} is not a non-negative number of seconds")]
    BadDelay(f64),
    #[error("price_per_node_hour: {0} is not a non-negative price")]
    BadPrice(f64),
    #[error("template.allocatable: {0}")]
    BadTemplate(String),
    #[error("template: a node with no CPU, memory or GPUs can hold no pod")]
    EmptyTemplate,
}

impl NodeGroup {
    pub fn check(&self) -> Result<(), NodeGroupError> {
        if self.name.is_empty() {
            return Err(NodeGroupError::EmptyName);
        }
        if self.min > self.max {
            return Err(NodeGroupError::MinAboveMax {
                min: self.min,
                max: self.max,
            });
        }
        if !(self.delay_s.is_finite() && self.delay_s >= 0.0) {
            return Err(NodeGroupError::BadDelay(self.delay_s));
        }
        if let Some(p) = self.price_per_node_hour
            && !(p.is_finite() && p >= 0.0)
        {
            return Err(NodeGroupError::BadPrice(p));
        }
        self.template
            .allocatable
            .validate("allocatable", false)
            .map_err(|e| NodeGroupError::BadTemplate(e.to_string()))?;
        if self.template.allocatable.is_zero() {
            return Err(NodeGroupError::EmptyTemplate);
        }
        Ok(())
    }

    /// The `i`th node the planner pictures in the group: the template, named after it
    /// and belonging to the group.
    pub fn pictured_node(&self, i: u32) -> Node {
        let mut n = self.template.clone();
        n.name = format!("{}-new-{i}", self.name);
        n.group = Some(self.name.clone());
        n.unschedulable = false;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Resources;

    fn group() -> NodeGroup {
        NodeGroup {
            name: "gpu-a100".into(),
            template: Node::new("a100", Resources::new(32_000, 256 << 30, 8)),
            min: 0,
            max: 4,
            delay_s: 300.0,
            price_per_node_hour: Some(32.0),
        }
    }

    #[test]
    fn a_sound_group_passes_and_each_defect_is_named() {
        assert_eq!(group().check(), Ok(()));
        type Spoil = fn(&mut NodeGroup);
        let cases: [(Spoil, &str); 5] = [
            (|g| g.name.clear(), "name"),
            (|g| g.min = 5, "min: 5 is more than max (4)"),
            (|g| g.delay_s = -1.0, "delay_s"),
            (
                |g| g.price_per_node_hour = Some(f64::NAN),
                "price_per_node_hour",
            ),
            (|g| g.template.allocatable = Resources::ZERO, "template"),
        ];
        for (spoil, field) in cases {
            let mut g = group();
            spoil(&mut g);
            let err = g.check().expect_err(field).to_string();
            assert!(err.starts_with(field), "{err}");
        }
    }

    #[test]
    fn pictured_nodes_are_the_template_named_for_the_group() {
        let g = group();
        let n = g.pictured_node(2);
        assert_eq!(n.name, "gpu-a100-new-2");
        assert_eq!(n.group.as_deref(), Some("gpu-a100"));
        assert_eq!(n.allocatable, g.template.allocatable);
    }
}
