//! The CRDs ebb installs: generated files are current, and the schema's CEL rule refuses
//! what it must (the structural parts are checked offline by ci/validate_manifests.py).

use ebb::resource::{TrainingJob, TrainingQueue};
use kube::CustomResourceExt;
use serde_json::Value;

fn read(rel: &str) -> String {
    let path = format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn generated_crds_are_current() {
    let generated = ebb::resource::crds_yaml().unwrap();
    for file in ["crds/ebb.dev.yaml", "deploy/10-crds.yaml"] {
        assert!(
            read(file) == generated,
            "{file} is stale: run `cargo run -- crds > crds/ebb.dev.yaml && cp crds/ebb.dev.yaml deploy/10-crds.yaml`"
        );
    }
}

fn job_schema() -> Value {
    let crd = TrainingJob::crd();
    serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap()
}

fn yaml_docs(rel: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn example_jobs_pass_the_cel_rules_and_parse() {
    let schema = job_schema();
    let validator = kube_cel::Validator::new();
    let mut jobs = 0;
    for file in ["seed-job.yaml", "dedicated-h100-job.yaml"] {
        for doc in yaml_docs(&format!("deploy/examples/{file}")) {
            validator
                .validate(&schema, &doc, None)
                .unwrap_or_else(|e| panic!("{file}: {e:?}"));
            let tj: TrainingJob = serde_json::from_value(doc).expect("a TrainingJob");
            assert!(tj.spec.trainers.min <= tj.spec.trainers.max);
            // The planner reads it as written: valid, and its constraints are there.
            let job =
                ebb::resource::spec::job_model(&tj, 0.0).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(
                job.placement.trainers.gpu_models,
                tj.spec.trainers.gpu_models
            );
            jobs += 1;
        }
    }
    assert_eq!(jobs, 2);
    for doc in yaml_docs("deploy/examples/queue.yaml") {
        let _: TrainingQueue = serde_json::from_value(doc).expect("a TrainingQueue");
    }
}

#[test]
fn min_above_max_is_refused_by_the_cel_rule_with_its_message() {
    let schema = job_schema();
    let doc = yaml_docs("tests/data/kube/invalid/min-above-max.yaml").remove(0);
    let errors = kube_cel::Validator::new()
        .validate(&schema, &doc, None)
        .expect_err("min 5 > max 2 must be refused");
    let text = format!("{errors:?}");
    assert!(
        text.contains("trainers.min must not exceed trainers.max"),
        "{text}"
    );
    // And the same object passes once fixed: the rule is not refusing everything.
    let mut fixed = doc.clone();
    fixed["spec"]["trainers"]["max"] = 5.into();
    kube_cel::Validator::new()
        .validate(&schema, &fixed, None)
        .expect("min == max is fine");
}

#[test]
fn every_number_in_the_spec_is_bounded() {
    fn walk(path: &str, schema: &Value, unbounded: &mut Vec<String>) {
        let kind = schema.get("type").and_then(Value::as_str);
        let number = matches!(kind, Some("integer" | "number"));
        if number && (schema.get("minimum").is_none() || schema.get("maximum").is_none()) {
            unbounded.push(path.to_string());
        }
        // Strings from Kubernetes' own types (env values) are bounded by the API server.
        let free_string = kind == Some("string")
            && schema.get("maxLength").is_none()
            && schema.get("enum").is_none()
            && !path.contains(".env[].");
        if free_string {
            unbounded.push(format!("{path} (maxLength)"));
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (k, v) in props {
                walk(&format!("{path}.{k}"), v, unbounded);
            }
        }
        if let Some(items) = schema.get("items") {
            walk(&format!("{path}[]"), items, unbounded);
        }
    }
    let mut unbounded = Vec::new();
    walk("spec", &job_schema()["properties"]["spec"], &mut unbounded);
    let queue = TrainingQueue::crd();
    let queue = serde_json::to_value(queue.spec.versions[0].schema.as_ref().unwrap()).unwrap();
    walk(
        "queue.spec",
        &queue["openAPIV3Schema"]["properties"]["spec"],
        &mut unbounded,
    );
    assert!(unbounded.is_empty(), "unbounded fields: {unbounded:?}");
}
