//! Reference passes over the snapshot a benchmark plans, linear in its size by
//! construction, timed beside the tick.
//!
//! Past the caches the same work costs more per item: on a 2 MiB-L2 VM a plain copy of
//! the 50,000-node snapshot took 11-25x the time of the 5,000-node one, for 10x the
//! cluster (`docs/benchmarks.md`). Whether the planner grows "no worse than linearly" is
//! read against these passes on the same machine, in the same minute, rather than
//! against 10x.

use super::quantile::quantile;
use crate::model::Snapshot;
use crate::plan::FastMap;
use std::hint::black_box;
use std::time::Instant;

/// What [`index_bound_pods`] found, so that the pass cannot be optimised away and can
/// be checked.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BoundPods {
    /// Pods bound to a node the snapshot has.
    pub on_known_nodes: usize,
    /// Pods bound to a node it lacks.
    pub on_unknown_nodes: usize,
    /// The sum of the known nodes' indices, one term per pod.
    pub node_index_sum: usize,
}

/// Maps every bound pod's node name to the node's index: the least that any planner
/// reading this model (pods name their nodes) does once per pod.
pub fn index_bound_pods(snapshot: &Snapshot) -> BoundPods {
    let index: FastMap<&str, usize> = snapshot
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let mut found = BoundPods::default();
    let bound = snapshot
        .jobs
        .iter()
        .flat_map(|j| &j.pods)
        .filter_map(|p| p.node.as_deref());
    let bound = bound.chain(snapshot.other_pods.iter().filter_map(|p| p.node.as_deref()));
    for node in bound {
        match index.get(node) {
            Some(&i) => {
                found.on_known_nodes += 1;
                found.node_index_sum += i;
            }
            None => found.on_unknown_nodes += 1,
        }
    }
    found
}

/// Medians, in milliseconds, of `runs` timings of each pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputFloor {
    /// Cloning the snapshot and dropping the copy: every byte of the input read, and as
    /// many allocations made and freed.
    pub clone_ms: f64,
    /// [`index_bound_pods`].
    pub index_ms: f64,
}

pub fn measure(snapshot: &Snapshot, runs: usize) -> InputFloor {
    let mut clone_ms = Vec::with_capacity(runs);
    let mut index_ms = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        drop(black_box(snapshot.clone()));
        clone_ms.push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        black_box(index_bound_pods(black_box(snapshot)));
        index_ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    InputFloor {
        clone_ms: quantile(&mut clone_ms, 0.5),
        index_ms: quantile(&mut index_ms, 0.5),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::generate::{ClusterSpec, cluster};
    use crate::model::{Node, OtherPod, Resources};

    fn small() -> Snapshot {
        let spec = ClusterSpec {
            nodes: 20,
            jobs: 8,
            queues: 2,
            gpus_per_node: 8,
            seed: 3,
            constraints: Default::default(),
        };
        let mut s = cluster(&spec);
        let first = crate::plan::plan(&s, &crate::plan::Policy::default());
        s = crate::plan::apply::apply(&s, &first);
        s
    }

    #[test]
    fn every_bound_pod_is_counted_once_against_its_node() {
        let s = small();
        let mut expected = BoundPods::default();
        for (i, node) in s.nodes.iter().enumerate() {
            let on_node = s
                .jobs
                .iter()
                .flat_map(|j| &j.pods)
                .filter(|p| p.node.as_deref() == Some(node.name.as_str()))
                .count()
                + s.other_pods
                    .iter()
                    .filter(|p| p.node.as_deref() == Some(node.name.as_str()))
                    .count();
            expected.on_known_nodes += on_node;
            expected.node_index_sum += i * on_node;
        }
        assert!(expected.on_known_nodes > 0, "the plan bound no pod");
        assert_eq!(index_bound_pods(&s), expected);
    }

    #[test]
    fn pods_on_nodes_the_snapshot_lacks_are_counted_apart() {
        let mut s = small();
        let lost = s.nodes.remove(0).name;
        s.other_pods.push(OtherPod {
            placement: Default::default(),
            namespace: "web".into(),
            name: "svc-0".into(),
            workload: None,
            resources: Resources::new(100, 1 << 20, 0),
            node: Some("nowhere".into()),
        });
        s.nodes
            .push(Node::new("spare", Resources::new(1_000, 1 << 30, 0)));
        let on = |node: &str| {
            let jobs = s.jobs.iter().flat_map(|j| &j.pods);
            jobs.filter(|p| p.node.as_deref() == Some(node)).count()
                + s.other_pods
                    .iter()
                    .filter(|p| p.node.as_deref() == Some(node))
                    .count()
        };
        assert!(on(&lost) > 0, "the removed node held no pod");
        assert_eq!(
            index_bound_pods(&s).on_unknown_nodes,
            on(&lost) + on("nowhere")
        );
    }

    #[test]
    fn measure_reports_a_time_for_each_pass() {
        let floor = measure(&small(), 3);
        assert!(floor.clone_ms > 0.0 && floor.clone_ms.is_finite());
        assert!(floor.index_ms > 0.0 && floor.index_ms.is_finite());
    }
}
