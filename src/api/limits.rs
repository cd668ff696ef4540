//! What one client can hold of the control API: a cap on open connections, and a
//! deadline for a new connection's first bytes (the HTTP/2 preface, or a TLS record
//! header), so that connections which never speak (idle sockets, slowloris) are closed
//! instead of held. Streams per connection and keepalive pings are set on the HTTP/2
//! server (`serve.rs`).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// The client connection preface of HTTP/2 (RFC 9113, section 3.4) is 24 bytes.
const H2_PREFACE_LEN: usize = 24;
/// A TLS record header (RFC 8446, section 5.1): content type 22 is a handshake.
const TLS_HANDSHAKE: u8 = 0x16;
const TLS_RECORD_HEADER_LEN: usize = 5;

#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Open connections at once; more are closed as they arrive.
    pub max_connections: usize,
    /// A new connection must send its first bytes within this long.
    pub first_bytes_within: Duration,
    /// HTTP/2 streams (calls) open at once on one connection.
    pub max_streams_per_connection: u32,
    /// HTTP/2 keepalive: a ping this often, and the connection closed when one is not
    /// answered within `keepalive_timeout` (a peer gone without closing).
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 512,
            first_bytes_within: Duration::from_secs(10),
            max_streams_per_connection: 64,
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
        }
    }
}

/// An accepted connection holding its place under [`ConnectionLimits::max_connections`]
/// until it is dropped.
pub struct Limited {
    stream: TcpStream,
    _place: OwnedSemaphorePermit,
}

/// Connections from `listener` that have spoken within the deadline, under the cap.
/// The accepting stops when the returned stream is dropped.
pub fn limited_incoming(
    listener: TcpListener,
    limits: &ConnectionLimits,
) -> impl futures::Stream<Item = io::Result<Limited>> + Send + 'static {
    let (tx, rx) = mpsc::channel::<io::Result<Limited>>(64);
    let places = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let within = limits.first_bytes_within;
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = tx.closed() => return,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "control API: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(place) = places.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "control API: connection limit reached; closing a new connection");
                continue;
            };
            let _ = stream.set_nodelay(true);
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(within, first_bytes(&stream)).await {
                    Ok(Ok(true)) => {
                        let _ = tx
                            .send(Ok(Limited {
                                stream,
                                _place: place,
                            }))
                            .await;
                    }
                    Ok(Ok(false)) | Ok(Err(_)) => {}
                    Err(_) => {
                        tracing::info!(%peer, ?within, "control API: closing a connection that sent nothing in time");
                    }
                }
            });
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        let next = rx.recv().await?;
        Some((next, rx))
    })
}

/// Waits until the connection has sent the start of a TLS handshake or the whole HTTP/2
/// preface; false if it closed first. Peeked, not read: the server reads them again.
async fn first_bytes(stream: &TcpStream) -> io::Result<bool> {
    let mut buf = [0u8; H2_PREFACE_LEN];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Ok(false);
        }
        let enough = if buf[0] == TLS_HANDSHAKE {
            TLS_RECORD_HEADER_LEN
        } else {
            H2_PREFACE_LEN
        };
        if n >= enough {
            return Ok(true);
        }
        // `peek` answers at once while bytes wait unread: poll for more.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

impl Connected for Limited {
    type ConnectInfo = TcpConnectInfo;
    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Limited {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Limited {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    fn limits(max_connections: usize, within_ms: u64) -> ConnectionLimits {
        ConnectionLimits {
            max_connections,
            first_bytes_within: Duration::from_millis(within_ms),
            ..ConnectionLimits::default()
        }
    }

    async fn listener() -> (TcpListener, std::net::SocketAddr) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        (l, a)
    }

    /// Whether the server closed `c` within `limit` (a read ends or fails).
    async fn closed_within(c: &mut TcpStream, limit: Duration) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(limit, c.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    #[tokio::test]
    async fn silent_and_slow_connections_are_closed_and_speaking_ones_pass() {
        let (l, addr) = listener().await;
        let mut incoming = Box::pin(limited_incoming(l, &limits(8, 300)));
        let mut idle = TcpStream::connect(addr).await.unwrap();
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(&PREFACE[..3]).await.unwrap();
        let mut good = TcpStream::connect(addr).await.unwrap();
        good.write_all(PREFACE).await.unwrap();
        let passed = tokio::time::timeout(Duration::from_secs(2), incoming.next())
            .await
            .expect("the speaking connection passes")
            .unwrap()
            .unwrap();
        let mut first = [0u8; 24];
        let mut s = passed.stream;
        s.read_exact(&mut first).await.unwrap();
        assert_eq!(
            &first, PREFACE,
            "the preface is left for the server to read"
        );
        assert!(
            closed_within(&mut idle, Duration::from_secs(2)).await,
            "idle held"
        );
        assert!(
            closed_within(&mut slow, Duration::from_secs(2)).await,
            "slowloris held"
        );
        let mut tls = TcpStream::connect(addr).await.unwrap();
        tls.write_all(&[TLS_HANDSHAKE, 3, 1, 0, 200]).await.unwrap();
        assert!(
            tokio::time::timeout(Duration::from_secs(2), incoming.next())
                .await
                .is_ok(),
            "a TLS handshake's record header is enough"
        );
        good.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn connections_over_the_cap_are_closed_until_a_place_frees() {
        let (l, addr) = listener().await;
        let mut incoming = Box::pin(limited_incoming(l, &limits(2, 5_000)));
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(PREFACE).await.unwrap();
            held.push((c, incoming.next().await.unwrap().unwrap()));
        }
        let mut third = TcpStream::connect(addr).await.unwrap();
        assert!(
            closed_within(&mut third, Duration::from_secs(2)).await,
            "over the cap"
        );
        drop(held.pop());
        let mut fourth = TcpStream::connect(addr).await.unwrap();
        fourth.write_all(PREFACE).await.unwrap();
        assert!(
            tokio::time::timeout(Duration::from_secs(2), incoming.next())
                .await
                .is_ok(),
            "a freed place takes a new connection"
        );
    }
}
