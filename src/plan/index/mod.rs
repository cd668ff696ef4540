//! The indexes that make the planner's steps fast. Each answers a question a step would
//! otherwise answer by walking every node or every pod; none of them decides anything,
//! and debug builds or property tests hold each to the plain walk it replaces.
//!
//! - `nodes`: free room per node, filed by free GPUs and free CPU for best-fit lookups
//!   (`levels` is the filing);
//! - `node_trainers`: which trainers of which job sit on each node;
//! - `group_counts`: free room and trainers per NVLink group and rack;
//! - `topology`: where nodes sit (rack, NVLink group), flattened;
//! - `room_memo`: bounds on what a search for room on a node can find, forgotten when the
//!   node changes (`tracked` tells it which did);
//! - `index_cache`: each job's index kept from one plan to the next, for callers that
//!   plan again and again (the simulator).

/// Whether node `n` is among `allowed` (a pod group's eligible nodes, by node index;
/// None: every node).
pub fn allows(allowed: Option<&[bool]>, n: usize) -> bool {
    allowed.is_none_or(|a| a.get(n).copied().unwrap_or(false))
}

pub(crate) mod group_counts;
pub mod index_cache;
pub(crate) mod levels;
pub(crate) mod node_trainers;
pub(crate) mod nodes;
pub(crate) mod room_memo;
pub mod topology;
pub(crate) mod tracked;
