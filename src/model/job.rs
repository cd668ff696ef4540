//! A training job: a master, parameter servers and an elastic set of trainers.

use super::Resources;
use super::placement::Placement;
use serde::{Deserialize, Serialize};
use std::fmt;

/// `namespace/name`, the identity of a job everywhere in ebb.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobKey {
    pub namespace: String,
    pub name: String,
}

impl JobKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        JobKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Master,
    Pserver,
    Trainer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Pserver => "pserver",
            Role::Trainer => "trainer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Appends `n` in decimal, as `{n}` would: pod names are minted by the thousand per
/// plan, and the formatting machinery cost more than the rest of naming a pod.
pub(crate) fn push_decimal(out: &mut String, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}

/// A fixed-size group of identical pods (the master, the pservers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodGroup {
    pub replicas: u32,
    pub resources: Resources,
}

impl PodGroup {
    pub fn total(&self) -> Resources {
        self.resources.times(i64::from(self.replicas))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerSpec {
    pub min: u32,
    pub max: u32,
    pub resources: Resources,
}

/// A pod of the job that exists in the cluster now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobPod {
    pub name: String,
    pub role: Role,
    /// None while the pod exists but is not bound to a node yet.
    #[serde(default)]
    pub node: Option<String>,
    /// Being deleted: still holds its node's resources, no longer counts as a trainer.
    #[serde(default)]
    pub terminating: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    pub namespace: String,
    pub name: String,
    #[serde(default = "default_queue")]
    pub queue: String,
    /// Higher is admitted first.
    #[serde(default)]
    pub priority: i32,
    /// Relative share among the jobs of the same queue.
    #[serde(default = "default_weight")]
    pub weight: f64,
    pub master: PodGroup,
    pub pservers: PodGroup,
    pub trainers: TrainerSpec,
    #[serde(default)]
    pub pods: Vec<JobPod>,
    pub submit_time_s: f64,
    /// Set once the planner admitted the job (kept in the job's status): from then on
    /// it is never pushed below `min` to make room for others.
    #[serde(default)]
    pub admitted: bool,
    #[serde(default)]
    pub last_scale_time_s: Option<f64>,
    /// Measured `[trainers, relative_throughput]` points, increasing in trainers. Trainers
    /// beyond the point where throughput stops rising (within 5%) are not given: that
    /// capacity goes to other jobs. None: throughput grows with every trainer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub speedup: Vec<(u32, f64)>,
    /// Where each role's pods may run: packing places them only on nodes whose labels
    /// and taints allow it (`plan::eligibility`).
    #[serde(default, skip_serializing_if = "JobPlacement::is_unconstrained")]
    pub placement: JobPlacement,
}

/// The placement constraints of each of a job's pod groups.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobPlacement {
    #[serde(default, skip_serializing_if = "Placement::is_unconstrained")]
    pub master: Placement,
    #[serde(default, skip_serializing_if = "Placement::is_unconstrained")]
    pub pservers: Placement,
    #[serde(default, skip_serializing_if = "Placement::is_unconstrained")]
    pub trainers: Placement,
}

impl JobPlacement {
    /// [`Placement::check`] of each role, the field named under the role's
    /// (`trainers.required[0].match_expressions[0].values`).
    pub fn check(&self) -> Result<(), super::placement::PlacementError> {
        for (group, p) in [
            ("master", &self.master),
            ("pservers", &self.pservers),
            ("trainers", &self.trainers),
        ] {
            p.check().map_err(|e| super::placement::PlacementError {
                field: format!("{group}.{}", e.field),
                message: e.message,
            })?;
        }
        Ok(())
    }

    /// The same constraints for every role (a TrainingJob's one pod template).
    pub fn every_role(p: Placement) -> Self {
        JobPlacement {
            master: p.clone(),
            pservers: p.clone(),
            trainers: p,
        }
    }

    pub fn is_unconstrained(&self) -> bool {
        self.master.is_unconstrained()
            && self.pservers.is_unconstrained()
            && self.trainers.is_unconstrained()
    }

    pub fn of_mut(&mut self, role: Role) -> &mut Placement {
        match role {
            Role::Master => &mut self.master,
            Role::Pserver => &mut self.pservers,
            Role::Trainer => &mut self.trainers,
        }
    }

    pub fn of(&self, role: Role) -> &Placement {
        match role {
            Role::Master => &self.master,
            Role::Pserver => &self.pservers,
            Role::Trainer => &self.trainers,
        }
    }
}

pub fn default_queue() -> String {
    "default".to_string()
}

fn default_weight() -> f64 {
    1.0
}

impl Job {
    pub fn key(&self) -> JobKey {
        JobKey::new(self.namespace.clone(), self.name.clone())
    }

    /// Master plus pservers: what the job needs before its first trainer.
    pub fn overhead(&self) -> Resources {
        self.master.total().add(&self.pservers.total())
    }

    /// The gang that admission must fit: overhead plus `min` trainers.
    pub fn gang(&self) -> Resources {
        self.overhead()
            .add(&self.trainers.resources.times(i64::from(self.trainers.min)))
    }

    /// Fixed replica count of masters or pservers (trainers are elastic: their `max`).
    pub fn replicas_of(&self, role: Role) -> u32 {
        match role {
            Role::Master => self.master.replicas,
            Role::Pserver => self.pservers.replicas,
            Role::Trainer => self.trainers.max,
        }
    }

    /// The stable name of the `i`-th master or pserver: `JOB-ROLE-i`.
    pub fn support_pod_name(&self, role: Role, i: u32) -> String {
        let role = role.as_str();
        let mut name = String::with_capacity(self.name.len() + role.len() + 12);
        name.push_str(&self.name);
        name.push('-');
        name.push_str(role);
        name.push('-');
        push_decimal(&mut name, i);
        name
    }

    pub fn resources_of(&self, role: Role) -> Resources {
        match role {
            Role::Master => self.master.resources,
            Role::Pserver => self.pservers.resources,
            Role::Trainer => self.trainers.resources,
        }
    }

    /// Trainers that are bound and not terminating.
    pub fn live_trainers(&self) -> impl Iterator<Item = &JobPod> {
        self.pods
            .iter()
            .filter(|p| p.role == Role::Trainer && !p.terminating && p.node.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_print_like_display() {
        for n in [0u32, 7, 10, 99, 100, 4_294_967_295] {
            let mut s = String::from("x-");
            push_decimal(&mut s, n);
            assert_eq!(s, format!("x-{n}"));
        }
    }

    #[test]
    fn support_pod_names_are_job_role_index() {
        let job: Job = serde_json::from_value(serde_json::json!({
            "namespace": "ns", "name": "mnist", "submit_time_s": 0.0,
            "master": {"replicas": 1, "resources": {"cpu_milli": 1, "memory_bytes": 1, "gpus": 0}},
            "pservers": {"replicas": 2, "resources": {"cpu_milli": 1, "memory_bytes": 1, "gpus": 0}},
            "trainers": {"min": 1, "max": 2, "resources": {"cpu_milli": 1, "memory_bytes": 1, "gpus": 0}}
        }))
        .expect("a valid job");
        assert_eq!(job.support_pod_name(Role::Master, 0), "mnist-master-0");
        assert_eq!(job.support_pod_name(Role::Pserver, 12), "mnist-pserver-12");
        for role in [Role::Master, Role::Pserver, Role::Trainer] {
            assert_eq!(role.as_str(), role.to_string());
        }
    }
}
