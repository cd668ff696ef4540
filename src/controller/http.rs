//! `/metrics`, `/healthz` and `/readyz` for Prometheus and the kubelet's probes.

use super::metrics::Metrics;
use crate::plan::file::SnapshotFile;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct HttpState {
    pub metrics: Arc<Metrics>,
    /// Set once every reflector has its initial list.
    pub ready: Arc<AtomicBool>,
    /// The last tick's input, for `ebb plan` to replay.
    pub last_snapshot: LastSnapshot,
}

pub type LastSnapshot = Arc<Mutex<Option<Arc<SnapshotFile>>>>;

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/debug/snapshot", get(snapshot))
        .with_state(state)
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

async fn ready(State(state): State<HttpState>) -> impl IntoResponse {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the initial lists",
        )
    }
}

/// The snapshot the last tick planned, in `ebb plan`'s file format.
async fn snapshot(State(state): State<HttpState>) -> impl IntoResponse {
    let last = state.last_snapshot.lock().ok().and_then(|s| s.clone());
    match last {
        Some(file) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            file.to_json(),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain")],
            "no tick has run yet".to_string(),
        ),
    }
}
