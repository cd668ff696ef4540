//! What every event samples: utilisation (requests over allocatable) and live trainers,
//! kept as integer sums so that a job leaving is taken out exactly, with no pass over
//! the other pods.

use crate::model::{Job, Resources, Role, Snapshot};

/// Utilisation (CPU, GPU) and live trainers.
pub type Counts = ((f64, f64), u32);

/// Sums over a snapshot whose every node is up (then every bound pod counts).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tally {
    pub allocatable: Resources,
    pub requested: Resources,
    pub trainers: u32,
}

impl Tally {
    pub fn of(snapshot: &Snapshot) -> Tally {
        let mut t = Tally {
            allocatable: Resources::ZERO,
            requested: Resources::ZERO,
            trainers: 0,
        };
        for n in &snapshot.nodes {
            t.allocatable = t.allocatable.add(&n.allocatable);
        }
        for job in &snapshot.jobs {
            let (requested, trainers) = job_share(job);
            t.requested = t.requested.add(&requested);
            t.trainers += trainers;
        }
        for p in snapshot.other_pods.iter().filter(|p| p.node.is_some()) {
            t.requested = t.requested.add(&p.resources);
        }
        t
    }

    /// The tally without `job`, or None when a sum saturated (then taking a part out
    /// would not give what counting afresh gives).
    pub fn without(&self, job: &Job) -> Option<Tally> {
        let saturated = |r: &Resources| r.as_array().contains(&i64::MAX);
        if saturated(&self.requested) {
            return None;
        }
        let (requested, trainers) = job_share(job);
        Some(Tally {
            allocatable: self.allocatable,
            requested: self.requested.sub(&requested),
            trainers: self.trainers.checked_sub(trainers)?,
        })
    }

    pub fn counts(&self) -> Counts {
        let frac = |u: i64, t: i64| if t > 0 { u as f64 / t as f64 } else { 0.0 };
        (
            (
                frac(self.requested.cpu_milli, self.allocatable.cpu_milli),
                frac(self.requested.gpus, self.allocatable.gpus),
            ),
            self.trainers,
        )
    }
}

/// What one job's bound pods request, and its live trainers.
fn job_share(job: &Job) -> (Resources, u32) {
    let mut bound = [0i64; 3];
    let mut trainers = 0;
    for p in job.pods.iter().filter(|p| p.node.is_some()) {
        let slot = match p.role {
            Role::Master => 0,
            Role::Pserver => 1,
            Role::Trainer => {
                trainers += u32::from(!p.terminating);
                2
            }
        };
        bound[slot] += 1;
    }
    let mut requested = Resources::ZERO;
    for (slot, role) in [Role::Master, Role::Pserver, Role::Trainer]
        .iter()
        .enumerate()
    {
        requested = requested.add(&job.resources_of(*role).times(bound[slot]));
    }
    (requested, trainers)
}
