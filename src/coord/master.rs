//! `ebb master`: the task book behind gRPC, with its journal, a reaper for silent
//! trainers and expired leases, and batched fsync.

use super::applied;
use super::book::{BookConfig, BookError, Event, LeaseOutcome, SealOutcome, TaskBook};
use super::error::CoordError;
use super::proto::lease_task_reply::Outcome;
use super::proto::master_server::{Master, MasterServer};
use super::proto::*;
use super::wal::{self, Journal, OnDamage};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status};

const RECENT_LOSSES: usize = 32;
/// Master messages are small; anything near this is garbage.
pub const MAX_MASTER_MESSAGE: usize = 1 << 20;
/// A reason a trainer gives for failing the job: a sentence or a few, never a dump.
pub const MAX_FAIL_REASON: usize = 4096;

#[derive(Clone, Debug)]
pub struct MasterConfig {
    pub book: BookConfig,
    pub state_dir: PathBuf,
    pub heartbeat_interval_ms: u64,
    pub sync_interval_ms: u64,
    pub compact_every: u64,
    /// What to do with a journal that does not replay cleanly.
    pub on_damage: OnDamage,
}

struct Inner {
    book: TaskBook,
    journal: Journal,
    losses: VecDeque<f64>,
    last_accuracy: f64,
}

#[derive(Clone)]
pub struct MasterService {
    inner: Arc<Mutex<Inner>>,
    started: Instant,
    heartbeat_interval_ms: u64,
}

fn book_status(e: BookError) -> Status {
    match e {
        BookError::UnknownTrainer(_) => Status::not_found(e.to_string()),
        BookError::EmptyTrainerId | BookError::NoSuchChunk { .. } => {
            Status::invalid_argument(e.to_string())
        }
        BookError::AlreadyDone { .. } => Status::already_exists(e.to_string()),
        BookError::StaleLease { .. } | BookError::StaleSeal { .. } => {
            Status::failed_precondition(e.to_string())
        }
    }
}

fn journal_status(e: CoordError) -> Status {
    tracing::error!(error = %e, "journal write failed");
    Status::internal(format!("master could not record progress: {e}"))
}

impl MasterService {
    /// Recovers the state from `config.state_dir` (or starts afresh).
    pub fn open(config: &MasterConfig) -> Result<MasterService, CoordError> {
        let (journal, book, recovered) = Journal::open(
            &config.state_dir,
            config.book.clone(),
            config.compact_every,
            config.on_damage,
        )?;
        if let Some(t) = &recovered.torn_tail {
            tracing::warn!(
                file = %config.state_dir.join(wal::LOG).display(),
                line = t.line,
                offset = t.offset,
                bytes = t.bytes,
                why = t.why,
                "dropped the journal's last line: a write a crash cut short"
            );
        }
        if let Some(aside) = &recovered.set_aside {
            tracing::warn!(
                damage = %aside.damage,
                moved_to = %aside.moved_to.display(),
                "the journal was damaged: its files were moved aside and the master resumes from what read before the damage; chunks completed after it are done again"
            );
        }
        tracing::info!(
            pass = book.pass(),
            chunks = book.chunks(),
            epoch = book.epoch(),
            from_snapshot = recovered.from_snapshot,
            replayed = recovered.replayed,
            "master state recovered"
        );
        // A finished job's final accuracy survives a restart.
        let last_accuracy = book.final_accuracy().unwrap_or(0.0);
        Ok(MasterService {
            inner: Arc::new(Mutex::new(Inner {
                book,
                journal,
                losses: VecDeque::new(),
                last_accuracy,
            })),
            started: Instant::now(),
            heartbeat_interval_ms: config.heartbeat_interval_ms,
        })
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock would be a bug; the state itself stays usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(inner: &mut Inner, events: &[Event]) -> Result<(), Status> {
        if events.is_empty() {
            return Ok(());
        }
        let Inner { book, journal, .. } = inner;
        journal.append(events, book).map_err(journal_status)
    }

    /// Drops silent trainers and expired leases; run every few hundred ms.
    pub fn reap(&self) {
        let now = self.now();
        let mut inner = self.lock();
        let events = inner.book.reap(now);
        if !events.is_empty() {
            tracing::warn!(
                ?events,
                "re-queued leases of silent trainers or past their deadline"
            );
        }
        let _ = Self::record(&mut inner, &events);
    }

    pub fn sync(&self) {
        if let Err(e) = self.lock().journal.sync() {
            tracing::error!(error = %e, "fsync of the master journal failed");
        }
    }

    pub fn compact(&self) {
        let mut inner = self.lock();
        let Inner { book, journal, .. } = &mut *inner;
        if let Err(e) = journal.compact(book) {
            tracing::error!(error = %e, "snapshot of the master state failed");
        }
    }

    /// Every pass is done and the final model was saved and evaluated.
    pub fn done(&self) -> bool {
        let inner = self.lock();
        inner.book.finished() && inner.book.final_saved()
    }

    /// Why the job failed, once it has.
    pub fn failed(&self) -> Option<String> {
        self.lock().book.failed().map(str::to_string)
    }

    pub fn server(self) -> MasterServer<MasterService> {
        MasterServer::new(self)
            .max_decoding_message_size(MAX_MASTER_MESSAGE)
            .max_encoding_message_size(16 * MAX_MASTER_MESSAGE)
    }
}

fn lease_reply(outcome: LeaseOutcome) -> LeaseTaskReply {
    match outcome {
        LeaseOutcome::Leased(l) => LeaseTaskReply {
            outcome: Outcome::Leased as i32,
            task: Some(Task {
                pass: l.pass,
                chunk: l.chunk,
                begin: l.begin,
                end: l.end,
                lease_id: l.lease_id,
                deadline_ms: l.deadline_ms,
            }),
            failed_reason: String::new(),
        },
        LeaseOutcome::Wait => LeaseTaskReply {
            outcome: Outcome::Wait as i32,
            ..Default::default()
        },
        LeaseOutcome::Finished => LeaseTaskReply {
            outcome: Outcome::Finished as i32,
            ..Default::default()
        },
        LeaseOutcome::Seal(l) => LeaseTaskReply {
            outcome: Outcome::Seal as i32,
            task: Some(Task {
                pass: l.pass,
                lease_id: l.lease_id,
                deadline_ms: l.deadline_ms,
                ..Default::default()
            }),
            ..Default::default()
        },
        LeaseOutcome::Failed(reason) => LeaseTaskReply {
            outcome: Outcome::Failed as i32,
            task: None,
            failed_reason: reason,
        },
    }
}

#[tonic::async_trait]
impl Master for MasterService {
    async fn register(
        &self,
        req: Request<RegisterRequest>,
    ) -> Result<Response<RegisterReply>, Status> {
        let id = req.into_inner().trainer_id;
        let now = self.now();
        let mut inner = self.lock();
        inner.book.register(&id, now).map_err(book_status)?;
        tracing::info!(trainer = %id, "trainer registered");
        Ok(Response::new(RegisterReply {
            heartbeat_interval_ms: self.heartbeat_interval_ms,
            heartbeat_timeout_ms: inner.book.config.heartbeat_timeout_ms,
            job_started: inner.book.started(),
        }))
    }

    async fn heartbeat(
        &self,
        req: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatReply>, Status> {
        let id = req.into_inner().trainer_id;
        let now = self.now();
        let known = self.lock().book.heartbeat(&id, now);
        Ok(Response::new(HeartbeatReply { known }))
    }

    async fn lease_task(
        &self,
        req: Request<LeaseTaskRequest>,
    ) -> Result<Response<LeaseTaskReply>, Status> {
        let id = req.into_inner().trainer_id;
        let now = self.now();
        let outcome = self.lock().book.lease(&id, now).map_err(book_status)?;
        Ok(Response::new(lease_reply(outcome)))
    }

    async fn complete_task(
        &self,
        req: Request<CompleteTaskRequest>,
    ) -> Result<Response<CompleteTaskReply>, Status> {
        let r = req.into_inner();
        if !r.loss.is_finite() || r.loss < 0.0 {
            return Err(Status::invalid_argument(format!(
                "loss must be a finite number >= 0, got {}",
                r.loss
            )));
        }
        let now = self.now();
        let mut inner = self.lock();
        let events = inner
            .book
            .complete(&r.trainer_id, r.pass, r.chunk, r.lease_id, now)
            .map_err(book_status)?;
        // Durable before the trainer hears "done": a crash now cannot lose the chunk.
        Self::record(&mut inner, &events)?;
        if inner.losses.len() == RECENT_LOSSES {
            inner.losses.pop_front();
        }
        inner.losses.push_back(r.loss);
        let save_granted = inner
            .book
            .request_save(&r.trainer_id, false, now)
            .unwrap_or(false);
        let next = if r.lease_next {
            let outcome = inner.book.lease(&r.trainer_id, now).map_err(book_status)?;
            Some(lease_reply(outcome))
        } else {
            None
        };
        if events
            .iter()
            .any(|e| matches!(e, Event::PassAdvanced { .. }))
            || inner.book.finished()
        {
            tracing::info!(
                pass = inner.book.pass(),
                finished = inner.book.finished(),
                "pass done"
            );
        }
        Ok(Response::new(CompleteTaskReply { save_granted, next }))
    }

    async fn fail_task(
        &self,
        req: Request<FailTaskRequest>,
    ) -> Result<Response<FailTaskReply>, Status> {
        let r = req.into_inner();
        let now = self.now();
        let mut inner = self.lock();
        let events = inner
            .book
            .fail(&r.trainer_id, r.pass, r.chunk, r.lease_id, now)
            .map_err(book_status)?;
        tracing::warn!(trainer = %r.trainer_id, pass = r.pass, chunk = r.chunk, reason = %r.reason, "chunk failed");
        Self::record(&mut inner, &events)?;
        Ok(Response::new(FailTaskReply {}))
    }

    async fn report_seal(
        &self,
        req: Request<ReportSealRequest>,
    ) -> Result<Response<ReportSealReply>, Status> {
        let r = req.into_inner();
        let now = self.now();
        let mut inner = self.lock();
        let (outcome, events) = inner
            .book
            .report_seal(
                &r.trainer_id,
                r.pass,
                r.lease_id,
                r.shards.len(),
                |shard, chunk| applied::bit(&r.shards[shard], chunk),
                now,
            )
            .map_err(book_status)?;
        Self::record(&mut inner, &events)?;
        Ok(Response::new(match outcome {
            SealOutcome::Sealed => {
                tracing::info!(pass = r.pass, shards = r.shards.len(), "pass sealed");
                ReportSealReply {
                    sealed: true,
                    redo: 0,
                }
            }
            SealOutcome::Redo(chunks) => {
                tracing::warn!(
                    pass = r.pass,
                    chunks = chunks.len(),
                    "done chunks missing on a pserver shard at the seal; doing them again"
                );
                ReportSealReply {
                    sealed: false,
                    redo: chunks.len() as u32,
                }
            }
        }))
    }

    async fn fail_job(
        &self,
        req: Request<FailJobRequest>,
    ) -> Result<Response<FailJobReply>, Status> {
        let r = req.into_inner();
        if r.reason.trim().is_empty() || r.reason.len() > MAX_FAIL_REASON {
            return Err(Status::invalid_argument(format!(
                "reason must be 1 to {MAX_FAIL_REASON} bytes, got {}",
                r.reason.len()
            )));
        }
        let mut inner = self.lock();
        let events = inner
            .book
            .fail_job(&r.trainer_id, &r.reason)
            .map_err(book_status)?;
        if !events.is_empty() {
            tracing::error!(trainer = %r.trainer_id, reason = %r.reason, "the job failed");
            Self::record(&mut inner, &events)?;
            // Not left to the batched fsync: a restarted master must still know.
            inner.journal.sync().map_err(journal_status)?;
        }
        Ok(Response::new(FailJobReply {}))
    }

    async fn deregister(
        &self,
        req: Request<DeregisterRequest>,
    ) -> Result<Response<DeregisterReply>, Status> {
        let id = req.into_inner().trainer_id;
        let returned = self.lock().book.deregister(&id);
        tracing::info!(trainer = %id, returned, "trainer left");
        Ok(Response::new(DeregisterReply {
            returned_leases: returned,
        }))
    }

    async fn request_save(
        &self,
        req: Request<RequestSaveRequest>,
    ) -> Result<Response<RequestSaveReply>, Status> {
        let r = req.into_inner();
        let now = self.now();
        let granted = self
            .lock()
            .book
            .request_save(&r.trainer_id, r.r#final, now)
            .map_err(book_status)?;
        Ok(Response::new(RequestSaveReply { granted }))
    }

    async fn report_eval(
        &self,
        req: Request<ReportEvalRequest>,
    ) -> Result<Response<ReportEvalReply>, Status> {
        let r = req.into_inner();
        if !(0.0..=1.0).contains(&r.accuracy) {
            return Err(Status::invalid_argument(format!(
                "accuracy must be in [0, 1], got {}",
                r.accuracy
            )));
        }
        let mut inner = self.lock();
        inner.last_accuracy = r.accuracy;
        tracing::info!(trainer = %r.trainer_id, accuracy = r.accuracy, final_eval = r.r#final, "evaluation");
        if r.r#final {
            let events = inner.book.report_final(&r.trainer_id, r.accuracy);
            Self::record(&mut inner, &events)?;
            inner.journal.sync().map_err(journal_status)?;
        }
        Ok(Response::new(ReportEvalReply {}))
    }

    async fn status(&self, _req: Request<StatusRequest>) -> Result<Response<StatusReply>, Status> {
        let inner = self.lock();
        let book = &inner.book;
        let counts = book.counts();
        let pass_status = book
            .history()
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let current = i as u32 == book.pass() && !book.finished();
                PassStatus {
                    pass: i as u32,
                    chunks: book.chunks(),
                    todo: if current { counts[0] } else { 0 },
                    pending: if current { counts[1] } else { 0 },
                    done: t.done,
                    failed: t.failed,
                    completions: t.completions,
                    redone: t.redone,
                }
            })
            .collect();
        Ok(Response::new(StatusReply {
            current_pass: book.pass(),
            passes: book.config.passes,
            finished: book.finished(),
            pass_status,
            trainers: book.trainers(),
            recent_loss: inner.losses.iter().copied().collect(),
            last_accuracy: inner.last_accuracy,
            final_accuracy_reported: book.final_saved(),
            rejected_completions: book.rejected_completions,
            requeued_leases: book.requeued_leases,
            failed_reason: book.failed().unwrap_or_default().to_string(),
        }))
    }
}

/// Serves until `shutdown` resolves, then writes a final snapshot.
/// How long in-flight calls get to finish once the master is told to stop.
const DRAIN: Duration = Duration::from_secs(2);

pub async fn serve(
    service: MasterService,
    listener: tokio::net::TcpListener,
    config: &MasterConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let reaper = {
        let s = service.clone();
        let every = Duration::from_millis((config.book.heartbeat_timeout_ms / 4).clamp(10, 500));
        spawn_every(every, move || {
            s.reap();
            std::future::ready(())
        })
    };
    let syncer = {
        let s = service.clone();
        spawn_every(
            Duration::from_millis(config.sync_interval_ms.max(1)),
            move || {
                s.sync();
                std::future::ready(())
            },
        )
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tonic::transport::Server::builder()
        .add_service(service.clone().server())
        .serve_with_incoming_shutdown(incoming(listener), async {
            let _ = stopped.await;
        });
    tokio::pin!(server);
    let result = tokio::select! {
        r = &mut server => r,
        _ = shutdown => {
            let _ = stop.send(());
            // Graceful shutdown waits for every connection to close; a client that keeps
            // one open (a status poller) must not keep the master alive.
            tokio::time::timeout(DRAIN, &mut server).await.unwrap_or(Ok(()))
        }
    };
    reaper.abort();
    syncer.abort();
    service.compact();
    result
}

/// Runs `tick` every `period` until the returned handle is aborted.
pub(crate) fn spawn_every<F, Fut>(period: Duration, mut tick: F) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        loop {
            interval.tick().await;
            tick().await;
        }
    })
}

/// Accepted connections with Nagle off: every RPC here is a small request waiting on
/// its reply, and Nagle plus delayed ACKs would add 40 ms to each.
pub fn incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}
