//! TrainingJobs as the API server holds them, read one by one: a single object that no
//! longer parses (written under an older, looser CRD) must not stall the watch of all
//! the others, so the reflector keeps raw objects and each is parsed here.

use crate::model::JobKey;
use crate::resource::TrainingJob;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::reflector::{Store, store::Writer};
use std::sync::Arc;

/// A TrainingJob that does not parse, and where.
#[derive(Clone, Debug, PartialEq)]
pub struct UnreadableJob {
    pub key: JobKey,
    /// `spec.trainers.min: invalid type: string "two", expected u32`.
    pub error: String,
    /// Its status as stored, to avoid re-writing the same condition.
    pub status: Option<serde_json::Value>,
}

pub fn resource() -> ApiResource {
    ApiResource::erase::<TrainingJob>(&())
}

/// An empty store and its writer for TrainingJobs as raw objects.
pub fn store() -> (JobStore, Writer<DynamicObject>) {
    let writer = Writer::new(resource());
    (JobStore(writer.as_reader()), writer)
}

#[derive(Clone)]
pub struct JobStore(pub Store<DynamicObject>);

impl JobStore {
    /// The jobs that parse.
    pub fn state(&self) -> Vec<Arc<TrainingJob>> {
        read(&self.0.state()).0
    }
}

/// Parses every object; the ones that fail come back with the field path of the error.
pub fn read(raw: &[Arc<DynamicObject>]) -> (Vec<Arc<TrainingJob>>, Vec<UnreadableJob>) {
    let mut jobs = Vec::with_capacity(raw.len());
    let mut bad = Vec::new();
    for obj in raw {
        let mut value = serde_json::to_value(obj.as_ref()).unwrap_or_default();
        // A DynamicObject's apiVersion/kind may be absent on watched items; the typed
        // resource does not need them.
        if let Some(map) = value.as_object_mut() {
            map.remove("apiVersion");
            map.remove("kind");
        }
        match serde_path_to_error::deserialize::<_, TrainingJob>(value) {
            Ok(tj) => jobs.push(Arc::new(tj)),
            Err(e) => bad.push(UnreadableJob {
                key: JobKey::new(
                    obj.metadata.namespace.clone().unwrap_or_default(),
                    obj.metadata.name.clone().unwrap_or_default(),
                ),
                error: format!("{}: {}", e.path(), e.inner()),
                status: obj.data.get("status").cloned(),
            }),
        }
    }
    (jobs, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(v: serde_json::Value) -> Arc<DynamicObject> {
        Arc::new(serde_json::from_value(v).unwrap())
    }

    #[test]
    fn one_bad_object_is_reported_with_its_field_and_the_rest_parse() {
        let spec = serde_json::json!({
            "image": "t", "dataset": "d",
            "master": {"resources": {"cpu": "1"}},
            "pservers": {"replicas": 1, "resources": {"cpu": "1"}},
            "trainers": {"min": 1, "max": 2, "resources": {"cpu": "1"}}
        });
        let mut broken = spec.clone();
        broken["trainers"]["min"] = "two".into();
        let objects = [
            raw(
                serde_json::json!({"apiVersion": "ebb.dev/v1alpha1", "kind": "TrainingJob",
                "metadata": {"name": "good", "namespace": "ml"}, "spec": spec}),
            ),
            raw(
                serde_json::json!({"apiVersion": "ebb.dev/v1alpha1", "kind": "TrainingJob",
                "metadata": {"name": "old", "namespace": "ml"}, "spec": broken}),
            ),
        ];
        let (jobs, bad) = read(&objects);
        assert_eq!(jobs.len(), 1);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].key.name, "old");
        assert!(
            bad[0].error.starts_with("spec.trainers.min"),
            "{}",
            bad[0].error
        );
    }
}
