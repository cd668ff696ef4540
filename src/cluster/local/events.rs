//! The embedded cluster's Events: what `kubectl get events` would list for its jobs,
//! kept in memory (the newest `KEPT`) and sent to watchers as they happen.

use crate::api::backend::{EventQuery, EventStream};
use crate::api::proto::Event;
use crate::model::JobKey;
use std::collections::VecDeque;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tonic::Status;

/// Events kept for listing; older ones are dropped (the API server keeps an hour).
const KEPT: usize = 2000;

pub struct EventLog {
    recent: VecDeque<Event>,
    tx: broadcast::Sender<Event>,
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog {
            recent: VecDeque::new(),
            tx: broadcast::channel(1024).0,
        }
    }
}

impl EventLog {
    /// Records one Event. The same reason and message again for the same job counts up
    /// the last one, as the API server's event aggregation does.
    pub fn record(
        &mut self,
        job: &JobKey,
        warning: bool,
        reason: &str,
        message: &str,
        time_s: f64,
    ) {
        if let Some(last) = self
            .recent
            .iter_mut()
            .rev()
            .find(|e| e.namespace == job.namespace && e.job == job.name)
            && last.reason == reason
            && last.message == message
        {
            last.count += 1;
            last.time_s = time_s;
            let _ = self.tx.send(last.clone());
            return;
        }
        let event = Event {
            namespace: job.namespace.clone(),
            job: job.name.clone(),
            r#type: if warning { "Warning" } else { "Normal" }.into(),
            reason: reason.into(),
            message: message.into(),
            time_s,
            count: 1,
        };
        if self.recent.len() == KEPT {
            self.recent.pop_front();
        }
        self.recent.push_back(event.clone());
        // No watchers is fine.
        let _ = self.tx.send(event);
    }

    /// The kept Events the query wants, then (with `watch`) each new one.
    pub fn stream(&self, query: EventQuery) -> EventStream {
        let mut rx = self.tx.subscribe();
        let now: Vec<Event> = self
            .recent
            .iter()
            .filter(|e| query.wants(e))
            .cloned()
            .collect();
        let (tx, out) = tokio::sync::mpsc::channel::<Result<Event, Status>>(64);
        tokio::spawn(async move {
            for e in now {
                if tx.send(Ok(e)).await.is_err() {
                    return;
                }
            }
            if !query.watch {
                return;
            }
            loop {
                match rx.recv().await {
                    Ok(e) if query.wants(&e) => {
                        if tx.send(Ok(e)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "an events watcher fell behind");
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Box::pin(futures::stream::unfold(out, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn events_list_in_order_repeat_by_count_and_filter_by_job() {
        let mut log = EventLog::default();
        let a = JobKey::new("default", "a");
        let b = JobKey::new("default", "b");
        log.record(&a, false, "Admitted", "ok", 1.0);
        log.record(&b, true, "InvalidSpec", "bad", 2.0);
        log.record(&a, true, "PodFailed", "x", 3.0);
        log.record(&a, true, "PodFailed", "x", 4.0);
        let query = EventQuery {
            namespace: Some("default".into()),
            job: Some("a".into()),
            watch: false,
        };
        let got: Vec<Event> = log.stream(query).map(|e| e.unwrap()).collect().await;
        let reasons: Vec<(&str, u32)> = got.iter().map(|e| (e.reason.as_str(), e.count)).collect();
        assert_eq!(reasons, [("Admitted", 1), ("PodFailed", 2)]);
        assert_eq!(got[1].time_s, 4.0);
        assert_eq!(got[1].r#type, "Warning");
    }

    #[tokio::test]
    async fn a_watcher_gets_new_events() {
        let mut log = EventLog::default();
        let a = JobKey::new("default", "a");
        let mut s = log.stream(EventQuery {
            watch: true,
            ..EventQuery::default()
        });
        log.record(&a, false, "Scaled", "trainers 1 -> 3", 1.0);
        assert_eq!(s.next().await.unwrap().unwrap().reason, "Scaled");
    }
}
