//! `controller::run` whole: reflectors list the recorded cluster from a mocked API
//! server, wait for every initial list, tick, and apply; `/metrics` and `/readyz` answer.

mod kube_common;

use ebb::cluster::kube::RenderConfig;
use ebb::cluster::kube::execute::Retry;
use ebb::controller::ControllerConfig;
use ebb::plan::Policy;
use ebb::plan::file::SnapshotFile;
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn recorded_list(file: &str) -> Value {
    let path = format!("{}/tests/data/kube/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn list_for(path: &str) -> Option<Value> {
    let file = match path {
        "/api/v1/nodes" => "nodes.json",
        "/api/v1/pods" => "pods.json",
        "/apis/autoscaling/v2/horizontalpodautoscalers" => "hpas.json",
        "/apis/ebb.dev/v1alpha1/trainingjobs" => "trainingjobs.json",
        "/apis/ebb.dev/v1alpha1/trainingqueues" => "trainingqueues.json",
        _ => return None,
    };
    let mut list = recorded_list(file);
    if file == "trainingjobs.json" {
        // Written under an older, looser CRD: no longer parses. It must not stall the
        // watch of every other job.
        let mut old = list["items"][1].clone();
        old["metadata"]["name"] = "unparseable".into();
        old["metadata"]["uid"] = "uid-unparseable".into();
        old["spec"]["trainers"]["min"] = "two".into();
        list["items"].as_array_mut().unwrap().push(old);
    }
    Some(list)
}

async fn http_get(port: u16, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_lists_waits_ticks_applies_and_serves_metrics() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let writes = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = writes.clone();
    tokio::spawn(async move {
        // Watches are held open without events, as a quiet API server does.
        let mut open_watches = Vec::new();
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().clone();
            let path = request.uri().path().to_string();
            let query = request.uri().query().unwrap_or_default().to_string();
            let body = request
                .into_body()
                .collect_bytes()
                .await
                .unwrap_or_default();
            let reply = |status: StatusCode, v: Vec<u8>| {
                Response::builder()
                    .status(status)
                    .body(Body::from(v))
                    .unwrap()
            };
            if method == Method::GET && query.contains("watch=") {
                open_watches.push(send);
                continue;
            }
            if method == Method::GET {
                match list_for(&path) {
                    Some(list) => send
                        .send_response(reply(StatusCode::OK, serde_json::to_vec(&list).unwrap())),
                    None => send.send_response(reply(StatusCode::NOT_FOUND, b"{}".to_vec())),
                }
                continue;
            }
            let condition = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null)["status"]
                ["conditions"][0]["message"]
                .clone();
            log.lock().unwrap().push(format!("{method} {path}"));
            if path.ends_with("/unparseable/status") {
                log.lock().unwrap().push(format!("message {condition}"));
            }
            let echo = if path.ends_with("/status") {
                let mut tj = kube_common::training_job("bert", 1, 8, None);
                let patch: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                tj["status"] = patch["status"].clone();
                serde_json::to_vec(&tj).unwrap()
            } else if path.ends_with("/binding") || method == Method::DELETE {
                br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success"}"#.to_vec()
            } else {
                body.to_vec()
            };
            send.send_response(reply(StatusCode::OK, echo));
        }
    });
    let client = kube::Client::new(service, "default");
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let dump_dir = std::env::temp_dir().join(format!("ebb-loop-dumps-{}", std::process::id()));
    std::fs::create_dir_all(&dump_dir).unwrap();
    let config = ControllerConfig {
        tick: Duration::from_millis(300),
        debounce: Duration::from_millis(50),
        policy: Policy::default(),
        render: RenderConfig {
            runtime_image: "ebb:test".into(),
        },
        lease: None,
        http_addr: format!("127.0.0.1:{port}").parse().unwrap(),
        retry: Retry {
            attempts: 2,
            base: Duration::from_millis(1),
        },
        instance: Some("loop-test".into()),
        dump_snapshots: Some(dump_dir.clone()),
        control: None,
    };
    let controller = tokio::spawn(ebb::controller::run(client, config));

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = writes.lock().unwrap().clone();
        let bert_bound = seen
            .iter()
            .any(|w| w.ends_with("/pods/bert-master-0/binding"));
        let broken_status = seen
            .iter()
            .any(|w| w.ends_with("/trainingjobs/broken/status"));
        if bert_bound && broken_status {
            break;
        }
        assert!(
            !controller.is_finished(),
            "controller stopped: {:?}",
            controller.await
        );
        assert!(
            Instant::now() < deadline,
            "no tick applied the plan: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let message = writes
        .lock()
        .unwrap()
        .iter()
        .find(|w| w.starts_with("message "))
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("spec.trainers.min"), "{message}");
    // Ticks keep coming every 300 ms, but none re-creates what the watch has not shown yet.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let binds = writes
        .lock()
        .unwrap()
        .iter()
        .filter(|w| w.ends_with("/pods/bert-master-0/binding"))
        .count();
    assert_eq!(binds, 1, "planned again before its own writes were visible");
    assert!(http_get(port, "/readyz").await.contains("200 OK"));
    let metrics = http_get(port, "/metrics").await;
    assert!(
        metrics.contains("ebb_tick_duration_seconds_count"),
        "{metrics}"
    );
    assert!(metrics.contains("ebb_leader 1"), "{metrics}");
    assert!(metrics.contains("ebb_jobs{phase=\"Pending\"}"), "{metrics}");
    // The tick's input replays through `ebb plan` to the same decision.
    let response = http_get(port, "/debug/snapshot").await;
    let body = response.split("\r\n\r\n").nth(1).expect("a body");
    let served = SnapshotFile::parse(body).expect("a snapshot file");
    assert_eq!(served.snapshot.nodes.len(), 4);
    let dumps: Vec<_> = std::fs::read_dir(&dump_dir).unwrap().collect();
    assert!(
        !dumps.is_empty(),
        "the first tick changed things, so it was dumped"
    );
    let dumped = std::fs::read_to_string(dumps[0].as_ref().unwrap().path()).unwrap();
    let replayed = ebb::plan::plan(
        &SnapshotFile::parse(&dumped).unwrap().snapshot,
        &Policy::default(),
    );
    let bert = replayed
        .jobs
        .iter()
        .find(|j| j.job.name == "bert")
        .expect("bert planned");
    assert!(bert.admitted);
    controller.abort();
    let _ = std::fs::remove_dir_all(&dump_dir);
}
