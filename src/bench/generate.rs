//! Synthetic clusters for benchmarks and tests: a mix of 8-GPU and CPU-only nodes in
//! racks, queues with weights and guarantees, jobs of mixed shapes, and services; and,
//! with [`Constraints`], several GPU models, a tainted dedicated pool and jobs that say
//! where they may run.

use crate::model::placement::{
    GPU_PRODUCT_LABEL, NO_SCHEDULE, NodeSelectorTerm, Placement, Requirement, Taint, Toleration,
};
use crate::model::{
    Job, JobPlacement, Node, NodeGroup, OtherPod, PodGroup, Queue, Resources, Snapshot, Topology,
    TrainerSpec,
};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

const GIB: i64 = 1 << 30;

#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub nodes: usize,
    pub jobs: usize,
    pub queues: usize,
    pub gpus_per_node: i64,
    pub seed: u64,
    pub constraints: Constraints,
}

/// How heterogeneous the generated cluster is. The default (one GPU model, no taints,
/// no constrained job) generates the same cluster as before these existed.
#[derive(Clone, Debug, PartialEq)]
pub struct Constraints {
    /// Distinct GPU models, assigned to GPU nodes in turn by NVLink pair.
    pub gpu_models: usize,
    /// Fraction of GPU nodes in a dedicated pool, labelled `pool=dedicated` and tainted
    /// `dedicated=ml:NoSchedule`.
    pub tainted_nodes: f64,
    /// Fraction of jobs with placement constraints: GPU jobs name one or two models or
    /// tolerate and select the dedicated pool; CPU jobs require nodes without GPUs.
    pub constrained_jobs: f64,
    /// Node groups an autoscaler could grow (0: none): nodes are dealt to them in turn,
    /// GPU and CPU nodes apart, each group's template its first node and its max a
    /// fifth above its size.
    pub node_groups: usize,
}

impl Default for Constraints {
    fn default() -> Self {
        Constraints {
            gpu_models: 1,
            tainted_nodes: 0.0,
            constrained_jobs: 0.0,
            node_groups: 0,
        }
    }
}

const GPU_MODELS: [&str; 6] = ["H100", "A100", "L40S", "T4", "V100", "A10"];
const DEDICATED: &str = "dedicated";

pub fn cluster(spec: &ClusterSpec) -> Snapshot {
    let mut rng = SmallRng::seed_from_u64(spec.seed);
    let nodes: Vec<Node> = (0..spec.nodes)
        .map(|i| {
            let gpu = spec.gpus_per_node > 0 && i % 2 == 0;
            let alloc = if gpu {
                Resources::new(96_000, 1024 * GIB, spec.gpus_per_node)
            } else {
                Resources::new(64_000, 256 * GIB, 0)
            };
            let mut n = Node::new(format!("node-{i:05}"), alloc);
            n.topology = Topology {
                nvlink_group: gpu.then(|| format!("nvl-{}", i / 2)),
                rack: Some(format!("rack-{}", i / 32)),
            };
            let c = &spec.constraints;
            let pair = i / 2;
            let model = GPU_MODELS[pair % c.gpu_models.clamp(1, GPU_MODELS.len())];
            if gpu && c != &Constraints::default() {
                n.labels.insert(GPU_PRODUCT_LABEL.into(), model.into());
                // Every tenth pair in proportion, spread over the models.
                if ((pair / c.gpu_models.max(1)) % 10) < (c.tainted_nodes * 10.0).round() as usize {
                    n.labels.insert("pool".into(), DEDICATED.into());
                    n.taints.push(Taint {
                        key: DEDICATED.into(),
                        value: "ml".into(),
                        effect: NO_SCHEDULE.into(),
                    });
                }
            }
            n.gpu_model = gpu.then(|| model.to_string());
            n
        })
        .collect();
    let queues: Vec<Queue> = (0..spec.queues.max(1))
        .map(|q| {
            let mut queue = Queue::new(format!("queue-{q}"));
            queue.weight = f64::from(1 + (q % 4) as u32);
            if q % 5 == 0 {
                queue.guaranteed = Resources::new(64_000 * 4, 512 * GIB, 8);
            }
            queue
        })
        .collect();
    let jobs = (0..spec.jobs)
        .map(|i| {
            let gpu_job = spec.gpus_per_node > 0 && rng.random_bool(0.3);
            let trainer = if gpu_job {
                let g = [1, 2, 4, 8][rng.random_range(0..4)].min(spec.gpus_per_node);
                Resources::new(8_000 * g, 64 * GIB * g, g)
            } else {
                let c = rng.random_range(1..=8);
                Resources::new(1000 * c, 2 * GIB * c, 0)
            };
            let min = rng.random_range(1..=8);
            let c = &spec.constraints;
            // Drawn only when asked for, so that the default keeps its cluster.
            let placement =
                if c.constrained_jobs > 0.0 && rng.random_bool(c.constrained_jobs.min(1.0)) {
                    constrained(&mut rng, gpu_job, c.gpu_models)
                } else {
                    JobPlacement::default()
                };
            Job {
                namespace: format!("team-{}", i % 7),
                name: format!("job-{i:05}"),
                queue: format!("queue-{}", i % spec.queues.max(1)),
                priority: 0,
                weight: 1.0,
                master: PodGroup {
                    replicas: 1,
                    resources: Resources::new(1000, 2 * GIB, 0),
                },
                pservers: PodGroup {
                    replicas: rng.random_range(0..=2),
                    resources: Resources::new(2000, 8 * GIB, 0),
                },
                trainers: TrainerSpec {
                    min,
                    max: min + rng.random_range(0..=64),
                    resources: trainer,
                },
                pods: Vec::new(),
                submit_time_s: i as f64,
                admitted: false,
                last_scale_time_s: None,
                speedup: Vec::new(),
                placement,
            }
        })
        .collect();
    // System pods on a tenth of the nodes.
    let other_pods = (0..spec.nodes)
        .step_by(10)
        .map(|i| OtherPod {
            namespace: "kube-system".into(),
            name: format!("agent-{i}"),
            workload: Some("agent".into()),
            resources: Resources::new(500, GIB, 0),
            node: Some(format!("node-{i:05}")),
            placement: Default::default(),
        })
        .collect();
    let mut nodes = nodes;
    let node_groups = node_groups(&mut nodes, spec.constraints.node_groups);
    Snapshot {
        time_s: spec.jobs as f64 + 1.0,
        nodes,
        jobs,
        queues,
        other_pods,
        node_groups,
    }
}

/// Deals `nodes` to `count` groups (see [`Constraints::node_groups`]).
fn node_groups(nodes: &mut [Node], count: usize) -> Vec<NodeGroup> {
    if count == 0 {
        return Vec::new();
    }
    // GPU and CPU nodes alternate: a group takes every `count`th node of one kind.
    let classes = count.div_ceil(2).max(1);
    let mut members = vec![0u32; count];
    let mut templates: Vec<Option<Node>> = vec![None; count];
    for (i, n) in nodes.iter_mut().enumerate() {
        let g = ((i / 2) % classes * 2 + i % 2).min(count - 1);
        n.group = Some(format!("group-{g:02}"));
        members[g] += 1;
        templates[g].get_or_insert_with(|| n.clone());
    }
    templates
        .into_iter()
        .enumerate()
        .filter_map(|(g, template)| {
            Some(NodeGroup {
                name: format!("group-{g:02}"),
                template: template?,
                min: 0,
                max: members[g] + members[g] / 5,
                delay_s: 300.0,
                price_per_node_hour: None,
            })
        })
        .collect()
}

/// A job's constraints: a GPU job names one model or two, or tolerates and selects the
/// dedicated pool; a CPU job requires nodes without GPUs.
fn constrained(rng: &mut SmallRng, gpu_job: bool, models: usize) -> JobPlacement {
    let models = models.clamp(1, GPU_MODELS.len());
    let placement = if !gpu_job {
        Placement {
            required: Some(vec![NodeSelectorTerm {
                match_expressions: vec![Requirement {
                    key: GPU_PRODUCT_LABEL.into(),
                    operator: "DoesNotExist".into(),
                    values: Vec::new(),
                }],
                match_fields: Vec::new(),
            }]),
            ..Placement::default()
        }
    } else if rng.random_bool(0.25) {
        Placement {
            node_selector: [("pool".to_string(), DEDICATED.to_string())].into(),
            tolerations: vec![Toleration {
                key: DEDICATED.into(),
                operator: "Exists".into(),
                ..Toleration::default()
            }],
            ..Placement::default()
        }
    } else {
        let first = rng.random_range(0..models);
        let mut gpu_models = vec![GPU_MODELS[first].to_string()];
        if models > 1 && rng.random_bool(0.5) {
            gpu_models.push(GPU_MODELS[(first + 1) % models].to_string());
        }
        Placement {
            gpu_models,
            ..Placement::default()
        }
    };
    JobPlacement {
        trainers: placement,
        ..JobPlacement::default()
    }
}

/// Unplaced service replicas (as an HPA scale-up leaves them), to add to a snapshot.
pub fn service_demand(count: usize, cpu_milli: i64) -> Vec<OtherPod> {
    (0..count)
        .map(|i| OtherPod {
            namespace: "web".into(),
            name: format!("nginx-{i}"),
            workload: Some("nginx".into()),
            resources: Resources::new(cpu_milli, GIB, 0),
            node: None,
            placement: Default::default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::placement::NodeFacts;
    use crate::plan::{Policy, plan};

    fn spec(constraints: Constraints) -> ClusterSpec {
        ClusterSpec {
            nodes: 200,
            jobs: 120,
            queues: 5,
            gpus_per_node: 8,
            seed: 7,
            constraints,
        }
    }

    #[test]
    fn the_default_constraints_generate_an_unconstrained_cluster() {
        let s = cluster(&spec(Constraints::default()));
        assert!(
            s.nodes
                .iter()
                .all(|n| n.taints.is_empty() && n.labels.is_empty())
        );
        assert!(s.jobs.iter().all(|j| j.placement.is_unconstrained()));
    }

    #[test]
    fn node_groups_take_every_node_and_keep_gpu_and_cpu_nodes_apart() {
        let s = cluster(&spec(Constraints {
            node_groups: 6,
            ..Constraints::default()
        }));
        assert_eq!(s.node_groups.len(), 6);
        for g in &s.node_groups {
            let members: Vec<&Node> = s
                .nodes
                .iter()
                .filter(|n| n.group.as_deref() == Some(g.name.as_str()))
                .collect();
            assert!(!members.is_empty() && g.max as usize > members.len());
            assert!(
                members
                    .iter()
                    .all(|n| n.has_gpus() == g.template.has_gpus())
            );
            assert_eq!(g.check(), Ok(()));
        }
        assert!(s.nodes.iter().all(|n| n.group.is_some()));
    }

    #[test]
    fn a_heterogeneous_cluster_is_planned_within_its_constraints() {
        let s = cluster(&spec(Constraints {
            gpu_models: 3,
            tainted_nodes: 0.2,
            constrained_jobs: 0.5,
            node_groups: 0,
        }));
        let models: std::collections::BTreeSet<_> = s
            .nodes
            .iter()
            .filter_map(|n| n.labels.get(GPU_PRODUCT_LABEL))
            .collect();
        assert_eq!(models.len(), 3);
        let tainted = s.nodes.iter().filter(|n| !n.taints.is_empty()).count();
        assert!(tainted > 0 && tainted < s.nodes.len() / 2, "{tainted}");
        let constrained = s
            .jobs
            .iter()
            .filter(|j| !j.placement.is_unconstrained())
            .count();
        assert!(constrained > 30 && constrained < 90, "{constrained}");
        let p = plan(&s, &Policy::default());
        assert!(!p.create.is_empty());
        for c in &p.create {
            let job = s.jobs.iter().find(|j| j.key() == c.job).expect("job");
            let node = s.nodes.iter().find(|n| n.name == c.node).expect("node");
            let facts = NodeFacts {
                name: &node.name,
                labels: &node.labels,
                taints: &node.taints,
            };
            assert!(
                job.placement.of(c.role).admits(facts),
                "{} on {}",
                c.pod,
                c.node
            );
        }
    }
}
