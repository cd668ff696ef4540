//! The control API on Kubernetes: jobs and queues are the TrainingJob and TrainingQueue
//! objects themselves, so `kubectl` and `ebbctl` see the same thing.

use super::job_store::{JobStore, read};
use crate::api::ControlBackend;
use crate::api::backend::{EventQuery, EventStream, LogQuery, LogStream, refuse_queue_delete};
use crate::api::cluster_state::from_snapshot;
use crate::api::convert::{job_spec, job_status};
use crate::api::proto::{ClusterState, Job, JobEvent};
use crate::plan::file::SnapshotFile;
use crate::resource::names::{LABEL_JOB, LABEL_ROLE};
use crate::resource::{TrainingJob, TrainingQueue};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tonic::Status;

use super::progress::{ProgressBook, lookup, poll};
use crate::resource::names::CONTROLLER_NAME;
use crate::resource::names::master_address;

#[derive(Clone)]
pub struct KubeBackend {
    client: kube::Client,
    jobs: JobStore,
    queues: Store<TrainingQueue>,
    last_snapshot: Arc<Mutex<Option<Arc<SnapshotFile>>>>,
    events: broadcast::Sender<JobEvent>,
    progress: ProgressBook,
}

pub fn job_message(tj: &TrainingJob, book: &ProgressBook) -> Job {
    let mut status = job_status(tj);
    status.progress = lookup(
        book,
        tj.metadata.namespace.as_deref().unwrap_or_default(),
        tj.metadata.name.as_deref().unwrap_or_default(),
    );
    Job {
        spec: Some(job_spec(tj)),
        status: Some(status),
    }
}

/// A pod of the job as `ebbctl get` shows it: phase (Terminating once deleted, as kubectl
/// shows it), node, and its container's restarts.
pub fn pod_status(pod: &Pod) -> Option<crate::api::proto::PodStatus> {
    let status = pod.status.as_ref();
    let phase = if pod.metadata.deletion_timestamp.is_some() {
        "Terminating".to_string()
    } else {
        status
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Pending".into())
    };
    Some(crate::api::proto::PodStatus {
        name: pod.metadata.name.clone()?,
        role: pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_ROLE))
            .cloned()
            .unwrap_or_default(),
        node: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
        phase,
        restarts: status
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
            .map_or(0, |c| u32::try_from(c.restart_count).unwrap_or(0)),
    })
}

/// Kubernetes' answer as a gRPC status with the same meaning.
pub fn status_of(e: kube::Error) -> Status {
    match &e {
        kube::Error::Api(s) => match s.code {
            404 => Status::not_found(s.message.clone()),
            409 => Status::already_exists(s.message.clone()),
            400 | 422 => Status::invalid_argument(s.message.clone()),
            401 => Status::unauthenticated(s.message.clone()),
            403 => Status::permission_denied(s.message.clone()),
            _ => Status::unavailable(s.message.clone()),
        },
        _ => Status::unavailable(e.to_string()),
    }
}

impl KubeBackend {
    pub fn new(
        client: kube::Client,
        jobs: JobStore,
        queues: Store<TrainingQueue>,
        last_snapshot: Arc<Mutex<Option<Arc<SnapshotFile>>>>,
    ) -> Self {
        let (events, _) = broadcast::channel(1024);
        KubeBackend {
            client,
            jobs,
            queues,
            last_snapshot,
            events,
            progress: ProgressBook::default(),
        }
    }

    /// Polls masters for progress (every `every`).
    pub fn spawn_progress_poller(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(poll(
            self.progress.clone(),
            self.jobs.clone(),
            every,
            master_address,
        ))
    }

    /// Turns changes of the TrainingJob store, and of progress, into watch events
    /// (checked every `every`).
    pub fn spawn_event_feed(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let (store, events, book) = (
            self.jobs.clone(),
            self.events.clone(),
            self.progress.clone(),
        );
        tokio::spawn(async move {
            let mut seen: HashMap<(String, String), String> = HashMap::new();
            loop {
                let mut now = HashMap::new();
                // Versions are compared on the raw objects: a job is parsed and
                // converted only when it changed.
                for raw in store.0.state() {
                    let key = (
                        raw.metadata.namespace.clone().unwrap_or_default(),
                        raw.metadata.name.clone().unwrap_or_default(),
                    );
                    let progress = lookup(&book, &key.0, &key.1);
                    let version = format!(
                        "{}/{:?}",
                        raw.metadata.resource_version.as_deref().unwrap_or_default(),
                        progress.map(|p| (p.current_pass, p.chunks_done, p.finished))
                    );
                    let kind = match seen.get(&key) {
                        None => Some("ADDED"),
                        Some(v) if *v != version => Some("MODIFIED"),
                        Some(_) => None,
                    };
                    now.insert(key, version);
                    let Some(kind) = kind else { continue };
                    for tj in read(std::slice::from_ref(&raw)).0 {
                        let _ = events.send(JobEvent {
                            r#type: kind.into(),
                            job: Some(job_message(&tj, &book)),
                        });
                    }
                }
                for (namespace, name) in seen.keys().filter(|k| !now.contains_key(*k)) {
                    let gone = crate::api::proto::JobSpec {
                        namespace: namespace.clone(),
                        name: name.clone(),
                        ..Default::default()
                    };
                    let _ = events.send(JobEvent {
                        r#type: "DELETED".into(),
                        job: Some(Job {
                            spec: Some(gone),
                            status: None,
                        }),
                    });
                }
                seen = now;
                tokio::time::sleep(every).await;
            }
        })
    }

    fn api(&self, namespace: &str) -> Api<TrainingJob> {
        Api::namespaced(self.client.clone(), namespace)
    }
}

fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(CONTROLLER_NAME.into()),
        ..PatchParams::default()
    }
}

#[tonic::async_trait]
impl ControlBackend for KubeBackend {
    async fn submit(&self, job: TrainingJob) -> Result<Job, Status> {
        let namespace = job.metadata.namespace.clone().unwrap_or_default();
        let post = PostParams {
            field_manager: Some(CONTROLLER_NAME.into()),
            ..PostParams::default()
        };
        let created = self
            .api(&namespace)
            .create(&post, &job)
            .await
            .map_err(status_of)?;
        Ok(job_message(&created, &self.progress))
    }

    async fn get(&self, namespace: &str, name: &str) -> Result<Job, Status> {
        let tj = self.api(namespace).get(name).await.map_err(status_of)?;
        let mut job = job_message(&tj, &self.progress);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let listed = pods
            .list(&ListParams::default().labels(&format!("{LABEL_JOB}={name}")))
            .await
            .map_err(status_of)?;
        if let Some(status) = &mut job.status {
            status.pod_statuses = listed.items.iter().filter_map(pod_status).collect();
        }
        Ok(job)
    }

    async fn list(&self) -> Result<Vec<Job>, Status> {
        Ok(self
            .jobs
            .state()
            .iter()
            .map(|j| job_message(j, &self.progress))
            .collect())
    }

    async fn scale(
        &self,
        namespace: &str,
        name: &str,
        min: Option<u32>,
        max: Option<u32>,
    ) -> Result<Job, Status> {
        // Only the bounds given: a merge patch leaves the other as it is, and the CRD's
        // CEL rule refuses a result with min > max.
        let mut trainers = serde_json::Map::new();
        if let Some(min) = min {
            trainers.insert("min".into(), min.into());
        }
        if let Some(max) = max {
            trainers.insert("max".into(), max.into());
        }
        let patch = serde_json::json!({"spec": {"trainers": trainers}});
        let tj = self
            .api(namespace)
            .patch(name, &params(), &Patch::Merge(&patch))
            .await
            .map_err(status_of)?;
        Ok(job_message(&tj, &self.progress))
    }

    async fn delete(&self, namespace: &str, name: &str) -> Result<(), Status> {
        self.api(namespace)
            .delete(name, &DeleteParams::background())
            .await
            .map_err(status_of)?;
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.events.subscribe()
    }

    async fn set_queue(&self, queue: TrainingQueue) -> Result<TrainingQueue, Status> {
        let api: Api<TrainingQueue> = Api::all(self.client.clone());
        let name = queue.metadata.name.clone().unwrap_or_default();
        let mut body = serde_json::to_value(&queue).map_err(|e| Status::internal(e.to_string()))?;
        body["apiVersion"] = "ebb.dev/v1alpha1".into();
        body["kind"] = "TrainingQueue".into();
        let apply = PatchParams::apply(CONTROLLER_NAME).force();
        api.patch(&name, &apply, &Patch::Apply(&body))
            .await
            .map_err(status_of)
    }

    async fn queues(&self) -> Result<Vec<TrainingQueue>, Status> {
        Ok(self.queues.state().iter().map(|q| (**q).clone()).collect())
    }

    async fn delete_queue(&self, name: &str) -> Result<(), Status> {
        let queues = self.queues.state();
        let children: Vec<&str> = queues
            .iter()
            .filter(|q| q.spec.parent.as_deref() == Some(name))
            .filter_map(|q| q.metadata.name.as_deref())
            .collect();
        let users: Vec<String> = self
            .jobs
            .state()
            .iter()
            .filter(|j| {
                j.spec.queue == name && !j.status.as_ref().is_some_and(|s| s.phase.is_finished())
            })
            .map(|j| {
                format!(
                    "{}/{}",
                    j.metadata.namespace.as_deref().unwrap_or_default(),
                    j.metadata.name.as_deref().unwrap_or_default()
                )
            })
            .collect();
        refuse_queue_delete(name, &children, &users)?;
        let api: Api<TrainingQueue> = Api::all(self.client.clone());
        api.delete(name, &DeleteParams::default())
            .await
            .map_err(status_of)?;
        Ok(())
    }

    async fn logs(&self, query: LogQuery) -> Result<LogStream, Status> {
        // NOT_FOUND for a job that does not exist, as on every other call.
        self.api(&query.namespace)
            .get(&query.job)
            .await
            .map_err(status_of)?;
        super::pod_logs::logs(self.client.clone(), query).await
    }

    async fn events(&self, query: EventQuery) -> Result<EventStream, Status> {
        super::job_events::events(self.client.clone(), query).await
    }

    async fn cluster_state(&self) -> Result<ClusterState, Status> {
        let last = self.last_snapshot.lock().ok().and_then(|s| s.clone());
        match last {
            Some(file) => Ok(from_snapshot(&file.snapshot)),
            None => Err(Status::unavailable("the controller has not planned yet")),
        }
    }
}
