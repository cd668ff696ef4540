//! Carries a tick's actions out against the API server: idempotent (a pod that already
//! exists or is already gone is success), retried with backoff on conflicts and server
//! errors, and never fatal: what fails is logged and re-decided next tick.

use super::actions::Action;
use crate::resource::TrainingJob;
use crate::resource::names::CONTROLLER_NAME;
use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use std::future::Future;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub struct Retry {
    pub attempts: u32,
    pub base: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 4,
            base: Duration::from_millis(200),
        }
    }
}

#[derive(Debug, Default, PartialEq)]
pub struct Report {
    pub succeeded: usize,
    /// One line per action that still failed after its retries.
    pub failed: Vec<String>,
    /// Indices of the actions not carried out (failed, or skipped as a consequence).
    pub not_done: Vec<usize>,
}

pub struct Executor {
    client: Client,
    recorder: Recorder,
    retry: Retry,
}

impl Executor {
    pub fn new(client: Client, instance: Option<String>, retry: Retry) -> Self {
        let reporter = Reporter {
            controller: CONTROLLER_NAME.into(),
            instance,
        };
        Executor {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            retry,
        }
    }

    pub async fn execute(&self, actions: &[Action]) -> Report {
        let mut report = Report::default();
        // A pod whose creation failed is not bound.
        let mut failed_pods: Vec<(String, String)> = Vec::new();
        for (i, action) in actions.iter().enumerate() {
            if let Action::Bind { namespace, pod, .. } = action
                && failed_pods.contains(&(namespace.clone(), pod.clone()))
            {
                report.not_done.push(i);
                continue;
            }
            match self.one(action).await {
                Ok(()) => report.succeeded += 1,
                Err(e) => {
                    tracing::warn!(action = describe(action), error = %e, "API call failed");
                    if let Action::CreatePod(pod) = action {
                        failed_pods.push((
                            pod.metadata.namespace.clone().unwrap_or_default(),
                            pod.metadata.name.clone().unwrap_or_default(),
                        ));
                    }
                    report.failed.push(format!("{}: {e}", describe(action)));
                    report.not_done.push(i);
                }
            }
        }
        report
    }

    async fn one(&self, action: &Action) -> Result<(), kube::Error> {
        let post = PostParams {
            field_manager: Some(CONTROLLER_NAME.into()),
            ..PostParams::default()
        };
        match action {
            Action::DeletePod {
                namespace,
                name,
                grace_s,
                ..
            } => {
                let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
                let params = DeleteParams {
                    grace_period_seconds: grace_s.and_then(|g| u32::try_from(g).ok()),
                    ..DeleteParams::default()
                };
                let result = self.retry(|| api.delete(name, &params)).await;
                tolerate(result.map(|_| ()), 404)
            }
            Action::CreateService(service) => {
                let ns = service.metadata.namespace.clone().unwrap_or_default();
                let api: Api<Service> = Api::namespaced(self.client.clone(), &ns);
                tolerate(
                    self.retry(|| api.create(&post, service)).await.map(|_| ()),
                    409,
                )
            }
            Action::CreatePod(pod) => {
                let ns = pod.metadata.namespace.clone().unwrap_or_default();
                let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
                tolerate(self.retry(|| api.create(&post, pod)).await.map(|_| ()), 409)
            }
            Action::Bind {
                namespace,
                pod,
                node,
            } => {
                let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
                let binding = Binding {
                    metadata: ObjectMeta {
                        name: Some(pod.clone()),
                        namespace: Some(namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    target: ObjectReference {
                        api_version: Some("v1".into()),
                        kind: Some("Node".into()),
                        name: Some(node.clone()),
                        ..ObjectReference::default()
                    },
                };
                self.retry(|| async {
                    api.create_subresource::<_, serde_json::Value>("binding", pod, &post, &binding)
                        .await
                })
                .await
                .map(|_| ())
            }
            Action::PatchStatus {
                namespace,
                job,
                status,
            } => {
                let api: Api<TrainingJob> = Api::namespaced(self.client.clone(), namespace);
                let patch = Patch::Merge(serde_json::json!({ "status": status }));
                let params = PatchParams {
                    field_manager: Some(CONTROLLER_NAME.into()),
                    ..PatchParams::default()
                };
                self.retry(|| api.patch_status(job, &params, &patch))
                    .await
                    .map(|_| ())
            }
            Action::Event {
                job,
                warning,
                reason,
                note,
            } => {
                let reference = ObjectReference {
                    api_version: Some(TrainingJob::api_version(&()).into_owned()),
                    kind: Some(TrainingJob::kind(&()).into_owned()),
                    name: Some(job.name.clone()),
                    namespace: Some(job.namespace.clone()),
                    ..ObjectReference::default()
                };
                let event = Event {
                    type_: if *warning {
                        EventType::Warning
                    } else {
                        EventType::Normal
                    },
                    reason: (*reason).into(),
                    note: Some(note.clone()),
                    action: "Reconcile".into(),
                    secondary: None,
                };
                self.retry(|| self.recorder.publish(&event, &reference))
                    .await
            }
        }
    }

    /// Retries conflicts, throttling, server errors and transport failures with doubling
    /// waits; anything else (a 4xx that retrying cannot fix) returns at once.
    async fn retry<T, F, Fut>(&self, mut call: F) -> Result<T, kube::Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let mut wait = self.retry.base;
        let mut attempt = 1;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(e) if attempt < self.retry.attempts && retryable(&e) => {
                    tracing::debug!(error = %e, attempt, "retrying API call");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn retryable(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => {
            (s.code == 409 && s.reason != "AlreadyExists") || s.code == 429 || s.code >= 500
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// `code` means the work is already done (created before, deleted before).
fn tolerate(result: Result<(), kube::Error>, code: u16) -> Result<(), kube::Error> {
    match result {
        Err(kube::Error::Api(s)) if s.code == code => Ok(()),
        other => other,
    }
}

pub fn describe(action: &Action) -> String {
    match action {
        Action::DeletePod {
            namespace,
            name,
            why,
            ..
        } => format!("delete pod {namespace}/{name} ({why})"),
        Action::CreateService(s) => format!(
            "create service {}/{}",
            s.metadata.namespace.as_deref().unwrap_or_default(),
            s.metadata.name.as_deref().unwrap_or_default()
        ),
        Action::CreatePod(p) => format!(
            "create pod {}/{}",
            p.metadata.namespace.as_deref().unwrap_or_default(),
            p.metadata.name.as_deref().unwrap_or_default()
        ),
        Action::Bind {
            namespace,
            pod,
            node,
        } => format!("bind {namespace}/{pod} to {node}"),
        Action::PatchStatus {
            namespace,
            job,
            status,
        } => {
            format!("status {namespace}/{job} -> {}", status.phase.as_str())
        }
        Action::Event { job, reason, .. } => format!("event {reason} on {job}"),
    }
}
