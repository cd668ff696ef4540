//! The node agent: discovers GPUs and their links (NVML), reduces them to NVLink groups
//! (petgraph), and publishes them on the Node for the planner.

pub mod devices;
pub mod nvml;
pub mod publish;
pub mod topology;
pub mod xid;
