//! Serving the control API on a socket, with TLS when a certificate is configured, and
//! the connection limits of `limits.rs` (documented in `docs/control-api.md`).

use super::limits::{ConnectionLimits, limited_incoming};
use super::service::Control;
use std::path::PathBuf;
use tonic::transport::{Identity, Server, ServerTlsConfig};

#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reading {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("control API: {0}")]
    Transport(#[from] tonic::transport::Error),
}

pub async fn serve(
    control: Control,
    listener: tokio::net::TcpListener,
    tls: Option<TlsFiles>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let limits = ConnectionLimits::default();
    let mut builder = Server::builder()
        .max_concurrent_streams(limits.max_streams_per_connection)
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout));
    if let Some(tls) = tls {
        let read = |p: &PathBuf| {
            std::fs::read(p).map_err(|source| ServeError::Read {
                path: p.display().to_string(),
                source,
            })
        };
        let identity = Identity::from_pem(read(&tls.cert)?, read(&tls.key)?);
        builder = builder.tls_config(ServerTlsConfig::new().identity(identity))?;
    }
    builder
        .add_service(control.job_server())
        .add_service(control.queue_server())
        .add_service(control.cluster_server())
        .serve_with_incoming_shutdown(limited_incoming(listener, &limits), shutdown)
        .await?;
    Ok(())
}
