//! Leadership: only the replica holding the `coordination.k8s.io` Lease acts; the others
//! keep their reflectors warm so a failover acts within one lease duration.

use kube::Client;
use kube_lease_manager::{LeaseCreateMode, LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;

pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    pub duration_s: u64,
    pub grace_s: u64,
}

/// A channel that says whether this replica leads now. Without a lease (`None`), this
/// replica always leads: one replica, or a local run.
pub async fn leadership(
    client: &Client,
    lease: Option<LeaseConfig>,
) -> Result<watch::Receiver<bool>, LeaseManagerError> {
    let Some(lease) = lease else {
        let (sender, receiver) = watch::channel(true);
        // Dropping the sender would close the channel; keep it for the process lifetime.
        std::mem::forget(sender);
        return Ok(receiver);
    };
    let manager = LeaseManagerBuilder::new(client.clone(), lease.name)
        .with_namespace(lease.namespace)
        .with_identity(lease.identity)
        .with_duration(lease.duration_s)
        .with_grace(lease.grace_s)
        .with_field_manager(crate::resource::names::CONTROLLER_NAME)
        .with_create_mode(LeaseCreateMode::AutoCreate)
        .build()
        .await?;
    let (receiver, task) = manager.watch().await;
    tokio::spawn(async move {
        if let Ok(Err(e)) = task.await {
            tracing::error!(error = %e, "leader election stopped");
        }
    });
    Ok(receiver)
}
