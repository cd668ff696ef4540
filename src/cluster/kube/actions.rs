//! One tick, decided: the reflectors' objects in, the API calls to make out. Pure, so the
//! controller's behaviour is tested call by call without an API server.

use super::objects::ClusterObjects;
use super::render::{RenderConfig, render_pod, render_services};
use super::snapshot::{SnapshotBuild, build_snapshot};
use crate::model::{JobKey, Plan, Role};
use crate::plan::{Policy, plan};
use crate::resource::events::transition_events;
use crate::resource::names::{LABEL_ROLE, role_from_label};
use crate::resource::status::{JobOutcome, next_status};
use crate::resource::{TrainingJob, TrainingJobStatus};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::{HashMap, HashSet};

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    DeletePod {
        namespace: String,
        name: String,
        grace_s: Option<i64>,
        why: String,
    },
    CreateService(Box<Service>),
    CreatePod(Box<Pod>),
    Bind {
        namespace: String,
        pod: String,
        node: String,
    },
    PatchStatus {
        namespace: String,
        job: String,
        status: Box<TrainingJobStatus>,
    },
    Event {
        job: JobKey,
        warning: bool,
        reason: &'static str,
        note: String,
    },
}

/// Everything a tick decided, for the executor, metrics and logs.
#[derive(Debug, Default)]
pub struct Tick {
    pub build: SnapshotBuild,
    pub plan: Plan,
    pub actions: Vec<Action>,
}

pub fn decide(
    objects: &ClusterObjects,
    policy: &Policy,
    config: &RenderConfig,
    now: &Time,
) -> Tick {
    let build = build_snapshot(objects, now);
    let plan = plan(&build.snapshot, policy);
    let jobs: HashMap<JobKey, &TrainingJob> = objects
        .jobs
        .iter()
        .map(|j| (job_key(j), j.as_ref()))
        .collect();
    let pods_of = pods_by_job(objects);
    let mut actions = Vec::new();

    let deleted: HashSet<(&str, &str)> = plan
        .delete
        .iter()
        .map(|d| (d.job.namespace.as_str(), d.pod.as_str()))
        .collect();
    for d in &plan.delete {
        let grace = find_pod(&pods_of, &d.job, &d.pod).and_then(grace_of);
        actions.push(Action::DeletePod {
            namespace: d.job.namespace.clone(),
            name: d.pod.clone(),
            grace_s: grace,
            why: format!("{:?}", d.reason),
        });
    }
    actions.extend(garbage(objects, &build, &jobs, &pods_of));

    let mut services_for: HashSet<&JobKey> = HashSet::new();
    // Masters and pservers first: a trainer that starts before its master only retries.
    let mut creates: Vec<_> = plan.create.iter().collect();
    creates.sort_by_key(|c| c.role);
    for c in creates {
        let Some(tj) = jobs.get(&c.job) else { continue };
        if c.role == Role::Master && services_for.insert(&c.job) {
            actions.extend(
                render_services(tj)
                    .into_iter()
                    .map(|s| Action::CreateService(Box::new(s))),
            );
        }
        // A reused pod exists unbound already; only the binding is new.
        if find_pod(&pods_of, &c.job, &c.pod).is_none() {
            let pod = render_pod(tj, c.role, &c.pod, config);
            actions.push(Action::CreatePod(Box::new(pod)));
        }
        actions.push(Action::Bind {
            namespace: c.job.namespace.clone(),
            pod: c.pod.clone(),
            node: c.node.clone(),
        });
    }

    let created: HashMap<&JobKey, u32> = plan
        .create
        .iter()
        .filter(|c| c.role == Role::Trainer)
        .fold(HashMap::new(), |mut m, c| {
            *m.entry(&c.job).or_insert(0) += 1;
            m
        });
    for jp in &plan.jobs {
        let Some(tj) = jobs.get(&jp.job) else {
            continue;
        };
        let live = live_trainers(pods_of.get(&jp.job), &deleted);
        let outcome = JobOutcome::Planned {
            plan: jp,
            live_trainers: live + created.get(&jp.job).copied().unwrap_or(0),
        };
        status_actions(tj, &outcome, now, &mut actions);
    }
    for (key, error) in &build.invalid_jobs {
        let Some(tj) = jobs.get(key) else { continue };
        let outcome = JobOutcome::InvalidSpec {
            field: error.field(),
            message: error.to_string(),
        };
        status_actions(tj, &outcome, now, &mut actions);
    }
    // Objects that do not even parse: the condition says where.
    for bad in &objects.unreadable_jobs {
        let previous: Option<TrainingJobStatus> = bad
            .status
            .clone()
            .and_then(|s| serde_json::from_value(s).ok());
        let (field, message) = bad.error.split_once(": ").unwrap_or(("spec", &bad.error));
        let outcome = JobOutcome::InvalidSpec {
            field,
            message: message.to_string(),
        };
        status_change(
            bad.key.clone(),
            previous.as_ref(),
            None,
            &outcome,
            now,
            &mut actions,
        );
    }
    for (key, phase, why) in &build.finished {
        let Some(tj) = jobs.get(key) else { continue };
        let outcome = JobOutcome::Finished {
            phase: *phase,
            message: why,
            live_trainers: 0,
        };
        status_actions(tj, &outcome, now, &mut actions);
    }
    Tick {
        build,
        plan,
        actions,
    }
}

pub fn job_key(tj: &TrainingJob) -> JobKey {
    JobKey::new(
        tj.metadata.namespace.clone().unwrap_or_default(),
        tj.metadata.name.clone().unwrap_or_default(),
    )
}

fn status_actions(tj: &TrainingJob, outcome: &JobOutcome, now: &Time, actions: &mut Vec<Action>) {
    let key = job_key(tj);
    status_change(
        key,
        tj.status.as_ref(),
        tj.metadata.generation,
        outcome,
        now,
        actions,
    );
}

fn status_change(
    key: JobKey,
    previous: Option<&TrainingJobStatus>,
    generation: Option<i64>,
    outcome: &JobOutcome,
    now: &Time,
    actions: &mut Vec<Action>,
) {
    let next = next_status(previous, outcome, generation, now);
    if previous == Some(&next) {
        return;
    }
    actions.extend(
        transition_events(previous, &next)
            .into_iter()
            .map(|e| Action::Event {
                job: key.clone(),
                warning: e.warning,
                reason: e.reason,
                note: e.note,
            }),
    );
    actions.push(Action::PatchStatus {
        namespace: key.namespace,
        job: key.name,
        status: Box::new(next),
    });
}

/// Pods nobody will use again: every pod but the master of a finished job (the master
/// stays for its logs), and trainers whose container ended (their name stays taken
/// until they are deleted, which the planner respects).
fn garbage(
    objects: &ClusterObjects,
    build: &SnapshotBuild,
    jobs: &HashMap<JobKey, &TrainingJob>,
    pods_of: &HashMap<JobKey, Vec<&Pod>>,
) -> Vec<Action> {
    let finished: HashSet<&JobKey> = build
        .finished
        .iter()
        .map(|(k, _, _)| k)
        .chain(
            objects
                .jobs
                .iter()
                .filter(|j| j.status.as_ref().is_some_and(|s| s.phase.is_finished()))
                .filter_map(|j| jobs.get_key_value(&job_key(j)).map(|(k, _)| k)),
        )
        .collect();
    let mut out = Vec::new();
    for (key, pods) in pods_of {
        let job_finished = finished.contains(key);
        for pod in pods {
            if pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let role = role_of(pod);
            let ended = matches!(
                pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            );
            let collect = if job_finished {
                role != Some(Role::Master)
            } else {
                ended && role == Some(Role::Trainer)
            };
            if collect {
                out.push(Action::DeletePod {
                    namespace: key.namespace.clone(),
                    name: pod.metadata.name.clone().unwrap_or_default(),
                    grace_s: grace_of(pod),
                    why: if job_finished {
                        "JobFinished"
                    } else {
                        "TrainerEnded"
                    }
                    .into(),
                });
            }
        }
    }
    // Stable order for the same world (pods_of is a HashMap).
    out.sort_by(|a, b| deleted_pod(a).cmp(&deleted_pod(b)));
    out
}

fn deleted_pod(action: &Action) -> Option<(&str, &str)> {
    match action {
        Action::DeletePod {
            namespace, name, ..
        } => Some((namespace, name)),
        _ => None,
    }
}

fn role_of(pod: &Pod) -> Option<Role> {
    role_from_label(pod.metadata.labels.as_ref()?.get(LABEL_ROLE)?)
}

fn grace_of(pod: &Pod) -> Option<i64> {
    pod.spec.as_ref()?.termination_grace_period_seconds
}

fn pods_by_job(objects: &ClusterObjects) -> HashMap<JobKey, Vec<&Pod>> {
    let uids: HashMap<&str, JobKey> = objects
        .jobs
        .iter()
        .filter_map(|j| Some((j.metadata.uid.as_deref()?, job_key(j))))
        .collect();
    let mut out: HashMap<JobKey, Vec<&Pod>> = HashMap::new();
    for pod in &objects.pods {
        let owner = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .filter(|o| o.kind == "TrainingJob")
            .find_map(|o| uids.get(o.uid.as_str()));
        if let Some(key) = owner {
            out.entry(key.clone()).or_default().push(pod);
        }
    }
    out
}

fn find_pod<'a>(pods: &HashMap<JobKey, Vec<&'a Pod>>, job: &JobKey, name: &str) -> Option<&'a Pod> {
    pods.get(job)?
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(name))
        .copied()
}

fn live_trainers(pods: Option<&Vec<&Pod>>, deleted: &HashSet<(&str, &str)>) -> u32 {
    pods.into_iter()
        .flatten()
        .filter(|p| role_of(p) == Some(Role::Trainer))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.spec.as_ref().is_some_and(|s| s.node_name.is_some()))
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .filter(|p| {
            let ns = p.metadata.namespace.as_deref().unwrap_or_default();
            let name = p.metadata.name.as_deref().unwrap_or_default();
            !deleted.contains(&(ns, name))
        })
        .count() as u32
}
