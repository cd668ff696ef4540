//! ebb: an elastic training-job scheduler for Kubernetes.
//!
//! `model` is the plain data, `plan` the pure decision; everything else (backends,
//! services, binaries) moves data in and out of `plan::plan`.

pub mod agent;
pub mod api;
pub mod bench;
pub mod cli;
pub mod cluster;
pub mod controller;
pub mod coord;
pub mod logging;
pub mod model;
pub mod plan;
pub mod resource;
