//! The world one planning round sees: the snapshot's parts, borrowed, with the jobs and
//! services that earlier rounds changed held as edited copies.
//!
//! Rounds after the first plan the world the plan so far leaves (see [`super::plan`]).
//! Copying the whole snapshot for that cost as much as a packing: every job, pod name
//! and node label, to change a few hundred jobs. Here only what changes is copied.

use super::apply::{Deleted, Editable, apply_into};
use crate::model::{Job, Node, NodeGroup, OtherPod, Plan, Queue, Snapshot};

/// A borrowed item, or an edited copy of it.
pub enum Edited<'a, T> {
    Borrowed(&'a T),
    Copied(Box<T>),
}

impl<T: Clone> Editable<T> for Edited<'_, T> {
    fn read(&self) -> &T {
        match self {
            Edited::Borrowed(t) => t,
            Edited::Copied(t) => t,
        }
    }

    fn edit(&mut self) -> &mut T {
        if let Edited::Borrowed(t) = *self {
            *self = Edited::Copied(Box::new(t.clone()));
        }
        match self {
            Edited::Copied(t) => t,
            Edited::Borrowed(_) => unreachable!("a borrowed item was just copied"),
        }
    }
}

pub struct World<'a> {
    pub time_s: f64,
    pub nodes: &'a [Node],
    pub jobs: Vec<Edited<'a, Job>>,
    pub queues: &'a [Queue],
    pub other_pods: Vec<Edited<'a, OtherPod>>,
    pub node_groups: &'a [NodeGroup],
}

impl<'a> World<'a> {
    /// The snapshot itself, nothing copied.
    pub fn of(snapshot: &'a Snapshot) -> Self {
        World {
            time_s: snapshot.time_s,
            nodes: &snapshot.nodes,
            jobs: snapshot.jobs.iter().map(Edited::Borrowed).collect(),
            queues: &snapshot.queues,
            other_pods: snapshot.other_pods.iter().map(Edited::Borrowed).collect(),
            node_groups: &snapshot.node_groups,
        }
    }

    pub fn jobs(&self) -> impl Iterator<Item = &Job> {
        self.jobs.iter().map(Editable::read)
    }

    pub fn other_pods(&self) -> impl Iterator<Item = &OtherPod> {
        self.other_pods.iter().map(Editable::read)
    }

    /// The world a moment after the plan's API calls, as
    /// [`super::apply::apply_keeping_names`] makes it.
    pub fn apply_keeping_names(&mut self, plan: &Plan) {
        // Which jobs changed shows in the world itself (copied, no longer borrowed).
        apply_into(
            &mut self.jobs,
            &mut self.other_pods,
            self.time_s,
            plan,
            Deleted::NameHeld,
        );
    }

    /// An owned snapshot of this world (for tests and files).
    pub fn to_snapshot(&self) -> Snapshot {
        Snapshot {
            time_s: self.time_s,
            nodes: self.nodes.to_vec(),
            jobs: self.jobs().cloned().collect(),
            queues: self.queues.to_vec(),
            other_pods: self.other_pods().cloned().collect(),
            node_groups: self.node_groups.to_vec(),
        }
    }
}
