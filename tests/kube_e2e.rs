//! End to end on a real cluster. Ignored by default (no API server on CI machines); run
//! with `KUBECONFIG=~/.kube/config cargo test --test kube_e2e -- --ignored` against a
//! disposable cluster (kind, minikube): it installs the CRDs and uses a fresh namespace.

use ebb::cluster::kube::RenderConfig;
use ebb::cluster::kube::execute::Retry;
use ebb::controller::{ControllerConfig, LeaseConfig};
use ebb::plan::Policy;
use ebb::resource::{TrainingJob, TrainingQueue};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, CustomResourceExt};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
#[ignore = "needs a Kubernetes cluster: KUBECONFIG=... cargo test --test kube_e2e -- --ignored"]
async fn a_training_job_is_admitted_bound_and_cleaned_up_on_a_real_cluster() {
    let client = Client::try_default()
        .await
        .expect("KUBECONFIG points at a cluster");
    let apply = PatchParams::apply("ebb-e2e").force();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [TrainingJob::crd(), TrainingQueue::crd()] {
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(&name, &apply, &Patch::Apply(&crd))
            .await
            .expect("install CRD");
    }
    tokio::time::sleep(Duration::from_secs(3)).await; // CRDs become established
    let ns = format!("ebb-e2e-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .expect("namespace");
    let queues: Api<TrainingQueue> = Api::all(client.clone());
    let queue = json!({"apiVersion": "ebb.dev/v1alpha1", "kind": "TrainingQueue",
                       "metadata": {"name": "default"}, "spec": {"weight": 1}});
    queues
        .patch("default", &apply, &Patch::Apply(&queue))
        .await
        .expect("queue");

    let config = ControllerConfig {
        tick: Duration::from_secs(2),
        debounce: Duration::from_millis(200),
        policy: Policy::default(),
        render: RenderConfig {
            runtime_image: "busybox:1.36".into(),
        },
        // The real Lease path: this replica must win it before it acts.
        lease: Some(LeaseConfig {
            name: "ebb-e2e".into(),
            namespace: ns.clone(),
            identity: "e2e".into(),
            duration_s: 15,
            grace_s: 5,
        }),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        retry: Retry::default(),
        instance: Some("e2e".into()),
        dump_snapshots: None,
        control: None,
    };
    let controller = tokio::spawn(ebb::controller::run(client.clone(), config));

    let jobs: Api<TrainingJob> = Api::namespaced(client.clone(), &ns);
    let job: TrainingJob = serde_json::from_value(json!({
        "apiVersion": "ebb.dev/v1alpha1", "kind": "TrainingJob",
        "metadata": {"name": "tiny", "namespace": ns},
        "spec": {"image": "busybox:1.36", "dataset": "/dev/null", "passes": 1,
                 "master": {"resources": {"cpu": "10m", "memory": "16Mi"}},
                 "pservers": {"replicas": 1, "resources": {"cpu": "10m", "memory": "16Mi"}},
                 "trainers": {"min": 1, "max": 2, "resources": {"cpu": "10m", "memory": "16Mi"},
                              "command": ["sleep", "3600"]}}
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &job)
        .await
        .expect("create job");

    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        let tj = jobs.get("tiny").await.expect("get job");
        if let Some(s) = tj
            .status
            .filter(|s| s.target_trainers >= 1 && s.current_trainers >= 1)
        {
            break s;
        }
        assert!(Instant::now() < deadline, "job not admitted within 120 s");
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Admitted" && c.status == "True")
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let listed = pods
        .list(&ListParams::default().labels("ebb.dev/job=tiny"))
        .await
        .unwrap();
    assert!(listed.items.len() >= 3, "master, pserver and a trainer");
    for p in &listed.items {
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.scheduler_name.as_deref(), Some("ebb"));
        assert!(spec.node_name.is_some(), "bound by ebb");
    }

    jobs.delete("tiny", &DeleteParams::foreground())
        .await
        .expect("delete job");
    controller.abort();
    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .expect("delete namespace");
}
