//! The embedded cluster of `ebb up`: declared nodes, pods as local processes, the same
//! planner and status logic as the Kubernetes controller, and the control API.

pub mod backend;
pub mod config;
pub mod events;
pub mod jobs;
pub mod logs;
pub mod process;
pub mod run_as;
pub mod runtime;
pub mod services;
pub mod world;

pub use backend::LocalBackend;
pub use config::LocalClusterSpec;
pub use world::World;
