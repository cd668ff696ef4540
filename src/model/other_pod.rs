//! Pods ebb does not manage: online services, system pods, and replicas an HPA wants.

use super::Resources;
use super::placement::Placement;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtherPod {
    pub namespace: String,
    pub name: String,
    /// The Deployment (or other owner) the pod belongs to, for reports.
    #[serde(default)]
    pub workload: Option<String>,
    pub resources: Resources,
    /// None: the pod is wanted but not placed (pending, or an HPA replica that does not
    /// exist yet). That demand comes before any trainer above its job's minimum.
    #[serde(default)]
    pub node: Option<String>,
    /// Where the pod may run (its node selector, affinity and tolerations): a pending
    /// pod is given room only on a node it may use.
    #[serde(default, skip_serializing_if = "Placement::is_unconstrained")]
    pub placement: Placement,
}

impl OtherPod {
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}
