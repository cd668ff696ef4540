//! A connection to the control API with the context's token on every call.

use super::config::Context;
use crate::api::proto::cluster_service_client::ClusterServiceClient;
use crate::api::proto::job_service_client::JobServiceClient;
use crate::api::proto::queue_service_client::QueueServiceClient;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("context {context}: {message}")]
    Scheme { context: String, message: String },
    #[error("endpoint {endpoint:?}: {message}")]
    Endpoint { endpoint: String, message: String },
    #[error("reading CA {path}")]
    Ca {
        path: String,
        source: std::io::Error,
    },
    #[error("token: not a valid header value")]
    Token,
}

#[derive(Clone)]
pub struct Bearer(MetadataValue<tonic::metadata::Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

pub type Authed = InterceptedService<Channel, Bearer>;

pub struct Clients {
    pub jobs: JobServiceClient<Authed>,
    pub queues: QueueServiceClient<Authed>,
    pub cluster: ClusterServiceClient<Authed>,
}

pub fn connect(context: &Context) -> Result<Clients, ConnectError> {
    let bad = |message: String| ConnectError::Endpoint {
        endpoint: context.endpoint.clone(),
        message,
    };
    super::errors::check_endpoint(&context.endpoint).map_err(|message| ConnectError::Scheme {
        context: context.name.clone(),
        message,
    })?;
    let mut endpoint = Endpoint::from_shared(context.endpoint.clone())
        .map_err(|e| bad(e.to_string()))?
        .connect_timeout(std::time::Duration::from_secs(3));
    if context.endpoint.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_enabled_roots();
        if let Some(ca) = &context.ca {
            let pem = std::fs::read(ca).map_err(|source| ConnectError::Ca {
                path: ca.display().to_string(),
                source,
            })?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        endpoint = endpoint.tls_config(tls).map_err(|e| bad(e.to_string()))?;
    }
    let channel = endpoint.connect_lazy();
    let bearer = Bearer(
        format!("Bearer {}", context.token)
            .parse()
            .map_err(|_| ConnectError::Token)?,
    );
    Ok(Clients {
        jobs: JobServiceClient::with_interceptor(channel.clone(), bearer.clone()),
        queues: QueueServiceClient::with_interceptor(channel.clone(), bearer.clone()),
        cluster: ClusterServiceClient::with_interceptor(channel, bearer),
    })
}
