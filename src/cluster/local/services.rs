//! Online services of the embedded cluster: replicas of `ebb serve-http` whose count
//! follows the request rate, the way an HPA follows a metric.

use super::config::ServiceDecl;
use super::process::{Launch, LocalPod, PodPhase, log_path};
use crate::model::{OtherPod, Resources};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct ServiceRuntime {
    pub decl: ServiceDecl,
    pub resources: Resources,
    pub pods: BTreeMap<String, LocalPod>,
    pub desired: u32,
    pub rate: f64,
    next: u32,
    counts: BTreeMap<String, u64>,
    measured_at: Option<Instant>,
    low_since: Option<Instant>,
    dir: PathBuf,
}

impl ServiceRuntime {
    pub fn new(decl: ServiceDecl, resources: Resources, dir: PathBuf) -> Self {
        ServiceRuntime {
            desired: decl.min_replicas,
            decl,
            resources,
            pods: BTreeMap::new(),
            rate: 0.0,
            next: 0,
            counts: BTreeMap::new(),
            measured_at: None,
            low_since: None,
            dir,
        }
    }

    fn stats_file(&self, pod: &str) -> PathBuf {
        self.dir.join(format!("{pod}.requests"))
    }

    /// Measures the request rate and sets `desired` (up at once, down after the window).
    pub fn autoscale(&mut self, now: Instant) {
        let mut total_new = 0u64;
        for name in self.pods.keys() {
            let count: u64 = std::fs::read_to_string(self.stats_file(name))
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
            let before = self.counts.insert(name.clone(), count).unwrap_or(count);
            total_new += count.saturating_sub(before);
        }
        if let Some(then) = self.measured_at {
            let dt = now.duration_since(then).as_secs_f64();
            if dt > 0.0 {
                self.rate = total_new as f64 / dt;
            }
        }
        self.measured_at = Some(now);
        let wanted = ((self.rate / self.decl.target_rps_per_replica).ceil() as u32)
            .clamp(self.decl.min_replicas, self.decl.max_replicas);
        if wanted >= self.desired {
            self.desired = wanted;
            self.low_since = None;
        } else {
            let since = *self.low_since.get_or_insert(now);
            if now.duration_since(since) >= Duration::from_secs_f64(self.decl.scale_down_window_s) {
                self.desired = wanted;
                self.low_since = None;
            }
        }
        self.reconcile_replicas(now);
    }

    fn active(&self) -> impl Iterator<Item = (&String, &LocalPod)> {
        self.pods
            .iter()
            .filter(|(_, p)| matches!(p.phase, PodPhase::Waiting | PodPhase::Running))
    }

    fn reconcile_replicas(&mut self, now: Instant) {
        let active = self.active().count() as u32;
        for _ in active..self.desired {
            let name = format!("{}-{}", self.decl.name, self.next);
            self.next += 1;
            let mut pod = LocalPod::new(name.clone(), None, self.resources, Duration::from_secs(2));
            pod.addr_file = Some(self.dir.join(format!("{name}.addr")));
            self.pods.insert(name, pod);
        }
        if active > self.desired {
            // Newest first, unplaced before running, as a ReplicaSet scales down.
            let mut victims: Vec<String> = self.active().map(|(n, _)| n.clone()).collect();
            victims.sort_by_key(|n| {
                let p = &self.pods[n];
                (
                    p.node.is_some(),
                    std::cmp::Reverse(crate::resource::names::ordinal(n)),
                )
            });
            for name in victims.into_iter().take((active - self.desired) as usize) {
                if let Some(p) = self.pods.get_mut(&name) {
                    p.terminate(now);
                }
            }
        }
        self.pods.retain(|_, p| !p.phase.ended());
    }

    /// Pods as the planner sees them: demand ebb yields to.
    pub fn other_pods(&self) -> Vec<OtherPod> {
        self.pods
            .values()
            .filter(|p| !p.phase.ended())
            .map(|p| OtherPod {
                namespace: "default".into(),
                name: p.name.clone(),
                workload: Some(format!("Deployment/{}", self.decl.name)),
                resources: p.resources,
                node: p.node.clone(),
                placement: self.decl.placement.clone(),
            })
            .collect()
    }

    pub fn launch(&self, exe: &Path, name: &str) -> Launch {
        let dir = self.dir.display();
        Launch {
            program: exe.to_path_buf(),
            args: vec![
                "serve-http".into(),
                "--listen=127.0.0.1:0".into(),
                format!("--addr-file={dir}/{name}.addr"),
                format!("--stats-file={}", self.stats_file(name).display()),
            ],
            env: Vec::new(),
            log: log_path(&self.dir, name),
        }
    }

    /// Reads replicas' addresses once they are listening, and says where they are.
    pub fn refresh_addrs(&mut self) {
        for pod in self.pods.values_mut() {
            let had = pod.addr.is_some();
            pod.refresh_addr();
            if let (false, Some(addr)) = (had, &pod.addr) {
                tracing::info!(service = %self.decl.name, replica = %pod.name, %addr, "replica serving");
            }
        }
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.pods.values().filter_map(|p| p.addr.clone()).collect()
    }
}
