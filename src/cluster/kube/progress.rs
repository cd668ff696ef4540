//! Each running job's progress for ebbctl, asked of its master through the master's
//! Service (the controller runs inside the cluster network).

use super::job_store::JobStore;
use crate::api::progress::MasterPoller;
use crate::api::proto::Progress;
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

/// Asks every admitted, unfinished job's master every `every`; a master that does not
/// answer keeps its job's last progress.
pub async fn poll(book: ProgressBook, jobs: JobStore, every: Duration, address: MasterAddress) {
    let mut masters = MasterPoller::default();
    loop {
        let mut asked = Vec::new();
        for tj in jobs.state() {
            let status = tj.status.as_ref();
            let running = status.is_some_and(|s| !s.phase.is_finished() && s.start_time.is_some());
            let (Some(ns), Some(name)) = (&tj.metadata.namespace, &tj.metadata.name) else {
                continue;
            };
            if !running {
                continue;
            }
            let addr = address(name, ns);
            if let Some(p) = masters.ask(&addr).await
                && let Ok(mut b) = book.lock()
            {
                b.insert((ns.clone(), name.clone()), p);
            }
            asked.push(addr);
        }
        masters.keep_only(asked.iter().map(String::as_str));
        tokio::time::sleep(every).await;
    }
}
