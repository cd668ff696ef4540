//! The scenario file: a virtual cluster, its online services and their load, training
//! jobs with their work, and faults. Schema and units: `docs/scenarios.md`.

use super::error::SimError;
use crate::model::placement::{Placement, Taint};
use crate::model::{JobPlacement, Node, Queue, Resources, Topology};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

const GIB: f64 = (1u64 << 30) as f64;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Controller period.
    #[serde(default = "default_tick_s")]
    pub tick_s: f64,
    /// From a pod's creation to its doing work.
    #[serde(default = "default_startup_s")]
    pub pod_startup_s: f64,
    /// Stop here even if jobs are left (they are reported unfinished).
    #[serde(default = "default_end_s")]
    pub end_s: f64,
    pub cluster: ClusterSpec,
    #[serde(default)]
    pub queues: Vec<Queue>,
    #[serde(default)]
    pub services: Vec<ServiceSpec>,
    #[serde(default)]
    pub jobs: Vec<JobSpec>,
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
}

fn default_tick_s() -> f64 {
    5.0
}
fn default_startup_s() -> f64 {
    5.0
}
fn default_end_s() -> f64 {
    30.0 * 24.0 * 3600.0
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    pub nodes: Vec<NodeGroup>,
}

/// `count` identical nodes named `PREFIX-0 ..`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeGroup {
    pub prefix: String,
    pub count: u32,
    pub cpu: f64,
    pub memory_gib: f64,
    #[serde(default)]
    pub gpus: i64,
    #[serde(default)]
    pub gpu_model: Option<String>,
    /// Nodes per rack (racks named `PREFIX-rack-N`); none: no rack label.
    #[serde(default)]
    pub nodes_per_rack: Option<u32>,
    /// Node labels, besides the GPU model's (`nvidia.com/gpu.product`, as NVIDIA GPU
    /// feature discovery publishes it).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `spec.taints` of every node of the group.
    #[serde(default)]
    pub taints: Vec<Taint>,
    /// Grown and shrunk by a simulated Cluster Autoscaler: `count` nodes are up at the
    /// start, more join when the planner asks, idle ones leave (see `autoscaler.rs`).
    #[serde(default)]
    pub autoscale: Option<AutoscaleSpec>,
}

/// A node group's autoscaling, with Cluster Autoscaler's defaults.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoscaleSpec {
    #[serde(default)]
    pub min: u32,
    pub max: u32,
    /// From a scale-up to the node's joining; default 120 s for CPU nodes, 300 s for GPU.
    #[serde(default)]
    pub delay_s: Option<f64>,
    /// A node whose requests stay below `utilisation` of its allocatable this long is
    /// removed, unless a pod that is not safe to evict runs there.
    #[serde(default = "default_unneeded_s")]
    pub unneeded_s: f64,
    #[serde(default = "default_utilisation")]
    pub utilisation: f64,
    #[serde(default)]
    pub price_per_node_hour: Option<f64>,
}

fn default_unneeded_s() -> f64 {
    600.0
}
fn default_utilisation() -> f64 {
    0.5
}

impl NodeGroup {
    /// Nodes the scenario ever has of this group: `count`, or up to an autoscaled max.
    pub fn nodes_ever(&self) -> u32 {
        self.autoscale
            .as_ref()
            .map_or(self.count, |a| a.max.max(self.count))
    }

    /// The group as the planner sees it, when autoscaled.
    pub fn node_group(&self, template: &Node) -> Option<crate::model::NodeGroup> {
        let a = self.autoscale.as_ref()?;
        let delay = a
            .delay_s
            .unwrap_or(if self.gpus > 0 { 300.0 } else { 120.0 });
        Some(crate::model::NodeGroup {
            name: self.prefix.clone(),
            template: template.clone(),
            min: a.min,
            max: a.max,
            delay_s: delay,
            price_per_node_hour: a.price_per_node_hour,
        })
    }
}

/// A pod shape in the units people write.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodShape {
    pub cpu: f64,
    pub memory_gib: f64,
    #[serde(default)]
    pub gpus: i64,
}

impl PodShape {
    pub fn resources(&self) -> Resources {
        Resources::new(
            (self.cpu * 1000.0).round() as i64,
            (self.memory_gib * GIB).round() as i64,
            self.gpus,
        )
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: String,
    #[serde(default = "default_service_namespace")]
    pub namespace: String,
    pub pod: PodShape,
    pub hpa: HpaSpec,
    /// Steps of offered load, by time; the first should be at 0.
    pub load: Vec<LoadStep>,
    /// Where its pods may run (node selector, affinity, tolerations), as in a pod spec.
    #[serde(default)]
    pub placement: Placement,
}

fn default_service_namespace() -> String {
    "web".into()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HpaSpec {
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// Target average queries per second per pod.
    pub target_qps_per_pod: f64,
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    #[serde(default = "default_sync_s")]
    pub sync_period_s: f64,
    #[serde(default = "default_stabilization_s")]
    pub scale_down_stabilization_s: f64,
}

fn default_tolerance() -> f64 {
    0.1
}
fn default_sync_s() -> f64 {
    15.0
}
fn default_stabilization_s() -> f64 {
    300.0
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadStep {
    pub at_s: f64,
    pub qps: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub name: String,
    #[serde(default = "default_job_namespace")]
    pub namespace: String,
    #[serde(default = "crate::model::default_queue")]
    pub queue: String,
    #[serde(default)]
    pub priority: i32,
    #[serde(default = "default_weight")]
    pub weight: f64,
    pub submit_s: f64,
    pub master: PodShape,
    pub pservers: PserverSpec,
    pub trainers: TrainerSpec,
    /// Samples to process; the job ends when they are done.
    pub work: f64,
    /// Samples per second of one trainer.
    pub rate_per_trainer: f64,
    /// Measured speedups `[trainers, speedup]`, interpolated linearly; none: linear
    /// scaling (n trainers go n times as fast).
    #[serde(default)]
    pub speedup: Vec<(u32, f64)>,
    /// Measured speedups of particular placements (trainers per node); where the job's
    /// placement is listed, it wins over `speedup`.
    #[serde(default)]
    pub placement_speedup: Vec<PlacementSpeedup>,
    /// Every trainer pauses this long when the job changes size.
    #[serde(default = "default_rescale_s")]
    pub rescale_pause_s: f64,
    /// Where each role's pods may run: `master`, `pservers`, `trainers`, each with a
    /// pod's node selector, affinity and tolerations (and `gpu_models`).
    #[serde(default)]
    pub placement: JobPlacement,
}

fn default_job_namespace() -> String {
    "ml".into()
}
fn default_weight() -> f64 {
    1.0
}
fn default_rescale_s() -> f64 {
    10.0
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementSpeedup {
    /// Trainers on each node the job uses, in any order (`[4, 4]`: two nodes of four).
    pub per_node: Vec<u32>,
    pub speedup: f64,
}

impl PlacementSpeedup {
    /// The order-free form placements are compared in: counts, largest first.
    pub fn key(per_node: &[u32]) -> Vec<u32> {
        let mut k: Vec<u32> = per_node.iter().copied().filter(|&n| n > 0).collect();
        k.sort_unstable_by(|a, b| b.cmp(a));
        k
    }
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PserverSpec {
    pub count: u32,
    pub cpu: f64,
    pub memory_gib: f64,
    #[serde(default)]
    pub gpus: i64,
}

impl PserverSpec {
    /// No parameter servers (all-reduce jobs, as in DL traces).
    pub fn none() -> Self {
        PserverSpec {
            count: 0,
            cpu: 0.0,
            memory_gib: 0.0,
            gpus: 0,
        }
    }

    pub fn shape(&self) -> PodShape {
        PodShape {
            cpu: self.cpu,
            memory_gib: self.memory_gib,
            gpus: self.gpus,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerSpec {
    /// What a fixed-size job asks for: the `static` policy runs exactly this many.
    pub requested: u32,
    pub min: u32,
    pub max: u32,
    pub cpu: f64,
    pub memory_gib: f64,
    #[serde(default)]
    pub gpus: i64,
}

impl TrainerSpec {
    pub fn shape(&self) -> PodShape {
        PodShape {
            cpu: self.cpu,
            memory_gib: self.memory_gib,
            gpus: self.gpus,
        }
    }
}

/// A node lost at `down_s` and back (empty) at `up_s`, if given.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub node: String,
    pub down_s: f64,
    #[serde(default)]
    pub up_s: Option<f64>,
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, SimError> {
        let text = std::fs::read_to_string(path).map_err(|e| SimError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Scenario::parse(&text, &path.display().to_string())
    }

    /// `origin` names the text in errors (a file path).
    pub fn parse(text: &str, origin: &str) -> Result<Scenario, SimError> {
        let scenario: Scenario = serde_saphyr::from_str(text).map_err(|e| SimError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        scenario
            .check()
            .map_err(|(field, message)| SimError::Invalid {
                path: match super::yaml_line::line_of(text, &field) {
                    Some(line) => format!("{origin}:{line}"),
                    None => origin.to_string(),
                },
                field,
                message,
            })?;
        Ok(scenario)
    }

    pub fn nodes(&self) -> Vec<Node> {
        let mut out = Vec::new();
        for g in &self.cluster.nodes {
            let allocatable = PodShape {
                cpu: g.cpu,
                memory_gib: g.memory_gib,
                gpus: g.gpus,
            }
            .resources();
            for i in 0..g.nodes_ever() {
                let mut node = Node::new(format!("{}-{i}", g.prefix), allocatable);
                node.group = g.autoscale.is_some().then(|| g.prefix.clone());
                node.labels = g.labels.clone();
                if let Some(model) = &g.gpu_model {
                    node.set_gpu_model(model);
                }
                node.taints = g.taints.clone();
                node.topology = Topology {
                    nvlink_group: (g.gpus > 0).then(|| node.name.clone()),
                    rack: g
                        .nodes_per_rack
                        .filter(|&n| n > 0)
                        .map(|n| format!("{}-rack-{}", g.prefix, i / n)),
                };
                out.push(node);
            }
        }
        out
    }

    /// The nodes up when the run starts, out of `all` ([`Scenario::nodes`]): each
    /// group's first `count`.
    pub fn nodes_at_start(&self, all: &[Node]) -> Vec<Node> {
        let mut start = Vec::new();
        let mut from = 0;
        for g in &self.cluster.nodes {
            let ever = g.nodes_ever() as usize;
            start.extend_from_slice(&all[from..from + (g.count as usize).min(ever)]);
            from += ever;
        }
        start
    }

    /// The autoscaled groups, as the planner sees them.
    pub fn node_groups(&self, nodes: &[Node]) -> Vec<crate::model::NodeGroup> {
        self.cluster
            .nodes
            .iter()
            .filter_map(|g| {
                let template = nodes
                    .iter()
                    .find(|n| n.group.as_deref() == Some(g.prefix.as_str()))?;
                g.node_group(template)
            })
            .collect()
    }
}
