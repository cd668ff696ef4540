//! `ebb controller`: reflectors in, one plan per tick, API calls out; only the leader acts.

mod expectations;
mod http;
mod leader;
pub mod metrics;
mod reflect;

pub use leader::LeaseConfig;

use crate::cluster::kube::execute::{Executor, Retry};
use crate::cluster::kube::{RenderConfig, decide};
use crate::plan::Policy;
use crate::plan::file::SnapshotFile;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Client;
use metrics::Metrics;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub struct ControllerConfig {
    /// Longest wait between ticks.
    pub tick: Duration,
    /// Wait after a change before ticking, so a burst of events makes one tick.
    pub debounce: Duration,
    pub policy: Policy,
    pub render: RenderConfig,
    pub lease: Option<LeaseConfig>,
    pub http_addr: SocketAddr,
    pub retry: Retry,
    /// Name of this replica in Events (the pod name).
    pub instance: Option<String>,
    /// Write the snapshot of every tick that changed something here, for `ebb plan`.
    pub dump_snapshots: Option<PathBuf>,
    /// Serve the control API (ebbctl) here.
    pub control: Option<ControlConfig>,
}

pub struct ControlConfig {
    pub addr: SocketAddr,
    pub auth: crate::api::AuthConfig,
    pub tls: Option<crate::api::serve::TlsFiles>,
}

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("leader election: {0}")]
    Lease(#[from] kube_lease_manager::LeaseManagerError),
    #[error("serving {addr}")]
    Http {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("leader election stopped; exiting so the Deployment restarts this replica")]
    LeaseStopped,
    #[error("control API: {0}")]
    Control(#[from] crate::api::serve::ServeError),
    #[error("a watch stopped before its initial list")]
    WatchStopped,
}

pub async fn run(client: Client, config: ControllerConfig) -> Result<(), ControllerError> {
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .map_err(|source| ControllerError::Http {
            addr: config.http_addr,
            source,
        })?;
    let last_snapshot = http::LastSnapshot::default();
    let app = http::router(http::HttpState {
        metrics: metrics.clone(),
        ready: ready.clone(),
        last_snapshot: last_snapshot.clone(),
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });

    let changed = Arc::new(Notify::new());
    let stores = reflect::Stores::start(&client, changed.clone());
    if let Some(control) = config.control {
        serve_control(&client, &stores, last_snapshot.clone(), control).await?;
    }
    let mut leader = leader::leadership(&client, config.lease).await?;
    stores
        .wait_until_ready()
        .await
        .map_err(|_| ControllerError::WatchStopped)?;
    ready.store(true, Ordering::Relaxed);
    tracing::info!("initial lists loaded");

    let executor = Executor::new(client, config.instance, config.retry);
    let mut expectations = expectations::Expectations::default();
    let mut bad_queues_said = String::new();
    loop {
        tokio::select! {
            _ = changed.notified() => tokio::time::sleep(config.debounce).await,
            _ = tokio::time::sleep(config.tick) => {}
            lost = leader.changed() => {
                if lost.is_err() {
                    return Err(ControllerError::LeaseStopped);
                }
            }
        }
        let leading = *leader.borrow();
        metrics.set_leader(leading);
        if !leading {
            continue;
        }
        let started = Instant::now();
        let objects = stores.objects();
        if !expectations.settled(&objects, started) {
            tracing::debug!("waiting for the watch to show the last tick's writes");
            continue;
        }
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let mut tick = decide(&objects, &config.policy, &config.render, &now);
        for w in &tick.build.warnings {
            tracing::debug!(warning = %w, "snapshot");
        }
        // A queue the planner cannot use is said once per change, not every tick.
        let bad_queues: Vec<String> = tick
            .build
            .invalid_queues
            .iter()
            .map(|(q, e)| format!("{q}: {e}"))
            .collect();
        if bad_queues.join("; ") != bad_queues_said {
            bad_queues_said = bad_queues.join("; ");
            for q in &bad_queues {
                tracing::warn!(queue = %q, "TrainingQueue ignored");
            }
        }
        let report = executor.execute(&tick.actions).await;
        let not_done = report.not_done.iter().copied().collect();
        expectations.expect(&tick.actions, &not_done, Instant::now());
        let seconds = started.elapsed().as_secs_f64();
        metrics.record(&tick, seconds, report.failed.len());
        if !tick.actions.is_empty() {
            tracing::info!(
                actions = tick.actions.len(),
                failed = report.failed.len(),
                ms = seconds * 1e3,
                "tick applied"
            );
        }
        // The tick is done with its snapshot: it moves, it is not copied.
        let file = Arc::new(SnapshotFile::new(
            std::mem::take(&mut tick.build.snapshot),
            config.policy.clone(),
        ));
        if let (Some(dir), false) = (&config.dump_snapshots, tick.actions.is_empty()) {
            let (dir, file) = (dir.clone(), file.clone());
            tokio::task::spawn_blocking(move || dump(&dir, &file));
        }
        if let Ok(mut last) = last_snapshot.lock() {
            *last = Some(file);
        }
    }
}

/// A failed dump is logged, never fatal: the snapshot is a debugging aid.
fn dump(dir: &Path, file: &SnapshotFile) {
    let millis = (file.snapshot.time_s * 1000.0) as i64;
    let path = dir.join(format!("tick-{millis}.json"));
    if let Err(e) = std::fs::write(&path, file.to_json()) {
        tracing::warn!(path = %path.display(), error = %e, "could not dump the snapshot");
    }
}

/// Every replica serves ebbctl (reads come from its caches, writes go to the API
/// server), leader or not.
async fn serve_control(
    client: &Client,
    stores: &reflect::Stores,
    last_snapshot: http::LastSnapshot,
    control: ControlConfig,
) -> Result<(), ControllerError> {
    use crate::cluster::kube::control::KubeBackend;
    let listener = tokio::net::TcpListener::bind(control.addr)
        .await
        .map_err(|source| ControllerError::Http {
            addr: control.addr,
            source,
        })?;
    let backend = KubeBackend::new(
        client.clone(),
        stores.jobs(),
        stores.queues(),
        last_snapshot,
    );
    backend.spawn_event_feed(Duration::from_millis(500));
    backend.spawn_progress_poller(Duration::from_secs(3));
    let api = crate::api::Control::new(Arc::new(backend), control.auth);
    tokio::spawn(async move {
        let never = std::future::pending::<()>();
        if let Err(e) = crate::api::serve::serve(api, listener, control.tls, never).await {
            tracing::error!(error = ?e, "control API stopped");
        }
    });
    tracing::info!(addr = %control.addr, "control API listening");
    Ok(())
}
