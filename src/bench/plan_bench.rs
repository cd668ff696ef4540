//! `ebb bench plan`: time whole `plan::plan` calls on a generated cluster.
//!
//! The cluster first reaches its steady state (one plan from empty, applied), then a
//! tick's worth of change arrives (new jobs, service demand): the timed call is the
//! tick that answers it. The cold plan (empty cluster, every pod placed) is timed too.

use super::generate::{ClusterSpec, cluster, service_demand};
use super::input_floor;
use super::quantile::quantile;
use crate::model::{Resources, Snapshot};
use crate::plan::{Policy, apply::apply, plan};
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Serialize)]
pub struct PlanBench {
    pub median_ms: f64,
    pub p99_ms: f64,
    pub nodes: usize,
    pub jobs: usize,
    pub queues: usize,
    pub runs: usize,
    pub cold_ms: f64,
    pub gpu_alloc_frac: f64,
    pub cpu_alloc_frac: f64,
    pub pods_created_cold: usize,
    /// Reference passes over the timed tick's snapshot, linear in its size by
    /// construction (see [`input_floor`]): growth in `median_ms` with cluster size is
    /// read against theirs.
    pub input_clone_ms: f64,
    pub input_index_ms: f64,
    /// Jobs the timed tick asks an autoscaler for nodes for (with `--node-groups`).
    pub scale_up_jobs: usize,
}

pub fn run(spec: &ClusterSpec, runs: usize) -> PlanBench {
    let (policy, steady, cold_ms, pods_created_cold) = steady_tick(spec);
    time_ticks(spec, runs, &policy, steady, cold_ms, pods_created_cold)
}

/// The snapshot the timed tick plans (for `ebb plan` files), with its policy.
pub fn steady_snapshot(spec: &ClusterSpec) -> (Snapshot, Policy) {
    let (policy, steady, _, _) = steady_tick(spec);
    (steady, policy)
}

fn steady_tick(spec: &ClusterSpec) -> (Policy, Snapshot, f64, usize) {
    let policy = Policy::default();
    let mut snap = cluster(spec);
    // Nine jobs in ten are already there; the rest arrive in the timed tick.
    let late = spec.jobs / 10;
    let arriving = snap.jobs.split_off(spec.jobs - late);
    let started = Instant::now();
    let first = plan(&snap, &policy);
    let cold_ms = started.elapsed().as_secs_f64() * 1e3;
    let pods_created_cold = first.create.len();
    let mut steady = apply(&snap, &first);
    steady.time_s += 300.0;
    steady.jobs.extend(arriving);
    steady
        .other_pods
        .extend(service_demand(spec.nodes / 50, 2_000));
    (policy, steady, cold_ms, pods_created_cold)
}

fn time_ticks(
    spec: &ClusterSpec,
    runs: usize,
    policy: &Policy,
    steady: Snapshot,
    cold_ms: f64,
    pods_created_cold: usize,
) -> PlanBench {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let p = plan(&steady, policy);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        last = Some(p);
    }
    let floor = input_floor::measure(&steady, runs);
    let scale_up_jobs = last.as_ref().map_or(0, |p| p.scale_up.len());
    let after = last.map(|p| apply(&steady, &p)).unwrap_or(steady);
    let (gpu, cpu) = alloc_fractions(&after);
    PlanBench {
        median_ms: quantile(&mut times, 0.5),
        p99_ms: quantile(&mut times, 0.99),
        nodes: spec.nodes,
        jobs: spec.jobs,
        queues: spec.queues,
        runs: times.len(),
        cold_ms,
        gpu_alloc_frac: gpu,
        cpu_alloc_frac: cpu,
        pods_created_cold,
        input_clone_ms: floor.clone_ms,
        input_index_ms: floor.index_ms,
        scale_up_jobs,
    }
}

/// Requests of bound pods over allocatable, for GPUs and CPU.
pub fn alloc_fractions(s: &Snapshot) -> (f64, f64) {
    let total = s
        .nodes
        .iter()
        .fold(Resources::ZERO, |a, n| a.add(&n.allocatable));
    let mut used = Resources::ZERO;
    for j in &s.jobs {
        for p in j.pods.iter().filter(|p| p.node.is_some()) {
            used = used.add(&j.resources_of(p.role));
        }
    }
    for p in s.other_pods.iter().filter(|p| p.node.is_some()) {
        used = used.add(&p.resources);
    }
    let frac = |u: i64, t: i64| if t > 0 { u as f64 / t as f64 } else { 0.0 };
    (
        frac(used.gpus, total.gpus),
        frac(used.cpu_milli, total.cpu_milli),
    )
}
