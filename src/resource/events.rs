//! The Events a TrainingJob's status change is worth telling its owner about: what
//! `kubectl describe tj` and `ebbctl events` show. Both backends emit the same ones.

use super::{JobPhase, TrainingJobStatus};

/// One Event: `warning` for type Warning, else Normal; `reason` is the CamelCase word
/// Kubernetes Events carry (Admitted, Scaled, Succeeded, Failed, InvalidSpec, NeverFits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobEventNote {
    pub warning: bool,
    pub reason: &'static str,
    pub note: String,
}

/// Events for the transitions users watch: admitted, scaled, finished, refused.
pub fn transition_events(
    before: Option<&TrainingJobStatus>,
    after: &TrainingJobStatus,
) -> Vec<JobEventNote> {
    let condition = |s: Option<&TrainingJobStatus>, kind: &str| {
        s.and_then(|s| s.conditions.iter().find(|c| c.type_ == kind))
            .cloned()
    };
    let event = |warning, reason, note: String| JobEventNote {
        warning,
        reason,
        note,
    };
    let mut out = Vec::new();
    let was = condition(before, "Admitted");
    let now = condition(Some(after), "Admitted");
    if let Some(now) = &now {
        let was_true = was.as_ref().is_some_and(|c| c.status == "True");
        if now.status == "True" && !was_true {
            out.push(event(false, "Admitted", now.message.clone()));
        }
        let message_changed = was.as_ref().is_none_or(|c| c.message != now.message);
        if now.reason == "InvalidSpec" && message_changed {
            out.push(event(true, "InvalidSpec", now.message.clone()));
        }
    }
    let before_target = before.map_or(0, |s| s.target_trainers);
    let admitted_before = was.is_some_and(|c| c.status == "True");
    if admitted_before && !after.phase.is_finished() && before_target != after.target_trainers {
        out.push(event(
            false,
            "Scaled",
            format!("trainers {before_target} -> {}", after.target_trainers),
        ));
    }
    let finished_before = before.is_some_and(|s| s.phase.is_finished());
    if after.phase.is_finished() && !finished_before {
        let failed = after.phase == JobPhase::Failed;
        let note = condition(Some(after), if failed { "Failed" } else { "Succeeded" })
            .map(|c| c.message)
            .unwrap_or_default();
        out.push(event(failed, after.phase.as_str(), note));
    }
    out
}
