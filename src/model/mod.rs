//! Plain data shared by every part of ebb: no I/O, no behaviour beyond arithmetic.

mod job;
mod node;
mod node_group;
mod other_pod;
pub mod placement;
mod plan;
mod queue;
mod resources;
mod snapshot;

pub(crate) use job::push_decimal;
pub use job::{Job, JobKey, JobPlacement, JobPod, PodGroup, Role, TrainerSpec, default_queue};
pub use node::{Node, Topology};
pub use node_group::{NodeGroup, NodeGroupError};
pub use other_pod::OtherPod;
pub use plan::{
    DeleteReason, GroupNodes, JobPlan, MAX_QUEUE_DEPTH, NoScaleUp, Plan, PodDeletion, PodPlacement,
    Problem, Reason, ScaleUp, ServiceReservation,
};
pub use queue::Queue;
pub use resources::{MAX_CPU_MILLI, MAX_GPUS, MAX_MEMORY_BYTES, ResourceError, Resources};
pub use snapshot::Snapshot;
