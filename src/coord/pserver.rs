//! `ebb pserver`: one shard of the parameters behind gRPC, checkpointed every interval
//! and on shutdown, restored on start.

use super::applied::ChunkKey;
use super::checkpoint;
use super::error::CoordError;
use super::floats;
use super::proto::pserver_server::{Pserver, PserverServer};
use super::proto::*;
use super::store::{LayoutSpec, OptimizerKind, OptimizerSpec, Store, StoreError};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tonic::{Request, Response, Status, Streaming};

/// One message holds one block (at most `MAX_BLOCK_SIZE` floats, 16 MiB) plus framing;
/// refuse anything beyond.
pub const MAX_PSERVER_MESSAGE: usize = 17 << 20;
/// HTTP/2 flow-control window for parameter traffic (both ends).
pub const WINDOW: u32 = 16 << 20;
/// Largest HTTP/2 frame either end accepts: a 256 KiB block in one frame, not sixteen.
pub const FRAME: u32 = 1 << 20;

#[derive(Clone, Debug)]
pub struct PserverConfig {
    pub index: u32,
    pub checkpoint_dir: PathBuf,
    pub checkpoint_interval: Duration,
}

struct Shard {
    store: Option<Store>,
    saved_version: Option<u64>,
    restored_from: String,
    /// Why this pserver refuses to serve: its job had started (there are checkpoint
    /// files) but none reads. Serving would hand out parameters it never restored, and
    /// an Init would silently restart the shard from random values.
    lost: Option<String>,
}

impl Shard {
    /// Refuses every call of a pserver whose parameters are lost.
    fn not_lost(&self) -> Result<(), Status> {
        match &self.lost {
            Some(lost) => Err(Status::failed_precondition(lost.clone())),
            None => Ok(()),
        }
    }

    /// The parameters, if this pserver may serve them.
    fn serving(&self) -> Result<&Store, Status> {
        self.not_lost()?;
        self.store.as_ref().ok_or_else(not_initialised)
    }

    fn serving_mut(&mut self) -> Result<&mut Store, Status> {
        self.not_lost()?;
        self.store.as_mut().ok_or_else(not_initialised)
    }
}

#[derive(Clone)]
pub struct PserverService {
    shard: Arc<RwLock<Shard>>,
    config: Arc<PserverConfig>,
    /// One Init at a time, held while its first checkpoint is written.
    init_lock: Arc<tokio::sync::Mutex<()>>,
    /// One checkpoint write at a time: they share the temporary file.
    save_lock: Arc<tokio::sync::Mutex<()>>,
}

/// Writes an encoded checkpoint off the async threads (fsync included); the caller holds
/// `save_lock`.
async fn write_checkpoint(bytes: Vec<u8>, path: PathBuf) -> Result<(), CoordError> {
    tokio::task::spawn_blocking(move || checkpoint::save_encoded(&bytes, &path))
        .await
        .map_err(|e| CoordError::invalid("checkpoint task", e.to_string()))?
}

/// How a pserver without parameters (no Init yet, or a lost disk) refuses a call.
pub const NOT_INITIALISED: &str = "parameters not initialised";

fn not_initialised() -> Status {
    Status::failed_precondition(format!("{NOT_INITIALISED}: call Init first"))
}

/// What a lost pserver answers, beginning with [`LOST`] so that a trainer can tell it
/// from a call made too early.
fn lost_reason(index: u32, dir: &std::path::Path, problems: &[CoordError]) -> String {
    let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
    format!(
        "{LOST}: pserver {index} has checkpoint files in {} but none reads ({}); it will not serve parameters it did not restore. Put a good checkpoint back and restart it, or fail the job",
        dir.display(),
        problems.join("; ")
    )
}

/// How a lost pserver's refusals begin.
pub const LOST: &str = "parameters lost";

fn store_status(e: StoreError) -> Status {
    Status::invalid_argument(e.to_string())
}

impl PserverService {
    /// Restores the newest good checkpoint of this shard, if any.
    pub fn open(config: PserverConfig) -> Result<PserverService, CoordError> {
        std::fs::create_dir_all(&config.checkpoint_dir)
            .map_err(|e| CoordError::io(&config.checkpoint_dir, e))?;
        let path = checkpoint::path_for(&config.checkpoint_dir, config.index);
        let (found, problems) = checkpoint::load(&path);
        for p in &problems {
            tracing::error!(error = %p, "rejected checkpoint");
        }
        // The first checkpoint is written before Init is answered, so checkpoint files
        // mean the job had started on this shard.
        let lost = (found.is_none() && !problems.is_empty())
            .then(|| lost_reason(config.index, &config.checkpoint_dir, &problems));
        if let Some(lost) = &lost {
            tracing::error!(reason = %lost, "refusing to serve");
        }
        let (store, restored_from) = match found {
            Some((store, from)) if store.index == config.index => {
                tracing::info!(from = %from.display(), version = store.version, "restored checkpoint");
                (Some(store), from.display().to_string())
            }
            Some((store, from)) => {
                return Err(CoordError::Checkpoint {
                    path: from,
                    message: format!(
                        "holds shard {} but this is pserver {}",
                        store.index, config.index
                    ),
                });
            }
            None => (None, String::new()),
        };
        let saved_version = store.as_ref().map(|s| s.version);
        Ok(PserverService {
            shard: Arc::new(RwLock::new(Shard {
                store,
                saved_version,
                restored_from,
                lost,
            })),
            config: Arc::new(config),
            init_lock: Arc::new(tokio::sync::Mutex::new(())),
            save_lock: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Shard> {
        self.shard.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Shard> {
        self.shard.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes a checkpoint when anything changed since the last one.
    pub async fn checkpoint(&self) -> Result<(), CoordError> {
        self.checkpoint_holding(None).await.map(|_| ())
    }

    /// [`PserverService::checkpoint`], then what the newest checkpoint on disk holds:
    /// its version and, for `pass`, the bitmap of its applied chunks. None before Init.
    async fn checkpoint_holding(
        &self,
        pass: Option<u32>,
    ) -> Result<Option<(u64, Vec<u8>)>, CoordError> {
        let _one_writer = self.save_lock.lock().await;
        let path = checkpoint::path_for(&self.config.checkpoint_dir, self.config.index);
        let (bytes, version, held) = {
            let shard = self.read();
            let Some(s) = &shard.store else {
                return Ok(None);
            };
            // The applied record changes only with the version: an unchanged version
            // is on disk already, record and all.
            let bytes = if shard.saved_version == Some(s.version) {
                None
            } else {
                Some(
                    checkpoint::encode(s).map_err(|message| CoordError::Checkpoint {
                        path: path.clone(),
                        message,
                    })?,
                )
            };
            (bytes, s.version, pass.map(|p| s.applied.bitmap(p)))
        };
        if let Some(bytes) = bytes {
            write_checkpoint(bytes, path).await?;
            self.write().saved_version = Some(version);
            tracing::debug!(version, "checkpoint written");
        }
        Ok(Some((version, held.unwrap_or_default())))
    }

    pub fn server(self) -> PserverServer<PserverService> {
        PserverServer::new(self)
            .max_decoding_message_size(MAX_PSERVER_MESSAGE)
            .max_encoding_message_size(MAX_PSERVER_MESSAGE)
    }
}

#[tonic::async_trait]
impl Pserver for PserverService {
    async fn init(&self, req: Request<InitRequest>) -> Result<Response<InitReply>, Status> {
        let r = req.into_inner();
        let layout = r
            .layout
            .ok_or_else(|| Status::invalid_argument("layout is required"))?;
        let layout = LayoutSpec {
            params: layout.params,
            block_size: layout.block_size,
            pservers: layout.pservers,
        };
        if r.pserver_index != self.config.index {
            return Err(Status::invalid_argument(format!(
                "pserver_index is {} but this is pserver {}",
                r.pserver_index, self.config.index
            )));
        }
        let kind = match Optimizer::try_from(r.optimizer) {
            Ok(Optimizer::SgdMomentum) => OptimizerKind::SgdMomentum,
            Ok(Optimizer::Adam) => OptimizerKind::Adam,
            _ => {
                return Err(Status::invalid_argument(
                    "optimizer must be SGD_MOMENTUM or ADAM",
                ));
            }
        };
        let optimizer = OptimizerSpec {
            kind,
            learning_rate: r.learning_rate,
            momentum: r.momentum,
        };
        let _one_at_a_time = self.init_lock.lock().await;
        {
            let shard = self.read();
            if let Some(lost) = &shard.lost {
                return Err(Status::failed_precondition(format!(
                    "{lost} (Init is only for a job that has not started)"
                )));
            }
            if let Some(existing) = &shard.store {
                if existing.layout != layout {
                    return Err(Status::failed_precondition(format!(
                        "layout differs from the one already initialised: have {:?}, asked {:?}",
                        existing.layout, layout
                    )));
                }
                return Ok(Response::new(InitReply { already: true }));
            }
        }
        if r.job_started {
            return Err(Status::failed_precondition(format!(
                "{LOST}: pserver {} has no checkpoint in {} but its job has started; it will not make up parameters. Put the shard's checkpoint back and restart it, or fail the job",
                self.config.index,
                self.config.checkpoint_dir.display()
            )));
        }
        if !(r.init_scale.is_finite() && r.init_scale >= 0.0) {
            return Err(Status::invalid_argument(
                "init_scale must be a finite number >= 0",
            ));
        }
        let store = Store::init(layout, self.config.index, optimizer, r.seed, r.init_scale)
            .map_err(store_status)?;
        // Durable before anyone uses it: a pserver killed before its first periodic
        // checkpoint comes back with these parameters, not without any.
        let path = checkpoint::path_for(&self.config.checkpoint_dir, self.config.index);
        let bytes = checkpoint::encode(&store).map_err(Status::internal)?;
        let _one_writer = self.save_lock.lock().await;
        write_checkpoint(bytes, path.clone()).await.map_err(|e| {
            Status::unavailable(format!("could not write the first checkpoint: {e}"))
        })?;
        tracing::info!(
            params = layout.params,
            blocks = store.blocks.len(),
            checkpoint = %path.display(),
            "parameters initialised"
        );
        let mut shard = self.write();
        shard.saved_version = Some(store.version);
        shard.store = Some(store);
        Ok(Response::new(InitReply { already: false }))
    }

    type PullStream = futures::stream::Iter<std::vec::IntoIter<Result<PullReply, Status>>>;

    async fn pull(&self, _req: Request<PullRequest>) -> Result<Response<Self::PullStream>, Status> {
        // Copied out under the lock so every block is of the same version, then streamed
        // without holding it.
        let replies: Vec<Result<PullReply, Status>> = {
            let shard = self.read();
            let store = shard.serving()?;
            store
                .blocks
                .iter()
                .map(|b| {
                    Ok(PullReply {
                        blocks: vec![Block {
                            index: b.index,
                            values: floats::to_le_bytes(&b.values),
                        }],
                        version: store.version,
                    })
                })
                .collect()
        };
        Ok(Response::new(futures::stream::iter(replies)))
    }

    async fn push(
        &self,
        req: Request<Streaming<PushRequest>>,
    ) -> Result<Response<PushReply>, Status> {
        let mut stream = req.into_inner();
        let mut received: Vec<(usize, bytes::Bytes)> = Vec::new();
        let mut seen = HashSet::new();
        let mut finished = false;
        let mut chunk = None;
        while let Some(message) = stream.message().await? {
            if finished {
                return Err(Status::invalid_argument(
                    "push: a message came after the one marked last; nothing applied",
                ));
            }
            finished = message.last;
            if finished {
                chunk = message.chunk;
            }
            let shard = self.read();
            let store = shard.serving()?;
            for block in message.gradients {
                let position = received.len();
                if !seen.insert(block.index) {
                    return Err(store_status(StoreError::Duplicate {
                        position,
                        block: block.index,
                    }));
                }
                let slot = store
                    .check_gradient(position, block.index, &block.values)
                    .map_err(store_status)?;
                received.push((slot, block.values));
            }
        }
        if !finished {
            return Err(Status::aborted(
                "push: the stream ended before its last message (the trainer gave up or died); nothing applied",
            ));
        }
        let Some(chunk) = chunk else {
            return Err(Status::invalid_argument(
                "push: the last message must name its chunk (pass, chunk, lease_id); nothing applied",
            ));
        };
        let key = ChunkKey {
            pass: chunk.pass,
            chunk: chunk.chunk,
        };
        let checked: Vec<(usize, &[u8])> = received.iter().map(|(s, b)| (*s, &b[..])).collect();
        let mut shard = self.write();
        let store = shard.serving_mut()?;
        let (version, applied) = store.apply_chunk(key, &checked);
        if !applied {
            tracing::debug!(
                pass = key.pass,
                chunk = key.chunk,
                lease = chunk.lease_id,
                "duplicate push dropped"
            );
        }
        Ok(Response::new(PushReply {
            version,
            duplicate: !applied,
        }))
    }

    async fn seal(&self, req: Request<SealRequest>) -> Result<Response<SealReply>, Status> {
        let pass = req.into_inner().pass;
        self.read().serving()?;
        let (version, chunks) = self
            .checkpoint_holding(Some(pass))
            .await
            .map_err(|e| Status::unavailable(format!("seal: checkpoint failed: {e}")))?
            .ok_or_else(not_initialised)?;
        tracing::info!(pass, version, "pass sealed here: checkpoint on disk");
        Ok(Response::new(SealReply { chunks, version }))
    }

    async fn status(
        &self,
        _req: Request<PserverStatusRequest>,
    ) -> Result<Response<PserverStatusReply>, Status> {
        let shard = self.read();
        Ok(Response::new(match &shard.store {
            Some(s) => PserverStatusReply {
                initialized: true,
                version: s.version,
                blocks: s.blocks.len() as u32,
                params: s.layout.params,
                restored_from: shard.restored_from.clone(),
                lost: String::new(),
                applied: s
                    .applied
                    .passes()
                    .map(|(pass, a)| PassApplied {
                        pass,
                        chunks: a.chunks.len() as u32,
                        duplicates: a.duplicates,
                    })
                    .collect(),
            },
            None => PserverStatusReply {
                lost: shard.lost.clone().unwrap_or_default(),
                ..Default::default()
            },
        }))
    }
}

/// Serves until `shutdown` resolves, checkpointing every interval and once more at the end.
pub async fn serve(
    service: PserverService,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let ticker = {
        let s = service.clone();
        let every = s.config.checkpoint_interval.max(Duration::from_millis(10));
        super::master::spawn_every(every, move || {
            let s = s.clone();
            async move {
                if let Err(e) = s.checkpoint().await {
                    tracing::error!(error = %e, "checkpoint failed");
                }
            }
        })
    };
    // HTTP/2's default 64 KiB windows cap a 40 MB push at a crawl over loopback.
    let result = tonic::transport::Server::builder()
        .initial_stream_window_size(Some(WINDOW))
        .initial_connection_window_size(Some(2 * WINDOW))
        .max_frame_size(FRAME)
        .add_service(service.clone().server())
        .serve_with_incoming_shutdown(super::master::incoming(listener), shutdown)
        .await;
    ticker.abort();
    if let Err(e) = service.checkpoint().await {
        tracing::error!(error = %e, "final checkpoint failed");
    }
    result
}
