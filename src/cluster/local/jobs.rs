//! A TrainingJob of the embedded cluster: its resource, its pods as processes, and how
//! each role is launched.

use super::process::{Launch, LocalPod, PodPhase, log_path};
use crate::api::proto;
use crate::model::{JobPod, Role};
use crate::resource::TrainingJob;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Restarts of one pod's process (restartPolicy: OnFailure) before the job fails.
pub const MAX_RESTARTS: u32 = 5;

#[derive(Debug)]
pub struct JobRecord {
    pub tj: TrainingJob,
    pub pods: BTreeMap<String, (Role, LocalPod)>,
    pub progress: Option<proto::Progress>,
    pub dir: PathBuf,
    pub deleting: bool,
    /// Set when the master ended: Succeeded or Failed, and why.
    pub outcome: Option<(crate::resource::JobPhase, String)>,
}

impl JobRecord {
    pub fn new(tj: TrainingJob, dir: PathBuf) -> Self {
        JobRecord {
            tj,
            pods: BTreeMap::new(),
            progress: None,
            dir,
            deleting: false,
            outcome: None,
        }
    }

    pub fn name(&self) -> &str {
        self.tj.metadata.name.as_deref().unwrap_or_default()
    }

    /// The pods as the planner sees them.
    pub fn model_pods(&self) -> Vec<JobPod> {
        self.pods
            .iter()
            .map(|(name, (role, pod))| JobPod {
                name: name.clone(),
                role: *role,
                node: if pod.holds_resources() {
                    pod.node.clone()
                } else {
                    None
                },
                terminating: pod.phase != PodPhase::Waiting && pod.phase != PodPhase::Running,
            })
            .collect()
    }

    /// Every pod with its phase (as Kubernetes names them) and restarts, for `get`.
    pub fn pod_statuses(&self) -> Vec<proto::PodStatus> {
        self.pods
            .iter()
            .map(|(name, (role, pod))| proto::PodStatus {
                name: name.clone(),
                role: role.to_string(),
                node: pod.node.clone().unwrap_or_default(),
                phase: match pod.phase {
                    PodPhase::Waiting => "Pending",
                    PodPhase::Running => "Running",
                    PodPhase::Terminating => "Terminating",
                    PodPhase::Succeeded => "Succeeded",
                    PodPhase::Failed => "Failed",
                }
                .into(),
                restarts: pod.restarts,
            })
            .collect()
    }

    pub fn live_trainers(&self) -> u32 {
        self.pods
            .values()
            .filter(|(role, p)| {
                *role == Role::Trainer && matches!(p.phase, PodPhase::Waiting | PodPhase::Running)
            })
            .count() as u32
    }

    fn addr_of(&self, role: Role, index: u32) -> Option<String> {
        let name = format!("{}-{role}-{index}", self.name());
        self.pods.get(&name).and_then(|(_, p)| p.addr.clone())
    }

    /// Master and every pserver reachable: trainers can start.
    fn peers(&self) -> Option<(String, Vec<String>)> {
        let master = self.addr_of(Role::Master, 0)?;
        let pservers = (0..self.tj.spec.pservers.replicas)
            .map(|i| self.addr_of(Role::Pserver, i))
            .collect::<Option<Vec<_>>>()?;
        Some((master, pservers))
    }

    /// How to start pod `name` now, or None while it must wait for its peers.
    pub fn launch(&self, exe: &Path, name: &str, role: Role) -> Option<Launch> {
        let spec = &self.tj.spec;
        let index = crate::resource::names::ordinal(name).unwrap_or(0);
        let log = log_path(&self.dir, name);
        let mut env = vec![
            ("EBB_JOB".to_string(), self.name().to_string()),
            ("EBB_DATA".to_string(), spec.dataset.clone()),
        ];
        let exe_args = |args: Vec<String>| Launch {
            program: exe.to_path_buf(),
            args,
            env: env.clone(),
            log: log.clone(),
        };
        let dir = self.dir.display();
        match role {
            Role::Master => Some(exe_args(vec![
                "master".into(),
                "--listen=127.0.0.1:0".into(),
                format!("--addr-file={dir}/{name}.addr"),
                format!("--data={}", spec.dataset),
                format!("--passes={}", spec.passes),
                format!("--state-dir={dir}/{name}-state"),
                "--exit-when-done-s=2".into(),
            ])),
            Role::Pserver => Some(exe_args(vec![
                "pserver".into(),
                "--listen=127.0.0.1:0".into(),
                format!("--addr-file={dir}/{name}.addr"),
                format!("--index={index}"),
                format!("--checkpoint-dir={dir}/{name}-checkpoints"),
            ])),
            Role::Trainer => {
                let (master, pservers) = self.peers()?;
                let pservers = pservers.join(",");
                env.push(("EBB_MASTER".into(), master.clone()));
                env.push(("EBB_PSERVERS".into(), pservers.clone()));
                env.push(("EBB_TRAINER_ID".into(), name.to_string()));
                env.extend(
                    spec.trainers
                        .env
                        .iter()
                        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default())),
                );
                if let Some((program, rest)) = spec.trainers.command.split_first() {
                    let mut args = rest.to_vec();
                    args.extend(spec.trainers.args.iter().cloned());
                    return Some(Launch {
                        program: PathBuf::from(program),
                        args,
                        env,
                        log,
                    });
                }
                let mut args = vec![
                    "trainer".into(),
                    format!("--id={name}"),
                    format!("--master={master}"),
                    format!("--pservers={pservers}"),
                    format!("--data={}", spec.dataset),
                    format!("--model-dir={dir}/model"),
                ];
                args.extend(spec.trainers.args.iter().cloned());
                Some(Launch {
                    program: exe.to_path_buf(),
                    args,
                    env,
                    log,
                })
            }
        }
    }

    pub fn new_pod(
        &self,
        name: &str,
        role: Role,
        node: String,
        trainer_grace: Duration,
    ) -> LocalPod {
        let resources = match role {
            Role::Master => &self.tj.spec.master.resources,
            Role::Pserver => &self.tj.spec.pservers.resources,
            Role::Trainer => &self.tj.spec.trainers.resources,
        };
        let resources =
            crate::resource::spec::resources("spec", resources, false).unwrap_or_default();
        let grace = if role == Role::Trainer {
            trainer_grace
        } else {
            Duration::from_secs(5)
        };
        let mut pod = LocalPod::new(name.to_string(), Some(node), resources, grace);
        if role != Role::Trainer {
            pod.addr_file = Some(self.dir.join(format!("{name}.addr")));
        }
        pod
    }
}
