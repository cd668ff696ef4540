//! Shared by the Kubernetes tests: recorded API objects and small worlds built from JSON.
#![allow(dead_code)]

use ebb::cluster::kube::ClusterObjects;
use http::{Method, Request, Response, StatusCode};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::client::Body;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// The `items` of a recorded `kubectl get -o json` list.
pub fn recorded<K: DeserializeOwned>(file: &str) -> Vec<Arc<K>> {
    let path = format!("{}/tests/data/kube/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let list: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{path} has no items"))
        .iter()
        .map(|item| {
            Arc::new(serde_json::from_value(item.clone()).unwrap_or_else(|e| panic!("{path}: {e}")))
        })
        .collect()
}

pub fn recorded_world() -> ClusterObjects {
    recorded_world_in("")
}

/// The recorded objects under `tests/data/kube/DIR` (`""`: the top-level world).
pub fn recorded_world_in(dir: &str) -> ClusterObjects {
    let file = |name: &str| {
        if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        }
    };
    ClusterObjects {
        nodes: recorded(&file("nodes.json")),
        pods: recorded(&file("pods.json")),
        hpas: recorded(&file("hpas.json")),
        jobs: recorded(&file("trainingjobs.json")),
        unreadable_jobs: Vec::new(),
        queues: recorded(&file("trainingqueues.json")),
    }
}

pub fn at(rfc3339: &str) -> Time {
    Time(rfc3339.parse().expect("timestamp"))
}

pub fn parse<K: DeserializeOwned>(v: Value) -> Arc<K> {
    Arc::new(serde_json::from_value(v).expect("test object"))
}

pub fn node(name: &str, cpu: &str, memory: &str, gpus: u32) -> Value {
    json!({
        "metadata": {"name": name, "uid": format!("node-{name}")},
        "spec": {},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "nvidia.com/gpu": gpus.to_string(), "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-11-23T10:00:00Z", "lastTransitionTime": "2026-11-01T00:00:00Z"}]
        }
    })
}

pub fn job_uid(name: &str) -> String {
    format!(
        "00000000-0000-4000-8000-{:0>12}",
        name.len() * 7919 % 1_000_000
    )
}

/// A TrainingJob `name` in namespace `ml`: trainers 1 CPU + 1 GPU each.
pub fn training_job(name: &str, min: u32, max: u32, status: Option<Value>) -> Value {
    let mut tj = json!({
        "apiVersion": "ebb.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": "ml", "uid": job_uid(name), "generation": 1,
                     "creationTimestamp": "2026-11-23T09:00:00Z"},
        "spec": {
            "queue": "default", "image": "trainer:1", "dataset": "/data/mnist.csv", "passes": 2,
            "master": {"resources": {"cpu": "1", "memory": "1Gi"}},
            "pservers": {"replicas": 1, "resources": {"cpu": "1", "memory": "1Gi"}},
            "trainers": {"min": min, "max": max, "resources": {"cpu": "1", "memory": "1Gi", "gpus": 1}}
        }
    });
    if let Some(s) = status {
        tj["status"] = s;
    }
    tj
}

pub fn admitted_status(trainers: u32) -> Value {
    json!({
        "phase": "Running", "currentTrainers": trainers, "targetTrainers": trainers,
        "startTime": "2026-11-23T09:00:05Z", "lastScaleTime": "2026-11-23T09:00:05Z", "observedGeneration": 1,
        "conditions": [
            {"type": "Admitted", "status": "True", "reason": "Admitted", "message": "placed",
             "lastTransitionTime": "2026-11-23T09:00:05Z", "observedGeneration": 1},
            {"type": "Running", "status": "True", "reason": "TrainersRunning", "message": format!("{trainers} of target {trainers} trainers running"),
             "lastTransitionTime": "2026-11-23T09:00:05Z", "observedGeneration": 1}
        ]
    })
}

/// A pod of job `job` in `role`, bound to `node`, in `phase`.
pub fn job_pod(job: &str, role: &str, index: u32, node: &str, phase: &str) -> Value {
    let resources = if role == "trainer" {
        json!({"requests": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}})
    } else {
        json!({"requests": {"cpu": "1", "memory": "1Gi"}})
    };
    json!({
        "metadata": {
            "name": format!("{job}-{role}-{index}"), "namespace": "ml", "uid": format!("pod-{job}-{role}-{index}"),
            "labels": {"ebb.dev/job": job, "ebb.dev/role": role, "ebb.dev/index": index.to_string()},
            "ownerReferences": [{"apiVersion": "ebb.dev/v1alpha1", "kind": "TrainingJob", "name": job,
                                 "uid": job_uid(job), "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {"nodeName": node, "schedulerName": "ebb", "terminationGracePeriodSeconds": 30,
                 "containers": [{"name": role, "image": "x", "resources": resources}]},
        "status": {"phase": phase}
    })
}

/// A pod ebb does not manage (an online service replica), bound or pending.
pub fn service_pod(name: &str, cpu: &str, node: Option<&str>) -> Value {
    let mut p = json!({
        "metadata": {"name": name, "namespace": "web", "uid": format!("pod-{name}"), "labels": {"app": "nginx"}},
        "spec": {"schedulerName": "default-scheduler",
                 "containers": [{"name": "nginx", "image": "nginx", "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]},
        "status": {"phase": if node.is_some() { "Running" } else { "Pending" }}
    });
    if let Some(n) = node {
        p["spec"]["nodeName"] = json!(n);
    }
    p
}

/// One request the mock API server saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    /// The query string ("" without one).
    pub query: String,
    pub body: Value,
}

pub type Responder = Box<dyn FnMut(&Seen, usize) -> (StatusCode, Value) + Send>;

/// Serves every request with `respond` (given the request and how many times the same
/// method+path came before) until the client side is dropped; returns what it saw.
pub fn api_server(mut respond: Responder) -> (kube::Client, Arc<Mutex<Vec<Seen>>>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().clone();
            let path = request.uri().path().to_string();
            let query = request.uri().query().unwrap_or_default().to_string();
            let bytes = request
                .into_body()
                .collect_bytes()
                .await
                .unwrap_or_default();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let entry = Seen {
                method,
                path,
                query,
                body,
            };
            let before = {
                let mut l = log.lock().unwrap();
                let n = l
                    .iter()
                    .filter(|s| s.method == entry.method && s.path == entry.path)
                    .count();
                l.push(entry.clone());
                n
            };
            let (status, reply) = respond(&entry, before);
            // A bare JSON string is sent as plain text (what `pods/log` answers); no JSON
            // API answers a bare string.
            let bytes = match reply {
                Value::String(text) => text.into_bytes(),
                other => serde_json::to_vec(&other).unwrap(),
            };
            let response = Response::builder()
                .status(status)
                .body(Body::from(bytes))
                .unwrap();
            send.send_response(response);
        }
    });
    (kube::Client::new(service, "default"), seen)
}
