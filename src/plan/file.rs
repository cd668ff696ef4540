//! The versioned JSON files `ebb plan` reads and writes (`docs/snapshot.md`): a snapshot
//! with the policy to plan it under, and a plan with its explanation. Strings in and
//! out; reading and writing files is the caller's business.

use super::Policy;
use super::explain::Explanation;
use crate::model::{Plan, Snapshot};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The only format version this ebb reads and writes.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotFile {
    pub version: u32,
    #[serde(default)]
    pub policy: Policy,
    pub snapshot: Snapshot,
}

#[derive(Clone, Debug, Serialize)]
pub struct PlanFile<'a> {
    pub version: u32,
    pub plan: &'a Plan,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<&'a [Explanation]>,
}

#[derive(Debug, Error)]
pub enum FileError {
    /// Not JSON, truncated, a wrong type, an unknown field: with the JSON path to it.
    #[error("at `{path}`: {message}")]
    Json { path: String, message: String },
    #[error("at `version`: {found} is not a format this ebb reads (it reads {FORMAT_VERSION})")]
    Version { found: u32 },
}

impl SnapshotFile {
    pub fn new(snapshot: Snapshot, policy: Policy) -> Self {
        SnapshotFile {
            version: FORMAT_VERSION,
            policy,
            snapshot,
        }
    }

    pub fn parse(text: &str) -> Result<SnapshotFile, FileError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let file: SnapshotFile =
            serde_path_to_error::deserialize(de).map_err(|e| FileError::Json {
                path: match e.path().to_string() {
                    p if p == "." => "(top level)".to_string(),
                    p => p,
                },
                message: e.inner().to_string(),
            })?;
        if file.version != FORMAT_VERSION {
            return Err(FileError::Version {
                found: file.version,
            });
        }
        Ok(file)
    }

    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialising cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
