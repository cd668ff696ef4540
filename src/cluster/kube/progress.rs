//! Each running job's progress for ebbctl, asked of its master through the master's
//! Service (the controller runs inside the cluster network).

use super::job_store::JobStore;
use super::names::master_address;
use crate::api::convert::progress;
use crate::api::proto::Progress;
use crate::coord::client;
use crate::coord::proto::StatusRequest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Last known progress by (namespace, name).
pub type ProgressBook = Arc<Mutex<HashMap<(String, String), Progress>>>;

pub fn lookup(book: &ProgressBook, namespace: &str, name: &str) -> Option<Progress> {
    book.lock()
        .ok()?
        .get(&(namespace.to_string(), name.to_string()))
        .copied()
}

/// How to reach job `name` in `namespace`'s master (`host:port`).
pub type MasterAddress = fn(&str, &str) -> String;

/// The master's Service in the cluster DNS.
pub fn in_cluster(name: &str, namespace: &str) -> String {
    master_address(name, namespace)
}

/// Asks every admitted, unfinished job's master every `every`; a master that does not
/// answer keeps its job's last progress.
pub async fn poll(book: ProgressBook, jobs: JobStore, every: Duration, address: MasterAddress) {
    loop {
        for tj in jobs.state() {
            let status = tj.status.as_ref();
            let running = status.is_some_and(|s| !s.phase.is_finished() && s.start_time.is_some());
            let (Some(ns), Some(name)) = (&tj.metadata.namespace, &tj.metadata.name) else {
                continue;
            };
            if !running {
                continue;
            }
            let Ok(mut master) = client::master(&address(name, ns)) else {
                continue;
            };
            let asked =
                tokio::time::timeout(Duration::from_secs(1), master.status(StatusRequest {}));
            if let Ok(Ok(reply)) = asked.await
                && let Ok(mut b) = book.lock()
            {
                b.insert((ns.clone(), name.clone()), progress(reply.get_ref()));
            }
        }
        tokio::time::sleep(every).await;
    }
}
