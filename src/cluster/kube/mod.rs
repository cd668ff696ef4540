//! The real cluster: Kubernetes objects in, API calls out. Everything here but `execute`
//! is pure and tested against recorded API objects.

pub mod actions;
pub mod control;
pub mod execute;
pub mod job_events;
pub mod job_store;
pub mod objects;
pub mod pod_logs;
pub mod progress;
pub mod render;
pub mod snapshot;

pub use actions::{Action, Tick, decide};
pub use objects::ClusterObjects;
pub use render::RenderConfig;
