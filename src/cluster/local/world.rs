//! The embedded cluster's state and its tick: the same snapshot -> `plan::plan` -> apply
//! loop as the Kubernetes controller, with local processes for pods.

use super::events::EventLog;
use super::jobs::{JobRecord, MAX_RESTARTS};
use super::process::{PodPhase, log_path};
use super::services::ServiceRuntime;
use crate::api::proto::{self, JobEvent};
use crate::model::{self, JobKey, Plan, Resources, Role, Snapshot};
use crate::plan::{Policy, plan};
use crate::resource::events::transition_events;
use crate::resource::failure::{failed_message, failure_line};
use crate::resource::spec::job_model;
use crate::resource::status::{JobOutcome, next_status};
use crate::resource::time::seconds;
use crate::resource::{JobPhase, TrainingQueue};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

pub struct World {
    pub nodes: Vec<model::Node>,
    pub jobs: BTreeMap<JobKey, JobRecord>,
    pub queues: BTreeMap<String, TrainingQueue>,
    pub services: Vec<ServiceRuntime>,
    pub events: broadcast::Sender<JobEvent>,
    /// What `ebbctl events` lists: status transitions and pod failures.
    pub event_log: EventLog,
    pub work_dir: PathBuf,
    /// The `ebb` binary that runs masters, pservers, trainers and services.
    pub exe: PathBuf,
    pub policy: Policy,
    pub trainer_grace: Duration,
    pub last_snapshot: Option<Snapshot>,
    /// Whom pods run as, when not as `ebb up` itself (see `run_as.rs`).
    pub run_as: Option<super::run_as::RunAs>,
}

impl World {
    pub fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::now())
    }

    /// The API's view of a job: its spec, its status, progress and pods.
    pub fn job_message(record: &JobRecord) -> proto::Job {
        let mut status = crate::api::convert::job_status(&record.tj);
        status.progress = record.progress;
        status.pods = record
            .pods
            .iter()
            .filter(|(_, (_, p))| !p.phase.ended())
            .map(|(n, (_, p))| (n.clone(), p.node.clone().unwrap_or_default()))
            .collect();
        proto::Job {
            spec: Some(crate::api::convert::job_spec(&record.tj)),
            status: Some(status),
        }
    }

    pub fn emit(&self, kind: &str, record: &JobRecord) {
        // No subscribers is fine.
        let _ = self.events.send(JobEvent {
            r#type: kind.into(),
            job: Some(Self::job_message(record)),
        });
    }

    /// One tick at `now` (monotonic) / `time` (wall clock, for the planner and statuses).
    pub fn tick(&mut self, now: Instant, time: &Time) -> Plan {
        self.reap(now);
        for s in &mut self.services {
            s.autoscale(now);
        }
        let snapshot = self.snapshot(time);
        let plan = plan(&snapshot, &self.policy);
        self.apply(&plan, &snapshot, now);
        self.update_statuses(&plan, time);
        self.start_ready(now);
        self.forget_deleted();
        self.last_snapshot = Some(snapshot);
        plan
    }

    fn reap(&mut self, now: Instant) {
        let time_s = seconds(&Self::now());
        for (key, record) in self.jobs.iter_mut() {
            let name = record.name().to_string();
            let running_on = record.outcome.is_none() && !record.deleting;
            let mut stopped_trainers = Vec::new();
            for (pod_name, (role, pod)) in record.pods.iter_mut() {
                let was_stopping = pod.phase == PodPhase::Terminating;
                let Some(code) = pod.reap(now) else { continue };
                tracing::info!(job = %name, pod = %pod_name, code, "exited");
                if was_stopping && running_on && *role == Role::Trainer {
                    // A trainer stopped to shrink the job is gone, as a deleted Pod is
                    // on Kubernetes: `get` must not list it as a trainer that succeeded.
                    stopped_trainers.push(pod_name.clone());
                }
                // Why it failed, from the run that just ended (its log is rotated only
                // when the pod starts again).
                let cause = (code != 0 && !was_stopping).then(|| {
                    let log = std::fs::read_to_string(log_path(&record.dir, pod_name));
                    log.ok().as_deref().and_then(failure_line)
                });
                if let Some(cause) = &cause {
                    // The same words for every failed run, so repeats count up one Event.
                    let note = match cause {
                        Some(line) => format!("{pod_name} exited {code}: {line}"),
                        None => format!("{pod_name} exited {code}"),
                    };
                    self.event_log.record(key, true, "PodFailed", &note, time_s);
                }
                match role {
                    Role::Master if code == 0 && !was_stopping => {
                        record.outcome =
                            Some((JobPhase::Succeeded, "the master finished every pass".into()));
                    }
                    _ if code != 0 && !was_stopping && pod.restarts < MAX_RESTARTS => {
                        // restartPolicy: OnFailure, on the same node.
                        pod.restarts += 1;
                        pod.phase = PodPhase::Waiting;
                    }
                    Role::Master | Role::Pserver if code != 0 && !was_stopping => {
                        let cause = cause.flatten();
                        record.outcome = Some((
                            JobPhase::Failed,
                            failed_message(
                                pod_name,
                                MAX_RESTARTS + 1,
                                Some(code),
                                cause.as_deref(),
                            ),
                        ));
                    }
                    _ => {}
                }
            }
            for pod_name in stopped_trainers {
                record.pods.remove(&pod_name);
            }
            if record.outcome.is_some() || record.deleting {
                for (_, pod) in record.pods.values_mut() {
                    pod.terminate(now);
                }
            }
        }
        for s in &mut self.services {
            for pod in s.pods.values_mut() {
                if pod.reap(now).is_some() && pod.phase == PodPhase::Failed {
                    pod.phase = PodPhase::Waiting;
                }
            }
        }
    }

    fn snapshot(&self, time: &Time) -> Snapshot {
        let mut s = Snapshot {
            time_s: seconds(time),
            nodes: self.nodes.clone(),
            queues: self
                .queues
                .values()
                .filter_map(|q| crate::resource::spec::queue_model(q).ok())
                .collect(),
            ..Snapshot::default()
        };
        for record in self.jobs.values() {
            if record.outcome.is_some() || record.deleting {
                // Its processes hold their room until they have exited.
                s.other_pods.extend(
                    record
                        .pods
                        .iter()
                        .filter(|(_, (_, p))| p.holds_resources())
                        .map(|(name, (_, p))| model::OtherPod {
                            namespace: record.tj.metadata.namespace.clone().unwrap_or_default(),
                            name: name.clone(),
                            workload: Some(format!("TrainingJob/{}", record.name())),
                            resources: p.resources,
                            node: p.node.clone(),
                            placement: Default::default(),
                        }),
                );
                continue;
            }
            let submit = record
                .tj
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(s.time_s, seconds);
            let Ok(mut job) = job_model(&record.tj, submit) else {
                continue; // validated at submit; a scale cannot make it invalid
            };
            job.pods = record.model_pods();
            let status = record.tj.status.as_ref();
            job.admitted = status.is_some_and(|st| {
                st.conditions
                    .iter()
                    .any(|c| c.type_ == "Admitted" && c.status == "True")
            });
            job.last_scale_time_s = status
                .and_then(|st| st.last_scale_time.as_ref())
                .map(seconds);
            s.jobs.push(job);
        }
        for svc in &self.services {
            s.other_pods.extend(svc.other_pods());
        }
        s
    }

    fn apply(&mut self, plan: &Plan, snapshot: &Snapshot, now: Instant) {
        for d in &plan.delete {
            if let Some((_, pod)) = self
                .jobs
                .get_mut(&d.job)
                .and_then(|r| r.pods.get_mut(&d.pod))
            {
                tracing::info!(job = %d.job, pod = %d.pod, reason = ?d.reason, "stopping");
                pod.terminate(now);
            }
        }
        for c in &plan.create {
            let Some(record) = self.jobs.get_mut(&c.job) else {
                continue;
            };
            let pod = record.new_pod(&c.pod, c.role, c.node.clone(), self.trainer_grace);
            tracing::info!(job = %c.job, pod = %c.pod, node = %c.node, "placing");
            record.pods.insert(c.pod.clone(), (c.role, pod));
        }
        self.place_services(plan, snapshot);
    }

    /// Service pods go where the plan reserved room for them, else to the first node
    /// with room (what the default scheduler would do), once the room is really free.
    fn place_services(&mut self, plan: &Plan, snapshot: &Snapshot) {
        let mut used: HashMap<String, Resources> = HashMap::new();
        for record in self.jobs.values() {
            for (_, pod) in record.pods.values() {
                if let (true, Some(n)) = (pod.holds_resources(), &pod.node) {
                    let u = used.entry(n.clone()).or_default();
                    *u = u.add(&pod.resources);
                }
            }
        }
        for svc in &self.services {
            for pod in svc.pods.values() {
                if let (true, Some(n)) = (pod.holds_resources(), &pod.node) {
                    let u = used.entry(n.clone()).or_default();
                    *u = u.add(&pod.resources);
                }
            }
        }
        let reserved: HashMap<&str, &str> = plan
            .service_reservations
            .iter()
            .map(|r| (r.pod.as_str(), r.node.as_str()))
            .collect();
        for svc in &mut self.services {
            for pod in svc.pods.values_mut() {
                if pod.node.is_some() || pod.phase != PodPhase::Waiting {
                    continue;
                }
                let fits = |n: &model::Node, used: &HashMap<String, Resources>| {
                    let u = used.get(&n.name).copied().unwrap_or_default();
                    !n.unschedulable && pod.resources.fits_in(&n.allocatable.sub(&u))
                };
                let choice = match reserved.get(pod.name.as_str()) {
                    Some(node) => snapshot
                        .nodes
                        .iter()
                        .find(|n| n.name == *node && fits(n, &used)),
                    None => snapshot.nodes.iter().find(|n| fits(n, &used)),
                };
                if let Some(n) = choice {
                    let u = used.entry(n.name.clone()).or_default();
                    *u = u.add(&pod.resources);
                    pod.node = Some(n.name.clone());
                }
            }
        }
    }

    fn update_statuses(&mut self, plan: &Plan, time: &Time) {
        let planned: HashMap<&JobKey, &model::JobPlan> =
            plan.jobs.iter().map(|j| (&j.job, j)).collect();
        let keys: Vec<JobKey> = self.jobs.keys().cloned().collect();
        for key in keys {
            let Some(record) = self.jobs.get_mut(&key) else {
                continue;
            };
            let live = record.live_trainers();
            let outcome = match (&record.outcome, planned.get(&key)) {
                (Some((phase, why)), _) => JobOutcome::Finished {
                    phase: *phase,
                    message: why,
                    live_trainers: live,
                },
                (None, Some(jp)) => JobOutcome::Planned {
                    plan: jp,
                    live_trainers: live,
                },
                (None, None) => continue,
            };
            let before = record.tj.status.clone();
            let next = next_status(
                before.as_ref(),
                &outcome,
                record.tj.metadata.generation,
                time,
            );
            if before.as_ref() != Some(&next) {
                for e in transition_events(before.as_ref(), &next) {
                    self.event_log
                        .record(&key, e.warning, e.reason, &e.note, seconds(time));
                }
                record.tj.status = Some(next);
                let record = &self.jobs[&key];
                self.emit("MODIFIED", record);
            }
        }
    }

    fn start_ready(&mut self, now: Instant) {
        let exe = self.exe.clone();
        let run_as = self.run_as.clone();
        for record in self.jobs.values_mut() {
            for (_, pod) in record.pods.values_mut() {
                pod.refresh_addr();
            }
            let waiting: Vec<(String, Role)> = record
                .pods
                .iter()
                .filter(|(_, (_, p))| p.phase == PodPhase::Waiting)
                .map(|(n, (r, _))| (n.clone(), *r))
                .collect();
            for (name, role) in waiting {
                let Some(launch) = record.launch(&exe, &name, role) else {
                    continue;
                };
                if let Some((_, pod)) = record.pods.get_mut(&name)
                    && let Err(e) = pod.start(&launch, run_as.as_ref())
                {
                    tracing::error!(pod = %name, error = %e, "cannot start");
                    pod.phase = PodPhase::Failed;
                }
            }
        }
        for svc in &mut self.services {
            let ready: Vec<String> = svc
                .pods
                .iter()
                .filter(|(_, p)| p.phase == PodPhase::Waiting && p.node.is_some())
                .map(|(n, _)| n.clone())
                .collect();
            for name in ready {
                let launch = svc.launch(&exe, &name);
                if let Some(pod) = svc.pods.get_mut(&name)
                    && let Err(e) = pod.start(&launch, run_as.as_ref())
                {
                    tracing::error!(pod = %name, error = %e, "cannot start");
                    pod.terminate(now);
                }
            }
            svc.refresh_addrs();
        }
    }

    /// A deleted job leaves once its last process has.
    fn forget_deleted(&mut self) {
        let gone: Vec<JobKey> = self
            .jobs
            .iter()
            .filter(|(_, r)| {
                r.deleting
                    && r.pods
                        .values()
                        .all(|(_, p)| p.phase.ended() || p.pid().is_none())
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            if let Some(record) = self.jobs.remove(&key) {
                self.emit("DELETED", &record);
            }
        }
    }

    /// Stops every process now (shutdown).
    pub fn stop_all(&mut self) {
        for record in self.jobs.values_mut() {
            for (_, pod) in record.pods.values_mut() {
                pod.kill_now();
            }
        }
        for svc in &mut self.services {
            for pod in svc.pods.values_mut() {
                pod.kill_now();
            }
        }
    }
}
