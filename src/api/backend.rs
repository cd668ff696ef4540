//! What serves the control API: the embedded cluster of `ebb up`, or the Kubernetes API
//! behind `ebb controller`. Requests arrive authenticated and validated.

use super::proto::{ClusterState, Event, Job, JobEvent, LogChunk};
use crate::model::Role;
use crate::resource::{TrainingJob, TrainingQueue};
use futures::Stream;
use std::pin::Pin;
use tokio::sync::broadcast;
use tonic::Status;

pub type LogStream = Pin<Box<dyn Stream<Item = Result<LogChunk, Status>> + Send>>;
pub type EventStream = Pin<Box<dyn Stream<Item = Result<Event, Status>> + Send>>;

/// Which log a caller asked for, checked: the job exists in the caller's namespace.
#[derive(Clone, Debug, PartialEq)]
pub struct LogQuery {
    pub namespace: String,
    pub job: String,
    /// A pod of the job; `None`: the pod of `role` with the lowest ordinal.
    pub pod: Option<String>,
    pub role: Role,
    pub follow: bool,
    pub previous: bool,
    /// Lines from the end; `None`: the whole log.
    pub tail_lines: Option<u32>,
}

/// Which Events a caller asked for: a job's, a namespace's, or every one it may see
/// (the service filters by namespace; a backend may return more).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventQuery {
    pub namespace: Option<String>,
    pub job: Option<String>,
    pub watch: bool,
}

impl EventQuery {
    pub fn wants(&self, e: &Event) -> bool {
        self.namespace.as_ref().is_none_or(|n| *n == e.namespace)
            && self.job.as_ref().is_none_or(|j| *j == e.job)
    }
}

#[tonic::async_trait]
pub trait ControlBackend: Send + Sync + 'static {
    /// ALREADY_EXISTS when the name is taken.
    async fn submit(&self, job: TrainingJob) -> Result<Job, Status>;
    async fn get(&self, namespace: &str, name: &str) -> Result<Job, Status>;
    async fn list(&self) -> Result<Vec<Job>, Status>;
    /// `None` keeps that bound; the resulting range is checked by the backend.
    async fn scale(
        &self,
        namespace: &str,
        name: &str,
        min: Option<u32>,
        max: Option<u32>,
    ) -> Result<Job, Status>;
    async fn delete(&self, namespace: &str, name: &str) -> Result<(), Status>;
    /// Every job change from now on.
    fn subscribe(&self) -> broadcast::Receiver<JobEvent>;
    async fn set_queue(&self, queue: TrainingQueue) -> Result<TrainingQueue, Status>;
    async fn queues(&self) -> Result<Vec<TrainingQueue>, Status>;
    /// FAILED_PRECONDITION while a queue names it as parent or a job uses it.
    async fn delete_queue(&self, name: &str) -> Result<(), Status>;
    async fn cluster_state(&self) -> Result<ClusterState, Status>;
    /// NOT_FOUND for a job or pod that does not exist; FAILED_PRECONDITION for a pod
    /// that has not started (no log yet).
    async fn logs(&self, query: LogQuery) -> Result<LogStream, Status>;
    /// The Events recorded so far, oldest first, then (with `watch`) each new one.
    async fn events(&self, query: EventQuery) -> Result<EventStream, Status>;
}

/// The pod `ebbctl logs JOB` means without a pod: the one of `role` with the lowest
/// ordinal (`first-master-0`, the oldest trainer).
pub fn first_pod<'a>(pods: impl Iterator<Item = (&'a str, Role)>, role: Role) -> Option<String> {
    pods.filter(|(_, r)| *r == role)
        .min_by_key(|(name, _)| (crate::resource::names::ordinal(name), name.to_string()))
        .map(|(name, _)| name.to_string())
}

/// A queue still in use is not deleted: its child queues would lose their parent and its
/// jobs their quota (they would sit `UnknownQueue`).
pub fn refuse_queue_delete(name: &str, children: &[&str], jobs: &[String]) -> Result<(), Status> {
    if !children.is_empty() {
        return Err(Status::failed_precondition(format!(
            "queue {name:?} is the parent of {}: move or delete them first",
            children.join(", ")
        )));
    }
    if !jobs.is_empty() {
        return Err(Status::failed_precondition(format!(
            "queue {name:?} is used by jobs {}: delete them or wait until they finish",
            jobs.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_pod_of_a_role_is_the_lowest_ordinal() {
        let pods = [
            ("j-trainer-10", Role::Trainer),
            ("j-trainer-2", Role::Trainer),
            ("j-master-0", Role::Master),
        ];
        assert_eq!(
            first_pod(pods.iter().copied(), Role::Trainer).as_deref(),
            Some("j-trainer-2")
        );
        assert_eq!(
            first_pod(pods.iter().copied(), Role::Master).as_deref(),
            Some("j-master-0")
        );
        assert_eq!(first_pod(pods.iter().copied(), Role::Pserver), None);
    }

    #[test]
    fn a_queue_in_use_is_refused_by_name() {
        assert!(refuse_queue_delete("q", &[], &[]).is_ok());
        let e = refuse_queue_delete("q", &["child"], &[]).unwrap_err();
        assert!(e.message().contains("parent of child"), "{}", e.message());
        let e = refuse_queue_delete("q", &[], &["default/j".into()]).unwrap_err();
        assert_eq!(e.code(), tonic::Code::FailedPrecondition);
        assert!(e.message().contains("default/j"));
    }
}
