//! Generated gRPC types and services of `proto/ebb/v1/coord.proto`.
#![allow(clippy::all, missing_docs)]

tonic::include_proto!("ebb.v1");
