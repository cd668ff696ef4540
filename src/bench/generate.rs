//! Synthetic clusters for benchmarks and tests: a mix of 8-GPU and CPU-only nodes in
//! racks, queues with weights and guarantees, jobs of mixed shapes, and services.

use crate::model::{
    Job, Node, OtherPod, PodGroup, Queue, Resources, Snapshot, Topology, TrainerSpec,
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
}

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
            n.gpu_model = gpu.then(|| "H100".to_string());
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
                placement: Default::default(),
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
        })
        .collect();
    Snapshot {
        time_s: spec.jobs as f64 + 1.0,
        nodes,
        jobs,
        queues,
        other_pods,
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
        })
        .collect()
}
