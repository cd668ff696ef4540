//! The controller's reconcile tick against a mocked API server (tower-test, the way
//! kube-rs's controller-rs tests): the exact requests for admit, scale up, scale down,
//! finish and a bad spec; conflicts and server errors retried; garbage answered without
//! a panic.

mod kube_common;

use ebb::cluster::kube::execute::{Executor, Report, Retry};
use ebb::cluster::kube::{Action, ClusterObjects, RenderConfig, decide};
use ebb::plan::Policy;
use http::{Method, StatusCode};
use kube_common::*;
use serde_json::{Value, json};
use std::time::Duration;

/// What a healthy API server answers: the object back for creates and patches.
fn healthy(seen: &Seen) -> (StatusCode, Value) {
    match seen.method {
        Method::POST if seen.path.ends_with("/binding") => (StatusCode::CREATED, status_ok()),
        Method::POST => (StatusCode::CREATED, seen.body.clone()),
        Method::DELETE => (StatusCode::OK, status_ok()),
        Method::PATCH => {
            // The status subresource answers with the whole object.
            let name = seen.path.rsplit('/').nth(1).unwrap_or_default();
            let mut tj = training_job(name, 1, 1, None);
            tj["status"] = seen.body["status"].clone();
            (StatusCode::OK, tj)
        }
        _ => (StatusCode::NOT_FOUND, status_err(404, "NotFound")),
    }
}

fn status_ok() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
}

fn status_err(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": format!("mock says {reason}"), "reason": reason, "code": code})
}

fn fast_retry() -> Retry {
    Retry {
        attempts: 4,
        base: Duration::from_millis(1),
    }
}

async fn tick(objects: &ClusterObjects, respond: Responder) -> (Vec<Action>, Vec<Seen>, Report) {
    let (client, seen) = api_server(respond);
    let config = RenderConfig {
        runtime_image: "ebb:test".into(),
    };
    let tick = decide(
        objects,
        &Policy::default(),
        &config,
        &at("2026-11-23T10:00:00Z"),
    );
    let executor = Executor::new(client, Some("test".into()), fast_retry());
    let report = executor.execute(&tick.actions).await;
    let seen = seen.lock().unwrap().clone();
    (tick.actions, seen, report)
}

fn calls(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect()
}

fn world(nodes: Vec<Value>, pods: Vec<Value>, jobs: Vec<Value>) -> ClusterObjects {
    ClusterObjects {
        nodes: nodes.into_iter().map(parse).collect(),
        pods: pods.into_iter().map(parse).collect(),
        hpas: Vec::new(),
        jobs: jobs.into_iter().map(parse).collect(),
        unreadable_jobs: Vec::new(),
        queues: vec![parse(
            json!({"apiVersion": "ebb.dev/v1alpha1", "kind": "TrainingQueue",
                                   "metadata": {"name": "default"}, "spec": {"weight": 1}}),
        )],
    }
}

const PODS: &str = "/api/v1/namespaces/ml/pods";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/ml/events";

#[tokio::test]
async fn a_new_job_is_admitted_created_bound_and_reported() {
    let objects = world(
        vec![node("n1", "8", "16Gi", 2)],
        vec![],
        vec![training_job("mnist", 1, 2, None)],
    );
    let (_, seen, report) = tick(&objects, Box::new(|s, _| healthy(s))).await;
    assert_eq!(
        calls(&seen),
        [
            "POST /api/v1/namespaces/ml/services".to_string(),
            "POST /api/v1/namespaces/ml/services".into(),
            format!("POST {PODS}"),
            format!("POST {PODS}/mnist-master-0/binding"),
            format!("POST {PODS}"),
            format!("POST {PODS}/mnist-pserver-0/binding"),
            format!("POST {PODS}"),
            format!("POST {PODS}/mnist-trainer-0/binding"),
            format!("POST {PODS}"),
            format!("POST {PODS}/mnist-trainer-1/binding"),
            format!("POST {EVENTS}"),
            "PATCH /apis/ebb.dev/v1alpha1/namespaces/ml/trainingjobs/mnist/status".into(),
        ]
    );
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(seen[0].body["metadata"]["name"], "mnist-master");
    assert_eq!(seen[1].body["spec"]["clusterIP"], "None");
    let trainer = &seen[6].body;
    assert_eq!(trainer["metadata"]["name"], "mnist-trainer-0");
    assert_eq!(trainer["spec"]["schedulerName"], "ebb");
    assert_eq!(
        trainer["metadata"]["ownerReferences"][0]["uid"],
        job_uid("mnist")
    );
    let binding = &seen[7].body;
    assert_eq!(binding["kind"], "Binding");
    assert_eq!(
        binding["target"],
        json!({"apiVersion": "v1", "kind": "Node", "name": "n1"})
    );
    assert_eq!(seen[10].body["reason"], "Admitted");
    assert_eq!(seen[10].body["regarding"]["name"], "mnist");
    let status = &seen[11].body["status"];
    assert_eq!(status["phase"], "Running");
    assert_eq!(status["targetTrainers"], 2);
    assert_eq!(status["currentTrainers"], 2);
    let admitted = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Admitted")
        .unwrap();
    assert_eq!(admitted["status"], "True");
}

#[tokio::test]
async fn a_running_job_grows_into_idle_gpus() {
    let objects = world(
        vec![node("n1", "8", "16Gi", 4)],
        vec![
            job_pod("mnist", "master", 0, "n1", "Running"),
            job_pod("mnist", "pserver", 0, "n1", "Running"),
            job_pod("mnist", "trainer", 0, "n1", "Running"),
        ],
        vec![training_job("mnist", 1, 3, Some(admitted_status(1)))],
    );
    let (_, seen, report) = tick(&objects, Box::new(|s, _| healthy(s))).await;
    assert_eq!(
        calls(&seen),
        [
            format!("POST {PODS}"),
            format!("POST {PODS}/mnist-trainer-1/binding"),
            format!("POST {PODS}"),
            format!("POST {PODS}/mnist-trainer-2/binding"),
            format!("POST {EVENTS}"),
            "PATCH /apis/ebb.dev/v1alpha1/namespaces/ml/trainingjobs/mnist/status".into(),
        ]
    );
    assert!(report.failed.is_empty());
    assert_eq!(seen[4].body["reason"], "Scaled");
    assert_eq!(seen[4].body["note"], "trainers 1 -> 3");
    assert_eq!(seen[5].body["status"]["targetTrainers"], 3);
    assert_eq!(
        seen[5].body["status"]["lastScaleTime"],
        "2026-11-23T10:00:00Z"
    );
}

#[tokio::test]
async fn trainers_yield_to_a_pending_service_pod_and_the_planned_victim_is_deleted() {
    let objects = world(
        vec![node("n1", "5", "16Gi", 4)],
        vec![
            job_pod("mnist", "master", 0, "n1", "Running"),
            job_pod("mnist", "pserver", 0, "n1", "Running"),
            job_pod("mnist", "trainer", 0, "n1", "Running"),
            job_pod("mnist", "trainer", 1, "n1", "Running"),
            job_pod("mnist", "trainer", 2, "n1", "Running"),
            service_pod("nginx-1", "1", None),
        ],
        vec![training_job("mnist", 1, 3, Some(admitted_status(3)))],
    );
    let (actions, seen, report) = tick(&objects, Box::new(|s, _| healthy(s))).await;
    let victim = actions
        .iter()
        .find_map(|a| match a {
            Action::DeletePod { name, .. } => Some(name.clone()),
            _ => None,
        })
        .expect("the plan names a victim");
    assert!(victim.starts_with("mnist-trainer-"));
    assert_eq!(
        calls(&seen),
        [
            format!("DELETE {PODS}/{victim}"),
            format!("POST {EVENTS}"),
            "PATCH /apis/ebb.dev/v1alpha1/namespaces/ml/trainingjobs/mnist/status".into(),
        ]
    );
    assert!(report.failed.is_empty());
    assert_eq!(
        seen[0].body["gracePeriodSeconds"], 30,
        "the pod's own grace period"
    );
    assert_eq!(seen[1].body["note"], "trainers 3 -> 2");
    assert_eq!(seen[2].body["status"]["currentTrainers"], 2);
}

#[tokio::test]
async fn a_finished_job_keeps_its_master_and_frees_the_rest() {
    let objects = world(
        vec![node("n1", "8", "16Gi", 4)],
        vec![
            job_pod("mnist", "master", 0, "n1", "Succeeded"),
            job_pod("mnist", "pserver", 0, "n1", "Running"),
            job_pod("mnist", "trainer", 0, "n1", "Succeeded"),
            job_pod("mnist", "trainer", 1, "n1", "Running"),
        ],
        vec![training_job("mnist", 1, 2, Some(admitted_status(2)))],
    );
    let (_, seen, report) = tick(&objects, Box::new(|s, _| healthy(s))).await;
    let mut deletes: Vec<String> = calls(&seen)
        .into_iter()
        .filter(|c| c.starts_with("DELETE"))
        .collect();
    deletes.sort();
    assert_eq!(
        deletes,
        [
            format!("DELETE {PODS}/mnist-pserver-0"),
            format!("DELETE {PODS}/mnist-trainer-0"),
            format!("DELETE {PODS}/mnist-trainer-1"),
        ]
    );
    let rest: Vec<String> = calls(&seen)
        .into_iter()
        .filter(|c| !c.starts_with("DELETE"))
        .collect();
    assert_eq!(
        rest,
        [
            format!("POST {EVENTS}"),
            "PATCH /apis/ebb.dev/v1alpha1/namespaces/ml/trainingjobs/mnist/status".into()
        ]
    );
    assert!(report.failed.is_empty());
    let event = &seen[3].body;
    assert_eq!(
        (event["reason"].as_str(), event["type"].as_str()),
        (Some("Succeeded"), Some("Normal"))
    );
    let status = &seen[4].body["status"];
    assert_eq!(status["phase"], "Succeeded");
    assert_eq!(status["completionTime"], "2026-11-23T10:00:00Z");

    // Next tick, with the status written: nothing more to do for it.
    let mut done = training_job("mnist", 1, 2, Some(status.clone()));
    done["status"] = status.clone();
    let objects = world(
        vec![node("n1", "8", "16Gi", 4)],
        vec![job_pod("mnist", "master", 0, "n1", "Succeeded")],
        vec![done],
    );
    let (actions, seen, _) = tick(&objects, Box::new(|s, _| healthy(s))).await;
    assert!(actions.is_empty() && seen.is_empty(), "{actions:?}");
}

#[tokio::test]
async fn a_bad_spec_gets_a_condition_naming_the_field_and_others_are_still_served() {
    let mut bad = training_job("broken", 1, 2, None);
    bad["spec"]["trainers"]["resources"]["memory"] = json!("12 gigs");
    let objects = world(
        vec![node("n1", "8", "16Gi", 2)],
        vec![],
        vec![bad, training_job("mnist", 1, 1, None)],
    );
    let (_, seen, report) = tick(&objects, Box::new(|s, _| healthy(s))).await;
    assert!(report.failed.is_empty());
    let broken_status = seen
        .iter()
        .find(|s| s.path.ends_with("/trainingjobs/broken/status"))
        .expect("broken gets a status");
    let condition = &broken_status.body["status"]["conditions"][0];
    assert_eq!(condition["type"], "Admitted");
    assert_eq!(condition["status"], "False");
    assert_eq!(condition["reason"], "InvalidSpec");
    let message = condition["message"].as_str().unwrap();
    assert!(
        message.starts_with("spec.trainers.resources.memory"),
        "{message}"
    );
    assert!(message.contains("12 gigs"), "{message}");
    let warning = seen
        .iter()
        .find(|s| s.path == EVENTS && s.body["reason"] == "InvalidSpec")
        .expect("a warning event");
    assert_eq!(warning.body["type"], "Warning");
    assert!(
        seen.iter()
            .any(|s| s.path == format!("{PODS}/mnist-trainer-0/binding")),
        "the good job is still admitted"
    );
}

#[tokio::test]
async fn conflicts_and_server_errors_are_retried_with_backoff() {
    let objects = world(
        vec![node("n1", "8", "16Gi", 2)],
        vec![],
        vec![training_job("mnist", 1, 1, None)],
    );
    let (_, seen, report) = tick(
        &objects,
        Box::new(|s, before| {
            let first = before == 0;
            if first && s.method == Method::PATCH {
                return (StatusCode::CONFLICT, status_err(409, "Conflict"));
            }
            if s.path.ends_with("/mnist-trainer-0/binding") && before < 2 {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    status_err(503, "ServiceUnavailable"),
                );
            }
            healthy(s)
        }),
    )
    .await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let count = |suffix: &str| seen.iter().filter(|s| s.path.ends_with(suffix)).count();
    assert_eq!(
        count("/mnist-trainer-0/binding"),
        3,
        "two 503s, then success"
    );
    assert_eq!(
        count("/trainingjobs/mnist/status"),
        2,
        "a 409, then success"
    );
}

#[tokio::test]
async fn already_done_work_is_success_and_endless_errors_fail_without_panic() {
    let objects = world(
        vec![node("n1", "8", "16Gi", 2)],
        vec![job_pod("old", "trainer", 0, "n1", "Failed")],
        vec![
            training_job("mnist", 1, 1, None),
            training_job("old", 1, 1, Some(admitted_status(1))),
        ],
    );
    // Creates find the object there already, deletes find it gone.
    let (_, _, report) = tick(
        &objects,
        Box::new(|s, _| match s.method {
            Method::POST if !s.path.ends_with("/binding") && s.path != EVENTS => {
                (StatusCode::CONFLICT, status_err(409, "AlreadyExists"))
            }
            Method::DELETE => (StatusCode::NOT_FOUND, status_err(404, "NotFound")),
            _ => healthy(s),
        }),
    )
    .await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);

    // A server that answers garbage or 500 forever: every call fails, reported, no panic.
    for garbage in [true, false] {
        let (actions, seen, report) = tick(
            &objects,
            Box::new(move |_, _| {
                if garbage {
                    (StatusCode::OK, json!("<html>not json</html>"))
                } else {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        status_err(500, "InternalError"),
                    )
                }
            }),
        )
        .await;
        assert!(!report.failed.is_empty());
        assert!(report.succeeded + report.failed.len() <= actions.len());
        if !garbage {
            // Retried up to the limit, and a pod that could not be created is not bound.
            assert!(
                seen.iter().all(|s| !s.path.ends_with("/binding")),
                "{:?}",
                calls(&seen)
            );
            let creates = seen.iter().filter(|s| s.path == PODS).count();
            assert_eq!(creates % 4, 0, "each create tried 4 times");
        }
    }
}
