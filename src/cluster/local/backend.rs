//! The control API served by the embedded cluster.

use super::jobs::JobRecord;
use super::world::World;
use crate::api::ControlBackend;
use crate::api::cluster_state::from_snapshot;
use crate::api::proto::{self, ClusterState, Job, JobEvent};
use crate::cluster::kube::job_spec::job_model;
use crate::crd::{TrainingJob, TrainingQueue};
use crate::model::JobKey;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;
use tonic::Status;

#[derive(Clone)]
pub struct LocalBackend {
    world: Arc<Mutex<World>>,
    events: broadcast::Sender<JobEvent>,
}

impl LocalBackend {
    pub fn new(world: Arc<Mutex<World>>) -> Self {
        let events = lock(&world).events.clone();
        LocalBackend { world, events }
    }

    fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }
}

/// A panic elsewhere must not take the API down with it: the state is still usable.
pub fn lock(world: &Mutex<World>) -> MutexGuard<'_, World> {
    world
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn not_found(namespace: &str, name: &str) -> Status {
    Status::not_found(format!("job {namespace}/{name} does not exist"))
}

#[tonic::async_trait]
impl ControlBackend for LocalBackend {
    async fn submit(&self, mut job: TrainingJob) -> Result<Job, Status> {
        let mut world = self.world();
        let key = JobKey::new(
            job.metadata.namespace.clone().unwrap_or_default(),
            job.metadata.name.clone().unwrap_or_default(),
        );
        if world.jobs.contains_key(&key) {
            return Err(Status::already_exists(format!("job {key} exists")));
        }
        job.metadata.creation_timestamp = Some(World::now());
        job.metadata.generation = Some(1);
        job.metadata.uid = Some(format!("local-{}-{}", key.namespace, key.name));
        let dir = world.work_dir.join(&key.namespace).join(&key.name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Status::internal(format!("creating {}: {e}", dir.display())))?;
        let record = JobRecord::new(job, dir);
        let message = World::job_message(&record);
        world.emit("ADDED", &record);
        world.jobs.insert(key, record);
        Ok(message)
    }

    async fn get(&self, namespace: &str, name: &str) -> Result<Job, Status> {
        let world = self.world();
        world
            .jobs
            .get(&JobKey::new(namespace, name))
            .map(World::job_message)
            .ok_or_else(|| not_found(namespace, name))
    }

    async fn list(&self) -> Result<Vec<Job>, Status> {
        Ok(self.world().jobs.values().map(World::job_message).collect())
    }

    async fn scale(&self, namespace: &str, name: &str, min: u32, max: u32) -> Result<Job, Status> {
        let mut world = self.world();
        let record = world
            .jobs
            .get_mut(&JobKey::new(namespace, name))
            .ok_or_else(|| not_found(namespace, name))?;
        let mut changed = record.tj.clone();
        changed.spec.trainers.min = min;
        changed.spec.trainers.max = max;
        job_model(&changed, 0.0).map_err(|e| Status::invalid_argument(e.to_string()))?;
        record.tj = changed;
        let generation = record.tj.metadata.generation.unwrap_or(1) + 1;
        record.tj.metadata.generation = Some(generation);
        let message = World::job_message(record);
        let record = &world.jobs[&JobKey::new(namespace, name)];
        world.emit("MODIFIED", record);
        Ok(message)
    }

    async fn delete(&self, namespace: &str, name: &str) -> Result<(), Status> {
        let mut world = self.world();
        let record = world
            .jobs
            .get_mut(&JobKey::new(namespace, name))
            .ok_or_else(|| not_found(namespace, name))?;
        record.deleting = true;
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.events.subscribe()
    }

    async fn set_queue(&self, queue: TrainingQueue) -> Result<TrainingQueue, Status> {
        let name = queue.metadata.name.clone().unwrap_or_default();
        self.world().queues.insert(name, queue.clone());
        Ok(queue)
    }

    async fn queues(&self) -> Result<Vec<TrainingQueue>, Status> {
        Ok(self.world().queues.values().cloned().collect())
    }

    async fn cluster_state(&self) -> Result<ClusterState, Status> {
        let world = self.world();
        let Some(snapshot) = &world.last_snapshot else {
            return Err(Status::unavailable("the first tick has not run yet"));
        };
        let mut state = from_snapshot(snapshot);
        // Finished jobs stay listed (with 0 trainers) so `ebbctl top` keeps its columns.
        for key in world.jobs.keys() {
            state.trainers.entry(key.to_string()).or_insert(0);
        }
        for svc in &world.services {
            let running = svc.pods.values().filter(|p| p.holds_resources()).count() as u32;
            state.services.push(proto::ServiceState {
                name: svc.decl.name.clone(),
                replicas: running,
                desired: svc.desired,
                endpoints: svc.endpoints(),
            });
        }
        Ok(state)
    }
}
