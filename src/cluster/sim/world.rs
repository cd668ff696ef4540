//! The virtual cluster's state: the snapshot the controller would read, plus what only
//! the simulator knows (when pods become ready, how far each job has trained).

use super::hpa::Hpa;
use super::scenario::{JobSpec, PlacementSpeedup, Scenario};
use super::services::SimService;
pub use super::tally::Counts;
use super::tally::Tally;
use crate::model::{Job, Node, PodGroup, Role, Snapshot, TrainerSpec};
use crate::plan::speedup::speedup;
use crate::plan::{FastMap, JobIndexCache};
use std::collections::{BTreeSet, HashMap, HashSet};

/// How the jobs of a scenario are sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// ebb: trainers between min and max, resized every tick.
    Elastic,
    /// The seed's "general training job": exactly the requested trainers, gang-admitted
    /// in FIFO order, never resized.
    Static,
    /// ebb's sizing, but the autoscaler is shown every trainer up to `max` as pending,
    /// queue limits or not, as schedulers that create an elastic job's pods up to its
    /// max do.
    NaiveElastic,
}

pub struct SimJob {
    pub spec: JobSpec,
    pub start_s: Option<f64>,
    /// Live trainers after the last plan, to see resizes.
    pub trainers: u32,
    /// When each of the job's pods becomes ready, by pod name.
    pub pod_ready_at: FastMap<String, f64>,
    /// `spec.placement_speedup` by placement key.
    pub placement_speedup: HashMap<Vec<u32>, f64>,
    /// The node groups (scenario `prefix`es) any of its pods ran on, by role.
    pub ran_on: std::collections::BTreeSet<(Role, String)>,
}

/// What every event reads and writes of a job, apart from its spec and pods: every
/// event walks the running jobs, and a dense vector of these keeps that walk in cache.
#[derive(Clone, Copy)]
pub struct Progress {
    /// `spec.work`.
    pub work: f64,
    pub done_work: f64,
    pub end_s: Option<f64>,
    pub paused_until: f64,
    /// The rate last worked out, and until when it holds: the next time one of the
    /// job's pods becomes ready or its pause ends. Forgotten when a plan changes the
    /// job's pods ([`World::forget_rate`]) and when a node goes down or comes back
    /// ([`World::forget_rates`]).
    pub rate_memo: Option<RateMemo>,
}

#[derive(Clone, Copy)]
pub struct RateMemo {
    pub until: f64,
    pub rate: Option<f64>,
    /// `World::rate_epoch` when worked out.
    pub epoch: u64,
}

pub struct World {
    pub snapshot: Snapshot,
    /// Nodes of the scenario, whether up or down.
    pub all_nodes: Vec<Node>,
    pub jobs: Vec<SimJob>,
    /// Of each job in `jobs`, by the same index.
    pub progress: Vec<Progress>,
    pub services: Vec<SimService>,
    /// Times (as f64 bits, which order like the non-negative times) at which some pod
    /// becomes ready: the events that change a job's rate.
    pub upcoming_ready: BTreeSet<u64>,
    /// Sim job index by job name (names are unique within a scenario).
    pub job_by_name: FastMap<String, usize>,
    /// The sim job of each job in `snapshot.jobs`, in the same order: jobs join at
    /// [`World::submit`] and leave at [`World::remove_job`]. Events look jobs up this
    /// way, not by name.
    sim_of: Vec<usize>,
    /// What the controller's last plan indexed of each job in `snapshot.jobs`, kept in
    /// step with them: a tick re-indexes only the jobs that changed since.
    pub index_cache: JobIndexCache,
    pub policy: PolicyKind,
    /// Moves on whenever every job's rate must be worked out afresh.
    rate_epoch: u64,
    /// [`World::utilisation_and_trainers`] since the pods or nodes last changed
    /// (see [`World::pods_changed`]).
    counted: Option<Counts>,
    /// Its sums, while every node is up: a job that leaves is taken out of them.
    tally: Option<Tally>,
}

impl World {
    pub fn new(scenario: &Scenario, policy: PolicyKind) -> World {
        let all_nodes = scenario.nodes();
        let snapshot = Snapshot {
            time_s: 0.0,
            nodes: scenario.nodes_at_start(&all_nodes),
            jobs: Vec::new(),
            queues: scenario.queues.clone(),
            other_pods: Vec::new(),
            node_groups: scenario.node_groups(&all_nodes),
        };
        let jobs = scenario
            .jobs
            .iter()
            .map(|spec| SimJob {
                spec: spec.clone(),
                start_s: None,
                trainers: 0,
                pod_ready_at: FastMap::default(),
                placement_speedup: spec
                    .placement_speedup
                    .iter()
                    .map(|p| (PlacementSpeedup::key(&p.per_node), p.speedup))
                    .collect(),
                ran_on: Default::default(),
            })
            .collect();
        let progress = scenario
            .jobs
            .iter()
            .map(|spec| Progress {
                work: spec.work,
                done_work: 0.0,
                end_s: None,
                paused_until: 0.0,
                rate_memo: None,
            })
            .collect();
        let job_by_name = scenario
            .jobs
            .iter()
            .enumerate()
            .map(|(i, j)| (j.name.clone(), i))
            .collect();
        let services = scenario
            .services
            .iter()
            .map(|spec| SimService {
                hpa: Hpa::new(spec.hpa.clone()),
                replicas: 0,
                next_ordinal: 0,
                pending_since: HashMap::new(),
                longest_pending_s: 0.0,
                spec: spec.clone(),
            })
            .collect();
        World {
            snapshot,
            all_nodes,
            jobs,
            progress,
            services,
            upcoming_ready: BTreeSet::new(),
            job_by_name,
            sim_of: Vec::new(),
            index_cache: JobIndexCache::new(),
            policy,
            rate_epoch: 0,
            counted: None,
            tally: None,
        }
    }

    /// The TrainingJob the controller sees for a submitted job.
    pub fn submit(&mut self, j: usize, now: f64) {
        let spec = &self.jobs[j].spec;
        let t = &spec.trainers;
        let (min, max) = match self.policy {
            PolicyKind::Elastic | PolicyKind::NaiveElastic => (t.min, t.max),
            PolicyKind::Static => (t.requested, t.requested),
        };
        let job = Job {
            namespace: spec.namespace.clone(),
            name: spec.name.clone(),
            queue: spec.queue.clone(),
            priority: spec.priority,
            weight: spec.weight,
            master: PodGroup {
                replicas: 1,
                resources: spec.master.resources(),
            },
            pservers: PodGroup {
                replicas: spec.pservers.count,
                resources: spec.pservers.shape().resources(),
            },
            trainers: TrainerSpec {
                min,
                max,
                resources: t.shape().resources(),
            },
            pods: Vec::new(),
            submit_time_s: now,
            admitted: false,
            last_scale_time_s: None,
            // ebb is told how the job scales (a fixed-size job has no use for it).
            speedup: match self.policy {
                PolicyKind::Elastic | PolicyKind::NaiveElastic => spec.speedup.clone(),
                PolicyKind::Static => Vec::new(),
            },
            placement: spec.placement.clone(),
        };
        self.snapshot.jobs.push(job);
        self.index_cache.pushed();
        self.sim_of.push(j);
    }

    /// Job `j` leaves the cluster (it finished): its pods are gone.
    pub fn remove_job(&mut self, j: usize) {
        self.jobs[j].pod_ready_at.clear();
        let Some(at) = self.sim_of.iter().position(|&s| s == j) else {
            return;
        };
        // Kept in order: the controller sees jobs in the order they came.
        self.sim_of.remove(at);
        let gone = self.snapshot.jobs.remove(at);
        self.index_cache.removed(at);
        let tally = self.tally.and_then(|t| t.without(&gone));
        self.pods_changed();
        if let Some(t) = tally {
            self.tally = Some(t);
            self.counted = Some(t.counts());
        }
    }

    /// Snapshot jobs with their sim job index, in snapshot order.
    pub fn jobs_with_index(&self) -> impl Iterator<Item = (usize, &Job)> {
        debug_assert_eq!(self.sim_of.len(), self.snapshot.jobs.len());
        self.sim_of.iter().copied().zip(&self.snapshot.jobs)
    }

    pub fn node_is_up(&self, name: &str) -> bool {
        self.snapshot.nodes.iter().any(|n| n.name == name)
    }

    /// A pod of job `j` becomes ready at `t`.
    pub fn pod_starts(&mut self, j: usize, pod: &str, t: f64) {
        self.jobs[j].pod_ready_at.insert(pod.to_string(), t);
        self.upcoming_ready.insert(t.max(0.0).to_bits());
    }

    /// The next time after `now` a pod becomes ready (earlier ones are forgotten).
    pub fn next_ready_after(&mut self, now: f64) -> Option<f64> {
        while let Some(&first) = self.upcoming_ready.first() {
            if f64::from_bits(first) > now {
                return Some(f64::from_bits(first));
            }
            self.upcoming_ready.pop_first();
        }
        None
    }

    /// (sim job index, samples per second) of each job that trains now: none while
    /// paused for a resize or while its master or a pserver is missing or starting.
    /// Only jobs in the cluster are looked at, so an event costs what runs, not the
    /// whole trace.
    pub fn rates(&mut self, now: f64) -> Vec<(usize, f64)> {
        let up = nodes_up(&self.snapshot.nodes, self.all_nodes.len());
        let mut out = Vec::new();
        debug_assert_eq!(self.sim_of.len(), self.snapshot.jobs.len());
        for (&j, job) in self.sim_of.iter().zip(&self.snapshot.jobs) {
            let progress = &mut self.progress[j];
            if progress.end_s.is_some() {
                continue;
            }
            // Until its pods change, a job's rate changes only when one of them becomes
            // ready or its pause ends; working it out looks up every pod by name.
            let memo = match progress.rate_memo {
                Some(m) if now < m.until && m.epoch == self.rate_epoch => m,
                _ => {
                    let m = work_out_rate(
                        job,
                        &self.jobs[j],
                        progress.paused_until,
                        up.as_ref(),
                        now,
                        self.rate_epoch,
                    );
                    progress.rate_memo = Some(m);
                    m
                }
            };
            if let Some(rate) = memo.rate {
                out.push((j, rate));
            }
        }
        out
    }

    /// [`World::rates`] with nothing kept: what the kept rates must equal.
    pub fn rates_afresh(&self, now: f64) -> Vec<(usize, f64)> {
        let up = nodes_up(&self.snapshot.nodes, self.all_nodes.len());
        self.jobs_with_index()
            .filter(|&(j, _)| self.progress[j].end_s.is_none())
            .filter_map(|(j, job)| {
                let paused_until = self.progress[j].paused_until;
                let memo = work_out_rate(job, &self.jobs[j], paused_until, up.as_ref(), now, 0);
                memo.rate.map(|rate| (j, rate))
            })
            .collect()
    }

    /// Every job's rate is worked out afresh at the next event: the nodes that are up
    /// have changed.
    pub fn forget_rates(&mut self) {
        self.rate_epoch += 1;
    }

    /// Job `j`'s rate is worked out afresh at the next event: its pods or its pause
    /// changed.
    pub fn forget_rate(&mut self, j: usize) {
        self.progress[j].rate_memo = None;
    }

    /// Pods were bound, unbound, added or removed, or nodes went down or came back:
    /// the utilisation is counted afresh at the next sample.
    pub fn pods_changed(&mut self) {
        self.counted = None;
        self.tally = None;
    }

    /// [`World::utilisation_and_trainers`], counted once between changes (every event
    /// samples it; most change no pod).
    pub fn counts(&mut self) -> Counts {
        if let Some(c) = self.counted {
            debug_assert_eq!(c, self.utilisation_and_trainers(), "stale counts");
            return c;
        }
        let c = if self.all_nodes_up() {
            let t = Tally::of(&self.snapshot);
            self.tally = Some(t);
            t.counts()
        } else {
            self.utilisation_and_trainers()
        };
        self.counted = Some(c);
        c
    }

    pub fn node_down(&mut self, name: &str) {
        self.forget_rates();
        self.pods_changed();
        self.snapshot.nodes.retain(|n| n.name != name);
        self.index_cache.clear();
        // The Deployment replaces the pods it lost; job pods stay bound to the dead node
        // until the controller cleans them up, as the API server would show them.
        for p in &mut self.snapshot.other_pods {
            if p.node.as_deref() == Some(name) {
                p.node = None;
            }
        }
    }

    pub fn node_up(&mut self, name: &str) {
        self.forget_rates();
        self.pods_changed();
        if self.node_is_up(name) {
            return;
        }
        self.index_cache.clear();
        // Whatever ran there died with the node.
        for job in &mut self.snapshot.jobs {
            job.pods.retain(|p| p.node.as_deref() != Some(name));
        }
        if let Some(node) = self.all_nodes.iter().find(|n| n.name == name) {
            self.snapshot.nodes.push(node.clone());
        }
    }

    /// Requests of placed pods over allocatable of the nodes that are up: (CPU, GPU).
    pub fn utilisation(&self) -> (f64, f64) {
        let mut total = crate::model::Resources::ZERO;
        let mut used = crate::model::Resources::ZERO;
        for n in &self.snapshot.nodes {
            total = total.add(&n.allocatable);
        }
        if self.all_nodes_up() {
            // Every node is up, so every bound pod counts: no per-node map (this runs
            // at every event).
            for job in &self.snapshot.jobs {
                for p in job.pods.iter().filter(|p| p.node.is_some()) {
                    used = used.add(&job.resources_of(p.role));
                }
            }
            for p in self.snapshot.other_pods.iter().filter(|p| p.node.is_some()) {
                used = used.add(&p.resources);
            }
        } else {
            let usage = self.snapshot.usage_by_node();
            for n in &self.snapshot.nodes {
                if let Some(u) = usage.get(n.name.as_str()) {
                    used = used.add(u);
                }
            }
        }
        let frac = |u: i64, t: i64| if t > 0 { u as f64 / t as f64 } else { 0.0 };
        (
            frac(used.cpu_milli, total.cpu_milli),
            frac(used.gpus, total.gpus),
        )
    }

    /// [`World::utilisation`] and the live trainers of all jobs, in one pass over the
    /// pods when every node is up.
    pub fn utilisation_and_trainers(&self) -> Counts {
        if !self.all_nodes_up() {
            let trainers = self
                .snapshot
                .jobs
                .iter()
                .map(|job| job.live_trainers().count() as u32)
                .sum();
            return (self.utilisation(), trainers);
        }
        Tally::of(&self.snapshot).counts()
    }

    fn all_nodes_up(&self) -> bool {
        self.snapshot.nodes.len() == self.all_nodes.len()
    }

    /// Every node holds what is bound to it.
    pub fn overcommitted_node(&self) -> Option<(String, crate::model::Resources)> {
        let usage = self.snapshot.usage_by_node();
        self.snapshot.nodes.iter().find_map(|n| {
            let used = usage.get(n.name.as_str())?;
            (!used.fits_in(&n.allocatable)).then(|| (n.name.clone(), used.sub(&n.allocatable)))
        })
    }
}

/// Names of the nodes that are up (`up_now`, of `all` nodes), or `None` when all are:
/// nodes only go down in fault scenarios, so most runs need no set of them. Borrowed,
/// not copied: with a node down this runs at every event. A function of the node list,
/// not of the world, so `rates` can keep it while it updates each job's progress.
fn nodes_up(up_now: &[Node], all: usize) -> Option<HashSet<&str>> {
    (up_now.len() < all).then(|| up_now.iter().map(|n| n.name.as_str()).collect())
}

/// The samples per second job `job` trains at now (None while paused for a resize or
/// while its master or a pserver is missing or starting), and until when that holds.
fn work_out_rate(
    job: &Job,
    sim: &SimJob,
    paused_until: f64,
    up: Option<&HashSet<&str>>,
    now: f64,
    epoch: u64,
) -> RateMemo {
    if now < paused_until {
        return RateMemo {
            until: paused_until,
            rate: None,
            epoch,
        };
    }
    let mut until = f64::INFINITY;
    let mut ready_support = 0;
    let mut ready_trainers = 0;
    let mut per_node: HashMap<&str, u32> = HashMap::new();
    for pod in &job.pods {
        let Some(node) = &pod.node else { continue };
        if pod.terminating || up.is_some_and(|up| !up.contains(node.as_str())) {
            continue;
        }
        match sim.pod_ready_at.get(&pod.name) {
            None => continue,
            Some(&t) if t > now => {
                until = until.min(t);
                continue;
            }
            Some(_) => {}
        }
        match pod.role {
            Role::Trainer => {
                ready_trainers += 1;
                if !sim.placement_speedup.is_empty() {
                    *per_node.entry(node.as_str()).or_default() += 1;
                }
            }
            _ => ready_support += 1,
        }
    }
    // The master and every pserver.
    let support = 1 + sim.spec.pservers.count;
    let mut rate = None;
    if ready_support >= support {
        let counts: Vec<u32> = per_node.into_values().collect();
        let measured = sim
            .placement_speedup
            .get(&PlacementSpeedup::key(&counts))
            .copied();
        let s = measured.unwrap_or_else(|| speedup(&sim.spec.speedup, ready_trainers));
        let r = sim.spec.rate_per_trainer * s;
        if r > 0.0 {
            rate = Some(r);
        }
    }
    RateMemo { until, rate, epoch }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::JobPod;

    const SCENARIO: &str = r#"
name: rates
tick_s: 5
pod_startup_s: 10
cluster:
  nodes:
    - { prefix: node, count: 2, cpu: 8, memory_gib: 32, gpus: 0 }
jobs:
  - name: job-a
    submit_s: 0
    master: { cpu: 1, memory_gib: 1 }
    pservers: { count: 1, cpu: 1, memory_gib: 1 }
    trainers: { requested: 2, min: 1, max: 4, cpu: 1, memory_gib: 1 }
    work: 1000000
    rate_per_trainer: 10
    rescale_pause_s: 10
"#;

    fn bind(w: &mut World, pod: &str, role: Role, node: &str, ready_at: f64) {
        w.snapshot.jobs[0].pods.push(JobPod {
            name: pod.into(),
            role,
            node: Some(node.into()),
            terminating: false,
        });
        w.pod_starts(0, pod, ready_at);
    }

    /// Rates kept between events agree with rates worked out afresh at each one.
    fn rates_at(w: &mut World, now: f64) -> Vec<(usize, f64)> {
        let kept = w.rates(now);
        w.forget_rates();
        assert_eq!(kept, w.rates(now), "kept rate at {now} is stale");
        kept
    }

    #[test]
    fn a_kept_rate_holds_until_a_pod_is_ready_or_the_pods_change() {
        let scenario = Scenario::parse(SCENARIO, "test").expect("scenario parses");
        let mut w = World::new(&scenario, PolicyKind::Elastic);
        w.submit(0, 0.0);
        bind(&mut w, "job-a-master-0", Role::Master, "node-0", 10.0);
        bind(&mut w, "job-a-pserver-0", Role::Pserver, "node-0", 10.0);
        bind(&mut w, "job-a-trainer-0", Role::Trainer, "node-1", 12.0);
        w.forget_rates();
        assert!(rates_at(&mut w, 0.0).is_empty(), "nothing is ready yet");
        assert!(
            rates_at(&mut w, 11.0).is_empty(),
            "the trainer starts at 12"
        );
        let one = rates_at(&mut w, 12.0);
        assert_eq!(one.len(), 1);
        // A plan adds a trainer: the kept rate is forgotten, the new one counts once ready.
        bind(&mut w, "job-a-trainer-1", Role::Trainer, "node-1", 30.0);
        w.forget_rates();
        assert_eq!(rates_at(&mut w, 20.0), one);
        let two = rates_at(&mut w, 30.0);
        assert!(two[0].1 > one[0].1, "{two:?} after {one:?}");
        // Its pause ends at a time of its own.
        w.progress[0].paused_until = 40.0;
        w.forget_rates();
        assert!(rates_at(&mut w, 35.0).is_empty());
        assert_eq!(rates_at(&mut w, 40.0), two);
        // A node going down takes its trainers' work with it.
        let live = |w: &World| {
            w.snapshot
                .jobs
                .iter()
                .map(|j| j.live_trainers().count() as u32)
                .sum::<u32>()
        };
        w.snapshot.jobs[0].pods[2].terminating = true; // a trainer on its way out
        assert_eq!(w.utilisation_and_trainers(), (w.utilisation(), live(&w)));
        w.node_down("node-1");
        assert!(rates_at(&mut w, 41.0).is_empty(), "no trainer is up");
        assert_eq!(w.utilisation_and_trainers(), (w.utilisation(), live(&w)));
    }
}
