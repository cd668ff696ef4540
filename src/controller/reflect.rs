//! One reflector per kind the planner reads; every change pokes the tick loop.

use crate::cluster::kube::ClusterObjects;
use crate::crd::{TrainingJob, TrainingQueue};
use futures::StreamExt;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use tokio::sync::Notify;

pub struct Stores {
    nodes: Store<Node>,
    pods: Store<Pod>,
    hpas: Store<HorizontalPodAutoscaler>,
    jobs: Store<TrainingJob>,
    queues: Store<TrainingQueue>,
}

impl Stores {
    /// Starts the watches; `changed` is notified on every event of any of them.
    pub fn start(client: &Client, changed: Arc<Notify>) -> Stores {
        Stores {
            nodes: reflect(Api::all(client.clone()), changed.clone()),
            pods: reflect(Api::all(client.clone()), changed.clone()),
            hpas: reflect(Api::all(client.clone()), changed.clone()),
            jobs: reflect(Api::all(client.clone()), changed.clone()),
            queues: reflect(Api::all(client.clone()), changed),
        }
    }

    /// Waits for every initial list: a tick on a partial view would delete pods it
    /// cannot see the jobs of.
    pub async fn wait_until_ready(&self) -> Result<(), reflector::store::WriterDropped> {
        self.nodes.wait_until_ready().await?;
        self.pods.wait_until_ready().await?;
        self.hpas.wait_until_ready().await?;
        self.jobs.wait_until_ready().await?;
        self.queues.wait_until_ready().await
    }

    pub fn jobs(&self) -> Store<TrainingJob> {
        self.jobs.clone()
    }

    pub fn queues(&self) -> Store<TrainingQueue> {
        self.queues.clone()
    }

    pub fn objects(&self) -> ClusterObjects {
        ClusterObjects {
            nodes: self.nodes.state(),
            pods: self.pods.state(),
            hpas: self.hpas.state(),
            jobs: self.jobs.state(),
            queues: self.queues.state(),
        }
    }
}

fn reflect<K>(api: Api<K>, changed: Arc<Notify>) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let (store, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .touched_objects();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => changed.notify_one(),
                Err(e) => {
                    tracing::warn!(kind = %K::kind(&K::DynamicType::default()), error = %e, "watch error; retrying")
                }
            }
        }
    });
    store
}
