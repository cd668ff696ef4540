//! What `make_room` learned of each node's victims, so that the next search for room
//! passes over the nodes that cannot beat its best without weighing their trainers again.
//!
//! Why: on a full cluster every trainer of a newly admitted gang searches for room, and
//! each search weighed the same hundreds of nodes (those where one eviction is not
//! enough) before it reached one where one is: at 50,000 nodes, 336 searches weighed
//! 390,000 nodes, a cost that grew with the square of the cluster.
//!
//! Weighing a node reads the pod's shape, the node's free room, the trainers on it in
//! their order, the state of each of their jobs, whether the node has scale-down quota,
//! and which job the room is for (its own trainers are never victims). An entry keeps
//! the shape, the free room and the quota flag and checks them when read; the packer
//! forgets a node when its trainers or one of their jobs change, and when the job the
//! room is for changes, the nodes holding trainers of the old or the new one.
//!
//! An entry is a lower bound, not a cost to act on: a weighing cut short (it could not
//! beat its search's best) only says the cost is at least what it had reached, since
//! more victims only cost more. A node whose bound beats a search's best is weighed
//! again, so the victims evicted are always freshly chosen.

use crate::model::Resources;

/// What weighing a node found, as (trainers above their minimum, CPU pod on a GPU node,
/// evictions): the order `make_room` compares costs in, before the node index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// The cost is at least this (exactly this when the weighing ran to the end).
    AtLeast(usize, u8, usize),
    /// Evicting every trainer that may go does not free enough.
    Never,
}

#[derive(Clone, Copy)]
struct Known {
    res: Resources,
    free: Resources,
    quota_here: bool,
    bound: Bound,
}

#[derive(Default)]
pub struct RoomMemo {
    /// By node; empty until the first search of a packing (most never search).
    known: Vec<Option<Known>>,
    /// Whether any entry may be set: forgetting is skipped while none is.
    any: bool,
    /// The job the remembered weighings skipped the trainers of.
    for_job: Option<usize>,
}

impl RoomMemo {
    /// What is known of node `n` for a pod of shape `res`, if it still holds.
    pub fn bound(
        &self,
        n: usize,
        res: &Resources,
        free: &Resources,
        quota_here: bool,
    ) -> Option<Bound> {
        let k = self.known.get(n)?.as_ref()?;
        (k.res == *res && k.free == *free && k.quota_here == quota_here).then_some(k.bound)
    }

    pub fn remember(
        &mut self,
        n: usize,
        nodes: usize,
        res: Resources,
        free: Resources,
        quota_here: bool,
        bound: Bound,
    ) {
        if self.known.len() < nodes {
            self.known.resize(nodes, None);
        }
        self.known[n] = Some(Known {
            res,
            free,
            quota_here,
            bound,
        });
        self.any = true;
    }

    pub fn forget(&mut self, n: usize) {
        if self.any
            && let Some(k) = self.known.get_mut(n)
        {
            *k = None;
        }
    }

    pub fn forget_all(&mut self, nodes: &[usize]) {
        if self.any {
            for &n in nodes {
                self.forget(n);
            }
        }
    }

    pub fn for_job(&self) -> Option<usize> {
        self.for_job
    }

    /// The remembered weighings skip `for_job`'s trainers from now on; the caller has
    /// forgotten the nodes where that differs from before.
    pub fn set_for_job(&mut self, for_job: Option<usize>) {
        self.for_job = for_job;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpus(g: i64) -> Resources {
        Resources {
            cpu_milli: 1000,
            memory_bytes: 1 << 30,
            gpus: g,
        }
    }

    #[test]
    fn an_entry_holds_only_for_the_shape_free_room_and_quota_it_was_weighed_with() {
        let mut memo = RoomMemo::default();
        let bound = Bound::AtLeast(2, 0, 2);
        assert_eq!(memo.bound(3, &gpus(8), &gpus(0), false), None);
        memo.remember(3, 10, gpus(8), gpus(0), false, bound);
        assert_eq!(memo.bound(3, &gpus(8), &gpus(0), false), Some(bound));
        assert_eq!(
            memo.bound(3, &gpus(4), &gpus(0), false),
            None,
            "other shape"
        );
        assert_eq!(
            memo.bound(3, &gpus(8), &gpus(1), false),
            None,
            "room changed"
        );
        assert_eq!(
            memo.bound(3, &gpus(8), &gpus(0), true),
            None,
            "quota changed"
        );
        assert_eq!(memo.bound(4, &gpus(8), &gpus(0), false), None, "other node");
        assert_eq!(
            memo.bound(99, &gpus(8), &gpus(0), false),
            None,
            "no such node"
        );
    }

    #[test]
    fn forgotten_nodes_are_weighed_again_and_the_rest_are_kept() {
        let mut memo = RoomMemo::default();
        memo.forget(1); // before anything is known: nothing to do, no panic
        for n in 0..5 {
            memo.remember(n, 5, gpus(8), gpus(0), false, Bound::Never);
        }
        memo.forget(1);
        memo.forget_all(&[3, 4, 17]);
        let known: Vec<bool> = (0..5)
            .map(|n| memo.bound(n, &gpus(8), &gpus(0), false).is_some())
            .collect();
        assert_eq!(known, vec![true, false, true, false, false]);
        memo.set_for_job(Some(7));
        assert_eq!(memo.for_job(), Some(7));
    }
}
