//! Generated types and services of `proto/ebb/v1/control.proto`.
#![allow(clippy::all, missing_docs)]

tonic::include_proto!("ebb.control.v1");
