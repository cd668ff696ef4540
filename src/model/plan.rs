//! What the planner decided: per job admission and size, pods to create and delete.

use super::{JobKey, Resources, Role};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub jobs: Vec<JobPlan>,
    /// Pods to create (or, when a pod of that name exists unbound, to bind) on a node.
    pub create: Vec<PodPlacement>,
    pub delete: Vec<PodDeletion>,
    /// Masters/pservers to recreate under their stable name once the pod that still
    /// holds the name (being deleted) is gone: their room on `node` is held meanwhile.
    #[serde(default)]
    pub recreate_after_delete: Vec<PodPlacement>,
    /// Where pending service pods are expected to land: capacity ebb keeps free for them.
    pub service_reservations: Vec<ServiceReservation>,
    /// Snapshot-level defects that were worked around (the rest was still planned).
    pub problems: Vec<Problem>,
    /// Nodes to ask the autoscaler for: per job whose gang cannot pack on the nodes
    /// there are, the new nodes that would hold it (all of them or none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scale_up: Vec<ScaleUp>,
    /// Jobs that would need new nodes but ask for none, and why (held by a queue's
    /// limit, or no node group they may use has room within its max).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub no_scale_up: Vec<NoScaleUp>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoScaleUp {
    pub job: JobKey,
    pub why: String,
}

/// New nodes for one job's gang (master, pservers and `min` trainers).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScaleUp {
    pub job: JobKey,
    pub nodes: Vec<GroupNodes>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupNodes {
    pub group: String,
    pub count: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobPlan {
    pub job: JobKey,
    pub admitted: bool,
    /// Why the job is pending, or why an admitted job holds less than its minimum.
    pub reason: Option<Reason>,
    pub current_trainers: u32,
    pub target_trainers: u32,
    /// The job's weighted fair share in trainers before stability and packing.
    pub fair_trainers: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodPlacement {
    pub job: JobKey,
    pub pod: String,
    pub role: Role,
    pub node: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodDeletion {
    pub job: JobKey,
    pub pod: String,
    pub node: Option<String>,
    pub reason: DeleteReason,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceReservation {
    pub pod: String,
    pub node: String,
}

/// Levels a queue tree may have (a top-level queue is level 1). The continuous fair
/// share nests one bisection per level, so each level multiplies its cost by 64; at
/// four levels a tick would take seconds.
pub const MAX_QUEUE_DEPTH: usize = 3;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    InvalidSpec {
        field: String,
        message: String,
    },
    UnknownQueue {
        queue: String,
    },
    QueueCycle {
        queue: String,
    },
    /// The queue sits more than `MAX_QUEUE_DEPTH` levels down its tree.
    QueueTooDeep {
        queue: String,
        depth: usize,
    },
    /// The gang (master + pservers + min trainers) exceeds what is free in aggregate.
    InsufficientCapacity {
        needed: Resources,
        free: Resources,
    },
    /// Enough room in aggregate, but not on the nodes the job's trainers may use
    /// (`eligible_free` is what those nodes have free).
    InsufficientEligibleCapacity {
        needed: Resources,
        eligible_free: Resources,
    },
    QueueLimit {
        queue: String,
    },
    /// Enough capacity in aggregate, but no set of nodes holds the gang.
    NotPackable,
    /// Not even on the empty cluster: a pod is larger than every node, or the gang than
    /// every node together. `resource` is the one named (cpu, memory, gpus).
    NeverFits {
        resource: String,
        message: String,
    },
    /// A pod group's placement constraints rule out every schedulable node. `constraint`
    /// is the one that rules out the most nodes.
    NoEligibleNode {
        role: String,
        constraint: String,
        message: String,
    },
    /// Admitted, but fewer than `min` trainers could be placed (e.g. after node loss).
    BelowMin {
        placed: u32,
        min: u32,
    },
    /// Strict FIFO admission: an earlier job waits for room, and this one waits behind it.
    Queued {
        behind: JobKey,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::InvalidSpec { field, message } => write!(f, "invalid {field}: {message}"),
            Reason::UnknownQueue { queue } => write!(
                f,
                "queue {queue:?} does not exist: create it or set the job's queue"
            ),
            Reason::QueueCycle { queue } => {
                write!(f, "queue {queue:?} is part of a parent cycle")
            }
            Reason::QueueTooDeep { queue, depth } => write!(
                f,
                "queue {queue:?} is {depth} levels down its tree; at most {MAX_QUEUE_DEPTH} are supported"
            ),
            Reason::InsufficientCapacity { needed, free } => write!(
                f,
                "master + pservers + min trainers need {needed}, only {free} is free"
            ),
            Reason::InsufficientEligibleCapacity {
                needed,
                eligible_free,
            } => write!(
                f,
                "waiting for room on eligible nodes: master + pservers + min trainers need \
                 {needed}, the nodes its trainers may use have {eligible_free} free"
            ),
            Reason::QueueLimit { queue } => {
                write!(f, "admitting would exceed the limit of queue {queue:?}")
            }
            Reason::NotPackable => write!(
                f,
                "enough capacity in total, but no set of nodes fits master + pservers + min trainers"
            ),
            Reason::NeverFits { message, .. } => write!(f, "{message}"),
            Reason::NoEligibleNode { message, .. } => write!(f, "{message}"),
            Reason::BelowMin { placed, min } => {
                write!(f, "only {placed} of min {min} trainers fit on the nodes")
            }
            Reason::Queued { behind } => write!(f, "waiting behind {behind} (strict FIFO)"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeleteReason {
    /// The job shrinks toward its fair share.
    ScaleDown,
    /// Room for an online service's pod.
    MakeRoomForService { pod: String },
    /// Room for another job's gang.
    MakeRoomForJob { job: JobKey },
    /// An unbound pod the plan no longer needs.
    Unneeded,
    /// Bound to a node that is gone: the pod is lost, its object is cleaned up.
    NodeGone,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    InvalidNode {
        node: String,
        message: String,
    },
    DuplicateNode {
        node: String,
    },
    DuplicateJob {
        job: JobKey,
    },
    InvalidQueue {
        queue: String,
        message: String,
    },
    QueueCycle {
        queue: String,
    },
    QueueTooDeep {
        queue: String,
        depth: usize,
    },
    /// Pods bound to the node request more than it has; it gets no new pods.
    NodeOvercommitted {
        node: String,
        over: Resources,
    },
    /// A pod names a node the snapshot does not have; its resources are ignored.
    PodOnUnknownNode {
        pod: String,
        node: String,
    },
    InvalidOtherPod {
        pod: String,
        message: String,
    },
    InvalidNodeGroup {
        group: String,
        message: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::InvalidNode { node, message } => write!(f, "node {node}: {message}"),
            Problem::DuplicateNode { node } => write!(f, "node {node} is listed twice"),
            Problem::DuplicateJob { job } => write!(f, "job {job} is listed twice"),
            Problem::InvalidQueue { queue, message } => write!(f, "queue {queue}: {message}"),
            Problem::QueueCycle { queue } => write!(f, "queue {queue} is part of a parent cycle"),
            Problem::QueueTooDeep { queue, depth } => write!(
                f,
                "queue {queue} is {depth} levels down its tree; at most {MAX_QUEUE_DEPTH} are supported, its jobs wait"
            ),
            Problem::NodeOvercommitted { node, over } => {
                write!(f, "node {node} is over-committed by {over}")
            }
            Problem::PodOnUnknownNode { pod, node } => {
                write!(f, "pod {pod} is bound to unknown node {node}")
            }
            Problem::InvalidOtherPod { pod, message } => write!(f, "pod {pod}: {message}"),
            Problem::InvalidNodeGroup { group, message } => {
                write!(f, "node group {group}: {message}")
            }
        }
    }
}

impl Plan {
    pub fn job(&self, key: &JobKey) -> Option<&JobPlan> {
        self.jobs.iter().find(|j| &j.job == key)
    }
}
