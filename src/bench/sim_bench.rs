//! `ebb bench sim`: wall time of the simulator replaying a synthetic trace.
//!
//! Jobs of 1 to 16 GPUs arrive at random (exponential gaps sized so that the offered
//! load is about the cluster's GPUs), each running 10 minutes to 4 hours at its
//! requested size, with a sublinear speedup curve; nodes have 8 GPUs.

use crate::cluster::sim::scenario::{
    ClusterSpec, JobSpec, NodeGroup, PodShape, PserverSpec, Scenario, TrainerSpec,
};
use crate::cluster::sim::{self, PolicyKind, SimError};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Serialize)]
pub struct SimBench {
    pub nodes: u32,
    pub jobs: usize,
    pub wall_s: f64,
    pub plans: u64,
    pub virtual_hours: f64,
    pub avg_jct_h: Option<f64>,
    pub gpu_util_mean: f64,
}

pub fn synthetic_trace(nodes: u32, jobs: usize, seed: u64) -> Scenario {
    let mut rng = SmallRng::seed_from_u64(seed);
    let sizes = [1u32, 1, 2, 2, 4, 4, 8, 16];
    let mean_gpus = sizes.iter().sum::<u32>() as f64 / sizes.len() as f64;
    let mean_duration = (600.0 + 4.0 * 3600.0) / 2.0;
    // Offered GPU-seconds per second equal to the cluster's GPUs.
    let gap = mean_gpus * mean_duration / f64::from(nodes * 8);
    let mut t = 0.0;
    let specs = (0..jobs)
        .map(|i| {
            t += -gap * (1.0 - rng.random::<f64>()).ln();
            let n = sizes[rng.random_range(0..sizes.len())];
            let duration = rng.random_range(600.0..4.0 * 3600.0);
            let speedup: Vec<(u32, f64)> = [1u32, 2, 4, 8, 16]
                .iter()
                .map(|&k| (k, f64::from(k).powf(0.9)))
                .collect();
            let rate = 100.0;
            JobSpec {
                name: format!("job-{i:06}"),
                namespace: "trace".into(),
                queue: crate::model::default_queue(),
                priority: 0,
                weight: 1.0,
                submit_s: t,
                master: PodShape {
                    cpu: 1.0,
                    memory_gib: 2.0,
                    gpus: 0,
                },
                pservers: PserverSpec::none(),
                trainers: TrainerSpec {
                    requested: n,
                    min: 1,
                    max: n,
                    cpu: 4.0,
                    memory_gib: 16.0,
                    gpus: 1,
                },
                work: duration * rate * crate::plan::speedup::speedup(&speedup, n),
                rate_per_trainer: rate,
                speedup,
                placement_speedup: Vec::new(),
                rescale_pause_s: 30.0,
                placement: Default::default(),
            }
        })
        .collect();
    Scenario {
        name: format!("synthetic trace: {jobs} jobs on {nodes} nodes"),
        description: String::new(),
        tick_s: 30.0,
        pod_startup_s: 30.0,
        end_s: 10.0 * 365.0 * 24.0 * 3600.0,
        cluster: ClusterSpec {
            nodes: vec![NodeGroup {
                prefix: "gpu".into(),
                count: nodes,
                cpu: 96.0,
                memory_gib: 1024.0,
                gpus: 8,
                gpu_model: Some("H100".into()),
                nodes_per_rack: Some(32),
                labels: Default::default(),
                taints: Vec::new(),
                autoscale: None,
            }],
        },
        queues: Vec::new(),
        services: Vec::new(),
        jobs: specs,
        faults: Vec::new(),
    }
}

pub fn run(nodes: u32, jobs: usize, seed: u64, kind: PolicyKind) -> Result<SimBench, SimError> {
    let scenario = synthetic_trace(nodes, jobs, seed);
    let started = Instant::now();
    let r = sim::run(&scenario, kind, &mut sim::SummaryOnly)?;
    Ok(SimBench {
        nodes,
        jobs,
        wall_s: started.elapsed().as_secs_f64(),
        plans: r.plans,
        virtual_hours: r.makespan_s / 3600.0,
        avg_jct_h: r.avg_completion_s.map(|s| s / 3600.0),
        gpu_util_mean: r.gpu_util_mean,
    })
}
