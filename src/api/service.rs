//! The gRPC services: authenticate, authorize by namespace and role, validate, delegate.

use super::auth::{AuthConfig, Principal};
use super::backend::{ControlBackend, EventQuery, EventStream, LogQuery, LogStream};
use super::convert;
use super::proto::cluster_service_server::{ClusterService, ClusterServiceServer};
use super::proto::job_service_server::{JobService, JobServiceServer};
use super::proto::queue_service_server::{QueueService, QueueServiceServer};
use super::proto::*;
use super::selector::Selector;
use crate::model::Role;
use crate::resource::spec::check_trainer_range;
use futures::Stream;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tonic::{Request, Response, Status};

/// Requests above this size are refused before decoding.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

#[derive(Clone)]
pub struct Control {
    backend: Arc<dyn ControlBackend>,
    auth: Arc<AuthConfig>,
}

impl Control {
    pub fn new(backend: Arc<dyn ControlBackend>, auth: AuthConfig) -> Control {
        Control {
            backend,
            auth: Arc::new(auth),
        }
    }

    fn who<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        self.auth.authenticate(request.metadata())
    }

    pub fn job_server(&self) -> JobServiceServer<Control> {
        JobServiceServer::new(self.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn queue_server(&self) -> QueueServiceServer<Control> {
        QueueServiceServer::new(self.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn cluster_server(&self) -> ClusterServiceServer<Control> {
        ClusterServiceServer::new(self.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }
}

fn namespace_of(job: &Job) -> &str {
    job.spec.as_ref().map_or("", |s| s.namespace.as_str())
}

fn labels_of(job: &Job) -> &std::collections::BTreeMap<String, String> {
    static NONE: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    job.spec.as_ref().map_or(&NONE, |s| &s.labels)
}

fn name_of(job: &Job) -> &str {
    job.spec.as_ref().map_or("", |s| s.name.as_str())
}

fn job_ref(r: Option<&JobRef>) -> Result<(String, String), Status> {
    let r = r.ok_or_else(|| Status::invalid_argument("job: missing"))?;
    let namespace = if r.namespace.is_empty() {
        "default".to_string()
    } else {
        r.namespace.clone()
    };
    convert::check_name("job.namespace", &namespace)?;
    convert::check_name("job.name", &r.name)?;
    Ok((namespace, r.name.clone()))
}

type JobEventStream = Pin<Box<dyn Stream<Item = Result<JobEvent, Status>> + Send>>;

#[tonic::async_trait]
impl JobService for Control {
    async fn submit(&self, request: Request<SubmitRequest>) -> Result<Response<Job>, Status> {
        let who = self.who(&request)?;
        let spec = request
            .into_inner()
            .spec
            .ok_or_else(|| Status::invalid_argument("spec: missing"))?;
        let tj = convert::training_job(&spec)?;
        who.check_namespace(tj.metadata.namespace.as_deref().unwrap_or_default())?;
        tracing::info!(user = %who.name, job = tj.metadata.name.as_deref().unwrap_or_default(), "submit");
        self.backend.submit(tj).await.map(Response::new)
    }

    async fn get(&self, request: Request<JobRef>) -> Result<Response<Job>, Status> {
        let who = self.who(&request)?;
        let (namespace, name) = job_ref(Some(request.get_ref()))?;
        who.check_namespace(&namespace)?;
        self.backend.get(&namespace, &name).await.map(Response::new)
    }

    async fn list(&self, request: Request<ListJobsRequest>) -> Result<Response<JobList>, Status> {
        let who = self.who(&request)?;
        let r = request.into_inner();
        let namespace = r.namespace;
        if !namespace.is_empty() {
            who.check_namespace(&namespace)?;
        }
        let selector = Selector::parse(&r.label_selector).map_err(Status::invalid_argument)?;
        let jobs = self
            .backend
            .list()
            .await?
            .into_iter()
            .filter(|j| who.sees(namespace_of(j)))
            .filter(|j| namespace.is_empty() || namespace_of(j) == namespace)
            .filter(|j| selector.matches(labels_of(j)))
            .collect();
        Ok(Response::new(JobList { jobs }))
    }

    async fn scale(&self, request: Request<ScaleRequest>) -> Result<Response<Job>, Status> {
        let who = self.who(&request)?;
        let r = request.into_inner();
        let (namespace, name) = job_ref(r.job.as_ref())?;
        who.check_namespace(&namespace)?;
        if r.min_trainers.is_none() && r.max_trainers.is_none() {
            return Err(Status::invalid_argument(
                "scale: give min_trainers, max_trainers or both",
            ));
        }
        if let (Some(min), Some(max)) = (r.min_trainers, r.max_trainers) {
            check_trainer_range(min, max).map_err(|e| Status::invalid_argument(e.to_string()))?;
        }
        if r.max_trainers.is_some_and(|m| m > 10_000) {
            return Err(Status::invalid_argument("spec.trainers.max: at most 10000"));
        }
        if r.min_trainers == Some(0) {
            return Err(Status::invalid_argument("spec.trainers.min: at least 1"));
        }
        self.backend
            .scale(&namespace, &name, r.min_trainers, r.max_trainers)
            .await
            .map(Response::new)
    }

    async fn delete(&self, request: Request<JobRef>) -> Result<Response<DeleteReply>, Status> {
        let who = self.who(&request)?;
        let (namespace, name) = job_ref(Some(request.get_ref()))?;
        who.check_namespace(&namespace)?;
        self.backend.delete(&namespace, &name).await?;
        Ok(Response::new(DeleteReply {}))
    }

    type WatchStream = JobEventStream;

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let who = self.who(&request)?;
        let r = request.into_inner();
        if !r.namespace.is_empty() {
            who.check_namespace(&r.namespace)?;
        }
        let asked = format!(
            "{}/{}",
            if r.namespace.is_empty() {
                "default"
            } else {
                &r.namespace
            },
            r.name
        );
        let named = !r.name.is_empty();
        let selector = Selector::parse(&r.label_selector).map_err(Status::invalid_argument)?;
        let wanted = move |job: &Job| {
            who.sees(namespace_of(job))
                && (r.namespace.is_empty() || namespace_of(job) == r.namespace)
                && (r.name.is_empty() || name_of(job) == r.name)
                // A deleted job's event carries no labels: it passes, so a watcher
                // selecting on labels still hears that the job went.
                && (job.status.is_none() || selector.matches(labels_of(job)))
        };
        // Subscribe before listing so no change falls between the two.
        let mut events = self.backend.subscribe();
        let current: Vec<Job> = self.backend.list().await?;
        if named && !current.iter().any(&wanted) {
            return Err(Status::not_found(format!("job {asked} does not exist")));
        }
        let stream = async_stream(move |tx| async move {
            for job in current.into_iter().filter(|j| wanted(j)) {
                let added = JobEvent {
                    r#type: "ADDED".into(),
                    job: Some(job),
                };
                if tx.send(Ok(added)).await.is_err() {
                    return;
                }
            }
            loop {
                match events.recv().await {
                    Ok(e) if e.job.as_ref().is_some_and(&wanted) => {
                        if tx.send(Ok(e)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "a watcher fell behind");
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(stream))
    }

    type LogsStream = LogStream;

    async fn logs(&self, request: Request<LogsRequest>) -> Result<Response<LogStream>, Status> {
        let who = self.who(&request)?;
        let r = request.into_inner();
        let (namespace, job) = job_ref(r.job.as_ref())?;
        who.check_namespace(&namespace)?;
        let role = match r.role.as_str() {
            "" | "master" => Role::Master,
            "pserver" => Role::Pserver,
            "trainer" => Role::Trainer,
            other => {
                return Err(Status::invalid_argument(format!(
                    "role: {other:?} is none of master, pserver, trainer"
                )));
            }
        };
        if !r.pod.is_empty() {
            convert::check_name("pod", &r.pod)?;
        }
        let query = LogQuery {
            namespace,
            job,
            pod: (!r.pod.is_empty()).then_some(r.pod),
            role,
            follow: r.follow,
            previous: r.previous,
            tail_lines: (r.tail_lines > 0).then_some(r.tail_lines),
        };
        self.backend.logs(query).await.map(Response::new)
    }

    type EventsStream = EventStream;

    async fn events(
        &self,
        request: Request<EventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let who = self.who(&request)?;
        let r = request.into_inner();
        if !r.namespace.is_empty() {
            convert::check_name("namespace", &r.namespace)?;
            who.check_namespace(&r.namespace)?;
        }
        if !r.name.is_empty() {
            convert::check_name("name", &r.name)?;
        }
        let namespace = match (r.namespace.is_empty(), r.name.is_empty()) {
            // A job's Events without a namespace: the default one, as everywhere else.
            (true, false) => Some("default".to_string()),
            (true, true) => None,
            (false, _) => Some(r.namespace),
        };
        if let (Some(ns), false) = (&namespace, r.name.is_empty()) {
            // NOT_FOUND for a job that does not exist, like `get`.
            self.backend.get(ns, &r.name).await?;
        }
        let query = EventQuery {
            namespace,
            job: (!r.name.is_empty()).then_some(r.name),
            watch: r.watch,
        };
        let events = self.backend.events(query).await?;
        // A backend may hold other namespaces' Events: only those the caller may see.
        use futures::StreamExt;
        let visible = events.filter(move |e| {
            let keep = e.as_ref().map_or(true, |e| who.sees(&e.namespace));
            async move { keep }
        });
        Ok(Response::new(Box::pin(visible)))
    }
}

/// A stream fed by a task, ended when the client goes away.
fn async_stream<F, Fut>(body: F) -> JobEventStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<JobEvent, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(body(tx));
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

#[tonic::async_trait]
impl QueueService for Control {
    async fn set(&self, request: Request<QueuePatch>) -> Result<Response<Queue>, Status> {
        let who = self.who(&request)?;
        who.check_operator()?;
        let patch = request.into_inner();
        convert::check_name("name", &patch.name)?;
        let queues: Vec<Queue> = self
            .backend
            .queues()
            .await?
            .iter()
            .map(convert::queue_proto)
            .collect();
        let merged = convert::patched_queue(&queues, &patch)?;
        let tq = convert::training_queue(&merged)?;
        let stored = self.backend.set_queue(tq).await?;
        Ok(Response::new(convert::queue_proto(&stored)))
    }

    async fn delete(&self, request: Request<QueueRef>) -> Result<Response<DeleteReply>, Status> {
        let who = self.who(&request)?;
        who.check_operator()?;
        let name = &request.get_ref().name;
        convert::check_name("name", name)?;
        self.backend.delete_queue(name).await?;
        Ok(Response::new(DeleteReply {}))
    }

    async fn get(&self, request: Request<QueueRef>) -> Result<Response<Queue>, Status> {
        self.who(&request)?;
        let name = &request.get_ref().name;
        self.backend
            .queues()
            .await?
            .iter()
            .find(|q| q.metadata.name.as_deref() == Some(name))
            .map(|q| Response::new(convert::queue_proto(q)))
            .ok_or_else(|| Status::not_found(format!("queue {name:?}")))
    }

    async fn list(
        &self,
        request: Request<ListQueuesRequest>,
    ) -> Result<Response<QueueList>, Status> {
        self.who(&request)?;
        let queues = self.backend.queues().await?;
        Ok(Response::new(QueueList {
            queues: queues.iter().map(convert::queue_proto).collect(),
        }))
    }
}

#[tonic::async_trait]
impl ClusterService for Control {
    async fn state(
        &self,
        request: Request<ClusterStateRequest>,
    ) -> Result<Response<ClusterState>, Status> {
        let who = self.who(&request)?;
        let mut state = self.backend.cluster_state().await?;
        // Trainer counts of other namespaces' jobs are not a user's business.
        state
            .trainers
            .retain(|job, _| who.sees(job.split('/').next().unwrap_or_default()));
        Ok(Response::new(state))
    }
}
