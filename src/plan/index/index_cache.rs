//! Indexes kept from one plan to the next by a caller that plans a changing cluster
//! again and again, and told what changed: the plans are [`crate::plan::plan`]'s.

use super::topology::TopologyIndex;
use crate::model::{Plan, Snapshot};
use crate::plan::view::{self, View, ViewMemo};
use crate::plan::world::World;
use crate::plan::{Policy, plan_from};

/// What indexing found of each job of the snapshot a caller plans again and again (the
/// simulator: each tick changes a few of 1,700 jobs), kept from one plan to the next so
/// that an unchanged job is not indexed again (reading its every pod was most of a
/// tick's view). The caller keeps it in step with its snapshot's jobs; a job it does
/// not vouch for is indexed anew, so an empty cache only costs time. Debug builds check
/// every reused index against one built anew.
#[derive(Default)]
pub struct JobIndexCache {
    jobs: Vec<Option<Box<view::JobIndex>>>,
    /// The nodes' topology, kept until the nodes change.
    topology: Option<TopologyIndex>,
}

impl JobIndexCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// A job was added at the end of the snapshot's jobs.
    pub fn pushed(&mut self) {
        self.jobs.push(None);
    }

    /// A job was inserted at index `j` of the snapshot's jobs (the later ones move down).
    pub fn inserted(&mut self, j: usize) {
        if j <= self.jobs.len() {
            self.jobs.insert(j, None);
        } else {
            self.clear();
        }
    }

    /// Job `j` left the snapshot (the later ones move up).
    pub fn removed(&mut self, j: usize) {
        if j < self.jobs.len() {
            self.jobs.remove(j);
        }
    }

    /// Job `j` changed.
    pub fn changed(&mut self, j: usize) {
        if let Some(slot) = self.jobs.get_mut(j) {
            *slot = None;
        }
    }

    /// Nodes or queues changed (indexes point into them), or anything else the caller
    /// cannot follow job by job.
    pub fn clear(&mut self) {
        self.jobs.iter_mut().for_each(|slot| *slot = None);
        self.topology = None;
    }

    /// How many jobs hold a kept index.
    pub fn kept(&self) -> usize {
        self.jobs.iter().filter(|slot| slot.is_some()).count()
    }
}

/// [`plan`](crate::plan::plan), reusing the index `cache` keeps of each job the caller vouches for, and
/// leaving in it the index of each job the plan does not change. The plan is [`plan`](crate::plan::plan)'s.
pub fn plan_cached(snapshot: &Snapshot, policy: &Policy, cache: &mut JobIndexCache) -> Plan {
    let kept = std::mem::take(&mut cache.jobs);
    let kept = (kept.len() == snapshot.jobs.len()).then_some(kept);
    let topo = cache.topology.take();
    if cfg!(debug_assertions) {
        check_kept(snapshot, kept.as_deref(), topo.as_ref());
    }
    let memo = kept.map(|kept| ViewMemo::of_kept(&snapshot.jobs, kept));
    let (plan, last, topo) = plan_from(snapshot, policy, memo, topo, true);
    cache.jobs = match last {
        Some(memo) => memo.into_kept(),
        None => vec![None; snapshot.jobs.len()],
    };
    cache.topology = topo;
    plan
}

/// Each kept index and the kept topology are what indexing the snapshot anew finds (a
/// caller that lost step with its snapshot would get plans for a cluster that is not
/// there).
fn check_kept(
    snapshot: &Snapshot,
    kept: Option<&[Option<Box<view::JobIndex>>]>,
    topo: Option<&TopologyIndex>,
) {
    if kept.is_none() && topo.is_none() {
        return;
    }
    let world = World::of(snapshot);
    let view = View::build(&world);
    if let Some(topo) = topo {
        let fresh = TopologyIndex::build(&view.node_refs);
        assert_eq!(topo, &fresh, "the kept topology is stale");
    }
    let fresh = view.into_indexes();
    for (j, (kept, fresh)) in kept.unwrap_or_default().iter().zip(&fresh).enumerate() {
        // Whether a name repeats depends on the other jobs: the view checks that itself
        // and indexes a duplicate anew (then or now).
        if let Some(kept) = kept
            && !kept.was_duplicate()
            && !fresh.was_duplicate()
        {
            assert_eq!(
                kept,
                fresh,
                "the kept index of job {j} ({}) is stale",
                snapshot.jobs[j].key()
            );
        }
    }
}
