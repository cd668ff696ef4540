//! `ebb trainer`: the reference elastic trainer. Registers, then leases a chunk, pulls
//! the parameters, computes the gradient on the chunk, pushes it, reports the chunk
//! done, and repeats; one trainer per interval also evaluates and saves the model.
//! Told to stop, it finishes the chunk in hand (within its grace period), hands back
//! any lease and deregisters.

use super::client::{self, retry};
use super::data::{Dataset, Split};
use super::error::CoordError;
use super::model::ModelKind;
use super::params::{self, Assembler};
use super::proto::lease_task_reply::Outcome;
use super::proto::master_client::MasterClient;
use super::proto::pserver_client::PserverClient;
use super::proto::*;
use super::store::OptimizerKind;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::{Code, Status};

#[derive(Clone, Debug)]
pub struct TrainerConfig {
    pub id: String,
    pub master: String,
    pub pservers: Vec<String>,
    pub data: PathBuf,
    pub model: ModelKind,
    pub optimizer: OptimizerKind,
    pub learning_rate: f32,
    pub momentum: f32,
    pub block_size: u32,
    pub seed: u64,
    pub model_dir: Option<PathBuf>,
    /// How long to keep retrying a master or pserver that is away.
    pub patience: Duration,
    /// After being told to stop: how long the chunk in hand may take.
    pub grace: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainerError {
    #[error(transparent)]
    Setup(#[from] CoordError),
    #[error("{what}: {status}")]
    Rpc { what: &'static str, status: Status },
    #[error("pserver {index} returned {message}")]
    Params { index: usize, message: String },
    /// The job cannot go on; the master has been told (or told this trainer).
    #[error("the job failed: {reason}")]
    JobFailed { reason: String },
}

fn rpc(what: &'static str) -> impl Fn(Status) -> TrainerError {
    move |status| TrainerError::Rpc { what, status }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct TrainerReport {
    pub chunks_done: u64,
    pub stale_completions: u64,
    pub final_accuracy: Option<f64>,
    pub stopped_early: bool,
}

struct Trainer {
    config: TrainerConfig,
    data: Dataset,
    split: Split,
    master: MasterClient<Channel>,
    pservers: Vec<PserverClient<Channel>>,
    report: TrainerReport,
    /// The lease that came back with the last completion, to work on next.
    next_lease: Option<LeaseTaskReply>,
    /// What the master said at the last registration (see `RegisterReply`).
    job_started: bool,
}

/// Whether a pserver's refusal means it holds none of this job's parameters (it lost
/// them, or came back without its checkpoints): the job cannot go on from it, and
/// retrying or initialising afresh would train on made-up parameters.
fn parameters_gone(s: &Status) -> bool {
    s.code() == Code::FailedPrecondition
        && (s.message().starts_with(super::pserver::LOST)
            || s.message().starts_with(super::pserver::NOT_INITIALISED))
}

/// Runs until every pass is done (then the final save) or `stop` is set.
pub async fn run(
    config: TrainerConfig,
    stop: Arc<AtomicBool>,
) -> Result<TrainerReport, TrainerError> {
    if config.id.is_empty() {
        return Err(CoordError::invalid("trainer id", "must not be empty").into());
    }
    if config.pservers.is_empty() {
        return Err(
            CoordError::invalid("pservers", "at least one pserver address is needed").into(),
        );
    }
    let data = Dataset::load(&config.data)?;
    let split = data.split();
    let master = client::master(&config.master).map_err(rpc("master address"))?;
    let pservers = config
        .pservers
        .iter()
        .map(|a| client::pserver(a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(rpc("pserver address"))?;
    let mut t = Trainer {
        config,
        data,
        split,
        master,
        pservers,
        report: TrainerReport::default(),
        next_lease: None,
        job_started: false,
    };
    let joined = Instant::now();
    let heartbeat_every = t.register().await?;
    let beat = tokio::spawn(heartbeat(
        t.master.clone(),
        t.config.id.clone(),
        heartbeat_every,
        t.config.patience,
    ));
    t.init_pservers().await?;
    tracing::info!(trainer = %t.config.id, ms = joined.elapsed().as_millis() as u64, "joined");
    let result = t.train(&stop).await;
    beat.abort();
    result.map(|_| t.report)
}

async fn heartbeat(
    mut master: MasterClient<Channel>,
    id: String,
    every: Duration,
    patience: Duration,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match master
            .heartbeat(HeartbeatRequest {
                trainer_id: id.clone(),
            })
            .await
        {
            Ok(r) if !r.get_ref().known => {
                // The master restarted and forgot us: join again.
                let _ = retry("register", patience, || {
                    let mut m = master.clone();
                    let id = id.clone();
                    async move { m.register(RegisterRequest { trainer_id: id }).await }
                })
                .await;
            }
            Ok(_) => {}
            Err(s) => tracing::debug!(code = ?s.code(), "heartbeat failed"),
        }
    }
}

impl Trainer {
    async fn register(&mut self) -> Result<Duration, TrainerError> {
        let id = self.config.id.clone();
        let reply = retry("register", self.config.patience, || {
            let mut m = self.master.clone();
            let id = id.clone();
            async move { m.register(RegisterRequest { trainer_id: id }).await }
        })
        .await
        .map_err(rpc("register"))?;
        self.job_started = reply.get_ref().job_started;
        Ok(Duration::from_millis(
            reply.get_ref().heartbeat_interval_ms.clamp(10, 60_000),
        ))
    }

    async fn init_pservers(&mut self) -> Result<(), TrainerError> {
        let layout = Layout {
            params: self.config.model.params() as u64,
            block_size: self.config.block_size,
            pservers: self.pservers.len() as u32,
        };
        let optimizer = match self.config.optimizer {
            OptimizerKind::SgdMomentum => Optimizer::SgdMomentum,
            OptimizerKind::Adam => Optimizer::Adam,
        };
        for (i, ps) in self.pservers.iter().enumerate() {
            let req = InitRequest {
                layout: Some(layout),
                pserver_index: i as u32,
                optimizer: optimizer as i32,
                learning_rate: self.config.learning_rate,
                momentum: self.config.momentum,
                seed: self.config.seed,
                init_scale: self.config.model.init_scale(),
                job_started: self.job_started,
            };
            let r = retry("pserver init", self.config.patience, || {
                let mut p = ps.clone();
                async move { p.init(req).await }
            })
            .await;
            self.check_pserver(i, r, "pserver init").await?;
        }
        Ok(())
    }

    /// A pserver call's result; a pserver without this job's parameters fails the job.
    async fn check_pserver<T>(
        &self,
        index: usize,
        r: Result<T, Status>,
        what: &'static str,
    ) -> Result<T, TrainerError> {
        match r {
            Err(s) if parameters_gone(&s) => {
                let reason = format!(
                    "pserver {index} ({}): {}",
                    self.config.pservers.get(index).map_or("?", String::as_str),
                    s.message()
                );
                Err(self.fail_job(reason).await)
            }
            r => r.map_err(rpc(what)),
        }
    }

    /// Tells the master the job cannot go on; the error to exit with.
    async fn fail_job(&self, reason: String) -> TrainerError {
        tracing::error!(trainer = %self.config.id, %reason, "failing the job");
        let id = self.config.id.clone();
        let mut short = reason.clone();
        let mut cut = super::master::MAX_FAIL_REASON.min(short.len());
        while !short.is_char_boundary(cut) {
            cut -= 1;
        }
        short.truncate(cut);
        let told = retry("fail job", self.config.patience, || {
            let mut m = self.master.clone();
            let req = FailJobRequest {
                trainer_id: id.clone(),
                reason: short.clone(),
            };
            async move { m.fail_job(req).await }
        })
        .await;
        if let Err(e) = told {
            tracing::error!(error = %e, "could not tell the master that the job failed");
        }
        TrainerError::JobFailed { reason }
    }

    async fn pull(&self) -> Result<Vec<f32>, TrainerError> {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, ps) in self.pservers.iter().enumerate() {
            let ps = ps.clone();
            let patience = self.config.patience;
            tasks.spawn(async move {
                let r = retry("pull", patience, || {
                    let mut p = ps.clone();
                    async move { params::pull_shard(&mut p).await }
                })
                .await;
                (i, r)
            });
        }
        let mut model = Assembler::new(self.config.model.params(), self.config.block_size as usize);
        while let Some(joined) = tasks.join_next().await {
            let (i, r) = joined.map_err(|e| TrainerError::Params {
                index: 0,
                message: e.to_string(),
            })?;
            for b in &self.check_pserver(i, r, "pull").await?.blocks {
                model
                    .add(b)
                    .map_err(|message| TrainerError::Params { index: i, message })?;
            }
        }
        model.finish().map_err(|message| TrainerError::Params {
            index: 0,
            message: format!("a model with {message}"),
        })
    }

    async fn push(&self, task: &Task, grad: &[f32]) -> Result<(), TrainerError> {
        let chunk = ChunkId {
            pass: task.pass,
            chunk: task.chunk,
            lease_id: task.lease_id,
        };
        let per = params::split_blocks(grad, self.config.block_size as usize, self.pservers.len());
        let mut tasks = tokio::task::JoinSet::new();
        for (i, (ps, blocks)) in self.pservers.iter().zip(per).enumerate() {
            let ps = ps.clone();
            let patience = self.config.patience;
            tasks.spawn(async move {
                let r = retry("push", patience, || {
                    let mut p = ps.clone();
                    // Cheap: blocks share their bytes.
                    let blocks = blocks.clone();
                    async move { params::push_shard(&mut p, chunk, blocks).await }
                })
                .await;
                (i, r)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let (i, r) = joined.map_err(|e| TrainerError::Params {
                index: 0,
                message: e.to_string(),
            })?;
            self.check_pserver(i, r, "push").await?;
        }
        Ok(())
    }

    /// The pass's seal: every pserver checkpoints and says which chunks of the pass its
    /// checkpoint holds; the master begins the next pass or leases the missing chunks
    /// again. A seal lease gone stale (this trainer was too slow) is simply dropped.
    async fn seal(&mut self, task: Task) -> Result<(), TrainerError> {
        let mut shards = Vec::with_capacity(self.pservers.len());
        for (i, ps) in self.pservers.iter().enumerate() {
            let r = retry("seal", self.config.patience, || {
                let mut p = ps.clone();
                async move { p.seal(SealRequest { pass: task.pass }).await }
            })
            .await;
            shards.push(self.check_pserver(i, r, "seal").await?.into_inner().chunks);
        }
        let req = ReportSealRequest {
            trainer_id: self.config.id.clone(),
            pass: task.pass,
            lease_id: task.lease_id,
            shards,
        };
        let r = retry("report seal", self.config.patience, || {
            let mut m = self.master.clone();
            let req = req.clone();
            async move { m.report_seal(req).await }
        })
        .await;
        match r {
            Ok(reply) => {
                let reply = reply.into_inner();
                tracing::info!(
                    pass = task.pass,
                    sealed = reply.sealed,
                    redo = reply.redo,
                    "seal reported"
                );
                Ok(())
            }
            Err(s) if matches!(s.code(), Code::FailedPrecondition | Code::NotFound) => {
                tracing::info!(
                    pass = task.pass,
                    reason = s.message(),
                    "seal no longer wanted"
                );
                Ok(())
            }
            Err(s) => Err(TrainerError::Rpc {
                what: "report seal",
                status: s,
            }),
        }
    }

    async fn lease(&mut self) -> Result<LeaseTaskReply, TrainerError> {
        let id = self.config.id.clone();
        loop {
            let r = retry("lease", self.config.patience, || {
                let mut m = self.master.clone();
                let id = id.clone();
                async move { m.lease_task(LeaseTaskRequest { trainer_id: id }).await }
            })
            .await;
            match r {
                Ok(reply) => return Ok(reply.into_inner()),
                Err(s) if s.code() == Code::NotFound => {
                    self.register().await?;
                }
                Err(s) => {
                    return Err(TrainerError::Rpc {
                        what: "lease",
                        status: s,
                    });
                }
            }
        }
    }

    async fn train(&mut self, stop: &AtomicBool) -> Result<(), TrainerError> {
        loop {
            if stop.load(Ordering::SeqCst) {
                self.report.stopped_early = true;
                return self.leave().await;
            }
            let reply = match self.next_lease.take() {
                Some(reply) => reply,
                None => self.lease().await?,
            };
            match Outcome::try_from(reply.outcome) {
                Ok(Outcome::Leased) => {
                    let Some(task) = reply.task else { continue };
                    let lease_next = !stop.load(Ordering::SeqCst);
                    if self.do_chunk(task, lease_next).await? {
                        self.save_and_report(false).await?;
                    }
                }
                Ok(Outcome::Finished) => {
                    self.finish(stop).await?;
                    return self.leave().await;
                }
                Ok(Outcome::Seal) => {
                    if let Some(task) = reply.task {
                        self.seal(task).await?;
                    }
                }
                Ok(Outcome::Failed) => {
                    return Err(TrainerError::JobFailed {
                        reason: reply.failed_reason,
                    });
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Trains on the chunk and reports it, leasing the next one in the same call when
    /// `lease_next`; true when the master asks this trainer to save the model now.
    async fn do_chunk(&mut self, task: Task, lease_next: bool) -> Result<bool, TrainerError> {
        let (begin, end) = (task.begin as usize, task.end as usize);
        let Some(rows) = self.split.train.get(begin..end) else {
            // The master and this trainer disagree about the data: give the chunk back
            // as failed rather than training on the wrong rows.
            let reason = format!(
                "range {begin}..{end} outside the {} training rows",
                self.split.train.len()
            );
            let mut m = self.master.clone();
            let _ = m
                .fail_task(FailTaskRequest {
                    trainer_id: self.config.id.clone(),
                    pass: task.pass,
                    chunk: task.chunk,
                    lease_id: task.lease_id,
                    reason,
                })
                .await;
            return Ok(false);
        };
        let rows = rows.to_vec();
        let params = self.pull().await?;
        let (loss, grad) = self.config.model.loss_and_grad(&params, &self.data, &rows);
        self.push(&task, &grad).await?;
        let req = CompleteTaskRequest {
            trainer_id: self.config.id.clone(),
            pass: task.pass,
            chunk: task.chunk,
            lease_id: task.lease_id,
            loss,
            samples: rows.len() as u64,
            lease_next,
        };
        let r = retry("complete", self.config.patience, || {
            let mut m = self.master.clone();
            let req = req.clone();
            async move { m.complete_task(req).await }
        })
        .await;
        match r {
            Ok(reply) => {
                self.report.chunks_done += 1;
                let reply = reply.into_inner();
                self.next_lease = reply.next;
                return Ok(reply.save_granted);
            }
            // The lease lapsed (or the master restarted): someone else does the chunk.
            Err(s)
                if matches!(
                    s.code(),
                    Code::FailedPrecondition | Code::AlreadyExists | Code::NotFound
                ) =>
            {
                tracing::warn!(
                    pass = task.pass,
                    chunk = task.chunk,
                    message = s.message(),
                    "completion not accepted"
                );
                self.report.stale_completions += 1;
            }
            Err(s) => {
                return Err(TrainerError::Rpc {
                    what: "complete",
                    status: s,
                });
            }
        }
        Ok(false)
    }

    /// Asks for the final save; evaluates and saves when granted.
    async fn final_save(&mut self) -> Result<bool, TrainerError> {
        let mut m = self.master.clone();
        let granted = m
            .request_save(RequestSaveRequest {
                trainer_id: self.config.id.clone(),
                r#final: true,
            })
            .await
            .map(|r| r.into_inner().granted)
            .unwrap_or(false);
        if granted {
            self.save_and_report(true).await?;
        }
        Ok(granted)
    }

    /// Evaluates on the held-out rows, writes the model and reports the accuracy.
    async fn save_and_report(&mut self, final_save: bool) -> Result<(), TrainerError> {
        let params = self.pull().await?;
        let accuracy = self
            .config
            .model
            .accuracy(&params, &self.data, &self.split.held_out);
        if let Some(dir) = &self.config.model_dir {
            save_model(dir, self.config.model, &params, accuracy)?;
        }
        retry("report eval", self.config.patience, || {
            let mut m = self.master.clone();
            let req = ReportEvalRequest {
                trainer_id: self.config.id.clone(),
                accuracy,
                samples: self.split.held_out.len() as u64,
                r#final: final_save,
            };
            async move { m.report_eval(req).await }
        })
        .await
        .map_err(rpc("report eval"))?;
        if final_save {
            self.report.final_accuracy = Some(accuracy);
        }
        tracing::info!(accuracy, final_save, "model evaluated and saved");
        Ok(())
    }

    /// Every pass is done: one trainer makes the final save; the others wait until it is
    /// reported, taking it over if its holder disappears.
    async fn finish(&mut self, stop: &AtomicBool) -> Result<(), TrainerError> {
        loop {
            if self.final_save().await? {
                return Ok(());
            }
            let mut m = self.master.clone();
            let done = m
                .status(StatusRequest {})
                .await
                .map(|r| r.into_inner().final_accuracy_reported)
                .unwrap_or(false);
            if done || stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn leave(&mut self) -> Result<(), TrainerError> {
        deregister(self.master.clone(), &self.config.id).await;
        Ok(())
    }
}

/// Tells the master this trainer is leaving, so its lease goes back at once; if the
/// master cannot be reached it notices the missing heartbeats instead.
pub async fn deregister(mut master: MasterClient<Channel>, id: &str) {
    let req = DeregisterRequest {
        trainer_id: id.to_string(),
    };
    match master.deregister(req).await {
        Ok(r) => tracing::info!(returned = r.get_ref().returned_leases, "left the job"),
        Err(s) => tracing::warn!(code = ?s.code(), "could not deregister"),
    }
}

fn save_model(
    dir: &std::path::Path,
    model: ModelKind,
    params: &[f32],
    accuracy: f64,
) -> Result<(), CoordError> {
    std::fs::create_dir_all(dir).map_err(|e| CoordError::io(dir, e))?;
    let body = serde_json::json!({ "model": format!("{model:?}"), "accuracy": accuracy, "params": params });
    let tmp = dir.join("model.json.tmp");
    let path = dir.join("model.json");
    std::fs::write(&tmp, body.to_string()).map_err(|e| CoordError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| CoordError::io(&path, e))
}
