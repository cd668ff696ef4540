//! A pod of the embedded cluster: one local OS process, bound to a virtual node, started
//! once what it needs is reachable and stopped the way the kubelet stops a container
//! (SIGTERM, the grace period, then SIGKILL).

use crate::model::Resources;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodPhase {
    /// Bound to its node, not started yet (waiting for its master and pservers).
    Waiting,
    Running,
    /// Told to stop; holds its resources until it has.
    Terminating,
    Succeeded,
    Failed,
}

impl PodPhase {
    pub fn ended(self) -> bool {
        matches!(self, PodPhase::Succeeded | PodPhase::Failed)
    }
}

#[derive(Debug)]
pub struct LocalPod {
    pub name: String,
    pub node: Option<String>,
    pub resources: Resources,
    pub phase: PodPhase,
    /// Where the process writes its listening address (masters, pservers, services).
    pub addr_file: Option<PathBuf>,
    pub addr: Option<String>,
    pub restarts: u32,
    pub grace: Duration,
    child: Option<Child>,
    kill_at: Option<Instant>,
}

/// How a pod's process is started.
#[derive(Clone, Debug)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
}

impl LocalPod {
    pub fn new(name: String, node: Option<String>, resources: Resources, grace: Duration) -> Self {
        LocalPod {
            name,
            node,
            resources,
            phase: PodPhase::Waiting,
            addr_file: None,
            addr: None,
            restarts: 0,
            grace,
            child: None,
            kill_at: None,
        }
    }

    /// Holds resources on its node: bound and not ended.
    pub fn holds_resources(&self) -> bool {
        self.node.is_some() && !self.phase.ended()
    }

    /// Starts the pod's process, as `run_as` when given (its uid and gid; std drops
    /// root's supplementary groups when it changes the uid).
    pub fn start(
        &mut self,
        launch: &Launch,
        run_as: Option<&super::run_as::RunAs>,
    ) -> std::io::Result<()> {
        if let Some(f) = &self.addr_file {
            let _ = std::fs::remove_file(f);
        }
        super::logs::rotate(&launch.log);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&launch.log)?;
        let mut command = Command::new(&launch.program);
        command
            .args(&launch.args)
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(user) = run_as {
            command.uid(user.uid).gid(user.gid);
        }
        // If `ebb up` itself is killed, its pods get SIGTERM instead of living on as
        // orphans. SAFETY: only prctl(2) runs between fork and exec: async-signal-safe,
        // no allocation, no locks.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)
            });
        }
        let child = command.spawn()?;
        tracing::debug!(pod = %self.name, pid = child.id(), "started");
        self.child = Some(child);
        self.phase = PodPhase::Running;
        Ok(())
    }

    /// Reads the address file once the process has written it.
    pub fn refresh_addr(&mut self) {
        if self.addr.is_none()
            && let Some(f) = &self.addr_file
            && let Ok(text) = std::fs::read_to_string(f)
            && !text.trim().is_empty()
        {
            self.addr = Some(text.trim().to_string());
        }
    }

    /// SIGTERM now, SIGKILL after the grace period; a pod never started just ends.
    pub fn terminate(&mut self, now: Instant) {
        match (&self.child, self.phase) {
            (_, PodPhase::Succeeded | PodPhase::Failed | PodPhase::Terminating) => {}
            (Some(child), _) => {
                signal(child, Signal::SIGTERM);
                self.phase = PodPhase::Terminating;
                self.kill_at = Some(now + self.grace);
            }
            (None, _) => self.phase = PodPhase::Succeeded,
        }
    }

    /// Notices an exit; returns the exit code when the process ended since last time.
    pub fn reap(&mut self, now: Instant) -> Option<i32> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                self.addr = None;
                let code = status.code().unwrap_or(-1);
                self.phase = if code == 0 || self.phase == PodPhase::Terminating {
                    PodPhase::Succeeded
                } else {
                    PodPhase::Failed
                };
                Some(code)
            }
            Ok(None) => {
                if self.kill_at.is_some_and(|t| now >= t) {
                    tracing::warn!(pod = %self.name, "grace period over; SIGKILL");
                    let _ = child.kill();
                    self.kill_at = None;
                }
                None
            }
            Err(e) => {
                tracing::warn!(pod = %self.name, error = %e, "cannot wait on the process");
                None
            }
        }
    }

    /// Stops the process at once (the embedded cluster is shutting down).
    pub fn kill_now(&mut self) {
        if let Some(child) = &mut self.child {
            signal(child, Signal::SIGTERM);
            std::thread::sleep(Duration::from_millis(50));
            let _ = child.kill();
            let _ = child.wait();
        }
        self.child = None;
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

fn signal(child: &Child, sig: Signal) {
    let Ok(pid) = i32::try_from(child.id()) else {
        return;
    };
    if let Err(e) = kill(Pid::from_raw(pid), sig) {
        tracing::debug!(pid, error = %e, "signal not delivered (already gone?)");
    }
}

pub fn log_path(dir: &Path, pod: &str) -> PathBuf {
    dir.join(format!("{pod}.log"))
}
