//! Why each job got what it got, in words a user understands: `ebb plan --explain`.
//!
//! Read off the plan and the snapshot after the fact (the planner itself does not keep a
//! trace): the fair share, then whichever bound held the job where it is.

use super::admission::queue_path;
use super::policy::Policy;
use super::view::View;
use crate::model::{DeleteReason, JobKey, Plan, Reason, Resources, Snapshot};
use serde::Serialize;
use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    pub job: JobKey,
    /// One line: admitted or not, and the size.
    pub summary: String,
    pub because: Vec<Because>,
}

/// One reason; `kind` is stable for tools, `text` is for people.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Because {
    pub kind: Kind,
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Pending,
    FairShare,
    MaxReached,
    NoFurtherSpeedup,
    MinNotPackable,
    QueueLimit,
    ServicesFirst,
    MadeRoomForJob,
    Cooldown,
    WithinTolerance,
    IdleCapacity,
    NotPackable,
    ScaledDown,
    WaitingForNodes,
    NoNodesAsked,
}

fn because(kind: Kind, text: String) -> Because {
    Because { kind, text }
}

pub fn explain(snapshot: &Snapshot, policy: &Policy, plan: &Plan) -> Vec<Explanation> {
    let world = super::world::World::of(snapshot);
    let view = View::build(&world);
    let keys: Vec<JobKey> = view.jobs.iter().map(|jv| jv.job.key()).collect();
    let index: HashMap<&JobKey, usize> = keys.iter().enumerate().map(|(j, k)| (k, j)).collect();
    let held = queue_holdings(&view, &index, plan);
    plan.jobs
        .iter()
        .map(|jp| {
            let Some(&j) = index.get(&jp.job) else {
                return Explanation {
                    job: jp.job.clone(),
                    summary: "not in the snapshot".into(),
                    because: Vec::new(),
                };
            };
            let jv = &view.jobs[j];
            let job = jv.job;
            let (t, c, f) = (jp.target_trainers, jp.current_trainers, jp.fair_trainers);
            let mut out = Vec::new();
            let waiting = waiting_for_nodes(plan, &jp.job);
            if !jp.admitted {
                let why = jp
                    .reason
                    .as_ref()
                    .map_or("not admitted".to_string(), |r| r.to_string());
                let summary = match &waiting {
                    Some(w) => format!("pending: {w}"),
                    None => format!("pending: {why}"),
                };
                let mut because_list = vec![because(Kind::Pending, why)];
                because_list.extend(waiting.map(|w| because(Kind::WaitingForNodes, w)));
                because_list
                    .extend(no_nodes_asked(plan, &jp.job).map(|w| because(Kind::NoNodesAsked, w)));
                return Explanation {
                    job: jp.job.clone(),
                    summary,
                    because: because_list,
                };
            }
            let queue = &view.queues[jv.queue].name;
            out.push(because(
                Kind::FairShare,
                format!(
                    "its weighted fair share is {f} trainers (queue {queue:?}, weight {}, \
                     sharing by dominant resource with every admitted job)",
                    job.weight
                ),
            ));
            if let Some(Reason::BelowMin { placed, min }) = &jp.reason {
                out.push(because(
                    Kind::MinNotPackable,
                    format!(
                        "only {placed} of its minimum {min} trainers fit on the nodes now \
                         (e.g. after a node was lost); it gets the rest as room appears"
                    ),
                ));
            }
            out.extend(waiting.map(|w| because(Kind::WaitingForNodes, w)));
            out.extend(no_nodes_asked(plan, &jp.job).map(|w| because(Kind::NoNodesAsked, w)));
            let freed_for = |pred: &dyn Fn(&DeleteReason) -> bool| {
                plan.delete
                    .iter()
                    .filter(|d| d.job == jp.job && pred(&d.reason))
                    .count()
            };
            let for_services = freed_for(&|r| matches!(r, DeleteReason::MakeRoomForService { .. }));
            if for_services > 0 {
                out.push(because(
                    Kind::ServicesFirst,
                    format!(
                        "{for_services} of its trainers leave to make room for online service \
                         pods: services come before any trainer above a job's minimum"
                    ),
                ));
            }
            let for_jobs = freed_for(&|r| matches!(r, DeleteReason::MakeRoomForJob { .. }));
            if for_jobs > 0 {
                out.push(because(
                    Kind::MadeRoomForJob,
                    format!(
                        "{for_jobs} of its trainers leave so that a newly admitted job gets \
                         its minimum"
                    ),
                ));
            }
            let max = job.trainers.max;
            if t >= jv.max_trainers && jv.max_trainers < max {
                out.push(because(
                    Kind::NoFurtherSpeedup,
                    format!(
                        "no further speedup: its measured throughput rises by less than 5% \
                         past {} trainers, so the rest of its max {max} goes to other jobs",
                        jv.max_trainers
                    ),
                ));
            } else if t >= max {
                out.push(because(
                    Kind::MaxReached,
                    format!("it is at its max of {max} trainers"),
                ));
            }
            let cooldown = job
                .last_scale_time_s
                .map(|s| snapshot.time_s - s)
                .filter(|&ago| ago < policy.scale_down_cooldown_s);
            if t > f && t < jv.max_trainers {
                if let Some(ago) = cooldown {
                    out.push(because(
                        Kind::Cooldown,
                        format!(
                            "it keeps {t}, above its fair share {f}: it changed size {ago:.0} s \
                             ago and is not shrunk for fairness alone within {:.0} s \
                             (only for services, newcomers' minimums and guarantees)",
                            policy.scale_down_cooldown_s
                        ),
                    ));
                } else if t == c {
                    out.push(because(
                        Kind::WithinTolerance,
                        format!(
                            "it keeps {t}: the gap to its fair share {f} is within the \
                             tolerance, or no job short of its share could use the room"
                        ),
                    ));
                } else {
                    out.push(because(
                        Kind::IdleCapacity,
                        format!(
                            "it holds {t}, above its fair share {f}, because no other job \
                             could use that room (work-conserving)"
                        ),
                    ));
                }
            }
            let at_limit = queue_path(&view, jv.queue).iter().copied().find(|&q| {
                view.queues[q]
                    .limit
                    .is_some_and(|l| !held[q].add(&job.trainers.resources).fits_in(&l))
            });
            if let Some(q) = at_limit.filter(|_| t < jv.max_trainers) {
                let limit = view.queues[q].limit.unwrap_or_default();
                let over = held[q].add(&job.trainers.resources).sub(&limit).as_array();
                let binding = ["CPU", "memory", "GPUs"]
                    .iter()
                    .zip(over)
                    .filter(|&(_, o)| o > 0)
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>()
                    .join(" and ");
                out.push(because(
                    Kind::QueueLimit,
                    format!(
                        "queue {:?} is at its limit: one more trainer would exceed its {binding} \
                         limit ({limit})",
                        view.queues[q].name
                    ),
                ));
            }
            if t < f && jp.reason.is_none() && at_limit.is_none() && for_services == 0 {
                out.push(because(
                    Kind::NotPackable,
                    format!(
                        "only {t} of its fair share {f} fit on the nodes: the free room \
                         is split across nodes in pieces too small for a trainer"
                    ),
                ));
            }
            let scaled_down = freed_for(&|r| matches!(r, DeleteReason::ScaleDown));
            if scaled_down > 0 {
                out.push(because(
                    Kind::ScaledDown,
                    format!("it shrinks from {c} to {t} toward its fair share {f}"),
                ));
            }
            Explanation {
                job: jp.job.clone(),
                summary: format!("admitted: {c} -> {t} trainers (fair share {f})"),
                because: out,
            }
        })
        .collect()
}

/// What each queue (with its descendants) holds once the plan is applied.
fn queue_holdings(view: &View, index: &HashMap<&JobKey, usize>, plan: &Plan) -> Vec<Resources> {
    let mut held = vec![Resources::ZERO; view.queues.len()];
    for jp in plan.jobs.iter().filter(|j| j.admitted) {
        let Some(jv) = index.get(&jp.job).map(|&j| &view.jobs[j]) else {
            continue;
        };
        let job = jv.job;
        let h = job
            .overhead()
            .add(&job.trainers.resources.times(i64::from(jp.target_trainers)));
        for &q in queue_path(view, jv.queue) {
            held[q] = held[q].add(&h);
        }
    }
    held
}

/// Why the plan asks for no nodes for `job`, which needs some.
fn no_nodes_asked(plan: &Plan, job: &JobKey) -> Option<String> {
    plan.no_scale_up
        .iter()
        .find(|r| &r.job == job)
        .map(|r| r.why.clone())
}

/// "waiting for 2 nodes of group gpu-a100", when the plan asks for nodes for `job`.
fn waiting_for_nodes(plan: &Plan, job: &JobKey) -> Option<String> {
    let request = plan.scale_up.iter().find(|r| &r.job == job)?;
    let groups: Vec<String> = request
        .nodes
        .iter()
        .map(|n| {
            let nodes = if n.count == 1 { "node" } else { "nodes" };
            format!("{} {nodes} of group {}", n.count, n.group)
        })
        .collect();
    Some(format!("waiting for {}", groups.join(" and ")))
}
