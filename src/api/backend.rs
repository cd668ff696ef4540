//! What serves the control API: the embedded cluster of `ebb up`, or the Kubernetes API
//! behind `ebb controller`. Requests arrive authenticated and validated.

use super::proto::{ClusterState, Job, JobEvent};
use crate::crd::{TrainingJob, TrainingQueue};
use tokio::sync::broadcast;
use tonic::Status;

#[tonic::async_trait]
pub trait ControlBackend: Send + Sync + 'static {
    /// ALREADY_EXISTS when the name is taken.
    async fn submit(&self, job: TrainingJob) -> Result<Job, Status>;
    async fn get(&self, namespace: &str, name: &str) -> Result<Job, Status>;
    async fn list(&self) -> Result<Vec<Job>, Status>;
    async fn scale(&self, namespace: &str, name: &str, min: u32, max: u32) -> Result<Job, Status>;
    async fn delete(&self, namespace: &str, name: &str) -> Result<(), Status>;
    /// Every job change from now on.
    fn subscribe(&self) -> broadcast::Receiver<JobEvent>;
    async fn set_queue(&self, queue: TrainingQueue) -> Result<TrainingQueue, Status>;
    async fn queues(&self) -> Result<Vec<TrainingQueue>, Status>;
    async fn cluster_state(&self) -> Result<ClusterState, Status>;
}
