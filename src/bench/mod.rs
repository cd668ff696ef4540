//! Benchmarks behind `ebb bench`, and the synthetic clusters they run on.

pub mod controller_bench;
pub mod coord_bench;
pub mod generate;
pub mod growth;
pub mod input_floor;
pub mod plan_bench;
pub mod quantile;
pub mod sim_bench;
