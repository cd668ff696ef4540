//! TrainingJob and TrainingQueue specs to the planner's model, with errors naming the field.

use super::placement::{gpu_toleration, template_placement};
use super::quantity::{QuantityError, Unit, parse_quantity};
use crate::model::{self, PodGroup, ResourceError, Resources};
use crate::resource::{ResourceSpec, TrainingJob, TrainingQueue};

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
    let cpu = match &spec.cpu {
        Some(q) => parse_quantity(&format!("{field}.cpu"), q, Unit::Milli)?,
        None => 0,
    };
    let memory = match &spec.memory {
        Some(q) => parse_quantity(&format!("{field}.memory"), q, Unit::Whole)?,
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

/// The planner's view of a TrainingJob (without pods: the snapshot adds them).
pub fn job_model(tj: &TrainingJob, submit_time_s: f64) -> Result<model::Job, SpecError> {
    let spec = &tj.spec;
    let namespace = tj.metadata.namespace.clone().unwrap_or_default();
    let name = tj.metadata.name.clone().unwrap_or_default();
    check_trainer_range(spec.trainers.min, spec.trainers.max)?;
    if spec.pservers.replicas == 0 {
        return Err(SpecError::Invalid {
            field: "spec.pservers.replicas".into(),
            message: "must be at least 1".into(),
        });
    }
    if !(spec.weight.is_finite() && spec.weight > 0.0) {
        return Err(SpecError::Invalid {
            field: "spec.weight".into(),
            message: format!("{} is not a positive number", spec.weight),
        });
    }
    if spec.image.trim().is_empty() {
        return Err(SpecError::Invalid {
            field: "spec.image".into(),
            message: "must name a container image".into(),
        });
    }
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
