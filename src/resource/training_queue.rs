//! `TrainingQueue`: a cluster-scoped share of the cluster that TrainingJobs name.

use super::ResourceSpec;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "ebb.dev",
    version = "v1alpha1",
    kind = "TrainingQueue",
    shortname = "tq",
    category = "ebb",
    printcolumn = r#"{"name":"WEIGHT","type":"number","jsonPath":".spec.weight"}"#,
    printcolumn = r#"{"name":"PARENT","type":"string","jsonPath":".spec.parent"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TrainingQueueSpec {
    /// Share of the parent's capacity relative to sibling queues.
    #[serde(default = "default_weight")]
    #[schemars(range(min = 0.01, max = 1000.0))]
    pub weight: f64,
    /// Capacity this queue gets whenever its jobs ask for it; idle guarantee is lent out.
    #[serde(default)]
    pub guaranteed: ResourceSpec,
    /// Most this queue may use, borrowing included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<ResourceSpec>,
    /// Parent queue; a root queue when absent. Trees are at most 3 levels deep: jobs of
    /// a deeper queue wait with reason QueueTooDeep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub parent: Option<String>,
}

fn default_weight() -> f64 {
    1.0
}
