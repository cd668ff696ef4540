//! `ebb up` (the embedded cluster) and `ebb serve-http` (the online service it runs).

use anyhow::{Context as _, Result};
use clap::Args;
use ebb::api::serve::{TlsFiles, serve};
use ebb::api::{AuthConfig, Control, Role, TokenEntry};
use ebb::cli::config::{Context, CtlConfig, default_path};
use ebb::cluster::local::config::resources;
use ebb::cluster::local::services::ServiceRuntime;
use ebb::cluster::local::{LocalBackend, LocalClusterSpec, World, run_as, runtime};
use ebb::plan::Policy;
use ebb::resource::{TrainingQueue, TrainingQueueSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Args)]
pub struct UpArgs {
    /// Identical nodes to declare (ignored with --cluster).
    #[arg(long, default_value_t = 4)]
    nodes: u32,
    /// CPU of each declared node, a Kubernetes quantity (ignored with --cluster).
    #[arg(long, default_value = "8")]
    cpus: String,
    /// Memory of each declared node, a Kubernetes quantity (ignored with --cluster).
    #[arg(long, default_value = "16Gi")]
    memory: String,
    /// GPUs of each declared node (ignored with --cluster).
    #[arg(long, default_value_t = 0)]
    gpus: u32,
    /// A YAML file with `nodes:` and `services:` (see docs/up.md).
    #[arg(long)]
    cluster: Option<PathBuf>,
    /// The control API (what ebbctl talks to).
    #[arg(long, default_value = "127.0.0.1:7160")]
    listen: String,
    /// Write the bound address here (useful with port 0).
    #[arg(long)]
    addr_file: Option<PathBuf>,
    /// Logs, journals and checkpoints of every pod.
    #[arg(long, default_value = "ebb-up")]
    work_dir: PathBuf,
    /// Milliseconds between planning ticks.
    #[arg(long, default_value_t = 1000)]
    tick_ms: u64,
    /// Tokens, roles and namespaces (YAML); without it a token is generated for an
    /// operator of every namespace and written to ebbctl's config.
    #[arg(long)]
    auth: Option<PathBuf>,
    /// Where to write that token (default: $EBBCTL_CONFIG or ~/.config/ebb/config.yaml).
    #[arg(long)]
    ebbctl_config: Option<PathBuf>,
    /// Serve TLS with this certificate (PEM) and --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// The user pods run as when ebb up runs as root (default: nobody; `root` keeps
    /// root). Not as root, pods run as the user running ebb up.
    #[arg(long, value_name = "USER")]
    run_as: Option<String>,
    /// Seconds a trainer has to return its chunk and leave when told to.
    #[arg(long, default_value_t = 10)]
    trainer_grace_s: u64,
    /// A job that changed size less than this long ago is not shrunk for fairness alone.
    #[arg(long, default_value_t = 10.0)]
    scale_down_cooldown_s: f64,
}

fn token() -> String {
    use rand::RngExt;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:x}", rng.random_range(0..16u8)))
        .collect()
}

pub fn up(a: UpArgs) -> Result<()> {
    let spec = match &a.cluster {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            LocalClusterSpec::parse(&text).with_context(|| format!("{}", path.display()))?
        }
        None => LocalClusterSpec::uniform(a.nodes, &a.cpus, &a.memory, a.gpus),
    };
    let nodes = spec.nodes()?;
    std::fs::create_dir_all(&a.work_dir)
        .with_context(|| format!("creating {}", a.work_dir.display()))?;
    let work_dir = std::fs::canonicalize(&a.work_dir)?;
    let exe = std::env::current_exe().context("finding the ebb binary")?;
    let run_as = run_as::resolve(a.run_as.as_deref())?;
    if let Some(user) = &run_as {
        tracing::info!(user = %user.name, uid = user.uid, "pods run as an unprivileged user");
    }
    let services = spec
        .services
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let r = resources(&format!("services[{i}]"), &s.cpu, &s.memory, 0)?;
            let dir = work_dir.join("services").join(&s.name);
            std::fs::create_dir_all(&dir)?;
            if let Some(user) = &run_as {
                user.own(&dir)?;
            }
            Ok(ServiceRuntime::new(s.clone(), r, dir))
        })
        .collect::<Result<Vec<_>>>()?;
    let default_queue = TrainingQueue {
        metadata: ObjectMeta {
            name: Some("default".into()),
            ..ObjectMeta::default()
        },
        spec: TrainingQueueSpec {
            weight: 1.0,
            guaranteed: Default::default(),
            limit: None,
            parent: None,
        },
    };
    let (events, _) = tokio::sync::broadcast::channel(1024);
    let world = Arc::new(Mutex::new(World {
        nodes,
        jobs: BTreeMap::new(),
        queues: BTreeMap::from([("default".to_string(), default_queue)]),
        services,
        events,
        event_log: Default::default(),
        work_dir,
        exe,
        policy: Policy {
            scale_down_cooldown_s: a.scale_down_cooldown_s,
            ..Policy::default()
        },
        trainer_grace: Duration::from_secs(a.trainer_grace_s),
        last_snapshot: None,
        run_as,
    }));
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&a.listen)
            .await
            .with_context(|| format!("binding --listen {}", a.listen))?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let auth = match &a.auth {
            Some(path) => AuthConfig::load(path)?,
            None => {
                let token = token();
                let path = a.ebbctl_config.clone().unwrap_or_else(default_path);
                CtlConfig::upsert(
                    &path,
                    Context {
                        name: "local".into(),
                        endpoint: format!("{scheme}://{addr}"),
                        token: token.clone(),
                        ca: None,
                    },
                )?;
                eprintln!("ebbctl is set up: context \"local\" in {}", path.display());
                AuthConfig {
                    tokens: vec![TokenEntry {
                        token,
                        name: "local-operator".into(),
                        role: Role::Operator,
                        namespaces: vec!["*".into()],
                    }],
                }
            }
        };
        if let Some(f) = &a.addr_file {
            std::fs::write(f, addr.to_string())?;
        }
        eprintln!("ebb up: control API on {scheme}://{addr}");
        let control = Control::new(Arc::new(LocalBackend::new(world.clone())), auth);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(serve(control, listener, tls, {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.changed().await;
            }
        }));
        let stopped = {
            let mut rx = stop_rx;
            async move {
                let _ = rx.changed().await;
            }
        };
        let ticking = tokio::spawn(runtime::run(
            world,
            Duration::from_millis(a.tick_ms),
            stopped,
        ));
        crate::coord_cmd::terminated().await;
        eprintln!("ebb up: stopping every pod");
        let _ = stop_tx.send(true);
        let _ = ticking.await;
        server.await?.context("serving the control API")
    })
}

#[derive(Args)]
pub struct ServeHttpArgs {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    #[arg(long)]
    addr_file: Option<PathBuf>,
    /// Requests served so far, rewritten every 200 ms (what the autoscaler reads).
    #[arg(long)]
    stats_file: PathBuf,
}

/// A minimal online service: answers every GET and counts requests.
pub fn serve_http(a: ServeHttpArgs) -> Result<()> {
    let count = Arc::new(AtomicU64::new(0));
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&a.listen).await?;
        let addr = listener.local_addr()?;
        if let Some(f) = &a.addr_file {
            let tmp = f.with_extension("tmp");
            std::fs::write(&tmp, addr.to_string())?;
            std::fs::rename(&tmp, f)?;
        }
        let counter = count.clone();
        let app = axum::Router::new().fallback(move || {
            let c = counter.clone();
            async move {
                c.fetch_add(1, Ordering::Relaxed);
                "ok\n"
            }
        });
        let stats = a.stats_file.clone();
        tokio::spawn(async move {
            loop {
                let tmp = stats.with_extension("tmp");
                if std::fs::write(&tmp, count.load(Ordering::Relaxed).to_string()).is_ok() {
                    let _ = std::fs::rename(&tmp, &stats);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(crate::coord_cmd::terminated())
            .await?;
        Ok(())
    })
}
