//! A TrainingJob read from a file, as `ebbctl submit -f` and `kubectl apply` take it:
//! the file must say what it is (`apiVersion: ebb.dev/v1alpha1`, `kind: TrainingJob`),
//! and a field that does not read is named by its path as well as its line.

use super::TrainingJob;
use kube::Resource;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{file} is not YAML: {message}")]
    NotYaml { file: String, message: String },
    #[error(
        "{file} says no kind: a TrainingJob file starts with `apiVersion: {want_version}` and `kind: TrainingJob`"
    )]
    NoKind { file: String, want_version: String },
    #[error("{file} is a {kind} ({api_version}), not a TrainingJob{hint}")]
    OtherKind {
        file: String,
        kind: String,
        api_version: String,
        hint: &'static str,
    },
    #[error("{file}: apiVersion {got} is not one ebb serves: a TrainingJob is {want}")]
    WrongVersion {
        file: String,
        got: String,
        want: String,
    },
    #[error("{file} is not a TrainingJob: {path}: {message}")]
    Field {
        file: String,
        path: String,
        message: String,
    },
}

/// `text`, the contents of `file`, as a TrainingJob.
pub fn parse_training_job(file: &str, text: &str) -> Result<TrainingJob, ManifestError> {
    let want_version = TrainingJob::api_version(&()).to_string();
    let value: serde_json::Value =
        serde_saphyr::from_str(text).map_err(|e| ManifestError::NotYaml {
            file: file.to_string(),
            message: e.to_string(),
        })?;
    let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_string);
    let (kind, api_version) = (field("kind"), field("apiVersion"));
    let Some(kind) = kind else {
        return Err(ManifestError::NoKind {
            file: file.to_string(),
            want_version,
        });
    };
    if kind != "TrainingJob" {
        return Err(ManifestError::OtherKind {
            file: file.to_string(),
            hint: match kind.as_str() {
                "TrainingQueue" => ": queues are created with kubectl apply, not ebbctl submit",
                _ => "",
            },
            kind,
            api_version: api_version.unwrap_or_else(|| "no apiVersion".into()),
        });
    }
    if api_version.as_deref() != Some(want_version.as_str()) {
        return Err(ManifestError::WrongVersion {
            file: file.to_string(),
            got: api_version.unwrap_or_else(|| "(none)".into()),
            want: want_version,
        });
    }
    serde_saphyr::from_str::<TrainingJob>(text).map_err(|e| {
        // The YAML reader says where (line and column); the same value read through
        // serde_path_to_error says which field.
        let path = match serde_path_to_error::deserialize::<_, TrainingJob>(value) {
            Err(p) => p.path().to_string(),
            Ok(_) => "(top level)".to_string(),
        };
        ManifestError::Field {
            file: file.to_string(),
            path,
            message: e.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: ebb.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: j}\nspec:\n  image: img\n  dataset: d\n  master: {resources: {cpu: '1', memory: 1Gi}}\n  pservers: {replicas: 1, resources: {cpu: '1', memory: 1Gi}}\n  trainers: {min: 1, max: 2, resources: {cpu: '1', memory: 1Gi}}\n";

    fn err(text: &str) -> String {
        parse_training_job("job.yaml", text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_training_job_file_reads() {
        let tj = parse_training_job("job.yaml", GOOD).unwrap();
        assert_eq!(tj.spec.trainers.max, 2);
    }

    #[test]
    fn other_kinds_and_versions_are_named_for_what_they_are() {
        let pod = err("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n");
        assert!(pod.contains("is a Pod (v1), not a TrainingJob"), "{pod}");
        let queue = err(
            "apiVersion: ebb.dev/v1alpha1\nkind: TrainingQueue\nmetadata: {name: q}\nspec: {weight: 1}\n",
        );
        assert!(
            queue.contains("is a TrainingQueue") && queue.contains("kubectl apply"),
            "{queue}"
        );
        let v2 = err(&GOOD.replace("v1alpha1", "v2"));
        assert!(
            v2.contains("apiVersion ebb.dev/v2 is not one ebb serves"),
            "{v2}"
        );
        let neither = err(&GOOD.replace("apiVersion: ebb.dev/v1alpha1\nkind: TrainingJob\n", ""));
        assert!(
            neither.contains("says no kind") && neither.contains("ebb.dev/v1alpha1"),
            "{neither}"
        );
        assert!(err("spec: [unclosed").contains("not YAML"));
    }

    #[test]
    fn a_bad_field_is_named_by_path_and_line() {
        let bad = err(&GOOD.replace("min: 1,", "min: one,"));
        assert!(bad.contains("spec.trainers.min"), "{bad}");
        assert!(bad.contains("line 9"), "{bad}");
    }
}
