//! ClusterService.State from the snapshot a tick planned: what both backends report.

use super::proto::{self, ClusterState};
use crate::model::{Resources, Snapshot};

fn quantity(r: Resources) -> proto::Resources {
    proto::Resources {
        cpu: format!("{}m", r.cpu_milli),
        memory: format!("{}", r.memory_bytes),
        gpus: u32::try_from(r.gpus).unwrap_or(0),
    }
}

/// Capacity, allocation and utilisation per node and in total, trainers per job
/// (`namespace/name`), and pods holding room.
pub fn from_snapshot(snapshot: &Snapshot) -> ClusterState {
    let usage = snapshot.usage_by_node();
    let mut state = ClusterState {
        time_s: snapshot.time_s,
        ..ClusterState::default()
    };
    let (mut capacity, mut allocated) = (Resources::ZERO, Resources::ZERO);
    for n in &snapshot.nodes {
        let used = usage.get(n.name.as_str()).copied().unwrap_or_default();
        capacity = capacity.add(&n.allocatable);
        allocated = allocated.add(&used);
        state.nodes.push(proto::NodeState {
            name: n.name.clone(),
            allocatable: Some(quantity(n.allocatable)),
            allocated: Some(quantity(used)),
            unschedulable: n.unschedulable,
        });
    }
    let ratio = |u: i64, t: i64| if t > 0 { u as f64 / t as f64 } else { 0.0 };
    state.cpu_util = ratio(allocated.cpu_milli, capacity.cpu_milli);
    state.memory_util = ratio(allocated.memory_bytes, capacity.memory_bytes);
    state.gpu_util = ratio(allocated.gpus, capacity.gpus);
    state.capacity = Some(quantity(capacity));
    state.allocated = Some(quantity(allocated));
    for job in &snapshot.jobs {
        let trainers = job
            .pods
            .iter()
            .filter(|p| p.role == crate::model::Role::Trainer && p.node.is_some())
            .count() as u32;
        state.trainers.insert(job.key().to_string(), trainers);
        state.pods += job.pods.iter().filter(|p| p.node.is_some()).count() as u32;
    }
    state.pods += snapshot
        .other_pods
        .iter()
        .filter(|p| p.node.is_some())
        .count() as u32;
    state
}
