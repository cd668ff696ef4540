//! A TrainingJob's next status from the last plan: phase, conditions with Kubernetes
//! semantics (a transition time moves only when the status flips), trainer counts, times.

use crate::model::{JobPlan, Reason};
use crate::resource::{JobPhase, TrainingJobStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// What this tick learned about one job.
pub enum JobOutcome<'a> {
    Planned {
        plan: &'a JobPlan,
        /// Trainers bound and not going away, after this tick's deletions.
        live_trainers: u32,
    },
    InvalidSpec {
        field: &'a str,
        message: String,
    },
    Finished {
        phase: JobPhase,
        message: &'a str,
        live_trainers: u32,
    },
}

pub fn next_status(
    previous: Option<&TrainingJobStatus>,
    outcome: &JobOutcome,
    generation: Option<i64>,
    now: &Time,
) -> TrainingJobStatus {
    let mut s = previous.cloned().unwrap_or_default();
    s.observed_generation = generation;
    match outcome {
        JobOutcome::Planned {
            plan,
            live_trainers,
        } => {
            if plan.admitted {
                set(
                    &mut s,
                    "Admitted",
                    true,
                    "Admitted",
                    admitted_message(plan),
                    now,
                    generation,
                );
                s.start_time.get_or_insert_with(|| now.clone());
            } else if !is_true(&s, "Admitted") {
                let (reason, message) = pending_reason(plan.reason.as_ref());
                set(&mut s, "Admitted", false, reason, message, now, generation);
            }
            let running = plan.admitted && *live_trainers > 0;
            set(
                &mut s,
                "Running",
                running,
                if running {
                    "TrainersRunning"
                } else {
                    "NoTrainers"
                },
                format!(
                    "{live_trainers} of target {} trainers running",
                    plan.target_trainers
                ),
                now,
                generation,
            );
            if s.target_trainers != plan.target_trainers && plan.admitted {
                s.last_scale_time = Some(now.clone());
            }
            s.current_trainers = *live_trainers;
            s.target_trainers = plan.target_trainers;
            s.phase = if !plan.admitted {
                JobPhase::Pending
            } else if *live_trainers != plan.target_trainers {
                JobPhase::Scaling
            } else {
                JobPhase::Running
            };
        }
        JobOutcome::InvalidSpec { field, message } => {
            set(
                &mut s,
                "Admitted",
                false,
                "InvalidSpec",
                format!("{field}: {message}"),
                now,
                generation,
            );
            s.phase = JobPhase::Pending;
            s.target_trainers = 0;
        }
        JobOutcome::Finished {
            phase,
            message,
            live_trainers,
        } => {
            let succeeded = *phase == JobPhase::Succeeded;
            let (kind, reason) = if succeeded {
                ("Succeeded", "AllPassesDone")
            } else {
                ("Failed", "MasterFailed")
            };
            set(
                &mut s,
                kind,
                true,
                reason,
                message.to_string(),
                now,
                generation,
            );
            set(
                &mut s,
                "Running",
                false,
                reason,
                message.to_string(),
                now,
                generation,
            );
            s.phase = *phase;
            s.current_trainers = *live_trainers;
            s.target_trainers = 0;
            s.completion_time.get_or_insert_with(|| now.clone());
        }
    }
    s
}

fn admitted_message(plan: &JobPlan) -> String {
    format!(
        "master, pservers and {} trainers placed (fair share {})",
        plan.target_trainers, plan.fair_trainers
    )
}

/// Condition reason (CamelCase, per API conventions) and message for a job not admitted.
fn pending_reason(reason: Option<&Reason>) -> (&'static str, String) {
    let Some(r) = reason else {
        return ("Pending", "waiting for the next plan".into());
    };
    let kind = match r {
        Reason::InvalidSpec { .. } => "InvalidSpec",
        Reason::UnknownQueue { .. } => "UnknownQueue",
        Reason::QueueCycle { .. } => "QueueCycle",
        Reason::QueueTooDeep { .. } => "QueueTooDeep",
        Reason::InsufficientCapacity { .. } => "InsufficientCapacity",
        Reason::InsufficientEligibleCapacity { .. } => "InsufficientEligibleCapacity",
        Reason::QueueLimit { .. } => "QueueLimit",
        Reason::NotPackable => "NotPackable",
        Reason::NeverFits { .. } => "NeverFits",
        Reason::NoEligibleNode { .. } => "NoEligibleNode",
        Reason::BelowMin { .. } => "BelowMin",
        Reason::Queued { .. } => "Queued",
    };
    (kind, r.to_string())
}

fn is_true(s: &TrainingJobStatus, kind: &str) -> bool {
    s.conditions
        .iter()
        .any(|c| c.type_ == kind && c.status == "True")
}

fn set(
    s: &mut TrainingJobStatus,
    kind: &str,
    value: bool,
    reason: &str,
    message: String,
    now: &Time,
    generation: Option<i64>,
) {
    let status = if value { "True" } else { "False" };
    match s.conditions.iter_mut().find(|c| c.type_ == kind) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = now.clone();
            }
            c.status = status.into();
            c.reason = reason.into();
            c.message = message;
            c.observed_generation = generation;
        }
        None => s.conditions.push(Condition {
            type_: kind.into(),
            status: status.into(),
            reason: reason.into(),
            message,
            last_transition_time: now.clone(),
            observed_generation: generation,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::JobKey;

    fn t(s: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(s).unwrap())
    }

    fn plan(admitted: bool, target: u32) -> JobPlan {
        JobPlan {
            job: JobKey::new("ns", "j"),
            admitted,
            reason: (!admitted).then_some(Reason::NotPackable),
            current_trainers: 0,
            target_trainers: target,
            fair_trainers: target,
        }
    }

    #[test]
    fn transition_time_moves_only_when_a_condition_flips() {
        let p = plan(true, 3);
        let planned = |live| JobOutcome::Planned {
            plan: &p,
            live_trainers: live,
        };
        let first = next_status(None, &planned(0), Some(1), &t(100));
        assert_eq!(first.phase, JobPhase::Scaling);
        let second = next_status(Some(&first), &planned(3), Some(1), &t(200));
        assert_eq!(second.phase, JobPhase::Running);
        let admitted = |s: &TrainingJobStatus| {
            s.conditions
                .iter()
                .find(|c| c.type_ == "Admitted")
                .unwrap()
                .clone()
        };
        assert_eq!(admitted(&second).last_transition_time, t(100));
        let running = second
            .conditions
            .iter()
            .find(|c| c.type_ == "Running")
            .unwrap();
        assert_eq!(
            (running.status.as_str(), &running.last_transition_time),
            ("True", &t(200))
        );
        assert_eq!(second.start_time, Some(t(100)));
        assert_eq!(
            second.last_scale_time,
            Some(t(100)),
            "target unchanged at 3"
        );
    }

    #[test]
    fn pending_names_the_reason_and_invalid_spec_names_the_field() {
        let p = plan(false, 0);
        let s = next_status(
            None,
            &JobOutcome::Planned {
                plan: &p,
                live_trainers: 0,
            },
            None,
            &t(1),
        );
        let c = &s.conditions[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "NotPackable")
        );
        assert_eq!(s.phase, JobPhase::Pending);
        let bad = JobOutcome::InvalidSpec {
            field: "spec.trainers.resources.cpu",
            message: "\"lots\" is not a quantity".into(),
        };
        let s = next_status(Some(&s), &bad, None, &t(2));
        let c = &s.conditions[0];
        assert_eq!(c.reason, "InvalidSpec");
        assert!(
            c.message.starts_with("spec.trainers.resources.cpu"),
            "{}",
            c.message
        );
    }

    #[test]
    fn finishing_sets_completion_once() {
        let done = JobOutcome::Finished {
            phase: JobPhase::Succeeded,
            message: "done",
            live_trainers: 0,
        };
        let s = next_status(None, &done, None, &t(5));
        let s = next_status(Some(&s), &done, None, &t(9));
        assert_eq!(s.completion_time, Some(t(5)));
        assert_eq!(s.phase, JobPhase::Succeeded);
    }
}
