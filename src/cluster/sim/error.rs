use thiserror::Error;

#[derive(Debug, Error)]
pub enum SimError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: field `{field}`: {message}")]
    Invalid {
        path: String,
        field: String,
        message: String,
    },
    /// An internal invariant broke (checked in debug builds): a bug, not bad input.
    #[error("at t={time_s}s node {node} is over-committed by {over}")]
    Overcommitted {
        time_s: f64,
        node: String,
        over: String,
    },
}
