//! The control API (`proto/ebb/v1/control.proto`) that ebbctl speaks, with bearer-token
//! authentication and per-namespace authorization.

pub mod auth;
pub mod backend;
pub mod cluster_state;
pub mod convert;
pub mod limits;
pub mod progress;
pub mod proto;
pub mod selector;
pub mod serve;
pub mod service;

pub use auth::{AuthConfig, Principal, Role, TokenEntry};
pub use backend::ControlBackend;
pub use service::Control;
