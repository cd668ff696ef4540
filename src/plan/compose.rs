//! Folding a later planning round into the plan of the rounds before it, so that the
//! controller gets one set of API calls per tick.
//!
//! A later round runs on the world the earlier rounds leave (see
//! [`super::apply::apply_keeping_names`]): deleted pods have freed their node but still
//! hold their names, so no round mints a name another round deleted.

use crate::model::{JobKey, Plan, Snapshot};

/// `earlier` then `later`, as one plan on `original` (the snapshot `earlier` was made on).
pub fn compose(original: &Snapshot, earlier: Plan, later: Plan) -> Plan {
    let existed = |job: &JobKey, pod: &str| {
        original.jobs.iter().any(|j| {
            j.namespace == job.namespace
                && j.name == job.name
                && j.pods.iter().any(|p| p.name == pod)
        })
    };
    let same = |job: &JobKey, pod: &str, other_job: &JobKey, other_pod: &str| {
        job == other_job && pod == other_pod
    };

    let mut create = earlier.create;
    let mut delete = earlier.delete;
    for d in later.delete {
        let Some(i) = create
            .iter()
            .position(|c| same(&c.job, &c.pod, &d.job, &d.pod))
        else {
            delete.push(d);
            continue;
        };
        // Created (or bound) by an earlier round, deleted by this one: undo the creation.
        create.remove(i);
        if existed(&d.job, &d.pod) {
            // The object was there before, unbound; it is still unneeded.
            delete.push(crate::model::PodDeletion { node: None, ..d });
        }
    }
    create.extend(later.create);

    let mut recreate_after_delete = earlier.recreate_after_delete;
    recreate_after_delete.extend(later.recreate_after_delete);
    let mut service_reservations = earlier.service_reservations;
    service_reservations.extend(later.service_reservations);

    // Sizes and reasons come from the last round; "current" is what the cluster has now.
    let mut jobs = later.jobs;
    for (i, jp) in jobs.iter_mut().enumerate() {
        let first = match earlier.jobs.get(i) {
            Some(e) if e.job == jp.job => Some(e),
            _ => earlier.jobs.iter().find(|e| e.job == jp.job),
        };
        if let Some(first) = first {
            jp.current_trainers = first.current_trainers;
        }
    }
    Plan {
        jobs,
        create,
        delete,
        recreate_after_delete,
        service_reservations,
        problems: earlier.problems,
        // Asked for once the rounds are done (see `super::scale_up`).
        scale_up: later.scale_up,
        no_scale_up: later.no_scale_up,
    }
}

/// True when a round changes nothing in the cluster.
pub fn is_quiet(plan: &Plan) -> bool {
    plan.create.is_empty() && plan.delete.is_empty() && plan.recreate_after_delete.is_empty()
}
