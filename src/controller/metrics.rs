//! Prometheus metrics of the controller, served on `/metrics`.

use crate::cluster::kube::Tick;
use crate::resource::JobPhase;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabel {
    pub phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabel {
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueResourceLabel {
    pub queue: String,
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabel {
    pub namespace: String,
    pub job: String,
}

pub struct Metrics {
    pub registry: Registry,
    tick_seconds: Histogram,
    jobs: Family<PhaseLabel, Gauge>,
    trainers: Gauge,
    job_trainers: Family<JobLabel, Gauge>,
    allocation: Family<ResourceLabel, Gauge<f64, AtomicU64>>,
    queue_allocation: Family<QueueResourceLabel, Gauge<f64, AtomicU64>>,
    api_failures: Counter,
    leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ebb");
        let tick_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        let jobs = Family::<PhaseLabel, Gauge>::default();
        let trainers = Gauge::default();
        let job_trainers = Family::<JobLabel, Gauge>::default();
        let allocation = Family::<ResourceLabel, Gauge<f64, AtomicU64>>::default();
        let queue_allocation = Family::<QueueResourceLabel, Gauge<f64, AtomicU64>>::default();
        let api_failures = Counter::default();
        let leader = Gauge::default();
        registry.register(
            "tick_duration_seconds",
            "Time to build the snapshot, plan and apply one tick",
            tick_seconds.clone(),
        );
        registry.register("jobs", "TrainingJobs by phase", jobs.clone());
        registry.register(
            "trainers",
            "Trainers running or being placed",
            trainers.clone(),
        );
        registry.register(
            "job_trainers",
            "Trainers each job is planned to run (jobs not finished)",
            job_trainers.clone(),
        );
        registry.register(
            "allocation_ratio",
            "Requests of all bound pods over allocatable, per resource",
            allocation.clone(),
        );
        registry.register(
            "queue_allocation_ratio",
            "Requests of a queue's bound job pods over the cluster's allocatable, per resource",
            queue_allocation.clone(),
        );
        registry.register(
            "api_failures",
            "API calls that failed after their retries",
            api_failures.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the lease",
            leader.clone(),
        );
        Metrics {
            registry,
            tick_seconds,
            jobs,
            trainers,
            job_trainers,
            allocation,
            queue_allocation,
            api_failures,
            leader,
        }
    }
}

/// `used` over `total` per resource, by the resource's label value (0 where the cluster
/// has none of it).
fn ratios(
    used: &crate::model::Resources,
    total: &crate::model::Resources,
) -> impl Iterator<Item = (&'static str, f64)> {
    ["cpu", "memory", "gpu"]
        .into_iter()
        .zip(total.as_array())
        .zip(used.as_array())
        .map(|((name, t), u)| (name, if t > 0 { u as f64 / t as f64 } else { 0.0 }))
}

impl Metrics {
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    pub fn record(&self, tick: &Tick, seconds: f64, failures: usize) {
        self.tick_seconds.observe(seconds);
        self.api_failures.inc_by(failures as u64);
        let mut by_phase = [0i64; 5];
        let phases = [
            JobPhase::Pending,
            JobPhase::Running,
            JobPhase::Scaling,
            JobPhase::Succeeded,
            JobPhase::Failed,
        ];
        for jp in &tick.plan.jobs {
            let phase = if !jp.admitted {
                JobPhase::Pending
            } else if jp.current_trainers != jp.target_trainers {
                JobPhase::Scaling
            } else {
                JobPhase::Running
            };
            by_phase[phases.iter().position(|p| *p == phase).unwrap_or(0)] += 1;
        }
        by_phase[0] += tick.build.invalid_jobs.len() as i64;
        for (phase, _, _) in tick.build.finished.iter().map(|(_, p, w)| (p, 0, w)) {
            by_phase[phases.iter().position(|p| p == phase).unwrap_or(0)] += 1;
        }
        for (phase, n) in phases.iter().zip(by_phase) {
            self.jobs
                .get_or_create(&PhaseLabel {
                    phase: phase.as_str().into(),
                })
                .set(n);
        }
        let trainers: u32 = tick.plan.jobs.iter().map(|j| j.target_trainers).sum();
        self.trainers.set(i64::from(trainers));
        // Finished and deleted jobs leave the family rather than stay at their last value.
        self.job_trainers.clear();
        for jp in &tick.plan.jobs {
            self.job_trainers
                .get_or_create(&JobLabel {
                    namespace: jp.job.namespace.clone(),
                    job: jp.job.name.clone(),
                })
                .set(i64::from(jp.target_trainers));
        }
        let snapshot = &tick.build.snapshot;
        let total = snapshot
            .nodes
            .iter()
            .fold(crate::model::Resources::ZERO, |a, n| a.add(&n.allocatable));
        let used = snapshot
            .usage_by_node()
            .values()
            .fold(crate::model::Resources::ZERO, |a, u| a.add(u));
        for (name, ratio) in ratios(&used, &total) {
            self.allocation
                .get_or_create(&ResourceLabel {
                    resource: name.into(),
                })
                .set(ratio);
        }
        self.record_queue_allocation(snapshot, &total);
    }

    /// Each queue's bound job pods (its own jobs, not its children's) as a share of the
    /// cluster: the dashboard stacks them to show who holds what.
    fn record_queue_allocation(
        &self,
        snapshot: &crate::model::Snapshot,
        total: &crate::model::Resources,
    ) {
        let mut by_queue: std::collections::BTreeMap<&str, crate::model::Resources> = snapshot
            .queues
            .iter()
            .map(|q| (q.name.as_str(), Default::default()))
            .collect();
        for j in &snapshot.jobs {
            let used = by_queue.entry(j.queue.as_str()).or_default();
            for p in j.pods.iter().filter(|p| p.node.is_some()) {
                *used = used.add(&j.resources_of(p.role));
            }
        }
        // Deleted queues leave the family rather than stay at their last value.
        self.queue_allocation.clear();
        for (queue, used) in by_queue {
            for (name, ratio) in ratios(&used, total) {
                self.queue_allocation
                    .get_or_create(&QueueResourceLabel {
                        queue: queue.into(),
                        resource: name.into(),
                    })
                    .set(ratio);
            }
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::kube::Tick;
    use crate::model::{JobKey, JobPlan, Node, Resources};

    #[test]
    fn a_tick_shows_up_in_the_exposition() {
        let metrics = Metrics::default();
        let mut tick = Tick::default();
        tick.build
            .snapshot
            .nodes
            .push(Node::new("n", Resources::new(4000, 1 << 30, 2)));
        tick.plan.jobs.push(JobPlan {
            job: JobKey::new("ml", "a"),
            admitted: true,
            reason: None,
            current_trainers: 1,
            target_trainers: 3,
            fair_trainers: 3,
        });
        // Half the node's GPUs held by a bound trainer of queue "research"; its
        // unbound trainer holds nothing yet.
        tick.build.snapshot.jobs.push(
            serde_json::from_value(serde_json::json!({
                "namespace": "ml", "name": "a", "queue": "research",
                "master": {"replicas": 0, "resources": {}},
                "pservers": {"replicas": 0, "resources": {}},
                "trainers": {"min": 1, "max": 3, "resources": {"gpus": 1}},
                "pods": [
                    {"name": "a-trainer-0", "role": "trainer", "node": "n"},
                    {"name": "a-trainer-1", "role": "trainer"}
                ],
                "submit_time_s": 0.0
            }))
            .expect("a valid job"),
        );
        metrics.set_leader(true);
        metrics.record(&tick, 0.004, 2);
        let text = metrics.encode();
        for line in [
            "ebb_jobs{phase=\"Scaling\"} 1",
            "ebb_jobs{phase=\"Running\"} 0",
            "ebb_trainers 3",
            "ebb_job_trainers{namespace=\"ml\",job=\"a\"} 3",
            "ebb_api_failures_total 2",
            "ebb_leader 1",
            "ebb_tick_duration_seconds_count 1",
            "ebb_allocation_ratio{resource=\"gpu\"} 0.5",
            "ebb_queue_allocation_ratio{queue=\"research\",resource=\"gpu\"} 0.5",
            "ebb_queue_allocation_ratio{queue=\"research\",resource=\"cpu\"} 0.0",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
