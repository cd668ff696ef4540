//! The live trainers of admitted jobs on each node, as (job, pod): the victims packing
//! may evict. Laid out flat, one slot per node, built in two walks over the trainers (a
//! vector per node cost 50,000 allocations per pass on a 50,000-node cluster); a sizing
//! pass uses one up, and a later pass of the round builds it again.
//!
//! A node's slot holds the trainers it started with; a trainer leaves (evicted) and may
//! come back (the eviction undone), and no other ever joins, so the slot never
//! overflows. The order within a slot is that of a vector with `swap_remove` and `push`,
//! which is what the victim search walks.
//!
//! Indices are kept as `u32` (half the bytes to build and to copy on a large cluster,
//! where this outgrows the caches): a snapshot with 2^32 jobs or pods would not fit in
//! memory.

use super::tracked::Changes;
use crate::plan::view::View;

pub struct NodeTrainers {
    /// Node n's slot starts at `start[n]`; its first `len[n]` entries are on it.
    start: Vec<u32>,
    len: Vec<u32>,
    /// (job, pod) of each trainer.
    items: Vec<(u32, u32)>,
    /// Nodes whose trainers changed since `drain_changed` was last called.
    changes: Changes,
}

impl NodeTrainers {
    /// Trainers of the jobs `admitted` says, in job order then the view's order.
    pub fn build(view: &View, admitted: impl Fn(usize) -> bool) -> Self {
        Self::from_entries(view.nodes.len(), &AdmittedTrainers { view, admitted })
    }

    /// `entries` yields (node, trainer) in the order each node's slot takes them.
    fn from_entries(nodes: usize, entries: &impl Entries) -> Self {
        let mut len = vec![0u32; nodes];
        entries.each(|n, _| len[n] += 1);
        let mut start = Vec::with_capacity(nodes + 1);
        let mut at = 0u32;
        for &l in &len {
            start.push(at);
            at += l;
        }
        start.push(at);
        let mut items = vec![(0, 0); at as usize];
        let mut filled = vec![0u32; nodes];
        entries.each(|n, t| {
            items[(start[n] + filled[n]) as usize] = compact(t);
            filled[n] += 1;
        });
        NodeTrainers {
            start,
            len,
            items,
            changes: Changes::new(nodes),
        }
    }

    /// The trainers on node n, as (job, pod).
    pub fn on(&self, n: usize) -> impl ExactSizeIterator<Item = (usize, usize)> + Clone + '_ {
        self.slot(n).iter().map(|&(j, p)| (j as usize, p as usize))
    }

    /// Whether trainer `t` is on node n.
    pub fn holds(&self, n: usize, t: (usize, usize)) -> bool {
        self.slot(n).contains(&compact(t))
    }

    fn slot(&self, n: usize) -> &[(u32, u32)] {
        let first = self.start[n] as usize;
        &self.items[first..first + self.len[n] as usize]
    }

    /// Trainer `t` leaves node `n` (the last one on the node takes its place).
    pub fn remove(&mut self, n: usize, t: (usize, usize)) {
        let t = compact(t);
        if let Some(i) = self.slot(n).iter().position(|&x| x == t) {
            let first = self.start[n] as usize;
            let len = self.len[n] as usize;
            self.items.swap(first + i, first + len - 1);
            self.len[n] -= 1;
            self.changes.mark(n);
        }
    }

    /// Trainer `t`, which left node `n`, is back on it (last).
    pub fn put_back(&mut self, n: usize, t: (usize, usize)) {
        let len = self.len[n];
        let room = self.start[n + 1] - self.start[n];
        debug_assert!(len < room, "node {n} gets back a trainer it never had");
        if len < room {
            self.items[(self.start[n] + len) as usize] = compact(t);
            self.len[n] += 1;
            self.changes.mark(n);
        }
    }

    /// Each node whose trainers changed since the last call, once.
    pub fn drain_changed(&mut self, f: impl FnMut(usize)) {
        self.changes.drain(f);
    }
}

/// What a `NodeTrainers` is built from: (node, (job, pod)) pairs, visited twice (to
/// size the slots, then to fill them). A visit rather than an iterator: a flattened
/// iterator stepped by `next` re-checks which job it is in at every trainer, and this
/// runs over every live trainer of the cluster for each packing start.
trait Entries {
    fn each(&self, f: impl FnMut(usize, (usize, usize)));
}

struct AdmittedTrainers<'v, 'a, F> {
    view: &'v View<'a>,
    admitted: F,
}

impl<F: Fn(usize) -> bool> Entries for AdmittedTrainers<'_, '_, F> {
    fn each(&self, mut f: impl FnMut(usize, (usize, usize))) {
        for (j, jv) in self.view.jobs.iter().enumerate() {
            if (self.admitted)(j) {
                for b in &jv.live_trainers {
                    f(b.node, (j, b.pod));
                }
            }
        }
    }
}

/// (job, pod) as stored (see the module doc for why `u32` holds them).
fn compact((job, pod): (usize, usize)) -> (u32, u32) {
    (job as u32, pod as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    impl Entries for &[(usize, (usize, usize))] {
        fn each(&self, mut f: impl FnMut(usize, (usize, usize))) {
            for &(n, t) in self.iter() {
                f(n, t);
            }
        }
    }

    fn changed(t: &mut NodeTrainers) -> Vec<usize> {
        let mut out = Vec::new();
        t.drain_changed(|n| out.push(n));
        out
    }

    proptest! {
        /// Each slot behaves as the vector it replaces: the same trainers in the same
        /// order after any removals and returns, and changes are reported per node.
        #[test]
        fn slots_behave_like_vectors(
            entries in proptest::collection::vec((0usize..5, 0usize..4), 0..40),
            ops in proptest::collection::vec((any::<bool>(), any::<prop::sample::Index>()), 0..60),
        ) {
            let entries: Vec<(usize, (usize, usize))> = entries
                .into_iter()
                .enumerate()
                .map(|(i, (n, j))| (n, (j, i)))
                .collect();
            let mut flat = NodeTrainers::from_entries(5, &entries.as_slice());
            let mut model: Vec<Vec<(usize, usize)>> = vec![Vec::new(); 5];
            for &(n, t) in &entries {
                model[n].push(t);
            }
            let mut gone: Vec<(usize, (usize, usize))> = Vec::new();
            for (remove, pick) in ops {
                let mut touched = None;
                if remove && !entries.is_empty() {
                    let (n, t) = entries[pick.index(entries.len())];
                    flat.remove(n, t);
                    if let Some(i) = model[n].iter().position(|&x| x == t) {
                        model[n].swap_remove(i);
                        gone.push((n, t));
                        touched = Some(n);
                    }
                } else if !gone.is_empty() {
                    let (n, t) = gone.swap_remove(pick.index(gone.len()));
                    flat.put_back(n, t);
                    model[n].push(t);
                    touched = Some(n);
                }
                prop_assert_eq!(changed(&mut flat), touched.into_iter().collect::<Vec<_>>());
                for (n, list) in model.iter().enumerate() {
                    prop_assert_eq!(flat.on(n).collect::<Vec<_>>(), list.clone());
                }
            }
        }
    }

    #[test]
    fn an_empty_cluster_and_empty_nodes_have_empty_slots() {
        let none = NodeTrainers::from_entries(0, &[].as_slice());
        assert!(none.items.is_empty());
        let mut t = NodeTrainers::from_entries(3, &[(2, (7, 1))].as_slice());
        assert!(t.on(0).next().is_none() && t.on(1).next().is_none());
        assert_eq!(t.on(2).collect::<Vec<_>>(), vec![(7, 1)]);
        t.remove(1, (7, 1)); // not there: nothing changes
        assert!(changed(&mut t).is_empty());
        assert_eq!(t.on(2).collect::<Vec<_>>(), vec![(7, 1)]);
        assert!(t.holds(2, (7, 1)) && !t.holds(2, (7, 0)) && !t.holds(1, (7, 1)));
    }
}
