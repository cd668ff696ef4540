//! Free capacity per node, indexed so that best-fit lookups cost O(log n).

use crate::model::Resources;
use std::collections::BTreeSet;

pub struct NodeState {
    pub free: Vec<Resources>,
    pub allocatable: Vec<Resources>,
    pub schedulable: Vec<bool>,
    pub has_gpus: Vec<bool>,
    /// Schedulable GPU nodes by free GPUs.
    by_free_gpus: BTreeSet<(i64, usize)>,
    /// Schedulable CPU-only nodes by free CPU.
    cpu_nodes_by_free_cpu: BTreeSet<(i64, usize)>,
    /// Schedulable GPU nodes by (free GPUs, free CPU): where CPU-only pods go when no
    /// CPU node fits, fewest free GPUs first so they strand the fewest GPUs.
    gpu_nodes_for_cpu_pods: BTreeSet<(i64, i64, usize)>,
}

impl NodeState {
    pub fn new(allocatable: Vec<Resources>, used: &[Resources], schedulable: Vec<bool>) -> Self {
        let free: Vec<Resources> = allocatable
            .iter()
            .zip(used)
            .map(|(a, u)| a.sub(u))
            .collect();
        let has_gpus: Vec<bool> = allocatable.iter().map(|a| a.gpus > 0).collect();
        let mut s = NodeState {
            free,
            allocatable,
            schedulable,
            has_gpus,
            by_free_gpus: BTreeSet::new(),
            cpu_nodes_by_free_cpu: BTreeSet::new(),
            gpu_nodes_for_cpu_pods: BTreeSet::new(),
        };
        for n in 0..s.free.len() {
            s.index(n);
        }
        s
    }

    fn index(&mut self, n: usize) {
        if !self.schedulable[n] {
            return;
        }
        let f = self.free[n];
        if self.has_gpus[n] {
            self.by_free_gpus.insert((f.gpus, n));
            self.gpu_nodes_for_cpu_pods.insert((f.gpus, f.cpu_milli, n));
        } else {
            self.cpu_nodes_by_free_cpu.insert((f.cpu_milli, n));
        }
    }

    fn unindex(&mut self, n: usize) {
        let f = self.free[n];
        self.by_free_gpus.remove(&(f.gpus, n));
        self.gpu_nodes_for_cpu_pods
            .remove(&(f.gpus, f.cpu_milli, n));
        self.cpu_nodes_by_free_cpu.remove(&(f.cpu_milli, n));
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
        self.unindex(n);
        self.free[n] = self.free[n].sub(r);
        self.index(n);
    }

    pub fn give(&mut self, n: usize, r: &Resources) {
        self.unindex(n);
        self.free[n] = self.free[n].add(r);
        self.index(n);
    }

    /// Fewest free GPUs first; within a GPU level, only nodes with the CPU asked for are
    /// looked at (a full cluster would otherwise be scanned node by node per pod).
    fn gpu_node_for_cpu_pods(&self, need: &Resources) -> Option<usize> {
        let set = &self.gpu_nodes_for_cpu_pods;
        let mut level = i64::MIN;
        loop {
            let &(gpus, _, _) = set.range((level, i64::MIN, 0)..).next()?;
            let found = set
                .range((gpus, need.cpu_milli, 0)..(gpus, i64::MAX, usize::MAX))
                .map(|&(_, _, n)| n)
                .find(|&n| need.fits_in(&self.free[n]));
            if found.is_some() {
                return found;
            }
            level = gpus.checked_add(1)?;
        }
    }

    /// The node with the least room that still holds `count` pods of shape `r`:
    /// GPU pods on GPU nodes by free GPUs; CPU-only pods on CPU-only nodes first.
    pub fn best_fit(&self, r: &Resources, count: u64) -> Option<usize> {
        let need = r.times(count as i64);
        let scan = |set: &BTreeSet<(i64, usize)>, from: i64| {
            set.range((from, 0)..)
                .map(|&(_, n)| n)
                .find(|&n| need.fits_in(&self.free[n]))
        };
        if r.gpus > 0 {
            scan(&self.by_free_gpus, need.gpus)
        } else {
            scan(&self.cpu_nodes_by_free_cpu, need.cpu_milli)
                .or_else(|| self.gpu_node_for_cpu_pods(&need))
        }
    }
}
