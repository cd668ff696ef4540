//! How many pods of one shape each NVLink group holds, kept up to date as packing takes
//! and gives room: a new GPU gang asks for the smallest group that holds it all, and
//! summing every group for every gang made that jobs × groups (a quarter of a
//! 50,000-node tick). Counts are computed once per shape and then only for the groups
//! of the nodes whose room changed since (`NodeState::changed_nodes`).
//!
//! A gang whose placement constraints allow only some nodes counts only those: groups
//! of a GPU model it may not use hold none of its pods. Counts are kept per list of
//! allowed nodes (by address, as `NodeState::best_fit` keeps its misses: the lists are
//! the view's and outlive the packing).

use super::nodes::NodeState;
use super::topology::TopologyIndex;
use crate::model::Resources;
use crate::plan::FastMap;
use std::collections::BTreeSet;

#[derive(Default)]
pub struct GroupCounts {
    shapes: FastMap<(Resources, usize), ShapeCounts>,
}

struct ShapeCounts {
    /// How far into `NodeState::changed_nodes` these counts are.
    seen: usize,
    count: Vec<u64>,
    /// (count, group) of the groups that hold at least one pod.
    by_count: BTreeSet<(u64, usize)>,
}

fn group_copies(
    nodes: &NodeState,
    topo: &TopologyIndex,
    g: usize,
    res: &Resources,
    allowed: Option<&[bool]>,
) -> u64 {
    topo.group_nodes[g]
        .iter()
        .filter(|&&n| super::allows(allowed, n))
        .map(|&n| nodes.copies(n, res))
        .sum()
}

impl GroupCounts {
    /// How many pods of shape `res` (GPU pods) each group holds on `allowed` nodes,
    /// current.
    fn current(
        &mut self,
        nodes: &NodeState,
        topo: &TopologyIndex,
        res: &Resources,
        allowed: Option<&[bool]>,
    ) -> &ShapeCounts {
        let key = (*res, allowed.map_or(0, |a| a.as_ptr() as usize));
        let shape = self.shapes.entry(key).or_insert_with(|| {
            let mut count = vec![0; topo.group_nodes.len()];
            let mut by_count = BTreeSet::new();
            // A group with fewer free GPUs than one pod holds none.
            for g in nodes.groups_with_free_gpus(res.gpus.max(1)) {
                let c = group_copies(nodes, topo, g, res, allowed);
                count[g] = c;
                if c > 0 {
                    by_count.insert((c, g));
                }
            }
            ShapeCounts {
                seen: nodes.changed_nodes.len(),
                count,
                by_count,
            }
        });
        let changed = nodes.changed_nodes[shape.seen..].iter();
        for g in changed.filter_map(|&n| nodes.group_of_node(n)) {
            let c = group_copies(nodes, topo, g, res, allowed);
            let old = std::mem::replace(&mut shape.count[g], c);
            if old != c {
                shape.by_count.remove(&(old, g));
                if c > 0 {
                    shape.by_count.insert((c, g));
                }
            }
        }
        shape.seen = nodes.changed_nodes.len();
        shape
    }

    /// How many pods of shape `res` (GPU pods) group `g` holds on `allowed` nodes now.
    pub fn holds(
        &mut self,
        nodes: &NodeState,
        topo: &TopologyIndex,
        res: &Resources,
        allowed: Option<&[bool]>,
        g: usize,
    ) -> u64 {
        let shape = self.current(nodes, topo, res, allowed);
        shape.count.get(g).copied().unwrap_or(0)
    }

    /// Where a gang of `want` pods of shape `res` goes: the group holding the fewest
    /// pods that still holds them all (lowest id on a tie); else the groups holding the
    /// most (lowest id first on a tie), until they hold them all or none is left. Only
    /// `allowed` nodes count.
    pub fn choose(
        &mut self,
        nodes: &NodeState,
        topo: &TopologyIndex,
        res: &Resources,
        want: u32,
        allowed: Option<&[bool]>,
    ) -> Vec<usize> {
        let want = u64::from(want);
        let by_count = &self.current(nodes, topo, res, allowed).by_count;
        if let Some(&(_, g)) = by_count.range((want, 0)..).next() {
            return vec![g];
        }
        let mut chosen = Vec::new();
        let mut covered = 0;
        let mut below = u64::MAX;
        while covered < want {
            let Some(&(c, _)) = by_count.range(..(below, 0)).next_back() else {
                break;
            };
            for &(_, g) in by_count.range((c, 0)..=(c, usize::MAX)) {
                if covered >= want {
                    break;
                }
                chosen.push(g);
                covered += c;
            }
            below = c;
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Node, Topology};
    use rand::rngs::SmallRng;
    use rand::{RngExt, SeedableRng};

    /// The direct form: every group summed for every gang.
    fn choose_directly(
        nodes: &NodeState,
        topo: &TopologyIndex,
        res: &Resources,
        want: u32,
        allowed: Option<&[bool]>,
    ) -> Vec<usize> {
        let counts: Vec<(u64, usize)> = (0..topo.group_nodes.len())
            .map(|g| (group_copies(nodes, topo, g, res, allowed), g))
            .filter(|&(c, _)| c > 0)
            .collect();
        if let Some(&(_, g)) = counts.iter().filter(|&&(c, _)| c >= u64::from(want)).min() {
            return vec![g];
        }
        let mut by_size = counts;
        by_size.sort_by_key(|&(c, g)| (std::cmp::Reverse(c), g));
        let mut chosen = Vec::new();
        let mut covered = 0;
        for (c, g) in by_size {
            if covered >= u64::from(want) {
                break;
            }
            chosen.push(g);
            covered += c;
        }
        chosen
    }

    #[test]
    fn kept_counts_choose_what_summing_every_group_chooses() {
        let mut rng = SmallRng::seed_from_u64(7);
        let gpu_node = Resources::new(64_000, 512 << 30, 8);
        let nodes: Vec<Node> = (0..40)
            .map(|i| Node {
                name: format!("n{i}"),
                allocatable: gpu_node,
                labels: Default::default(),
                gpu_model: None,
                topology: Topology {
                    nvlink_group: Some(format!("g{}", i % 9)),
                    rack: Some(format!("r{}", i % 3)),
                },
                unschedulable: i % 13 == 0,
                taints: Vec::new(),
                group: None,
            })
            .collect();
        let refs: Vec<&Node> = nodes.iter().collect();
        let topo = TopologyIndex::build(&refs);
        let mut state = NodeState::new(
            vec![gpu_node; nodes.len()],
            &vec![Resources::ZERO; nodes.len()],
            nodes.iter().map(|n| !n.unschedulable).collect(),
            topo.group_of.clone(),
        );
        let shapes = [
            Resources::new(4_000, 32 << 30, 1),
            Resources::new(8_000, 64 << 30, 2),
            Resources::new(60_000, 64 << 30, 4),
        ];
        // Two lists of allowed nodes, as two placement constraints would give.
        let some: Vec<bool> = (0..nodes.len()).map(|n| n % 4 != 1).collect();
        let few: Vec<bool> = (0..nodes.len()).map(|n| n % 5 == 0).collect();
        let lists = [None, Some(some.as_slice()), Some(few.as_slice())];
        let mut counts = GroupCounts::default();
        let mut held: Vec<(usize, Resources)> = Vec::new();
        for step in 0..3_000 {
            let res = shapes[rng.random_range(0..shapes.len())];
            let want = rng.random_range(2..40);
            let allowed = lists[rng.random_range(0..lists.len())];
            assert_eq!(
                counts.choose(&state, &topo, &res, want, allowed),
                choose_directly(&state, &topo, &res, want, allowed),
                "step {step}"
            );
            // Take room on a random node that has it, or give some back.
            if rng.random_range(0..3) > 0 || held.is_empty() {
                let n = rng.random_range(0..nodes.len());
                if state.copies(n, &res) > 0 {
                    state.take(n, &res);
                    held.push((n, res));
                }
            } else {
                let (n, r) = held.swap_remove(rng.random_range(0..held.len()));
                state.give(n, &r);
            }
        }
    }
}
