//! A job's progress, asked of its master: what `ebbctl watch` shows, for both backends.

use super::proto::Progress;
use crate::coord::client;
use crate::coord::proto::StatusRequest;
use crate::coord::proto::master_client::MasterClient;
use std::collections::HashMap;
use std::time::Duration;
use tonic::transport::Channel;

/// How long a master may take to answer before its last progress stands.
const ASK_TIMEOUT: Duration = Duration::from_secs(1);

/// Asks masters for their Status, keeping one connection per address across rounds.
#[derive(Default)]
pub struct MasterPoller {
    clients: HashMap<String, MasterClient<Channel>>,
}

impl MasterPoller {
    /// The progress of the master at `addr`, or None when it does not answer in time.
    pub async fn ask(&mut self, addr: &str) -> Option<Progress> {
        if !self.clients.contains_key(addr) {
            self.clients
                .insert(addr.to_string(), client::master(addr).ok()?);
        }
        let master = self.clients.get_mut(addr)?;
        let asked = tokio::time::timeout(ASK_TIMEOUT, master.status(StatusRequest {})).await;
        match asked {
            Ok(Ok(reply)) => Some(progress(reply.get_ref())),
            _ => None,
        }
    }

    /// Drops connections to masters no longer asked about.
    pub fn keep_only<'a>(&mut self, addrs: impl IntoIterator<Item = &'a str>) {
        let keep: std::collections::HashSet<&str> = addrs.into_iter().collect();
        self.clients.retain(|a, _| keep.contains(a.as_str()));
    }
}

/// A master's Status answer as the progress ebbctl shows.
pub fn progress(s: &crate::coord::proto::StatusReply) -> Progress {
    let current = s
        .pass_status
        .iter()
        .find(|p| p.pass == s.current_pass)
        .or(s.pass_status.last());
    Progress {
        current_pass: s.current_pass,
        passes: s.passes,
        chunks_per_pass: current.map_or(0, |p| p.chunks),
        chunks_done: current.map_or(0, |p| p.done),
        last_accuracy: s.last_accuracy,
        finished: s.finished,
        duplicate_completions: s
            .pass_status
            .iter()
            .map(|p| u64::from(p.completions.saturating_sub(p.done)))
            .sum(),
    }
}
