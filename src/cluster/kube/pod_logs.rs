//! `ebbctl logs` on Kubernetes: the `pods/log` subresource of a job's pod (GET
//! /api/v1/namespaces/NS/pods/POD/log with follow, previous and tailLines, as `kubectl
//! logs` sends them), as whole lines.

use super::control::status_of;
use crate::api::backend::{LogQuery, LogStream, first_pod};
use crate::api::proto::LogChunk;
use crate::resource::names::{LABEL_JOB, LABEL_ROLE, role_from_label};
use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use tonic::Status;

/// Lines per message: a follower sees each line at once, a tail comes in a few messages.
const LINES_PER_CHUNK: usize = 64;

pub async fn logs(client: kube::Client, query: LogQuery) -> Result<LogStream, Status> {
    let pods: Api<Pod> = Api::namespaced(client, &query.namespace);
    let pod = match &query.pod {
        Some(p) => p.clone(),
        None => {
            let listed = pods
                .list(&ListParams::default().labels(&format!("{LABEL_JOB}={}", query.job)))
                .await
                .map_err(status_of)?;
            let named = listed.items.iter().filter_map(|p| {
                let role = p.metadata.labels.as_ref()?.get(LABEL_ROLE)?;
                Some((p.metadata.name.as_deref()?, role_from_label(role)?))
            });
            first_pod(named, query.role).ok_or_else(|| {
                Status::failed_precondition(format!(
                    "job {}/{} has no {} pod yet: it is not admitted (see `ebbctl get {}`)",
                    query.namespace, query.job, query.role, query.job
                ))
            })?
        }
    };
    let params = LogParams {
        follow: query.follow && !query.previous,
        previous: query.previous,
        tail_lines: query.tail_lines.map(i64::from),
        ..LogParams::default()
    };
    let reader = pods.log_stream(&pod, &params).await.map_err(|e| match &e {
        // 400 is what the API server answers for a container that has not started
        // ("container ... is waiting to start") or has no previous run.
        kube::Error::Api(s) if s.code == 400 => {
            Status::failed_precondition(format!("pod {pod}: {}", s.message))
        }
        _ => status_of(e),
    })?;
    let lines = reader
        .lines()
        .map_err(|e| Status::unavailable(format!("reading the log: {e}")))
        .ready_chunks(LINES_PER_CHUNK)
        .map(move |batch| {
            let mut text = String::new();
            for line in batch {
                text.push_str(&line?);
                text.push('\n');
            }
            Ok(LogChunk {
                pod: pod.clone(),
                text,
            })
        });
    Ok(Box::pin(lines))
}
