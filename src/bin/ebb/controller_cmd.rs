//! `ebb controller` (the in-cluster scheduler) and `ebb crds` (the CRDs it serves).

use anyhow::{Context, Result};
use clap::Args;
use ebb::api::AuthConfig;
use ebb::api::serve::TlsFiles;
use ebb::cluster::kube::RenderConfig;
use ebb::cluster::kube::execute::Retry;
use ebb::controller::{ControlConfig, ControllerConfig, LeaseConfig};
use ebb::plan::Policy;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
pub struct ControllerArgs {
    /// Longest time between two plans.
    #[arg(long, default_value_t = 5.0)]
    tick_s: f64,
    /// After a change in the cluster, plan this much later (one tick per burst).
    #[arg(long, default_value_t = 500)]
    debounce_ms: u64,
    /// Image whose `ebb` binary runs each job's master and pservers.
    #[arg(long, env = "EBB_RUNTIME_IMAGE", default_value = concat!("ghcr.io/ebb-dev/ebb:", env!("CARGO_PKG_VERSION")))]
    runtime_image: String,
    /// Serves /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    http_addr: SocketAddr,
    /// Act without a Lease (exactly one replica must run).
    #[arg(long)]
    no_leader_election: bool,
    /// The coordination.k8s.io Lease the replicas compete for.
    #[arg(long, default_value = "ebb-controller")]
    lease_name: String,
    /// Namespace of that Lease (default: the controller pod's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "ebb-system")]
    lease_namespace: String,
    /// This replica's name in the Lease and in Events.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Seconds a leader's Lease holds without renewal before another replica takes over
    /// (at least 4).
    #[arg(long, default_value_t = 15)]
    lease_duration_s: u64,
    /// A job that changed size less than this long ago is not shrunk for fairness alone.
    #[arg(long, default_value_t = 60.0)]
    scale_down_cooldown_s: f64,
    /// Write the snapshot of every tick that changed something to DIR (replay it with
    /// `ebb plan`); the last one is always at GET /debug/snapshot.
    #[arg(long, value_name = "DIR")]
    dump_snapshots: Option<PathBuf>,
    /// Serve the control API (ebbctl) here; needs --auth.
    #[arg(long, requires = "auth")]
    control_addr: Option<SocketAddr>,
    /// Tokens, roles and namespaces for the control API (YAML, see docs/control-api.md).
    #[arg(long)]
    auth: Option<PathBuf>,
    /// Serve the control API over TLS with this certificate (PEM) and --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long)]
    tls_key: Option<PathBuf>,
}

pub fn controller(a: ControllerArgs) -> Result<()> {
    anyhow::ensure!(
        a.tick_s.is_finite() && a.tick_s > 0.0,
        "--tick-s must be a positive number of seconds"
    );
    anyhow::ensure!(
        a.lease_duration_s >= 4,
        "--lease-duration-s must be at least 4"
    );
    if let Some(dir) = &a.dump_snapshots {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let control = match (&a.control_addr, &a.auth) {
        // The Deployment mounts the auth Secret as optional: no Secret, no control API.
        (Some(_), Some(auth)) if !auth.exists() => {
            tracing::warn!(path = %auth.display(), "control API off: no auth file (create the ebb-control-auth Secret)");
            None
        }
        (Some(addr), Some(auth)) => Some(ControlConfig {
            addr: *addr,
            auth: AuthConfig::load(auth)?,
            tls: match (&a.tls_cert, &a.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            },
        }),
        _ => None,
    };
    let identity = a
        .identity
        .clone()
        .unwrap_or_else(|| format!("ebb-{}", std::process::id()));
    let config = ControllerConfig {
        tick: Duration::from_secs_f64(a.tick_s),
        debounce: Duration::from_millis(a.debounce_ms),
        policy: Policy {
            scale_down_cooldown_s: a.scale_down_cooldown_s,
            ..Policy::default()
        },
        render: RenderConfig {
            runtime_image: a.runtime_image,
        },
        lease: (!a.no_leader_election).then(|| LeaseConfig {
            name: a.lease_name,
            namespace: a.lease_namespace,
            identity: identity.clone(),
            duration_s: a.lease_duration_s,
            grace_s: (a.lease_duration_s / 3).max(2),
        }),
        http_addr: a.http_addr,
        retry: Retry::default(),
        instance: Some(identity),
        dump_snapshots: a.dump_snapshots,
        control,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let client = kube::Client::try_default()
            .await
            .context("connecting to the Kubernetes API (in-cluster config or KUBECONFIG)")?;
        tokio::select! {
            r = ebb::controller::run(client, config) => r.context("controller stopped"),
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("interrupted; exiting");
                Ok(())
            }
        }
    })
}

pub fn crds() -> Result<()> {
    print!(
        "{}",
        ebb::resource::crds_yaml().context("rendering the CRDs")?
    );
    Ok(())
}
