//! Errors of the coordination runtime, each naming what was wrong and where.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    #[error("dataset {path}: {message}")]
    Data { path: PathBuf, message: String },
    #[error("state file {path}: {message}")]
    State { path: PathBuf, message: String },
    /// A journal that did not replay cleanly; nothing was changed.
    #[error(
        "journal {path}, line {line} (byte {offset}): the record {problem}. Nothing was changed. Restore the state directory from a backup, or start with --set-aside-damaged-state to move the damaged files aside and resume from the records before line {line} (chunks completed after them are done again)"
    )]
    Journal {
        path: PathBuf,
        line: usize,
        offset: usize,
        problem: String,
    },
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error("io on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
}

impl CoordError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CoordError::Io {
            path: path.into(),
            source,
        }
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        CoordError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
