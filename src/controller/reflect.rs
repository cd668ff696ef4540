//! One reflector per kind the planner reads; every change pokes the tick loop.

use crate::cluster::kube::ClusterObjects;
use crate::cluster::kube::job_store::{self, JobStore};
use crate::resource::TrainingQueue;
use futures::StreamExt;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::DynamicObject;
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
    jobs: JobStore,
    queues: Store<TrainingQueue>,
}

impl Stores {
    /// Starts the watches; `changed` is notified on every event of any of them.
    pub fn start(client: &Client, changed: Arc<Notify>) -> Stores {
        Stores {
            nodes: reflect(Api::all(client.clone()), changed.clone()),
            pods: reflect(Api::all(client.clone()), changed.clone()),
            hpas: reflect(Api::all(client.clone()), changed.clone()),
            jobs: reflect_jobs(client, changed.clone()),
            queues: reflect(Api::all(client.clone()), changed),
        }
    }

    /// Waits for every initial list: a tick on a partial view would delete pods it
    /// cannot see the jobs of.
    pub async fn wait_until_ready(&self) -> Result<(), reflector::store::WriterDropped> {
        self.nodes.wait_until_ready().await?;
        self.pods.wait_until_ready().await?;
        self.hpas.wait_until_ready().await?;
        self.jobs.0.wait_until_ready().await?;
        self.queues.wait_until_ready().await
    }

    pub fn jobs(&self) -> JobStore {
        self.jobs.clone()
    }

    pub fn queues(&self) -> Store<TrainingQueue> {
        self.queues.clone()
    }

    pub fn objects(&self) -> ClusterObjects {
        let (jobs, unreadable_jobs) = job_store::read(&self.jobs.0.state());
        ClusterObjects {
            nodes: self.nodes.state(),
            pods: self.pods.state(),
            hpas: self.hpas.state(),
            jobs,
            unreadable_jobs,
            queues: self.queues.state(),
        }
    }
}

/// TrainingJobs as raw objects, so one unparseable object cannot stall the list.
fn reflect_jobs(client: &Client, changed: Arc<Notify>) -> JobStore {
    let (store, writer) = job_store::store();
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &job_store::resource());
    spawn_watch(
        watcher(api, watcher::Config::default()),
        writer,
        changed,
        "TrainingJob",
    );
    store
}

fn spawn_watch<K, S>(
    stream: S,
    writer: reflector::store::Writer<K>,
    changed: Arc<Notify>,
    kind: &'static str,
) where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone,
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    let stream = stream.default_backoff().reflect(writer).touched_objects();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => changed.notify_one(),
                Err(e) => tracing::warn!(kind, error = %e, "watch error; retrying"),
            }
        }
    });
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
