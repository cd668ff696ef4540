//! Between the control API's messages and the TrainingJob / TrainingQueue resources both
//! backends store; validation here is what makes INVALID_ARGUMENT name the field.

use super::proto;
use crate::model::default_queue;
use crate::resource::spec::{job_model, queue_model};
use crate::resource::{
    MasterSpec, PserverSpec, ResourceSpec, TrainerSpec, TrainingJob, TrainingJobSpec,
    TrainingQueue, TrainingQueueSpec,
};
use k8s_openapi::api::core::v1::{EnvVar, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use tonic::Status;

/// The image `ebb up` and the examples run when a spec names none.
pub const DEFAULT_IMAGE: &str = concat!("ghcr.io/ebb-dev/ebb:", env!("CARGO_PKG_VERSION"));

fn invalid(field: &str, message: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {message}"))
}

pub fn check_name(field: &str, value: &str) -> Result<(), Status> {
    crate::resource::names::check_dns_label(value).map_err(|e| invalid(field, e))
}

fn resources(r: Option<&proto::Resources>) -> ResourceSpec {
    let r = r.cloned().unwrap_or_default();
    ResourceSpec {
        cpu: (!r.cpu.is_empty()).then_some(r.cpu),
        memory: (!r.memory.is_empty()).then_some(r.memory),
        gpus: (r.gpus > 0).then_some(r.gpus),
    }
}

fn resources_proto(r: &ResourceSpec) -> proto::Resources {
    proto::Resources {
        cpu: r.cpu.clone().unwrap_or_default(),
        memory: r.memory.clone().unwrap_or_default(),
        gpus: r.gpus.unwrap_or(0),
    }
}

/// A submitted spec as the TrainingJob it becomes, defaults filled in, or
/// INVALID_ARGUMENT naming the first wrong field.
pub fn training_job(spec: &proto::JobSpec) -> Result<TrainingJob, Status> {
    let namespace = if spec.namespace.is_empty() {
        "default".to_string()
    } else {
        spec.namespace.clone()
    };
    check_name("metadata.namespace", &namespace)?;
    check_name("metadata.name", &spec.name)?;
    let queue = if spec.queue.is_empty() {
        default_queue()
    } else {
        spec.queue.clone()
    };
    check_name("spec.queue", &queue)?;
    let mut env: Vec<EnvVar> = spec
        .env
        .iter()
        .map(|(name, value)| EnvVar {
            name: name.clone(),
            value: Some(value.clone()),
            value_from: None,
        })
        .collect();
    env.sort_by(|a, b| a.name.cmp(&b.name));
    for (key, value) in &spec.labels {
        crate::resource::labels::check_key(key).map_err(|e| invalid("metadata.labels", e))?;
        crate::resource::labels::check_value(value)
            .map_err(|e| invalid(&format!("metadata.labels[{key}]"), e))?;
    }
    let template = pod_template(&spec.template_json)?;
    let tj = TrainingJob {
        metadata: ObjectMeta {
            name: Some(spec.name.clone()),
            namespace: Some(namespace),
            labels: (!spec.labels.is_empty()).then(|| spec.labels.clone()),
            ..ObjectMeta::default()
        },
        spec: TrainingJobSpec {
            queue,
            priority: spec.priority,
            weight: if spec.weight == 0.0 { 1.0 } else { spec.weight },
            image: if spec.image.is_empty() {
                DEFAULT_IMAGE.to_string()
            } else {
                spec.image.clone()
            },
            master: MasterSpec {
                resources: resources(spec.master.as_ref()),
            },
            pservers: PserverSpec {
                replicas: spec.pservers,
                resources: resources(spec.pserver.as_ref()),
            },
            trainers: TrainerSpec {
                min: spec.min_trainers,
                max: spec.max_trainers,
                resources: resources(spec.trainer.as_ref()),
                command: spec.command.clone(),
                args: spec.args.clone(),
                env,
                gpu_models: spec.gpu_models.clone(),
            },
            dataset: spec.dataset.clone(),
            passes: spec.passes.max(1),
            template,
        },
        status: None,
    };
    // The same checks the controller applies (`spec::check_spec`: every bound of the
    // CRD's schema; quantities; min <= max).
    job_model(&tj, 0.0).map_err(|e| Status::invalid_argument(e.to_string()))?;
    Ok(tj)
}

pub fn job_spec(tj: &TrainingJob) -> proto::JobSpec {
    let s = &tj.spec;
    proto::JobSpec {
        namespace: tj.metadata.namespace.clone().unwrap_or_default(),
        name: tj.metadata.name.clone().unwrap_or_default(),
        queue: s.queue.clone(),
        priority: s.priority,
        weight: s.weight,
        image: s.image.clone(),
        command: s.trainers.command.clone(),
        args: s.trainers.args.clone(),
        env: s
            .trainers
            .env
            .iter()
            .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
            .collect(),
        master: Some(resources_proto(&s.master.resources)),
        pservers: s.pservers.replicas,
        pserver: Some(resources_proto(&s.pservers.resources)),
        min_trainers: s.trainers.min,
        max_trainers: s.trainers.max,
        trainer: Some(resources_proto(&s.trainers.resources)),
        dataset: s.dataset.clone(),
        passes: s.passes,
        labels: tj.metadata.labels.clone().unwrap_or_default(),
        gpu_models: s.trainers.gpu_models.clone(),
        template_json: s
            .template
            .as_ref()
            .and_then(|t| serde_json::to_string(t).ok())
            .unwrap_or_default(),
    }
}

/// Past this a template is refused: no pod template is that large (the API server
/// refuses objects over about 1.5 MiB).
const MAX_TEMPLATE_BYTES: usize = 256 * 1024;

/// `spec.template` from its JSON, refused by the path of the field that does not read.
fn pod_template(json: &str) -> Result<Option<PodTemplateSpec>, Status> {
    if json.is_empty() {
        return Ok(None);
    }
    if json.len() > MAX_TEMPLATE_BYTES {
        return Err(invalid(
            "spec.template",
            format!("{} bytes; at most {MAX_TEMPLATE_BYTES}", json.len()),
        ));
    }
    let mut de = serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(&mut de)
        .map(Some)
        .map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." {
                "spec.template".to_string()
            } else {
                format!("spec.template.{path}")
            };
            invalid(&field, e.into_inner())
        })
}

pub fn seconds(t: Option<&Time>) -> f64 {
    t.map_or(0.0, crate::resource::time::seconds)
}

pub fn job_status(tj: &TrainingJob) -> proto::JobStatus {
    let s = tj.status.clone().unwrap_or_default();
    proto::JobStatus {
        phase: s.phase.as_str().to_string(),
        conditions: s
            .conditions
            .iter()
            .map(|c| proto::Condition {
                r#type: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_transition_s: seconds(Some(&c.last_transition_time)),
            })
            .collect(),
        current_trainers: s.current_trainers,
        target_trainers: s.target_trainers,
        submit_s: seconds(tj.metadata.creation_timestamp.as_ref()),
        start_s: seconds(s.start_time.as_ref()),
        completion_s: seconds(s.completion_time.as_ref()),
        progress: None,
        pods: Default::default(),
        pod_statuses: Vec::new(),
    }
}

pub fn training_queue(q: &proto::Queue) -> Result<TrainingQueue, Status> {
    check_name("metadata.name", &q.name)?;
    if !q.parent.is_empty() {
        check_name("spec.parent", &q.parent)?;
    }
    let tq = TrainingQueue {
        metadata: ObjectMeta {
            name: Some(q.name.clone()),
            ..ObjectMeta::default()
        },
        spec: TrainingQueueSpec {
            weight: q.weight,
            guaranteed: resources(q.guaranteed.as_ref()),
            limit: q.limit.as_ref().map(|l| resources(Some(l))),
            parent: (!q.parent.is_empty()).then(|| q.parent.clone()),
        },
    };
    if !(0.01..=1000.0).contains(&tq.spec.weight) {
        return Err(invalid("spec.weight", "between 0.01 and 1000"));
    }
    queue_model(&tq).map_err(|e| Status::invalid_argument(e.to_string()))?;
    Ok(tq)
}

/// The queue `patch` leaves: the stored one (`queues` holds every queue) with only the
/// patch's fields changed, or a new one at weight 1, top level, with no guarantee and no
/// limit. A weight of 0, a parent that does not exist (or is the queue itself, or would
/// close a cycle) are refused naming the field.
pub fn patched_queue(
    queues: &[proto::Queue],
    patch: &proto::QueuePatch,
) -> Result<proto::Queue, Status> {
    let mut q = queues
        .iter()
        .find(|q| q.name == patch.name)
        .cloned()
        .unwrap_or_else(|| proto::Queue {
            name: patch.name.clone(),
            weight: 1.0,
            guaranteed: Some(proto::Resources::default()),
            limit: None,
            parent: String::new(),
        });
    if let Some(w) = patch.weight {
        if !(0.01..=1000.0).contains(&w) {
            return Err(invalid(
                "spec.weight",
                format!("{w} is not between 0.01 and 1000"),
            ));
        }
        q.weight = w;
    }
    if let Some(parent) = &patch.parent {
        if !parent.is_empty() {
            check_name("spec.parent", parent)?;
            if *parent == patch.name {
                return Err(invalid("spec.parent", "a queue cannot be its own parent"));
            }
            if !queues.iter().any(|other| other.name == *parent) {
                return Err(invalid(
                    "spec.parent",
                    format!("queue {parent:?} does not exist (see `ebbctl queue list`)"),
                ));
            }
            // Walk up from the new parent: meeting this queue would close a cycle.
            let mut at = parent.as_str();
            for _ in 0..=queues.len() {
                let Some(up) = queues.iter().find(|o| o.name == at) else {
                    break;
                };
                if up.parent.is_empty() {
                    break;
                }
                if up.parent == patch.name {
                    return Err(invalid(
                        "spec.parent",
                        format!(
                            "{parent:?} sits below {:?}: that would be a cycle",
                            patch.name
                        ),
                    ));
                }
                at = &up.parent;
            }
        }
        q.parent = parent.clone();
    }
    if let Some(g) = &patch.guaranteed {
        let base = q.guaranteed.get_or_insert_with(Default::default);
        apply_resources(base, g);
    }
    if patch.clear_limit {
        if patch.limit.is_some() {
            return Err(invalid("limit", "give a limit or clear it, not both"));
        }
        q.limit = None;
    } else if let Some(l) = &patch.limit {
        let base = q.limit.get_or_insert_with(Default::default);
        apply_resources(base, l);
    }
    Ok(q)
}

fn apply_resources(base: &mut proto::Resources, patch: &proto::ResourcesPatch) {
    if let Some(cpu) = &patch.cpu {
        base.cpu = cpu.clone();
    }
    if let Some(memory) = &patch.memory {
        base.memory = memory.clone();
    }
    if let Some(gpus) = patch.gpus {
        base.gpus = gpus;
    }
}

pub fn queue_proto(tq: &TrainingQueue) -> proto::Queue {
    proto::Queue {
        name: tq.metadata.name.clone().unwrap_or_default(),
        weight: tq.spec.weight,
        guaranteed: Some(resources_proto(&tq.spec.guaranteed)),
        limit: tq.spec.limit.as_ref().map(resources_proto),
        parent: tq.spec.parent.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::resource::example_training_job as example;

    #[test]
    fn a_submitted_files_template_travels_and_a_bad_one_is_refused_by_field() {
        let tj = example();
        let spec = job_spec(&tj);
        assert!(!spec.template_json.is_empty());
        let back = training_job(&spec).expect("accepted");
        assert_eq!(back.spec.template, tj.spec.template);
        assert_eq!(back.spec.trainers.gpu_models, tj.spec.trainers.gpu_models);
        // The placement the planner reads is the file's, not an empty one.
        let job = job_model(&back, 0.0).expect("valid");
        assert_eq!(job.placement.trainers.tolerations[0].key, "dedicated");

        let mut bad = spec.clone();
        bad.template_json = r#"{"spec": {"containers": [], "tolerations": [{"key": 5}]}}"#.into();
        let e = training_job(&bad).unwrap_err();
        assert!(
            e.message()
                .contains("spec.template.spec.tolerations[0].key"),
            "{}",
            e.message()
        );
        bad.template_json = "x".repeat(MAX_TEMPLATE_BYTES + 1);
        let e = training_job(&bad).unwrap_err();
        assert!(e.message().contains("spec.template"), "{}", e.message());
    }

    /// What the control API's Submit refuses, by field, with the user's value: the
    /// bounds of the CRD's schema, which it used to accept for the controller to
    /// refuse later (the job sat Pending with InvalidSpec).
    #[test]
    fn submit_refuses_what_the_crd_schema_refuses() {
        let tj = example();
        let good = job_spec(&tj);
        training_job(&good).expect("the example is accepted");
        let cases: Vec<(&str, proto::JobSpec, &str)> = vec![
            (
                "weight 1e9",
                proto::JobSpec {
                    weight: 1e9,
                    ..good.clone()
                },
                "spec.weight: 1000000000 is outside",
            ),
            (
                "dataset 4097",
                proto::JobSpec {
                    dataset: "d".repeat(4097),
                    ..good.clone()
                },
                "spec.dataset: 4097 characters; at most 4096",
            ),
            (
                "65 command items",
                proto::JobSpec {
                    command: vec!["x".into(); 65],
                    ..good.clone()
                },
                "spec.trainers.command: 65 items; at most 64",
            ),
            (
                "300 env",
                proto::JobSpec {
                    env: (0..300).map(|i| (format!("V{i}"), "x".into())).collect(),
                    ..good.clone()
                },
                "spec.trainers.env: 300 entries; at most 256",
            ),
            (
                "passes",
                proto::JobSpec {
                    passes: 100_001,
                    ..good.clone()
                },
                "spec.passes: 100001 is outside",
            ),
            (
                "priority",
                proto::JobSpec {
                    priority: 5000,
                    ..good.clone()
                },
                "spec.priority: 5000 is outside",
            ),
        ];
        for (case, spec, says) in cases {
            let e = training_job(&spec).expect_err(case);
            assert!(e.message().contains(says), "{case}: {}", e.message());
        }
    }
}
