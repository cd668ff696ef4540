//! `TrainingJob`: one elastic training job (a master, pservers, and trainers that ebb scales
//! between `min` and `max`).

use super::ResourceSpec;
use k8s_openapi::api::core::v1::{EnvVar, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A DNS-1123 label: queue names and the like.
pub const DNS_LABEL_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// The bounds of a TrainingJob's fields: written into the CRD's schema (the API server
/// enforces them) and checked by `spec::check_spec` everywhere else (ebbctl, the
/// control API, the controller, the planner), so that all of them agree.
pub mod bounds {
    pub const PRIORITY: i32 = 1000;
    pub const MIN_WEIGHT: f64 = 0.01;
    pub const MAX_WEIGHT: f64 = 1000.0;
    pub const IMAGE_LEN: usize = 512;
    pub const DATASET_LEN: usize = 4096;
    pub const PASSES: u32 = 100_000;
    pub const PSERVERS: u32 = 128;
    pub const TRAINERS: u32 = 10_000;
    pub const COMMAND_ITEMS: usize = 64;
    pub const ARGS: usize = 256;
    pub const ARG_LEN: usize = 4096;
    pub const ENV: usize = 256;
    pub const GPU_MODELS: usize = 16;
    pub const GPU_MODEL_LEN: usize = 63;
    pub const QUEUE_LEN: usize = 63;
    /// Whole GPUs one pod asks for.
    pub const GPUS: u32 = 64;
    /// Characters of a quantity (`cpu`, `memory`).
    pub const QUANTITY_LEN: usize = 32;
}

#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "ebb.dev",
    version = "v1alpha1",
    kind = "TrainingJob",
    namespaced,
    shortname = "tj",
    category = "ebb",
    status = "TrainingJobStatus",
    printcolumn = r#"{"name":"QUEUE","type":"string","jsonPath":".spec.queue"}"#,
    printcolumn = r#"{"name":"MIN","type":"integer","jsonPath":".spec.trainers.min"}"#,
    printcolumn = r#"{"name":"MAX","type":"integer","jsonPath":".spec.trainers.max"}"#,
    printcolumn = r#"{"name":"TRAINERS","type":"integer","jsonPath":".status.currentTrainers"}"#,
    printcolumn = r#"{"name":"PHASE","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TrainingJobSpec {
    /// TrainingQueue this job draws capacity from.
    #[serde(default = "default_queue")]
    #[schemars(regex(pattern = DNS_LABEL_PATTERN), length(min = 1, max = bounds::QUEUE_LEN))]
    pub queue: String,
    /// Higher goes first within a queue when capacity is short.
    #[serde(default)]
    #[schemars(range(min = -bounds::PRIORITY, max = bounds::PRIORITY))]
    pub priority: i32,
    /// Share relative to other jobs of the same queue.
    #[serde(default = "default_weight")]
    #[schemars(range(min = bounds::MIN_WEIGHT, max = bounds::MAX_WEIGHT))]
    pub weight: f64,
    /// Trainer container image.
    #[schemars(length(min = 1, max = bounds::IMAGE_LEN))]
    pub image: String,
    pub master: MasterSpec,
    pub pservers: PserverSpec,
    pub trainers: TrainerSpec,
    /// Dataset path or URL, given to the master and trainers as `EBB_DATA`.
    #[schemars(length(min = 1, max = bounds::DATASET_LEN))]
    pub dataset: String,
    /// Passes over the dataset before the job succeeds.
    #[serde(default = "default_passes")]
    #[schemars(range(min = 1, max = bounds::PASSES))]
    pub passes: u32,
    /// Pod template merged under every pod of the job (tolerations, volumes, service
    /// account, extra labels...); ebb's own fields win.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::preserve_unknown_object")]
    pub template: Option<PodTemplateSpec>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MasterSpec {
    pub resources: ResourceSpec,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PserverSpec {
    #[schemars(range(min = 1, max = bounds::PSERVERS))]
    pub replicas: u32,
    pub resources: ResourceSpec,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.min <= self.max",
    "message": "trainers.min must not exceed trainers.max",
    "fieldPath": ".min",
}]))]
pub struct TrainerSpec {
    /// Fewest trainers the job runs with; it is admitted only when this many fit.
    #[schemars(range(min = 1, max = bounds::TRAINERS))]
    pub min: u32,
    /// Most trainers the job can use.
    #[schemars(range(min = 1, max = bounds::TRAINERS))]
    pub max: u32,
    pub resources: ResourceSpec,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = bounds::COMMAND_ITEMS), inner(length(max = bounds::ARG_LEN)))]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = bounds::ARGS), inner(length(max = bounds::ARG_LEN)))]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = bounds::ENV))]
    pub env: Vec<EnvVar>,
    /// GPU models the trainers may run on, any of (e.g. `[H100, A100]`): a node's
    /// `nvidia.com/gpu.product` label (NVIDIA GPU feature discovery) or
    /// `ebb.dev/gpu.model` label (ebb's node agent) must be one of them. Empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = bounds::GPU_MODELS), inner(length(min = 1, max = bounds::GPU_MODEL_LEN)))]
    pub gpu_models: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum JobPhase {
    #[default]
    Pending,
    Running,
    Scaling,
    Succeeded,
    Failed,
}

impl JobPhase {
    pub fn is_finished(self) -> bool {
        matches!(self, JobPhase::Succeeded | JobPhase::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobPhase::Pending => "Pending",
            JobPhase::Running => "Running",
            JobPhase::Scaling => "Scaling",
            JobPhase::Succeeded => "Succeeded",
            JobPhase::Failed => "Failed",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrainingJobStatus {
    #[serde(default)]
    pub phase: JobPhase,
    /// Admitted, Running, Succeeded, Failed (Kubernetes condition conventions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Trainers running now.
    #[serde(default)]
    pub current_trainers: u32,
    /// Trainers the last plan gave the job.
    #[serde(default)]
    pub target_trainers: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<Time>,
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

fn default_queue() -> String {
    crate::model::default_queue()
}

fn default_weight() -> f64 {
    1.0
}

fn default_passes() -> u32 {
    1
}
