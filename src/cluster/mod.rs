//! The boundary to the world. `sim` is a virtual cluster in virtual time; the Kubernetes
//! and local-process backends join it with their issues.

pub mod kube;
pub mod local;
pub mod sim;
