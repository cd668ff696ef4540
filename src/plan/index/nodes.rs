//! Free capacity per node, indexed so that a best-fit lookup looks only at nodes with
//! the room asked for (by free GPUs, or by free CPU), not at every node.

use super::levels::LevelIndex;
use crate::model::Resources;
use crate::plan::FastMap;
use std::collections::{BTreeMap, BTreeSet};

pub struct NodeState {
    /// Changed only by `take` and `give`, which keep the indexes and `no_fit` right.
    free: Vec<Resources>,
    pub allocatable: Vec<Resources>,
    pub schedulable: Vec<bool>,
    pub has_gpus: Vec<bool>,
    /// Schedulable GPU nodes by free GPUs.
    by_free_gpus: LevelIndex,
    /// Schedulable CPU-only nodes by free CPU.
    cpu_nodes_by_free_cpu: BTreeSet<(i64, usize)>,
    /// Schedulable GPU nodes by free GPUs, then by free CPU: where CPU-only pods go when
    /// no CPU node fits, fewest free GPUs first so they strand the fewest GPUs. A tree
    /// per GPU level, so that each level is searched from the CPU asked for in one
    /// descent (a level emptied stays, empty).
    gpu_nodes_for_cpu_pods: BTreeMap<i64, BTreeSet<(i64, usize)>>,
    /// NVLink group of each node, and each group's free GPUs on schedulable nodes: a
    /// GPU gang looking for a group need not look at full ones (most, in a busy cluster).
    group_of: Vec<usize>,
    group_free_gpus: Vec<i64>,
    groups_by_free_gpus: LevelIndex,
    /// Every node whose room changed, in order: the room memo and the per-shape group
    /// counts (through `group_of_node`) catch up from it.
    pub changed_nodes: Vec<usize>,
    /// Counts `give`s: between two gives free room only shrinks, so a need that found
    /// no node still finds none.
    gives: u64,
    /// Needs that found no node, with the `gives` count they were tried at, per list
    /// of allowed nodes (by address: the lists are the view's, shared by every group
    /// with the same constraints, and outlive the packing; 0 for every node). A full
    /// cluster is asked for the same few shapes many times per plan, and each miss
    /// otherwise scans every node with some room.
    no_fit: std::cell::RefCell<FastMap<(Resources, usize), u64>>,
}

impl NodeState {
    /// `group_of[n]` is node n's NVLink group (dense ids).
    pub fn new(
        allocatable: Vec<Resources>,
        used: &[Resources],
        schedulable: Vec<bool>,
        group_of: Vec<usize>,
    ) -> Self {
        let free: Vec<Resources> = allocatable
            .iter()
            .zip(used)
            .map(|(a, u)| a.sub(u))
            .collect();
        let has_gpus: Vec<bool> = allocatable.iter().map(|a| a.gpus > 0).collect();
        let groups = group_of.iter().max().map_or(0, |g| g + 1);
        let mut group_free_gpus = vec![0; groups];
        // Every plan builds these anew for each packing: the trees from sorted lists (a
        // bulk build, not one insert per node), the level indexes a bit per node.
        let mut by_free_gpus = LevelIndex::new(free.len());
        let mut gpu_nodes_for_cpu_pods: BTreeMap<i64, Vec<(i64, usize)>> = BTreeMap::new();
        let mut cpu_nodes_by_free_cpu = Vec::new();
        for (n, f) in free.iter().enumerate() {
            if !schedulable[n] {
                continue;
            }
            if has_gpus[n] {
                by_free_gpus.insert(f.gpus, n);
                gpu_nodes_for_cpu_pods
                    .entry(f.gpus)
                    .or_default()
                    .push((f.cpu_milli, n));
                if let Some(&g) = group_of.get(n) {
                    // An over-committed node (negative free) must not hide a sibling's room.
                    group_free_gpus[g] += f.gpus.max(0);
                }
            } else {
                cpu_nodes_by_free_cpu.push((f.cpu_milli, n));
            }
        }
        let mut groups_by_free_gpus = LevelIndex::new(groups);
        for (g, &free) in group_free_gpus.iter().enumerate() {
            if free > 0 {
                groups_by_free_gpus.insert(free, g);
            }
        }
        NodeState {
            free,
            allocatable,
            schedulable,
            has_gpus,
            by_free_gpus,
            cpu_nodes_by_free_cpu: cpu_nodes_by_free_cpu.into_iter().collect(),
            gpu_nodes_for_cpu_pods: gpu_nodes_for_cpu_pods
                .into_iter()
                .map(|(gpus, nodes)| (gpus, nodes.into_iter().collect()))
                .collect(),
            group_free_gpus,
            group_of,
            groups_by_free_gpus,
            changed_nodes: Vec::new(),
            gives: 0,
            no_fit: Default::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.free.len()
    }

    pub fn free(&self, n: usize) -> &Resources {
        &self.free[n]
    }

    /// Free GPUs on the schedulable nodes of NVLink group `g` (none of its nodes holds
    /// a pod asking for more).
    pub fn group_free_gpus(&self, g: usize) -> i64 {
        self.group_free_gpus.get(g).copied().unwrap_or(0)
    }

    /// NVLink groups whose schedulable nodes have at least `gpus` free GPUs between
    /// them, fewest free first.
    pub fn groups_with_free_gpus(&self, gpus: i64) -> impl Iterator<Item = usize> + '_ {
        self.groups_by_free_gpus.at_or_above(gpus)
    }

    /// Adds `delta` free GPUs to node n's group and re-files the group.
    fn move_group_gpus(&mut self, n: usize, delta: i64) {
        let Some(&g) = self.group_of.get(n) else {
            return;
        };
        if delta == 0 {
            return;
        }
        let before = self.group_free_gpus[g];
        if before > 0 {
            self.groups_by_free_gpus.remove(before, g);
        }
        let after = before + delta;
        self.group_free_gpus[g] = after;
        if after > 0 {
            self.groups_by_free_gpus.insert(after, g);
        }
    }

    /// Sets node n's free room and re-files it in the indexes whose key changed: a CPU
    /// pod on a GPU node leaves the GPU orderings alone.
    fn refile(&mut self, n: usize, free: Resources) {
        let old = std::mem::replace(&mut self.free[n], free);
        if !self.schedulable[n] {
            return;
        }
        if self.has_gpus[n] {
            if old.gpus != free.gpus {
                self.by_free_gpus.remove(old.gpus, n);
                self.by_free_gpus.insert(free.gpus, n);
                // An over-committed node (negative free) must not hide a sibling's room.
                self.move_group_gpus(n, free.gpus.max(0) - old.gpus.max(0));
            }
            if (old.gpus, old.cpu_milli) != (free.gpus, free.cpu_milli) {
                if let Some(level) = self.gpu_nodes_for_cpu_pods.get_mut(&old.gpus) {
                    level.remove(&(old.cpu_milli, n));
                }
                self.gpu_nodes_for_cpu_pods
                    .entry(free.gpus)
                    .or_default()
                    .insert((free.cpu_milli, n));
            }
        } else if old.cpu_milli != free.cpu_milli {
            self.cpu_nodes_by_free_cpu.remove(&(old.cpu_milli, n));
            self.cpu_nodes_by_free_cpu.insert((free.cpu_milli, n));
        }
    }

    /// How many pods of shape `r` fit on node `n` now.
    pub fn copies(&self, n: usize, r: &Resources) -> u64 {
        if self.schedulable[n] {
            r.copies_in(&self.free[n])
        } else {
            0
        }
    }

    pub fn take(&mut self, n: usize, r: &Resources) {
        self.refile(n, self.free[n].sub(r));
        self.note_change(n);
    }

    pub fn give(&mut self, n: usize, r: &Resources) {
        self.gives += 1;
        self.refile(n, self.free[n].add(r));
        self.note_change(n);
    }

    fn note_change(&mut self, n: usize) {
        self.changed_nodes.push(n);
    }

    /// Node n's NVLink group, if it has one.
    pub fn group_of_node(&self, n: usize) -> Option<usize> {
        self.group_of.get(n).copied()
    }

    /// Fewest free GPUs first; within a GPU level, only nodes with the CPU asked for are
    /// looked at (a full cluster would otherwise be scanned node by node per pod).
    fn gpu_node_for_cpu_pods(&self, need: &Resources, ok: &dyn Fn(usize) -> bool) -> Option<usize> {
        self.gpu_nodes_for_cpu_pods.values().find_map(|level| {
            level
                .range((need.cpu_milli, 0)..)
                .map(|&(_, n)| n)
                .find(|&n| ok(n) && need.fits_in(&self.free[n]))
        })
    }

    /// The node with the least room that still holds `count` pods of shape `r`:
    /// GPU pods on GPU nodes by free GPUs; CPU-only pods on CPU-only nodes first. With
    /// `allowed`, only among the nodes it marks (the pods' placement constraints).
    pub fn best_fit(&self, r: &Resources, count: u64, allowed: Option<&[bool]>) -> Option<usize> {
        let need = r.times(count as i64);
        let key = (need, allowed.map_or(0, |a| a.as_ptr() as usize));
        if self.no_fit.borrow().get(&key) == Some(&self.gives) {
            return None;
        }
        let found = match allowed {
            Some(allowed) => {
                let ok = |n: usize| super::allows(Some(allowed), n);
                self.best_fit_scan(r.gpus > 0, &need, &ok)
            }
            None => self.best_fit_scan(r.gpus > 0, &need, &|_| true),
        };
        if found.is_none() {
            self.no_fit.borrow_mut().insert(key, self.gives);
        }
        found
    }

    /// [`NodeState::best_fit`], and among the nodes that pack exactly as well as the one
    /// it finds (the same free GPUs for a GPU pod; the same free CPU on the same kind
    /// of node for a CPU pod), the one `preference` scores highest (lowest index on a
    /// tie). Preferred node affinity and PreferNoSchedule taints only break such ties:
    /// ebb packs first, as a bin packer must, and then goes where the pod would rather
    /// be.
    pub fn best_fit_preferring(
        &self,
        r: &Resources,
        count: u64,
        allowed: Option<&[bool]>,
        preference: Option<&[i64]>,
    ) -> Option<usize> {
        let first = self.best_fit(r, count, allowed)?;
        let Some(score) = preference else {
            return Some(first);
        };
        let need = r.times(count as i64);
        let fits = |&n: &usize| super::allows(allowed, n) && need.fits_in(&self.free[n]);
        let f = self.free[first];
        let score_of = |n: usize| score.get(n).copied().unwrap_or(i64::MIN);
        // The first of the best scores: `max_by_key` keeps the last of equals.
        let pick = |ties: &mut dyn Iterator<Item = usize>| {
            ties.fold(first, |best, n| {
                if score_of(n) > score_of(best) {
                    n
                } else {
                    best
                }
            })
        };
        let chosen = if r.gpus > 0 {
            pick(
                &mut self
                    .by_free_gpus
                    .at_or_above(f.gpus)
                    .take_while(|&n| self.free[n].gpus == f.gpus)
                    .filter(fits),
            )
        } else if !self.has_gpus[first] {
            pick(
                &mut self
                    .cpu_nodes_by_free_cpu
                    .range((f.cpu_milli, 0)..=(f.cpu_milli, usize::MAX))
                    .map(|&(_, n)| n)
                    .filter(fits),
            )
        } else {
            let level = self.gpu_nodes_for_cpu_pods.get(&f.gpus);
            pick(
                &mut level
                    .into_iter()
                    .flat_map(|l| l.range((f.cpu_milli, 0)..=(f.cpu_milli, usize::MAX)))
                    .map(|&(_, n)| n)
                    .filter(fits),
            )
        };
        Some(chosen)
    }

    fn best_fit_scan(
        &self,
        gpu_pod: bool,
        need: &Resources,
        ok: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        let fits = |&n: &usize| ok(n) && need.fits_in(&self.free[n]);
        if gpu_pod {
            self.by_free_gpus.at_or_above(need.gpus).find(fits)
        } else {
            self.cpu_nodes_by_free_cpu
                .range((need.cpu_milli, 0)..)
                .map(|&(_, n)| n)
                .find(fits)
                .or_else(|| self.gpu_node_for_cpu_pods(need, ok))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_filed_by_the_free_gpus_of_their_schedulable_nodes() {
        let gpu_node = Resources::new(64_000, 1 << 40, 8);
        let cpu_node = Resources::new(64_000, 1 << 40, 0);
        // Group 0: nodes 0 and 1; group 1: node 2 (cordoned); group 2: node 3 (CPU only).
        let mut s = NodeState::new(
            vec![gpu_node, gpu_node, gpu_node, cpu_node],
            // Node 1 is over-committed by one GPU: it must not hide node 0's room.
            &[
                Resources::new(0, 0, 6),
                Resources::new(0, 0, 9),
                Resources::ZERO,
                Resources::ZERO,
            ],
            vec![true, true, false, true],
            vec![0, 0, 1, 2],
        );
        let groups = |s: &NodeState, g| s.groups_with_free_gpus(g).collect::<Vec<_>>();
        assert_eq!(groups(&s, 1), vec![0]);
        assert_eq!(groups(&s, 3), Vec::<usize>::new());
        s.give(1, &Resources::new(0, 0, 5));
        assert_eq!(groups(&s, 6), vec![0], "2 free on node 0 + 4 on node 1");
        s.take(0, &Resources::new(0, 0, 2));
        assert_eq!(groups(&s, 4), vec![0]);
        assert_eq!(groups(&s, 5), Vec::<usize>::new());
        s.take(1, &Resources::new(0, 0, 4));
        assert_eq!(groups(&s, 1), Vec::<usize>::new(), "group full");
    }

    #[test]
    fn a_need_that_found_no_node_is_looked_for_again_once_room_is_given_back() {
        let node = Resources::new(8_000, 1 << 30, 2);
        let mut s = NodeState::new(
            vec![node, node],
            &[Resources::new(0, 0, 1), Resources::ZERO],
            vec![true, true],
            vec![0, 1],
        );
        let pod = Resources::new(1_000, 1 << 20, 2);
        assert_eq!(s.best_fit(&pod, 1, None), Some(1));
        s.take(1, &pod);
        assert_eq!(s.best_fit(&pod, 1, None), None);
        s.take(0, &Resources::new(1_000, 0, 0));
        assert_eq!(
            s.best_fit(&pod, 1, None),
            None,
            "taking room never makes one fit"
        );
        s.give(0, &Resources::new(1_000, 0, 1));
        assert_eq!(
            s.best_fit(&pod, 1, None),
            Some(0),
            "the miss is forgotten after a give"
        );
        assert_eq!(s.group_free_gpus(0), 2);
        assert_eq!(s.group_free_gpus(1), 0);
    }

    /// Everything the indexes hold, to compare a state kept up to date with one built
    /// from scratch.
    fn indexes(s: &NodeState) -> impl PartialEq + std::fmt::Debug {
        (
            s.by_free_gpus.entries(),
            s.cpu_nodes_by_free_cpu.clone(),
            s.gpu_nodes_for_cpu_pods
                .iter()
                .flat_map(|(&gpus, level)| level.iter().map(move |&(cpu, n)| (gpus, cpu, n)))
                .collect::<Vec<_>>(),
            s.group_free_gpus.clone(),
            s.groups_by_free_gpus.entries(),
        )
    }

    proptest::proptest! {
        #[test]
        fn indexes_kept_up_to_date_match_indexes_built_anew(
            steps in proptest::collection::vec(
                (0usize..6, 0i64..3_000, 0i64..3, proptest::bool::ANY), 0..40),
        ) {
            let allocatable = vec![
                Resources::new(8_000, 1 << 30, 8),
                Resources::new(8_000, 1 << 30, 8),
                Resources::new(4_000, 1 << 30, 4),
                Resources::new(16_000, 1 << 30, 0),
                Resources::new(16_000, 1 << 30, 0),
                Resources::new(8_000, 1 << 30, 8),
            ];
            let schedulable = vec![true, true, true, true, false, false];
            let groups = vec![0, 0, 1, 2, 3, 1];
            let none = vec![Resources::ZERO; allocatable.len()];
            let mut kept = NodeState::new(allocatable.clone(), &none, schedulable.clone(), groups.clone());
            for (n, cpu, gpus, give) in steps {
                let r = Resources::new(cpu, 0, gpus);
                if give { kept.give(n, &r) } else { kept.take(n, &r) }
            }
            let used: Vec<Resources> = allocatable.iter().zip(&kept.free).map(|(a, f)| a.sub(f)).collect();
            let anew = NodeState::new(allocatable, &used, schedulable, groups);
            proptest::prop_assert_eq!(indexes(&kept), indexes(&anew));
        }
    }
}
