//! Benchmarks behind `ebb bench`, and the synthetic clusters they run on.

pub mod generate;
pub mod plan_bench;
