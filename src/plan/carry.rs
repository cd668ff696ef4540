//! What one call of the planner can hand the next: a caller that plans a changing
//! cluster tick after tick (the simulator, a controller) sees mostly the same jobs on
//! the same nodes each time, and indexing them again was a quarter of each tick.
//!
//! Nothing is trusted: a job's earlier index is used only for a job equal to the one it
//! was made for, and only while the nodes and queues are equal to theirs, so a plan
//! made with what was carried is the plan [`super::plan`] makes (tested).

use super::topology::TopologyIndex;
use super::view::{IndexedJob, ViewMemo};
use super::world::{Edited, World};
use crate::model::{Job, Node, Queue, Snapshot};

/// How far ahead of the expected place a job is looked for among the carried ones: jobs
/// that left since (finished ones) are skipped this way; further moves are indexed anew.
const LOOK_AHEAD: usize = 16;

/// The cluster the last plan was made on, as far as it can be reused.
pub struct Carried {
    nodes: Vec<Node>,
    queues: Vec<Queue>,
    topology: Option<TopologyIndex>,
    /// Jobs the last plan left unchanged, in snapshot order, each with its index (an
    /// entry is taken when reused).
    jobs: Vec<Option<(Job, IndexedJob)>>,
}

/// What a plan starts from: the reusable part of what was carried.
pub struct Reused<'s> {
    pub topology: Option<TopologyIndex>,
    pub memo: Option<ViewMemo<'s>>,
    /// The carried copy of each snapshot job that was found unchanged (so that it need
    /// not be copied again to be carried on).
    copies: Vec<Option<Job>>,
    /// The carried nodes and queues, when equal to the snapshot's.
    cluster: Option<(Vec<Node>, Vec<Queue>)>,
}

impl Carried {
    /// What of this can serve a plan of `snapshot`.
    pub fn reuse(self, snapshot: &Snapshot) -> Reused<'_> {
        if self.nodes != snapshot.nodes || self.queues != snapshot.queues {
            return Reused::nothing();
        }
        let mut carried = self.jobs;
        let mut memo = ViewMemo::with_capacity(snapshot.jobs.len());
        let mut copies = Vec::with_capacity(snapshot.jobs.len());
        // The first carried job not yet passed: jobs keep their order, and those passed
        // over left (or moved: then they are indexed anew).
        let mut next = 0;
        for job in &snapshot.jobs {
            let window = next..(next + LOOK_AHEAD).min(carried.len());
            let at = window.into_iter().find(|&q| {
                carried[q]
                    .as_ref()
                    .is_some_and(|(c, _)| c.name == job.name && c.namespace == job.namespace)
            });
            let found = at.and_then(|q| {
                next = q + 1;
                carried[q].take()
            });
            match found {
                Some((copy, indexed)) if copy == *job => {
                    memo.push(Some((job, indexed)));
                    copies.push(Some(copy));
                }
                _ => {
                    memo.push(None);
                    copies.push(None);
                }
            }
        }
        Reused {
            topology: self.topology,
            memo: Some(memo),
            copies,
            cluster: Some((self.nodes, self.queues)),
        }
    }
}

impl<'s> Reused<'s> {
    pub fn nothing() -> Reused<'s> {
        Reused {
            topology: None,
            memo: None,
            copies: Vec::new(),
            cluster: None,
        }
    }

    /// What to carry to the next plan, from the last round's `world` and its jobs'
    /// `indexed` data (none when the rounds ran out unsettled): the jobs that world still
    /// borrows from `snapshot` (the plan left them as they were) and the topology.
    pub fn carry_on(
        mut self,
        snapshot: &Snapshot,
        world: &World<'_>,
        indexed: Option<Vec<IndexedJob>>,
        topology: Option<TopologyIndex>,
    ) -> Carried {
        let mut jobs = Vec::with_capacity(world.jobs.len());
        for (i, (edited, indexed)) in world
            .jobs
            .iter()
            .zip(indexed.into_iter().flatten())
            .enumerate()
        {
            if matches!(edited, Edited::Borrowed(_)) && indexed.stands_alone() {
                let copy = self
                    .copies
                    .get_mut(i)
                    .and_then(Option::take)
                    .unwrap_or_else(|| snapshot.jobs[i].clone());
                jobs.push(Some((copy, indexed)));
            }
        }
        let (nodes, queues) = self
            .cluster
            .unwrap_or_else(|| (snapshot.nodes.clone(), snapshot.queues.clone()));
        Carried {
            nodes,
            queues,
            topology,
            jobs,
        }
    }
}
