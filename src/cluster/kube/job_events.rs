//! `ebbctl events` on Kubernetes: the Events whose involved object is a TrainingJob (what
//! `kubectl get events --field-selector involvedObject.kind=TrainingJob` lists), read
//! through core/v1, which serves the events.k8s.io Events the controller records too.

use super::control::status_of;
use crate::api::backend::{EventQuery, EventStream};
use crate::api::proto::Event;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Event as KubeEvent;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use tonic::Status;

/// The field selector for the query's jobs (core/v1 Events support `involvedObject.*`).
pub fn field_selector(query: &EventQuery) -> String {
    let mut s = String::from("involvedObject.kind=TrainingJob");
    if let Some(job) = &query.job {
        s.push_str(",involvedObject.name=");
        s.push_str(job);
    }
    s
}

/// One Kubernetes Event as the control API's; `None` for one about something else.
pub fn event_message(e: &KubeEvent) -> Option<Event> {
    let about = &e.involved_object;
    if about.kind.as_deref() != Some("TrainingJob") {
        return None;
    }
    let time = e
        .last_timestamp
        .as_ref()
        .map(crate::resource::time::seconds)
        .or_else(|| {
            e.event_time
                .as_ref()
                .map(|t| t.0.as_millisecond() as f64 / 1000.0)
        })
        .or_else(|| {
            e.first_timestamp
                .as_ref()
                .map(crate::resource::time::seconds)
        })
        .or_else(|| {
            e.metadata
                .creation_timestamp
                .as_ref()
                .map(crate::resource::time::seconds)
        })
        .unwrap_or(0.0);
    let count = e
        .series
        .as_ref()
        .and_then(|s| s.count)
        .or(e.count)
        .unwrap_or(1)
        .max(1);
    Some(Event {
        namespace: about
            .namespace
            .clone()
            .or_else(|| e.metadata.namespace.clone())
            .unwrap_or_default(),
        job: about.name.clone().unwrap_or_default(),
        r#type: e.type_.clone().unwrap_or_else(|| "Normal".into()),
        reason: e.reason.clone().unwrap_or_default(),
        message: e.message.clone().unwrap_or_default(),
        time_s: time,
        count: u32::try_from(count).unwrap_or(u32::MAX),
    })
}

pub async fn events(client: kube::Client, query: EventQuery) -> Result<EventStream, Status> {
    let api: Api<KubeEvent> = match &query.namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let fields = field_selector(&query);
    let listed = api
        .list(&ListParams::default().fields(&fields))
        .await
        .map_err(status_of)?;
    let mut now: Vec<Event> = listed.items.iter().filter_map(event_message).collect();
    now.sort_by(|a, b| a.time_s.total_cmp(&b.time_s));
    let first = futures::stream::iter(now.into_iter().map(Ok));
    if !query.watch {
        return Ok(Box::pin(first));
    }
    let version = listed.metadata.resource_version.unwrap_or_default();
    let watched = api
        .watch(&WatchParams::default().fields(&fields), &version)
        .await
        .map_err(status_of)?;
    let later = watched.filter_map(|w| async move {
        match w {
            Ok(WatchEvent::Added(e) | WatchEvent::Modified(e)) => event_message(&e).map(Ok),
            Ok(WatchEvent::Error(s)) => Some(Err(Status::unavailable(format!(
                "watching Events: {}",
                s.message
            )))),
            Ok(_) => None,
            Err(e) => Some(Err(status_of(e))),
        }
    });
    Ok(Box::pin(first.chain(later)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_name_the_kind_and_the_job() {
        let all = EventQuery::default();
        assert_eq!(field_selector(&all), "involvedObject.kind=TrainingJob");
        let one = EventQuery {
            job: Some("first".into()),
            ..EventQuery::default()
        };
        assert_eq!(
            field_selector(&one),
            "involvedObject.kind=TrainingJob,involvedObject.name=first"
        );
    }

    #[test]
    fn a_recorded_event_reads_back() {
        let e: KubeEvent = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "first.1", "namespace": "default"},
            "involvedObject": {"kind": "TrainingJob", "name": "first", "namespace": "default"},
            "reason": "Scaled",
            "message": "trainers 1 -> 3",
            "type": "Normal",
            "eventTime": "2026-12-07T03:00:00.000000Z",
            "series": {"count": 3, "lastObservedTime": "2026-12-07T03:00:05.000000Z"}
        }))
        .unwrap();
        let m = event_message(&e).unwrap();
        assert_eq!(
            (m.job.as_str(), m.reason.as_str(), m.count),
            ("first", "Scaled", 3)
        );
        assert!(m.time_s > 1.7e9);
        let mut pod = e.clone();
        pod.involved_object.kind = Some("Pod".into());
        assert!(event_message(&pod).is_none());
    }
}
