//! `ebb master | pserver | trainer`: the coordination runtime's processes.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use ebb::coord::book::BookConfig;
use ebb::coord::data::Dataset;
use ebb::coord::master::{self, MasterConfig, MasterService};
use ebb::coord::model::ModelKind;
use ebb::coord::pserver::{self, PserverConfig, PserverService};
use ebb::coord::store::OptimizerKind;
use ebb::coord::trainer::{self, TrainerConfig};
use ebb::coord::wal::OnDamage;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Args)]
pub struct MasterArgs {
    /// Address to serve the master's gRPC API on (port 0: any free port).
    #[arg(long, default_value = "0.0.0.0:7164")]
    listen: String,
    /// Write the bound address here once listening (useful with port 0).
    #[arg(long)]
    addr_file: Option<PathBuf>,
    /// Dataset whose training rows are split into chunks.
    #[arg(long, env = "EBB_DATA")]
    data: Option<PathBuf>,
    /// Number of training records, instead of --data.
    #[arg(long)]
    records: Option<u64>,
    /// Records per data chunk: the unit a trainer leases and completes.
    #[arg(long, default_value_t = 32)]
    chunk_size: u64,
    /// Passes over the training set before the job is done.
    #[arg(long, default_value_t = 20)]
    passes: u32,
    /// Directory of the master's journal and snapshot; a restarted master resumes from it.
    #[arg(long, default_value = "ebb-master-state")]
    state_dir: PathBuf,
    /// A leased chunk not completed within this long goes back to be leased again.
    #[arg(long, default_value_t = 10_000)]
    lease_ms: u64,
    /// How often trainers are told to send heartbeats.
    #[arg(long, default_value_t = 300)]
    heartbeat_ms: u64,
    /// A trainer silent this long is gone: its leases go back (must exceed --heartbeat-ms).
    #[arg(long, default_value_t = 2_000)]
    heartbeat_timeout_ms: u64,
    /// Times a chunk's lease may be lost before the chunk is given up for its pass.
    #[arg(long, default_value_t = 3)]
    max_failures: u32,
    /// At most one trainer is asked to save the model this often during training.
    #[arg(long, default_value_t = 2_000)]
    save_interval_ms: u64,
    /// fsync the journal at most this often.
    #[arg(long, default_value_t = 50)]
    sync_ms: u64,
    /// Rewrite the snapshot after this many journal records.
    #[arg(long, default_value_t = 10_000)]
    compact_every: u64,
    /// A journal that does not replay cleanly (anything but a torn last line) is
    /// refused; with this, its files are moved into `damaged-<time>/` in the state
    /// directory and the master resumes from what reads before the damage.
    #[arg(long)]
    set_aside_damaged_state: bool,
    /// Exit 0 this many seconds after the job is done (every pass, final model saved),
    /// so trainers still asking hear "finished" and the pod or process ends.
    #[arg(long, value_name = "SECONDS")]
    exit_when_done_s: Option<u64>,
}

#[derive(Args)]
pub struct PserverArgs {
    /// Address to serve the pserver's gRPC API on (port 0: any free port).
    #[arg(long, default_value = "0.0.0.0:7165")]
    listen: String,
    /// Write the bound address here once listening (useful with port 0).
    #[arg(long)]
    addr_file: Option<PathBuf>,
    /// This pserver's index among the job's pservers (block b lives on b % N).
    #[arg(long, env = "EBB_PSERVER_INDEX")]
    index: u32,
    /// Directory of this shard's checkpoints; a restarted pserver resumes from the newest.
    #[arg(long, default_value = "ebb-pserver-checkpoints")]
    checkpoint_dir: PathBuf,
    /// How often the shard is checkpointed.
    #[arg(long, default_value_t = 2_000)]
    checkpoint_interval_ms: u64,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OptimizerArg {
    Sgd,
    Adam,
}

#[derive(Args)]
pub struct TrainerArgs {
    /// This trainer's name at the master (default: trainer-PID).
    #[arg(long, env = "EBB_TRAINER_ID")]
    id: Option<String>,
    /// The master's address (host:port).
    #[arg(long, env = "EBB_MASTER")]
    master: String,
    /// Comma-separated, in pserver index order.
    #[arg(long, env = "EBB_PSERVERS", value_delimiter = ',')]
    pservers: Vec<String>,
    /// The dataset the master's chunks index into (the same file as the master's).
    #[arg(long, env = "EBB_DATA")]
    data: PathBuf,
    /// The model to train.
    #[arg(long, value_enum, default_value_t = ModelKind::Softmax)]
    model: ModelKind,
    /// The update rule the pservers apply to pushed gradients.
    #[arg(long, value_enum, default_value_t = OptimizerArg::Sgd)]
    optimizer: OptimizerArg,
    /// Step size of the optimizer.
    #[arg(long, default_value_t = 0.1)]
    learning_rate: f32,
    /// SGD momentum, or Adam's beta1 (in [0, 1)).
    #[arg(long, default_value_t = 0.9)]
    momentum: f32,
    /// Parameters per block: the unit spread over pservers and pushed and pulled.
    #[arg(long, default_value_t = 256)]
    block_size: u32,
    /// Seed of the parameters' initial values (the first trainer to join sets them).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where the granted trainer writes model.json.
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// Seconds to keep retrying a master or pserver that is away.
    #[arg(long, default_value_t = 60)]
    patience_s: u64,
    /// After SIGTERM: how long the chunk in hand may take before leaving anyway.
    #[arg(long, default_value_t = 1_500)]
    grace_ms: u64,
}

/// Resolves on SIGTERM or SIGINT.
pub async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("asked to stop");
}

async fn bind(listen: &str, addr_file: Option<&PathBuf>) -> Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding --listen {listen}"))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(%addr, "listening");
    if let Some(path) = addr_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, addr.to_string())
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(listener)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn master(a: MasterArgs) -> Result<()> {
    let records = match (&a.records, &a.data) {
        (Some(r), _) => *r,
        // One line, so the job's Failed condition can quote it (see resource::failure).
        (None, Some(path)) => Dataset::load(path)
            .map_err(|e| anyhow::anyhow!("dataset: {e}"))?
            .split()
            .train
            .len() as u64,
        (None, None) => anyhow::bail!("give --data (a dataset) or --records (a count)"),
    };
    anyhow::ensure!(records > 0, "--records must be at least 1");
    anyhow::ensure!(a.chunk_size > 0, "--chunk-size must be at least 1");
    anyhow::ensure!(a.passes > 0, "--passes must be at least 1");
    anyhow::ensure!(
        a.heartbeat_timeout_ms > a.heartbeat_ms,
        "--heartbeat-timeout-ms must exceed --heartbeat-ms"
    );
    let config = MasterConfig {
        book: BookConfig {
            records,
            chunk_size: a.chunk_size,
            passes: a.passes,
            lease_ms: a.lease_ms,
            heartbeat_timeout_ms: a.heartbeat_timeout_ms,
            max_failures: a.max_failures,
            save_interval_ms: a.save_interval_ms,
        },
        state_dir: a.state_dir,
        heartbeat_interval_ms: a.heartbeat_ms,
        sync_interval_ms: a.sync_ms,
        compact_every: a.compact_every,
        on_damage: if a.set_aside_damaged_state {
            OnDamage::SetAside
        } else {
            OnDamage::Refuse
        },
    };
    let service = MasterService::open(&config)?;
    let linger = a.exit_when_done_s.map(Duration::from_secs);
    runtime()?.block_on(async {
        let listener = bind(&a.listen, a.addr_file.as_ref()).await?;
        let watched = service.clone();
        let shutdown = async move {
            tokio::select! {
                _ = terminated() => {}
                _ = done_then(watched, linger) => tracing::info!("job over; exiting"),
            }
        };
        master::serve(service.clone(), listener, &config, shutdown)
            .await
            .context("serving")?;
        // A failed job ends its master as failed, so that the pod or process says so.
        match service.failed() {
            Some(reason) => anyhow::bail!("the job failed: {reason}"),
            None => Ok(()),
        }
    })
}

/// Resolves `linger` after the job is done or has failed; never without `linger`.
async fn done_then(service: MasterService, linger: Option<Duration>) {
    let Some(linger) = linger else {
        return std::future::pending().await;
    };
    while !service.done() && service.failed().is_none() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(linger).await;
}

pub fn pserver(a: PserverArgs) -> Result<()> {
    let service = PserverService::open(PserverConfig {
        index: a.index,
        checkpoint_dir: a.checkpoint_dir,
        checkpoint_interval: Duration::from_millis(a.checkpoint_interval_ms),
    })?;
    runtime()?.block_on(async {
        let listener = bind(&a.listen, a.addr_file.as_ref()).await?;
        pserver::serve(service, listener, terminated())
            .await
            .context("serving")
    })
}

pub fn trainer(a: TrainerArgs) -> Result<()> {
    let id =
        a.id.unwrap_or_else(|| format!("trainer-{}", std::process::id()));
    let config = TrainerConfig {
        id: id.clone(),
        master: a.master.clone(),
        pservers: a.pservers,
        data: a.data,
        model: a.model,
        optimizer: match a.optimizer {
            OptimizerArg::Sgd => OptimizerKind::SgdMomentum,
            OptimizerArg::Adam => OptimizerKind::Adam,
        },
        learning_rate: a.learning_rate,
        momentum: a.momentum,
        block_size: a.block_size,
        seed: a.seed,
        model_dir: a.model_dir,
        patience: Duration::from_secs(a.patience_s),
        grace: Duration::from_millis(a.grace_ms),
    };
    let grace = config.grace;
    runtime()?.block_on(async move {
        let stop = Arc::new(AtomicBool::new(false));
        let work = trainer::run(config, stop.clone());
        tokio::pin!(work);
        let report = tokio::select! {
            r = &mut work => r?,
            _ = terminated() => {
                stop.store(true, Ordering::SeqCst);
                match tokio::time::timeout(grace, &mut work).await {
                    Ok(r) => r?,
                    Err(_) => {
                        // The chunk in hand overran the grace period: leave without it;
                        // the master re-queues it at once.
                        tracing::warn!("grace period over: leaving with the chunk unfinished");
                        let m = ebb::coord::client::master(&a.master).map_err(|s| anyhow::anyhow!("{s}"))?;
                        let _ = tokio::time::timeout(Duration::from_millis(300), trainer::deregister(m, &id)).await;
                        return Ok(());
                    }
                }
            }
        };
        tracing::info!(?report, "trainer done");
        Ok(())
    })
}
