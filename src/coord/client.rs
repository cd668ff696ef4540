//! Connections from a trainer (or a test, or the benchmark) to the master and pservers,
//! and the retry rule that lets them ride out a restarting master or pserver.

use super::master::MAX_MASTER_MESSAGE;
use super::proto::master_client::MasterClient;
use super::proto::pserver_client::PserverClient;
use super::pserver::{FRAME, MAX_PSERVER_MESSAGE, WINDOW};
use std::future::Future;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

fn endpoint(addr: &str) -> Result<Endpoint, Status> {
    let url = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    Endpoint::from_shared(url)
        .map(|e| e.connect_timeout(Duration::from_secs(1)).tcp_nodelay(true))
        .map_err(|e| Status::invalid_argument(format!("address {addr:?}: {e}")))
}

/// Connects lazily: the first call (and every call after a restart) reconnects.
pub fn master(addr: &str) -> Result<MasterClient<Channel>, Status> {
    Ok(MasterClient::new(endpoint(addr)?.connect_lazy())
        .max_decoding_message_size(16 * MAX_MASTER_MESSAGE)
        .max_encoding_message_size(MAX_MASTER_MESSAGE))
}

pub fn pserver(addr: &str) -> Result<PserverClient<Channel>, Status> {
    let e = endpoint(addr)?
        .initial_stream_window_size(Some(WINDOW))
        .initial_connection_window_size(Some(2 * WINDOW))
        .max_frame_size(FRAME);
    Ok(PserverClient::new(e.connect_lazy())
        .max_decoding_message_size(MAX_PSERVER_MESSAGE)
        .max_encoding_message_size(MAX_PSERVER_MESSAGE))
}

/// Errors that mean "the other side is away", not "you asked something wrong".
pub fn transient(s: &Status) -> bool {
    matches!(
        s.code(),
        Code::Unavailable
            | Code::Unknown
            | Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Internal
    )
}

/// Calls `f` until it succeeds, fails for a reason other than the peer being away, or
/// `patience` runs out.
pub async fn retry<T, F, Fut>(what: &str, patience: Duration, mut f: F) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let start = Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(s) if transient(&s) && start.elapsed() < patience => {
                tracing::debug!(what, code = ?s.code(), message = s.message(), "peer away, retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            Err(s) => return Err(s),
        }
    }
}
