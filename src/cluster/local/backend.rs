//! The control API served by the embedded cluster.

use super::jobs::JobRecord;
use super::logs::previous_path;
use super::process::log_path;
use super::world::World;
use crate::api::ControlBackend;
use crate::api::backend::{
    EventQuery, EventStream, LogQuery, LogStream, first_pod, refuse_queue_delete,
};
use crate::api::cluster_state::from_snapshot;
use crate::api::proto::{self, ClusterState, Job, JobEvent};
use crate::model::JobKey;
use crate::resource::spec::check_trainer_range;
use crate::resource::spec::job_model;
use crate::resource::{TrainingJob, TrainingQueue};
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
        if let Some(user) = &world.run_as {
            user.own(&dir)
                .map_err(|e| Status::internal(e.to_string()))?;
        }
        let record = JobRecord::new(job, dir);
        let message = World::job_message(&record);
        world.emit("ADDED", &record);
        world.jobs.insert(key, record);
        Ok(message)
    }

    async fn get(&self, namespace: &str, name: &str) -> Result<Job, Status> {
        let world = self.world();
        let record = world
            .jobs
            .get(&JobKey::new(namespace, name))
            .ok_or_else(|| not_found(namespace, name))?;
        let mut job = World::job_message(record);
        if let Some(status) = &mut job.status {
            status.pod_statuses = record.pod_statuses();
        }
        Ok(job)
    }

    async fn list(&self) -> Result<Vec<Job>, Status> {
        Ok(self.world().jobs.values().map(World::job_message).collect())
    }

    async fn scale(
        &self,
        namespace: &str,
        name: &str,
        min: Option<u32>,
        max: Option<u32>,
    ) -> Result<Job, Status> {
        let mut world = self.world();
        let record = world
            .jobs
            .get_mut(&JobKey::new(namespace, name))
            .ok_or_else(|| not_found(namespace, name))?;
        let mut changed = record.tj.clone();
        let trainers = &mut changed.spec.trainers;
        let (min, max) = (min.unwrap_or(trainers.min), max.unwrap_or(trainers.max));
        check_trainer_range(min, max).map_err(|e| Status::invalid_argument(e.to_string()))?;
        trainers.min = min;
        trainers.max = max;
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

    async fn delete_queue(&self, name: &str) -> Result<(), Status> {
        let mut world = self.world();
        if !world.queues.contains_key(name) {
            return Err(Status::not_found(format!("queue {name:?} does not exist")));
        }
        let children: Vec<&str> = world
            .queues
            .values()
            .filter(|q| q.spec.parent.as_deref() == Some(name))
            .filter_map(|q| q.metadata.name.as_deref())
            .collect();
        let users: Vec<String> = world
            .jobs
            .iter()
            .filter(|(_, r)| r.tj.spec.queue == name && !r.deleting)
            .map(|(k, _)| k.to_string())
            .collect();
        refuse_queue_delete(name, &children, &users)?;
        world.queues.remove(name);
        Ok(())
    }

    async fn logs(&self, query: LogQuery) -> Result<LogStream, Status> {
        let world = self.world();
        let key = JobKey::new(&query.namespace, &query.job);
        let record = world
            .jobs
            .get(&key)
            .ok_or_else(|| not_found(&query.namespace, &query.job))?;
        let pod = match &query.pod {
            Some(p) => {
                if !record.pods.contains_key(p) {
                    return Err(Status::not_found(format!(
                        "job {key} has no pod {p:?} (pods: {})",
                        record.pods.keys().cloned().collect::<Vec<_>>().join(", ")
                    )));
                }
                p.clone()
            }
            None => first_pod(
                record.pods.iter().map(|(n, (r, _))| (n.as_str(), *r)),
                query.role,
            )
            .ok_or_else(|| {
                Status::failed_precondition(format!(
                    "job {key} has no {} pod yet: it is not admitted (see `ebbctl get {}`)",
                    query.role, query.job
                ))
            })?,
        };
        let log = log_path(&record.dir, &pod);
        let path = if query.previous {
            let previous = previous_path(&log);
            if !previous.exists() {
                return Err(Status::failed_precondition(format!(
                    "pod {pod} has not restarted: there is no previous log"
                )));
            }
            previous
        } else {
            log
        };
        drop(world);
        let state = self.world.clone();
        let (job, pod_name) = (key, pod.clone());
        let ended = move || {
            let world = lock(&state);
            world
                .jobs
                .get(&job)
                .and_then(|r| r.pods.get(&pod_name))
                .is_none_or(|(_, p)| p.phase.ended() && p.pid().is_none())
        };
        // The previous run ended already: nothing to follow.
        let follow = query.follow && !query.previous;
        super::logs::stream(pod, path, query.tail_lines, follow, ended)
    }

    async fn events(&self, query: EventQuery) -> Result<EventStream, Status> {
        Ok(self.world().event_log.stream(query))
    }

    async fn cluster_state(&self) -> Result<ClusterState, Status> {
        let world = self.world();
        let Some(snapshot) = &world.last_snapshot else {
            return Err(Status::unavailable("the first tick has not run yet"));
        };
        let mut state = from_snapshot(snapshot);
        // Jobs not finished are listed even with no trainer yet (pending); finished ones
        // leave `ebbctl top`'s columns.
        for (key, record) in &world.jobs {
            let finished = record.outcome.is_some()
                || record
                    .tj
                    .status
                    .as_ref()
                    .is_some_and(|s| s.phase.is_finished());
            if finished {
                state.trainers.remove(&key.to_string());
            } else {
                state.trainers.entry(key.to_string()).or_insert(0);
            }
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
