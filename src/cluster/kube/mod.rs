//! The real cluster: Kubernetes objects in, API calls out. Everything here but `execute`
//! is pure and tested against recorded API objects.

pub mod actions;
pub mod control;
pub mod execute;
pub mod job_spec;
pub mod job_store;
pub mod names;
pub mod objects;
pub mod pod_requests;
pub mod progress;
pub mod quantity;
pub mod render;
pub mod snapshot;
pub mod status;

pub use actions::{Action, Tick, decide};
pub use objects::ClusterObjects;
pub use render::RenderConfig;
