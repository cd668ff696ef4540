//! Resource requests as users write them in a TrainingJob or TrainingQueue: Kubernetes
//! quantity strings for CPU and memory, a plain count for GPUs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A non-negative Kubernetes quantity ("500m", "2", "4Gi", "1e9"). The schema refuses the
/// rest; the controller parses it and bounds it (the schema cannot compare quantities).
pub const QUANTITY_PATTERN: &str = r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSpec {
    /// CPU as a Kubernetes quantity, e.g. "500m" or "2".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = QUANTITY_PATTERN), length(max = super::bounds::QUANTITY_LEN))]
    pub cpu: Option<String>,
    /// Memory as a Kubernetes quantity, e.g. "4Gi".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = QUANTITY_PATTERN), length(max = super::bounds::QUANTITY_LEN))]
    pub memory: Option<String>,
    /// Whole GPUs (`nvidia.com/gpu`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = super::bounds::GPUS))]
    pub gpus: Option<u32>,
}
