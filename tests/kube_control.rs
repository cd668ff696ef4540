//! ebbctl's API on Kubernetes, against a mocked API server: Submit creates the
//! TrainingJob object, Scale patches it, Delete deletes it, queue Set applies the
//! TrainingQueue; Kubernetes' refusals come back as gRPC codes.

mod kube_common;

use ebb::api::proto::job_service_server::JobService;
use ebb::api::proto::queue_service_server::QueueService;
use ebb::api::proto::{
    EventsRequest, JobRef, JobSpec, LogsRequest, QueuePatch, QueueRef, Resources, ScaleRequest,
    SubmitRequest,
};
use ebb::api::{AuthConfig, Control, Role, TokenEntry};
use ebb::cluster::kube::control::KubeBackend;
use http::{Method, StatusCode};
use kube::runtime::reflector;
use kube_common::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tonic::Code;

const TOKEN: &str = "operator-token-0123456789";

type Log = Arc<Mutex<Vec<Seen>>>;

fn server(conflict_on_create: bool) -> (Control, Log) {
    let (client, log) = api_server(Box::new(move |seen, _| match seen.method {
        Method::POST if conflict_on_create => (
            StatusCode::CONFLICT,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 409,
                   "reason": "AlreadyExists", "message": "trainingjobs.ebb.dev \"mnist\" already exists"}),
        ),
        Method::POST => {
            let mut created = seen.body.clone();
            created["metadata"]["uid"] = "u1".into();
            (StatusCode::CREATED, created)
        }
        Method::PATCH if seen.path.contains("trainingqueues") => {
            (StatusCode::OK, seen.body.clone())
        }
        Method::PATCH => (StatusCode::OK, training_job("mnist", 2, 5, None)),
        _ => (
            StatusCode::OK,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        ),
    }));
    (operator_control(client), log)
}

/// The control API over a Kubernetes backend with empty stores, for one operator token.
fn operator_control(client: kube::Client) -> Control {
    let (jobs, _) = ebb::cluster::kube::job_store::store();
    let (queues, _) = reflector::store();
    let backend = KubeBackend::new(client, jobs, queues, Arc::default());
    let auth = AuthConfig {
        tokens: vec![TokenEntry {
            token: TOKEN.into(),
            name: "ops".into(),
            role: Role::Operator,
            namespaces: vec!["*".into()],
        }],
    };
    Control::new(Arc::new(backend), auth)
}

fn authed<T>(message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    r
}

fn spec() -> JobSpec {
    let res = |cpu: &str| {
        Some(Resources {
            cpu: cpu.into(),
            memory: "1Gi".into(),
            gpus: 0,
        })
    };
    JobSpec {
        namespace: "ml".into(),
        name: "mnist".into(),
        image: "trainer:1".into(),
        master: res("1"),
        pservers: 1,
        pserver: res("1"),
        min_trainers: 1,
        max_trainers: 4,
        trainer: res("2"),
        dataset: "/data/mnist.csv".into(),
        passes: 3,
        ..JobSpec::default()
    }
}

#[tokio::test]
async fn submit_scale_delete_and_queues_are_kubernetes_objects() {
    let (control, log) = server(false);
    let job = JobService::submit(&control, authed(SubmitRequest { spec: Some(spec()) }))
        .await
        .expect("submitted")
        .into_inner();
    assert_eq!(job.spec.unwrap().name, "mnist");
    JobService::scale(
        &control,
        authed(ScaleRequest {
            job: Some(JobRef {
                namespace: "ml".into(),
                name: "mnist".into(),
            }),
            min_trainers: Some(2),
            max_trainers: Some(5),
        }),
    )
    .await
    .expect("scaled");
    JobService::delete(
        &control,
        authed(JobRef {
            namespace: "ml".into(),
            name: "mnist".into(),
        }),
    )
    .await
    .expect("deleted");
    QueueService::set(
        &control,
        authed(QueuePatch {
            name: "research".into(),
            weight: Some(2.0),
            ..QueuePatch::default()
        }),
    )
    .await
    .expect("queue set");

    let log: Vec<(Method, String, Value)> = log
        .lock()
        .unwrap()
        .iter()
        .map(|s| (s.method.clone(), s.path.clone(), s.body.clone()))
        .collect();
    let calls: Vec<String> = log.iter().map(|(m, p, _)| format!("{m} {p}")).collect();
    assert_eq!(
        calls,
        [
            "POST /apis/ebb.dev/v1alpha1/namespaces/ml/trainingjobs",
            "PATCH /apis/ebb.dev/v1alpha1/namespaces/ml/trainingjobs/mnist",
            "DELETE /apis/ebb.dev/v1alpha1/namespaces/ml/trainingjobs/mnist",
            "PATCH /apis/ebb.dev/v1alpha1/trainingqueues/research",
        ]
    );
    let created = &log[0].2;
    assert_eq!(created["kind"], "TrainingJob");
    assert_eq!(created["spec"]["trainers"]["max"], 4);
    assert_eq!(created["spec"]["trainers"]["resources"]["cpu"], "2");
    assert_eq!(
        log[1].2,
        json!({"spec": {"trainers": {"min": 2, "max": 5}}})
    );
    assert_eq!(log[3].2["kind"], "TrainingQueue");
    assert_eq!(log[3].2["spec"]["weight"], 2.0);
}

#[tokio::test]
async fn refusals_map_to_grpc_codes_and_bad_specs_never_reach_the_api_server() {
    let (control, log) = server(true);
    let taken = JobService::submit(&control, authed(SubmitRequest { spec: Some(spec()) }))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists);
    let mut bad = spec();
    bad.min_trainers = 9;
    let refused = JobService::submit(&control, authed(SubmitRequest { spec: Some(bad) }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().starts_with("spec.trainers.min"),
        "{}",
        refused.message()
    );
    let anonymous = JobService::submit(
        &control,
        tonic::Request::new(SubmitRequest { spec: Some(spec()) }),
    )
    .await
    .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    assert_eq!(
        log.lock().unwrap().len(),
        1,
        "only the valid, authenticated submit was sent"
    );
}

#[path = "common/procs.rs"]
mod procs;

static MASTER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn test_master(_: &str, _: &str) -> String {
    MASTER.get().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_comes_from_the_jobs_master() {
    use ebb::cluster::kube::progress::{ProgressBook, lookup, poll};
    use kube::runtime::watcher;
    let job = tokio::task::spawn_blocking(|| procs::Job::start("kube-progress", 1, &[]))
        .await
        .unwrap();
    MASTER.set(job.master_addr.clone()).unwrap();
    let mut raw = training_job("mnist", 1, 2, Some(admitted_status(1)));
    raw["metadata"]["resourceVersion"] = "1".into();
    let tj: kube::api::DynamicObject = serde_json::from_value(raw).unwrap();
    let (store, mut writer) = ebb::cluster::kube::job_store::store();
    writer.apply_watcher_event(&watcher::Event::Apply(tj));
    let book = ProgressBook::default();
    let poller = tokio::spawn(poll(
        book.clone(),
        store,
        std::time::Duration::from_millis(100),
        test_master,
    ));
    let start = std::time::Instant::now();
    let progress = loop {
        if let Some(p) = lookup(&book, "ml", "mnist") {
            break p;
        }
        assert!(start.elapsed().as_secs() < 20, "the master never answered");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    poller.abort();
    assert_eq!(progress.passes, 15);
    assert!(progress.chunks_per_pass > 0);
    assert!(!progress.finished, "no trainer has joined");
    tokio::task::spawn_blocking(move || drop(job))
        .await
        .unwrap();
}

/// The API server's answers for logs, events and one job: a master pod listed by label,
/// its log as text, two recorded Events.
fn inspect_server() -> (Control, Log) {
    let (client, log) = api_server(Box::new(move |seen, _| {
        if seen.path.ends_with("/log") {
            return (
                StatusCode::OK,
                json!("line one\nError: dataset: io on /d: gone\n"),
            );
        }
        if seen.path.ends_with("/pods") {
            return (
                StatusCode::OK,
                json!({"kind": "PodList", "apiVersion": "v1", "metadata": {},
                       "items": [job_pod("mnist", "master", 0, "n1", "Running"),
                                 job_pod("mnist", "trainer", 3, "n1", "Running"),
                                 job_pod("mnist", "trainer", 1, "n1", "Running")]}),
            );
        }
        if seen.path.ends_with("/events") {
            let event = |name: &str, reason: &str, t: &str| {
                json!({"metadata": {"name": name, "namespace": "ml"},
                       "involvedObject": {"kind": "TrainingJob", "name": "mnist", "namespace": "ml"},
                       "reason": reason, "message": reason, "type": "Normal", "lastTimestamp": t})
            };
            return (
                StatusCode::OK,
                json!({"kind": "EventList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"},
                       "items": [event("b", "Scaled", "2026-12-07T03:00:05Z"),
                                 event("a", "Admitted", "2026-12-07T03:00:00Z")]}),
            );
        }
        if seen.method == Method::PATCH {
            return (StatusCode::OK, training_job("mnist", 1, 6, None));
        }
        (StatusCode::OK, training_job("mnist", 1, 4, None))
    }));
    (operator_control(client), log)
}

#[tokio::test]
async fn logs_events_and_one_bound_scales_are_the_api_servers_requests() {
    use futures::StreamExt;
    let (control, log) = inspect_server();
    let job = || {
        Some(JobRef {
            namespace: "ml".into(),
            name: "mnist".into(),
        })
    };
    let chunks: Vec<String> = JobService::logs(
        &control,
        authed(LogsRequest {
            job: job(),
            role: "trainer".into(),
            tail_lines: 20,
            ..LogsRequest::default()
        }),
    )
    .await
    .expect("logs")
    .into_inner()
    .map(|c| c.unwrap().text)
    .collect()
    .await;
    assert_eq!(
        chunks.concat(),
        "line one\nError: dataset: io on /d: gone\n"
    );
    let events: Vec<String> = JobService::events(
        &control,
        authed(EventsRequest {
            namespace: "ml".into(),
            name: "mnist".into(),
            watch: false,
        }),
    )
    .await
    .expect("events")
    .into_inner()
    .map(|e| e.unwrap().reason)
    .collect()
    .await;
    assert_eq!(events, ["Admitted", "Scaled"], "oldest first");
    JobService::scale(
        &control,
        authed(ScaleRequest {
            job: job(),
            min_trainers: None,
            max_trainers: Some(6),
        }),
    )
    .await
    .expect("scaled");
    let got = JobService::get(
        &control,
        authed(JobRef {
            namespace: "ml".into(),
            name: "mnist".into(),
        }),
    )
    .await
    .expect("get")
    .into_inner();
    let pods: Vec<(String, String, String, String)> = got
        .status
        .unwrap()
        .pod_statuses
        .into_iter()
        .map(|p| (p.name, p.role, p.phase, p.node))
        .collect();
    assert_eq!(
        pods[0],
        (
            "mnist-master-0".to_string(),
            "master".to_string(),
            "Running".to_string(),
            "n1".to_string()
        )
    );
    assert_eq!(pods.len(), 3);
    let refused = QueueService::delete(&control, authed(QueueRef { name: "".into() }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);

    let seen = log.lock().unwrap().clone();
    let calls: Vec<String> = seen
        .iter()
        .map(|s| format!("{} {}?{}", s.method, s.path, s.query))
        .collect();
    assert_eq!(
        calls,
        [
            "GET /apis/ebb.dev/v1alpha1/namespaces/ml/trainingjobs/mnist?",
            "GET /api/v1/namespaces/ml/pods?&labelSelector=ebb.dev%2Fjob%3Dmnist",
            "GET /api/v1/namespaces/ml/pods/mnist-trainer-1/log?&tailLines=20",
            "GET /apis/ebb.dev/v1alpha1/namespaces/ml/trainingjobs/mnist?",
            "GET /api/v1/namespaces/ml/pods?&labelSelector=ebb.dev%2Fjob%3Dmnist",
            "GET /api/v1/namespaces/ml/events?&fieldSelector=involvedObject.kind%3DTrainingJob%2CinvolvedObject.name%3Dmnist",
            "PATCH /apis/ebb.dev/v1alpha1/namespaces/ml/trainingjobs/mnist?&fieldManager=ebb-controller",
            "GET /apis/ebb.dev/v1alpha1/namespaces/ml/trainingjobs/mnist?",
            "GET /api/v1/namespaces/ml/pods?&labelSelector=ebb.dev%2Fjob%3Dmnist",
        ]
    );
    assert_eq!(
        seen[6].body,
        json!({"spec": {"trainers": {"max": 6}}}),
        "only the bound given"
    );
}
