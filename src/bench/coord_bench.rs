//! `ebb bench coord`: the coordination runtime's hot paths on loopback.
//!
//! * master lease + complete round trips per second with N concurrent trainers (each on
//!   its own connection, journal on, fsync batched as in production);
//! * pserver push + pull bandwidth for one model of P floats;
//! * a real `ebb trainer` process: spawn to first leased task, and SIGTERM to exit.

use crate::coord::book::BookConfig;
use crate::coord::client;
use crate::coord::master::{self, MasterConfig, MasterService};
use crate::coord::params::{Assembler, pull_shard, push_shard, split_blocks};
use crate::coord::proto::*;
use crate::coord::pserver::{self, PserverConfig, PserverService};
use crate::coord::wal::OnDamage;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, serde::Serialize)]
pub struct CoordBench {
    pub tasks_per_s: f64,
    pub push_pull_gb_per_s: f64,
    pub join_to_first_task_ms: f64,
    pub sigterm_to_exit_ms: f64,
    pub trainers: usize,
    pub params: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Setup(String),
    #[error("{what}: {status}")]
    Rpc {
        what: &'static str,
        status: tonic::Status,
    },
}

fn rpc(what: &'static str) -> impl Fn(tonic::Status) -> BenchError {
    move |status| BenchError::Rpc { what, status }
}

async fn bind_loopback() -> Result<(tokio::net::TcpListener, String), BenchError> {
    let setup = |e: std::io::Error| BenchError::Setup(e.to_string());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(setup)?;
    let addr = listener.local_addr().map_err(setup)?.to_string();
    Ok((listener, addr))
}

async fn start_master(
    dir: &Path,
    records: u64,
    chunk_size: u64,
    passes: u32,
) -> Result<(String, tokio::sync::oneshot::Sender<()>), BenchError> {
    let config = MasterConfig {
        book: BookConfig {
            records,
            chunk_size,
            passes,
            lease_ms: 60_000,
            heartbeat_timeout_ms: 60_000,
            max_failures: 3,
            save_interval_ms: 60_000,
        },
        state_dir: dir.to_path_buf(),
        heartbeat_interval_ms: 1_000,
        sync_interval_ms: 50,
        compact_every: 200_000,
        on_damage: OnDamage::Refuse,
    };
    let service = MasterService::open(&config).map_err(|e| BenchError::Setup(e.to_string()))?;
    let (listener, addr) = bind_loopback().await?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = master::serve(service, listener, &config, async {
            let _ = rx.await;
        })
        .await;
    });
    Ok((addr, tx))
}

/// A pserver in this process; stopping it is sending on the channel and awaiting the
/// handle, which returns once its final checkpoint is written (before the caller
/// removes the directory).
async fn start_pserver(dir: &Path, index: u32) -> Result<(String, RunningPserver), BenchError> {
    let service = PserverService::open(PserverConfig {
        index,
        checkpoint_dir: dir.to_path_buf(),
        checkpoint_interval: Duration::from_secs(3600),
    })
    .map_err(|e| BenchError::Setup(e.to_string()))?;
    let (listener, addr) = bind_loopback().await?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let handle = tokio::spawn(async move {
        let _ = pserver::serve(service, listener, async {
            let _ = rx.await;
        })
        .await;
    });
    Ok((addr, RunningPserver { stop: tx, handle }))
}

struct RunningPserver {
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<()>,
}

impl RunningPserver {
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.await;
    }
}

/// Lease + complete round trips per second, `trainers` at once, for `run`.
pub async fn master_throughput(
    dir: &Path,
    trainers: usize,
    run: Duration,
) -> Result<f64, BenchError> {
    let (addr, stop) = start_master(dir, 10_000_000, 1, 1_000).await?;
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    for t in 0..trainers {
        let addr = addr.clone();
        tasks.spawn(async move {
            let mut m = client::master(&addr).map_err(rpc("connect"))?;
            let id = format!("bench-{t}");
            m.register(RegisterRequest {
                trainer_id: id.clone(),
            })
            .await
            .map_err(rpc("register"))?;
            // As the trainer does it: each completion leases the next task in the same
            // call, so a chunk costs one round trip.
            let mut done = 0u64;
            let mut next: Option<LeaseTaskReply> = None;
            while start.elapsed() < run {
                let lease = match next.take() {
                    Some(lease) => lease,
                    None => m
                        .lease_task(LeaseTaskRequest {
                            trainer_id: id.clone(),
                        })
                        .await
                        .map_err(rpc("lease"))?
                        .into_inner(),
                };
                let Some(task) = lease.task else { continue };
                if lease.outcome == lease_task_reply::Outcome::Seal as i32 {
                    // No pservers here: a seal holds no shard to ask.
                    m.report_seal(ReportSealRequest {
                        trainer_id: id.clone(),
                        pass: task.pass,
                        lease_id: task.lease_id,
                        shards: Vec::new(),
                    })
                    .await
                    .map_err(rpc("seal"))?;
                    continue;
                }
                let reply = m
                    .complete_task(CompleteTaskRequest {
                        trainer_id: id.clone(),
                        pass: task.pass,
                        chunk: task.chunk,
                        lease_id: task.lease_id,
                        loss: 0.0,
                        samples: 1,
                        lease_next: true,
                    })
                    .await
                    .map_err(rpc("complete"))?
                    .into_inner();
                next = reply.next;
                done += 1;
            }
            Ok::<u64, BenchError>(done)
        });
    }
    let mut total = 0;
    while let Some(r) = tasks.join_next().await {
        total += r.map_err(|e| BenchError::Setup(e.to_string()))??;
    }
    let secs = start.elapsed().as_secs_f64();
    let _ = stop.send(());
    Ok(total as f64 / secs)
}

/// Push + pull of a `params`-float model, GB/s counting both directions.
pub async fn pserver_bandwidth(dir: &Path, params: u64, rounds: usize) -> Result<f64, BenchError> {
    let (addr, stop) = start_pserver(dir, 0).await?;
    let mut p = client::pserver(&addr).map_err(rpc("connect"))?;
    let block_size = 1u32 << 16;
    p.init(InitRequest {
        layout: Some(Layout {
            params,
            block_size,
            pservers: 1,
        }),
        pserver_index: 0,
        optimizer: Optimizer::SgdMomentum as i32,
        learning_rate: 0.01,
        momentum: 0.9,
        seed: 1,
        init_scale: 0.01,
        job_started: false,
    })
    .await
    .map_err(rpc("init"))?;
    // As a trainer does it: the gradient cut into blocks and pushed, then the model
    // pulled and put back together as floats, into the buffer the last pull filled (as
    // a trainer keeps its parameter tensor). Round 0 warms the connection up, untimed.
    let grad = vec![0.001f32; params as usize];
    let mut model = vec![0.0f32; params as usize];
    let mut start = Instant::now();
    for round in 0..=rounds {
        if round == 1 {
            start = Instant::now();
        }
        let blocks = split_blocks(&grad, block_size as usize, 1)
            .pop()
            .unwrap_or_default();
        // A chunk of its own per round, as a trainer's pushes are: none is a duplicate.
        let chunk = ChunkId {
            pass: 0,
            chunk: round as u32,
            lease_id: round as u64,
        };
        let reply = push_shard(&mut p, chunk, blocks)
            .await
            .map_err(rpc("push"))?;
        if reply.duplicate {
            return Err(BenchError::Setup(format!(
                "round {round}: push taken for a duplicate"
            )));
        }
        let mut assembler = Assembler::reusing(model, block_size as usize);
        for b in &pull_shard(&mut p).await.map_err(rpc("pull"))?.blocks {
            assembler.add(b).map_err(BenchError::Setup)?;
        }
        model = assembler.finish().map_err(BenchError::Setup)?;
    }
    let secs = start.elapsed().as_secs_f64();
    stop.stop().await;
    Ok(2.0 * params as f64 * 4.0 * rounds as f64 / secs / 1e9)
}

/// A real trainer process: (spawn to first leased task, SIGTERM to exit), in ms.
pub async fn trainer_lifecycle(
    exe: &Path,
    data: &Path,
    dir: &Path,
) -> Result<(f64, f64), BenchError> {
    let records = crate::coord::data::Dataset::load(data)
        .map_err(|e| BenchError::Setup(e.to_string()))?
        .split()
        .train
        .len() as u64;
    let (maddr, mstop) = start_master(&dir.join("master"), records, 32, 1_000).await?;
    let (paddr, pstop) = start_pserver(&dir.join("pserver"), 0).await?;
    let mut m = client::master(&maddr).map_err(rpc("connect"))?;
    let spawned = Instant::now();
    let mut child = tokio::process::Command::new(exe)
        .args([
            "trainer",
            "--id",
            "bench",
            "--master",
            &maddr,
            "--pservers",
            &paddr,
        ])
        .arg("--data")
        .arg(data)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| BenchError::Setup(format!("spawning {}: {e}", exe.display())))?;
    let join_ms = loop {
        let s = m
            .status(StatusRequest {})
            .await
            .map_err(rpc("status"))?
            .into_inner();
        let started = s.pass_status.iter().any(|p| p.pending > 0 || p.done > 0);
        if started {
            break spawned.elapsed().as_secs_f64() * 1e3;
        }
        if spawned.elapsed() > Duration::from_secs(30) {
            return Err(BenchError::Setup("the trainer never leased a task".into()));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = child
        .id()
        .ok_or_else(|| BenchError::Setup("trainer exited early".into()))?;
    let asked = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    if !killed.is_ok_and(|s| s.success()) {
        return Err(BenchError::Setup("kill -TERM failed".into()));
    }
    let exited = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .map_err(|_| BenchError::Setup("trainer did not exit within 10 s of SIGTERM".into()))?
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let sigterm_ms = asked.elapsed().as_secs_f64() * 1e3;
    if !exited.success() {
        return Err(BenchError::Setup(format!(
            "trainer exited with {exited} after SIGTERM"
        )));
    }
    let _ = mstop.send(());
    pstop.stop().await;
    Ok((join_ms, sigterm_ms))
}

pub async fn run(
    exe: &Path,
    data: &Path,
    trainers: usize,
    seconds: f64,
    params: u64,
) -> Result<CoordBench, BenchError> {
    let dir: PathBuf = std::env::temp_dir().join(format!("ebb-bench-coord-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let tasks_per_s = master_throughput(
        &dir.join("throughput"),
        trainers,
        Duration::from_secs_f64(seconds),
    )
    .await?;
    let push_pull_gb_per_s = pserver_bandwidth(&dir.join("bandwidth"), params, 10).await?;
    let (join_to_first_task_ms, sigterm_to_exit_ms) =
        trainer_lifecycle(exe, data, &dir.join("lifecycle")).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(CoordBench {
        tasks_per_s,
        push_pull_gb_per_s,
        join_to_first_task_ms,
        sigterm_to_exit_ms,
        trainers,
        params,
    })
}
