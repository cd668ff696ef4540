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
//!
//! Where the pod fits nowhere, a search ends at the first node where one eviction of a
//! trainer above its minimum makes room (only nodes with scale-down quota can beat
//! that). The nodes before it mostly need more, and reading their entries (scattered,
//! with each node's room) was most of a search on a large cluster: a bit per node says
//! so for the shape searched last, so a first pass reads only the bit, and a second
//! pass reads them in full only when no such node was found.

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
    /// A bit per node whose entry, for a pod of shape `passed_shape` on a node without
    /// quota, says that making room there takes more than one eviction of a trainer
    /// above its minimum (or never suffices); cleared with the entry or when the node's
    /// room changes. Where one eviction suffices somewhere, a search need not read
    /// these nodes at all: on a full cluster they are most of those before the first
    /// such node, and each search walked them again.
    passed: Vec<u64>,
    passed_shape: Option<Resources>,
    /// How far into `NodeState::changed_nodes` the bits are.
    changes_seen: usize,
}

/// The cost of one eviction of a trainer above its minimum, on a node fit for the pod.
const ONE_ABOVE_MIN: (usize, u8, usize) = (1, 0, 1);

impl RoomMemo {
    /// What is known of node `n` for a pod of shape `res`, if it still holds.
    pub fn bound(
        &self,
        n: usize,
        res: &Resources,
        free: &Resources,
        quota_here: bool,
    ) -> Option<Bound> {
        #[cfg(test)]
        if test_switch::OFF.with(std::cell::Cell::get) {
            return None;
        }
        let k = self.known.get(n)?.as_ref()?;
        let holds = k.res == *res && k.free == *free && k.quota_here == quota_here;
        #[cfg(test)]
        if holds {
            test_switch::READS.with(|r| r.set(r.get() + 1));
        }
        holds.then_some(k.bound)
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
            self.room_changed(n);
        }
    }

    /// A search for room for a pod of shape `res` starts: the passed bits are for it.
    pub fn start_search(&mut self, res: &Resources, nodes: usize) {
        if self.passed_shape != Some(*res) {
            self.passed.clear();
            self.passed.resize(nodes.div_ceil(64), 0);
            self.passed_shape = Some(*res);
        }
    }

    /// Whether node `n` (without quota) costs more than one eviction above a minimum,
    /// for the shape of the search under way.
    pub fn passed(&self, n: usize) -> bool {
        #[cfg(test)]
        if test_switch::OFF.with(std::cell::Cell::get) {
            return false;
        }
        let passed = self
            .passed
            .get(n / 64)
            .is_some_and(|w| w & (1 << (n % 64)) != 0);
        #[cfg(test)]
        if passed {
            test_switch::PASSED.with(|p| p.set(p.get() + 1));
        }
        passed
    }

    /// Sets node `n`'s passed bit if `bound`, just read or remembered for it (without
    /// quota, for the search's shape), says so.
    pub fn mark_if_passed(&mut self, n: usize, bound: Bound) {
        let passed = match bound {
            Bound::Never => true,
            Bound::AtLeast(above_min, cpu_on_gpu, evictions) => {
                (above_min, cpu_on_gpu, evictions) > ONE_ABOVE_MIN
            }
        };
        if passed && let Some(w) = self.passed.get_mut(n / 64) {
            *w |= 1 << (n % 64);
        }
    }

    /// Catches up with `changed_nodes` (`NodeState`'s log of nodes whose room changed).
    pub fn rooms_changed(&mut self, changed_nodes: &[usize]) {
        for &n in &changed_nodes[self.changes_seen.min(changed_nodes.len())..] {
            self.room_changed(n);
        }
        self.changes_seen = changed_nodes.len();
    }

    /// Node `n`'s free room changed: its entry no longer holds, nor its bit.
    fn room_changed(&mut self, n: usize) {
        if let Some(w) = self.passed.get_mut(n / 64) {
            *w &= !(1 << (n % 64));
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

/// For the test that plans with and without the memo and compares.
#[cfg(test)]
mod test_switch {
    use std::cell::Cell;
    thread_local! {
        pub static OFF: Cell<bool> = const { Cell::new(false) };
        pub static READS: Cell<usize> = const { Cell::new(0) };
        pub static PASSED: Cell<usize> = const { Cell::new(0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::generate::{ClusterSpec, cluster};
    use crate::model::{
        DeleteReason, Job, JobPod, Node, OtherPod, PodGroup, Role, Snapshot, TrainerSpec,
    };
    use crate::plan::admission::{Admission, admit};
    use crate::plan::index::topology::TopologyIndex;
    use crate::plan::packing::{pack, start};
    use crate::plan::view::View;
    use crate::plan::world::World;
    use crate::plan::{plan, policy::Policy};

    const GIB: i64 = 1 << 30;

    fn pod(name: &str, role: Role, node: &str) -> JobPod {
        JobPod {
            name: name.into(),
            role,
            node: Some(node.into()),
            terminating: false,
        }
    }

    /// A service that fits nowhere searches for room twice: first while the only job's
    /// trainer is at its minimum (nothing may go), then after the job grew onto another
    /// node, when the same trainer, on a node that did not change, may go. Only the
    /// job's change tells the memo that its first answer no longer holds.
    #[test]
    fn a_job_that_grew_elsewhere_makes_its_trainers_victims_again() {
        let support = Resources::new(1000, GIB, 0);
        let job = Job {
            namespace: "ml".into(),
            name: "x".into(),
            queue: "default".into(),
            priority: 0,
            weight: 1.0,
            master: PodGroup {
                replicas: 1,
                resources: support,
            },
            pservers: PodGroup {
                replicas: 2,
                resources: support,
            },
            trainers: TrainerSpec {
                min: 1,
                max: 2,
                resources: Resources::new(10_000, GIB, 8),
            },
            pods: vec![
                pod("x-master-0", Role::Master, "m"),
                pod("x-pserver-0", Role::Pserver, "m"),
                pod("x-pserver-1", Role::Pserver, "m"),
                pod("x-trainer-0", Role::Trainer, "c0"),
            ],
            submit_time_s: 0.0,
            admitted: true,
            last_scale_time_s: None,
            speedup: Vec::new(),
            placement: Default::default(),
        };
        let snapshot = Snapshot {
            time_s: 0.0,
            nodes: vec![
                Node::new("c0", Resources::new(96_000, 512 * GIB, 8)),
                Node::new("e", Resources::new(20_000, 512 * GIB, 8)),
                Node::new("m", Resources::new(8_000, 32 * GIB, 0)),
            ],
            jobs: vec![job],
            queues: Vec::new(),
            other_pods: vec![OtherPod {
                placement: Default::default(),
                namespace: "web".into(),
                name: "big".into(),
                workload: None,
                resources: Resources::new(90_000, 8 * GIB, 0),
                node: None,
            }],
            node_groups: Vec::new(),
        };
        // One packing, not a whole plan: a later round of `plan` would find the room
        // anyway, and hide a stale answer here.
        let world = World::of(&snapshot);
        let view = View::build(&world);
        let topo = TopologyIndex::build(&view.node_refs);
        let mut admission = admit(&view, &Policy::default());
        assert_eq!(admission, vec![Admission::Running]);
        let packed = pack(
            &view,
            &topo,
            start(&view, &topo, &admission),
            &mut admission,
            &[2],
            view.capacity(),
        );
        assert_eq!(packed.reservations.len(), 1, "the service got no room");
        assert_eq!(packed.reservations[0].node, "c0");
        assert!(packed.delete.iter().any(|d| d.pod == "x-trainer-0"
            && matches!(d.reason, DeleteReason::MakeRoomForService { .. })));
        assert_eq!(packed.placements(&view).len(), 1, "x grows onto e");
        assert_eq!(packed.placements(&view)[0].node, "e");
    }

    /// Clusters with more jobs than room, where newcomers' gangs and services need room
    /// made: every plan must be the one that weighing every node afresh makes.
    #[test]
    fn plans_are_the_same_with_and_without_the_memo() {
        let mut reads = 0;
        for (seed, gpus_per_node) in [(1, 8), (2, 8), (3, 4), (4, 8), (5, 2), (6, 8)] {
            let snapshot = cluster(&ClusterSpec {
                nodes: 500,
                jobs: 600,
                queues: 6,
                gpus_per_node,
                seed,
                constraints: Default::default(),
            });
            let policy = Policy::default();
            test_switch::READS.with(|r| r.set(0));
            let with_memo = plan(&snapshot, &policy);
            reads += test_switch::READS.with(std::cell::Cell::get);
            test_switch::OFF.with(|o| o.set(true));
            let without = plan(&snapshot, &policy);
            test_switch::OFF.with(|o| o.set(false));
            assert_eq!(with_memo, without, "seed {seed}");
        }
        assert!(
            reads > 0,
            "no search read the memo: the test proves nothing"
        );
        assert!(
            test_switch::PASSED.with(std::cell::Cell::get) > 0,
            "no search passed over a node: the test proves nothing of that"
        );
    }

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
    fn a_node_is_passed_over_only_where_one_eviction_above_a_minimum_is_not_enough() {
        let mut memo = RoomMemo::default();
        memo.start_search(&gpus(8), 200);
        let cases = [
            (0, Bound::Never, true),
            (1, Bound::AtLeast(1, 0, 2), true),
            (2, Bound::AtLeast(1, 1, 1), true),
            (3, Bound::AtLeast(2, 0, 1), true),
            (4, Bound::AtLeast(1, 0, 1), false),
            (5, Bound::AtLeast(0, 0, 3), false),
            (130, Bound::AtLeast(0, 1, 0), false),
            (199, Bound::Never, true),
        ];
        for (n, bound, _) in cases {
            memo.mark_if_passed(n, bound);
        }
        for (n, bound, passed) in cases {
            assert_eq!(memo.passed(n), passed, "node {n}, {bound:?}");
        }
        assert!(!memo.passed(6), "never marked");
        assert!(!memo.passed(500), "no such node");
    }

    #[test]
    fn passed_bits_go_with_a_change_of_room_a_forgotten_entry_or_another_shape() {
        let mut memo = RoomMemo::default();
        memo.start_search(&gpus(8), 100);
        for n in 0..4 {
            memo.remember(n, 100, gpus(8), gpus(0), false, Bound::Never);
            memo.mark_if_passed(n, Bound::Never);
        }
        memo.rooms_changed(&[1]);
        memo.forget(2);
        let passed: Vec<bool> = (0..4).map(|n| memo.passed(n)).collect();
        assert_eq!(passed, vec![true, false, false, true]);
        memo.start_search(&gpus(8), 100);
        assert!(memo.passed(0), "same shape: kept");
        memo.start_search(&gpus(4), 100);
        assert!(!memo.passed(0) && !memo.passed(3), "other shape: none");
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
