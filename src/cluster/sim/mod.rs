//! A discrete-event simulator: a virtual cluster in virtual time, driven by the same
//! `plan::plan` the controller runs. Scenarios: `docs/scenarios.md`.

pub mod autoscaler;
mod check;
pub mod engine;
pub mod error;
pub mod hpa;
pub mod plot;
pub mod report;
pub mod scenario;
pub mod services;
mod tally;
pub mod trace;
pub mod world;
mod yaml_line;

pub use engine::{Observer, SummaryOnly, run};
pub use error::SimError;
pub use report::PolicyResult;
pub use scenario::Scenario;
pub use world::PolicyKind;
