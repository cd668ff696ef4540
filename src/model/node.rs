//! A node of the cluster as the planner sees it.

use super::Resources;
use super::placement::{NodeFacts, Taint};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    pub name: String,
    /// What pods may request on this node (Kubernetes `status.allocatable`).
    pub allocatable: Resources,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub gpu_model: Option<String>,
    #[serde(default)]
    pub topology: Topology,
    /// Cordoned nodes keep their pods but receive no new ones.
    #[serde(default)]
    pub unschedulable: bool,
    /// `spec.taints`: pods that do not tolerate a NoSchedule or NoExecute taint may not
    /// run here (see [`super::placement`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
    /// The node group (see [`super::NodeGroup`]) the node belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// Where the node sits: node -> NVLink group -> rack. Absent ids mean "alone at that
/// level": a node with no group is its own group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// NVLink domain spanning one or more nodes (e.g. an NVL72 rack, or the node itself).
    #[serde(default)]
    pub nvlink_group: Option<String>,
    #[serde(default)]
    pub rack: Option<String>,
}

impl Node {
    pub fn new(name: impl Into<String>, allocatable: Resources) -> Self {
        Node {
            name: name.into(),
            allocatable,
            labels: BTreeMap::new(),
            gpu_model: None,
            topology: Topology::default(),
            unschedulable: false,
            taints: Vec::new(),
            group: None,
        }
    }

    /// Declares the node's GPU model as NVIDIA GPU feature discovery would: also as the
    /// `nvidia.com/gpu.product` label, which jobs' `gpu_models` match.
    pub fn set_gpu_model(&mut self, model: &str) {
        self.gpu_model = Some(model.to_string());
        self.labels
            .insert(super::placement::GPU_PRODUCT_LABEL.into(), model.into());
    }

    /// What the placement filters look at.
    pub fn facts(&self) -> NodeFacts<'_> {
        NodeFacts {
            name: &self.name,
            labels: &self.labels,
            taints: &self.taints,
        }
    }

    pub fn has_gpus(&self) -> bool {
        self.allocatable.gpus > 0
    }
}
