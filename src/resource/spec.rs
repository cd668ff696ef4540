//! TrainingJob and TrainingQueue specs to the planner's model, with errors naming the field.

use super::placement::{gpu_toleration, template_placement};
use super::quantity::{QuantityError, Unit, parse_quantity};
use crate::model::{self, PodGroup, ResourceError, Resources};
use crate::resource::{ResourceSpec, TrainingJob, TrainingJobSpec, TrainingQueue, bounds};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error(transparent)]
    Quantity(#[from] QuantityError),
    #[error(transparent)]
    Resource(#[from] ResourceError),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

impl SpecError {
    pub fn field(&self) -> &str {
        match self {
            SpecError::Quantity(e) => &e.field,
            SpecError::Resource(ResourceError::Negative { field, .. })
            | SpecError::Resource(ResourceError::TooLarge { field, .. })
            | SpecError::Resource(ResourceError::Empty { field }) => field,
            SpecError::Invalid { field, .. } => field,
        }
    }
}

pub fn resources(
    field: &str,
    spec: &ResourceSpec,
    non_empty: bool,
) -> Result<Resources, SpecError> {
    // Bounded here, where the user's own text is at hand, so that the message quotes it.
    let bounded = |name: &str, q: &str, unit: Unit, limit: i64, limit_text: &str| {
        let field = format!("{field}.{name}");
        if q.chars().count() > bounds::QUANTITY_LEN {
            return Err(SpecError::Invalid {
                field,
                message: format!(
                    "{} characters; a quantity is at most {}",
                    q.chars().count(),
                    bounds::QUANTITY_LEN
                ),
            });
        }
        let value = parse_quantity(&field, q, unit)?;
        if value > limit {
            return Err(SpecError::Invalid {
                field,
                message: format!("{q} is more than {limit_text}"),
            });
        }
        Ok(value)
    };
    let cpu = match &spec.cpu {
        Some(q) => bounded("cpu", q, Unit::Milli, model::MAX_CPU_MILLI, "100000 cores")?,
        None => 0,
    };
    let memory = match &spec.memory {
        Some(q) => bounded("memory", q, Unit::Whole, model::MAX_MEMORY_BYTES, "1Pi")?,
        None => 0,
    };
    let r = Resources::new(cpu, memory, i64::from(spec.gpus.unwrap_or(0)));
    r.validate(field, non_empty)?;
    Ok(r)
}

/// `1 <= min <= max`, for a spec and for a scale request alike.
pub fn check_trainer_range(min: u32, max: u32) -> Result<(), SpecError> {
    if min > max {
        return Err(SpecError::Invalid {
            field: "spec.trainers.min".into(),
            message: format!("min ({min}) is greater than max ({max}); lower min or raise max"),
        });
    }
    if min == 0 {
        return Err(SpecError::Invalid {
            field: "spec.trainers.min".into(),
            message: "must be at least 1".into(),
        });
    }
    Ok(())
}

fn invalid(field: &str, message: String) -> SpecError {
    SpecError::Invalid {
        field: field.to_string(),
        message,
    }
}

/// Every bound the CRD's schema puts on a TrainingJob's spec (the same constants,
/// `resource::bounds`), for the paths that do not pass through the API server: ebbctl,
/// the control API, the embedded cluster, and the controller and planner reading what
/// an older schema let in. Values in messages are the user's.
pub fn check_spec(spec: &TrainingJobSpec) -> Result<(), SpecError> {
    let count = |field: &str, n: usize, max: usize, what: &str| {
        if n > max {
            Err(invalid(field, format!("{n} {what}; at most {max}")))
        } else {
            Ok(())
        }
    };
    let length = |field: &str, s: &str, min: usize, max: usize| {
        let n = s.chars().count();
        if n < min {
            Err(invalid(field, "must not be empty".into()))
        } else if n > max {
            Err(invalid(field, format!("{n} characters; at most {max}")))
        } else {
            Ok(())
        }
    };
    super::names::check_dns_label(&spec.queue).map_err(|e| invalid("spec.queue", e))?;
    if !(-bounds::PRIORITY..=bounds::PRIORITY).contains(&spec.priority) {
        return Err(invalid(
            "spec.priority",
            format!(
                "{} is outside -{p}..{p}",
                spec.priority,
                p = bounds::PRIORITY
            ),
        ));
    }
    if !(spec.weight.is_finite()
        && (bounds::MIN_WEIGHT..=bounds::MAX_WEIGHT).contains(&spec.weight))
    {
        return Err(invalid(
            "spec.weight",
            format!(
                "{} is outside {}..{}",
                spec.weight,
                bounds::MIN_WEIGHT,
                bounds::MAX_WEIGHT
            ),
        ));
    }
    if spec.image.trim().is_empty() {
        return Err(invalid("spec.image", "must name a container image".into()));
    }
    length("spec.image", &spec.image, 1, bounds::IMAGE_LEN)?;
    length("spec.dataset", &spec.dataset, 1, bounds::DATASET_LEN)?;
    if !(1..=bounds::PASSES).contains(&spec.passes) {
        return Err(invalid(
            "spec.passes",
            format!("{} is outside 1..{}", spec.passes, bounds::PASSES),
        ));
    }
    if !(1..=bounds::PSERVERS).contains(&spec.pservers.replicas) {
        return Err(invalid(
            "spec.pservers.replicas",
            format!(
                "{} is outside 1..{}",
                spec.pservers.replicas,
                bounds::PSERVERS
            ),
        ));
    }
    for (field, r) in [
        ("spec.master.resources.gpus", &spec.master.resources),
        ("spec.pservers.resources.gpus", &spec.pservers.resources),
        ("spec.trainers.resources.gpus", &spec.trainers.resources),
    ] {
        if let Some(g) = r.gpus.filter(|&g| g > bounds::GPUS) {
            return Err(invalid(field, format!("{g} is more than {}", bounds::GPUS)));
        }
    }
    let t = &spec.trainers;
    for (field, n) in [("spec.trainers.min", t.min), ("spec.trainers.max", t.max)] {
        if n > bounds::TRAINERS {
            return Err(invalid(
                field,
                format!("{n} is more than {}", bounds::TRAINERS),
            ));
        }
    }
    check_trainer_range(t.min, t.max)?;
    count(
        "spec.trainers.command",
        t.command.len(),
        bounds::COMMAND_ITEMS,
        "items",
    )?;
    count("spec.trainers.args", t.args.len(), bounds::ARGS, "items")?;
    for (field, items) in [
        ("spec.trainers.command", &t.command),
        ("spec.trainers.args", &t.args),
    ] {
        for (i, item) in items.iter().enumerate() {
            length(&format!("{field}[{i}]"), item, 0, bounds::ARG_LEN)?;
        }
    }
    count("spec.trainers.env", t.env.len(), bounds::ENV, "entries")?;
    count(
        "spec.trainers.gpuModels",
        t.gpu_models.len(),
        bounds::GPU_MODELS,
        "models",
    )?;
    for (i, m) in t.gpu_models.iter().enumerate() {
        length(
            &format!("spec.trainers.gpuModels[{i}]"),
            m,
            1,
            bounds::GPU_MODEL_LEN,
        )?;
    }
    Ok(())
}

/// The planner's view of a TrainingJob (without pods: the snapshot adds them).
pub fn job_model(tj: &TrainingJob, submit_time_s: f64) -> Result<model::Job, SpecError> {
    let spec = &tj.spec;
    let namespace = tj.metadata.namespace.clone().unwrap_or_default();
    let name = tj.metadata.name.clone().unwrap_or_default();
    check_spec(spec)?;
    let mut job = model::Job {
        namespace,
        name,
        queue: spec.queue.clone(),
        priority: spec.priority,
        weight: spec.weight,
        master: PodGroup {
            replicas: 1,
            resources: resources("spec.master.resources", &spec.master.resources, true)?,
        },
        pservers: PodGroup {
            replicas: spec.pservers.replicas,
            resources: resources("spec.pservers.resources", &spec.pservers.resources, true)?,
        },
        trainers: model::TrainerSpec {
            min: spec.trainers.min,
            max: spec.trainers.max,
            resources: resources("spec.trainers.resources", &spec.trainers.resources, true)?,
        },
        pods: Vec::new(),
        submit_time_s,
        admitted: false,
        last_scale_time_s: None,
        speedup: Vec::new(),
        placement: model::JobPlacement::every_role(template_placement(spec.template.as_ref())?),
    };
    // The GPU-model shorthand narrows the trainers only (the master and pservers are
    // usually CPU pods); it is rendered as node affinity, so kubelet agrees.
    job.placement.trainers.gpu_models = spec.trainers.gpu_models.clone();
    if let Err(e) = job.placement.trainers.check() {
        return Err(SpecError::Invalid {
            field: e.field.replace("gpu_models", "spec.trainers.gpuModels"),
            message: e.message,
        });
    }
    // As rendered: a pod that requests GPUs tolerates the GPU taint.
    for role in [
        model::Role::Master,
        model::Role::Pserver,
        model::Role::Trainer,
    ] {
        if job.resources_of(role).gpus > 0 {
            job.placement
                .of_mut(role)
                .tolerations
                .push(gpu_toleration());
        }
    }
    Ok(job)
}

pub fn queue_model(tq: &TrainingQueue) -> Result<model::Queue, SpecError> {
    let spec = &tq.spec;
    if !(spec.weight.is_finite() && spec.weight > 0.0) {
        return Err(SpecError::Invalid {
            field: "spec.weight".into(),
            message: format!("{} is not a positive number", spec.weight),
        });
    }
    Ok(model::Queue {
        name: tq.metadata.name.clone().unwrap_or_default(),
        weight: spec.weight,
        guaranteed: resources("spec.guaranteed", &spec.guaranteed, false)?,
        limit: spec
            .limit
            .as_ref()
            .map(|l| resources("spec.limit", l, false))
            .transpose()?,
        parent: spec.parent.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::resource::example_training_job as example;

    /// Values a file can hold that the CRD's schema refuses, and that used to be
    /// replaced silently (0 passes, 0 weight, an empty image) or let through.
    #[test]
    fn fields_outside_the_schemas_bounds_are_refused_by_name() {
        check_spec(&example().spec).expect("the example is valid");
        type Change = fn(&mut TrainingJobSpec);
        let cases: Vec<(&str, Change, &str)> = vec![
            (
                "passes 0",
                |s| s.passes = 0,
                "spec.passes: 0 is outside 1..100000",
            ),
            ("weight 0", |s| s.weight = 0.0, "spec.weight: 0 is outside"),
            ("weight NaN", |s| s.weight = f64::NAN, "spec.weight"),
            ("image empty", |s| s.image.clear(), "spec.image: must name"),
            (
                "image long",
                |s| s.image = "i".repeat(513),
                "spec.image: 513 characters",
            ),
            (
                "queue empty",
                |s| s.queue.clear(),
                "spec.queue: \"\" is not a DNS label",
            ),
            (
                "queue case",
                |s| s.queue = "Not_A_Label".into(),
                "spec.queue: \"Not_A_Label\" is not a DNS label",
            ),
            (
                "long quantity",
                |s| s.trainers.resources.cpu = Some("0".repeat(33)),
                "spec.trainers.resources.cpu: 33 characters",
            ),
            (
                "pservers 0",
                |s| s.pservers.replicas = 0,
                "spec.pservers.replicas: 0 is outside",
            ),
            (
                "trainers",
                |s| s.trainers.max = 20_000,
                "spec.trainers.max: 20000 is more than 10000",
            ),
            (
                "long arg",
                |s| s.trainers.args = vec!["a".repeat(4097)],
                "spec.trainers.args[0]: 4097 characters",
            ),
            (
                "gpu models",
                |s| s.trainers.gpu_models = vec![String::new()],
                "spec.trainers.gpuModels[0]: must not be empty",
            ),
            (
                "gpus",
                |s| s.trainers.resources.gpus = Some(65),
                "spec.trainers.resources.gpus: 65 is more than 64",
            ),
            (
                "memory",
                |s| s.trainers.resources.memory = Some("8Ei".into()),
                "spec.trainers.resources.memory: 8Ei is more than 1Pi",
            ),
            (
                "cpu",
                |s| s.master.resources.cpu = Some("1e9".into()),
                "spec.master.resources.cpu: 1e9 is more than 100000 cores",
            ),
        ];
        // Through `job_model`, as the planner, the controller and Submit read a job.
        for (case, change, says) in cases {
            let mut tj = example();
            change(&mut tj.spec);
            let e = job_model(&tj, 0.0).expect_err(case);
            assert!(e.to_string().contains(says), "{case}: {e}");
        }
    }
}
