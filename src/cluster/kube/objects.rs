//! What the controller's reflectors hold at one instant: the input of a tick.

use crate::resource::{TrainingJob, TrainingQueue};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Node, Pod};
use std::sync::Arc;

#[derive(Clone, Debug, Default)]
pub struct ClusterObjects {
    pub nodes: Vec<Arc<Node>>,
    pub pods: Vec<Arc<Pod>>,
    pub hpas: Vec<Arc<HorizontalPodAutoscaler>>,
    pub jobs: Vec<Arc<TrainingJob>>,
    /// TrainingJobs that do not parse (see `job_store`).
    pub unreadable_jobs: Vec<super::job_store::UnreadableJob>,
    pub queues: Vec<Arc<TrainingQueue>>,
}
