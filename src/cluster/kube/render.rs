//! The Pods and Services of a TrainingJob, rendered from its spec: pure, so the exact
//! objects the controller creates are tested against fixtures.

use crate::model::Role;
use crate::resource::names::*;
use crate::resource::{ResourceSpec, TrainingJob};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, EnvVar, Pod, ResourceRequirements, Service,
    ServicePort, ServiceSpec, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use std::collections::BTreeMap;

/// What the controller knows that the job spec does not.
#[derive(Clone, Debug)]
pub struct RenderConfig {
    /// Image with the `ebb` binary, run by masters and pservers.
    pub runtime_image: String,
}

const STATE_VOLUME: &str = "ebb-state";
const STATE_DIR: &str = "/var/lib/ebb";
const TRAINER_GRACE_S: i64 = 30;

/// The pod named `pod_name` in role `role` of `tj`.
pub fn render_pod(tj: &TrainingJob, role: Role, pod_name: &str, config: &RenderConfig) -> Pod {
    let job = tj.metadata.name.clone().unwrap_or_default();
    let namespace = tj.metadata.namespace.clone().unwrap_or_default();
    let index = ordinal(pod_name).unwrap_or(0);
    let template = tj.spec.template.clone().unwrap_or_default();
    let mut meta = template.metadata.unwrap_or_default();
    let mut labels = meta.labels.take().unwrap_or_default();
    labels.extend(job_labels(&job, role));
    labels.insert(LABEL_INDEX.into(), index.to_string());
    let mut spec = template.spec.unwrap_or_default();
    let base = spec.containers.first().cloned().unwrap_or_default();
    let (container, resources) = match role {
        Role::Master => (
            master_container(tj, base, config),
            &tj.spec.master.resources,
        ),
        Role::Pserver => (
            pserver_container(base, index, config),
            &tj.spec.pservers.resources,
        ),
        Role::Trainer => (
            trainer_container(tj, base, index),
            &tj.spec.trainers.resources,
        ),
    };
    let mut container = container;
    container.resources = Some(requirements(resources));
    // The last lines of the log become the termination message when the process wrote
    // none, so a failed job's condition can say why (see `resource::failure`).
    container.termination_message_policy = Some("FallbackToLogsOnError".into());
    container.env = Some(merge_env(
        container.env.take().unwrap_or_default(),
        common_env(tj, &job, &namespace),
    ));
    spec.containers = vec![container];
    spec.scheduler_name = Some(SCHEDULER_NAME.into());
    spec.node_name = None;
    spec.restart_policy = Some("OnFailure".into());
    if role != Role::Trainer {
        spec.volumes.get_or_insert_with(Vec::new).push(Volume {
            name: STATE_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        });
    } else {
        spec.termination_grace_period_seconds
            .get_or_insert(TRAINER_GRACE_S);
    }
    if role == Role::Pserver {
        // Stable per-pod DNS through the headless Service: JOB-pserver-i.JOB-pserver.NS.svc
        spec.hostname = Some(pod_name.to_string());
        spec.subdomain = Some(pserver_service(&job));
    }
    if role == Role::Trainer {
        crate::resource::placement::require_gpu_models(&mut spec, &tj.spec.trainers.gpu_models);
    }
    if resources.gpus.unwrap_or(0) > 0 {
        spec.tolerations.get_or_insert_with(Vec::new).push({
            let t = crate::resource::placement::gpu_toleration();
            Toleration {
                key: Some(t.key),
                operator: Some(t.operator),
                effect: Some(t.effect),
                ..Toleration::default()
            }
        });
    }
    let mut annotations = meta.annotations.take().unwrap_or_default();
    annotations.extend(autoscaler_annotations(role));
    Pod {
        metadata: ObjectMeta {
            name: Some(pod_name.to_string()),
            namespace: Some(namespace),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: tj.controller_owner_ref(&()).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// What node autoscalers read before removing a node: a trainer may be evicted (its
/// job shrinks and regrows elsewhere), a master or pserver may not (the job would
/// restart), for Cluster Autoscaler (`safe-to-evict`) and Karpenter (`do-not-disrupt`).
/// ebb's own annotations win over the template's.
pub fn autoscaler_annotations(role: Role) -> Vec<(String, String)> {
    let evictable = role == Role::Trainer;
    let mut out = vec![(
        "cluster-autoscaler.kubernetes.io/safe-to-evict".to_string(),
        evictable.to_string(),
    )];
    if !evictable {
        out.push(("karpenter.sh/do-not-disrupt".into(), "true".into()));
    }
    out
}

/// The master's ClusterIP Service and the pservers' headless Service.
pub fn render_services(tj: &TrainingJob) -> [Service; 2] {
    let job = tj.metadata.name.clone().unwrap_or_default();
    let service = |name: String, role: Role, port: i32, headless: bool| Service {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: tj.metadata.namespace.clone(),
            labels: Some(job_labels(&job, role)),
            owner_references: tj.controller_owner_ref(&()).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(job_labels(&job, role)),
            cluster_ip: headless.then(|| "None".to_string()),
            publish_not_ready_addresses: headless.then_some(true),
            ports: Some(vec![ServicePort {
                name: Some(role_label(role).into()),
                port,
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    };
    [
        service(master_service(&job), Role::Master, MASTER_PORT, false),
        service(pserver_service(&job), Role::Pserver, PSERVER_PORT, true),
    ]
}

pub fn job_labels(job: &str, role: Role) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_JOB.to_string(), job.to_string()),
        (LABEL_ROLE.to_string(), role_label(role).to_string()),
        (LABEL_MANAGED_BY.to_string(), MANAGER.to_string()),
    ])
}

fn master_container(tj: &TrainingJob, base: Container, config: &RenderConfig) -> Container {
    let args = vec![
        format!("--listen=0.0.0.0:{MASTER_PORT}"),
        format!("--passes={}", tj.spec.passes),
        format!("--state-dir={STATE_DIR}/master"),
        // The pod succeeds when the job does: that is how the controller sees the end.
        "--exit-when-done-s=15".to_string(),
    ];
    runtime_container(Role::Master, MASTER_PORT, args, base, config)
}

fn pserver_container(base: Container, index: u32, config: &RenderConfig) -> Container {
    let args = vec![
        format!("--listen=0.0.0.0:{PSERVER_PORT}"),
        format!("--index={index}"),
        format!("--checkpoint-dir={STATE_DIR}/pserver"),
    ];
    runtime_container(Role::Pserver, PSERVER_PORT, args, base, config)
}

/// A master or pserver: ebb's own binary, its state on the pod's volume.
fn runtime_container(
    role: Role,
    listen_port: i32,
    args: Vec<String>,
    base: Container,
    config: &RenderConfig,
) -> Container {
    let name = role_label(role);
    // The template's mounts (the dataset, typically) stay; the state volume is added.
    let mut mounts = base.volume_mounts.clone().unwrap_or_default();
    mounts.push(state_mount());
    Container {
        name: name.into(),
        image: Some(config.runtime_image.clone()),
        command: Some(vec!["ebb".into(), name.into()]),
        args: Some(args),
        ports: Some(vec![port(name, listen_port)]),
        volume_mounts: Some(mounts),
        ..base
    }
}

fn trainer_container(tj: &TrainingJob, base: Container, index: u32) -> Container {
    let t = &tj.spec.trainers;
    let mut env = t.env.clone();
    env.push(env_var("EBB_TRAINER_ID", index.to_string()));
    Container {
        name: "trainer".into(),
        image: Some(tj.spec.image.clone()),
        command: (!t.command.is_empty())
            .then(|| t.command.clone())
            .or(base.command.clone()),
        args: (!t.args.is_empty())
            .then(|| t.args.clone())
            .or(base.args.clone()),
        env: Some(merge_env(base.env.clone().unwrap_or_default(), env)),
        ..base
    }
}

fn common_env(tj: &TrainingJob, job: &str, namespace: &str) -> Vec<EnvVar> {
    vec![
        env_var("EBB_JOB", job.to_string()),
        env_var("EBB_MASTER", master_address(job, namespace)),
        env_var(
            "EBB_PSERVERS",
            pserver_addresses(job, namespace, tj.spec.pservers.replicas),
        ),
        env_var("EBB_DATA", tj.spec.dataset.clone()),
    ]
}

/// `ours` wins over `base` for the same name; order is stable for diffable pods.
fn merge_env(base: Vec<EnvVar>, ours: Vec<EnvVar>) -> Vec<EnvVar> {
    let mut out: Vec<EnvVar> = base
        .into_iter()
        .filter(|b| !ours.iter().any(|o| o.name == b.name))
        .collect();
    for o in ours {
        if let Some(existing) = out.iter_mut().find(|e| e.name == o.name) {
            *existing = o;
        } else {
            out.push(o);
        }
    }
    out
}

fn env_var(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value),
        value_from: None,
    }
}

fn port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: port,
        ..ContainerPort::default()
    }
}

fn state_mount() -> VolumeMount {
    VolumeMount {
        name: STATE_VOLUME.into(),
        mount_path: STATE_DIR.into(),
        ..VolumeMount::default()
    }
}

/// Requests as written; GPUs also as limits (extended resources must have equal limits).
fn requirements(spec: &ResourceSpec) -> ResourceRequirements {
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    if let Some(cpu) = &spec.cpu {
        requests.insert("cpu".to_string(), Quantity(cpu.clone()));
    }
    if let Some(memory) = &spec.memory {
        requests.insert("memory".to_string(), Quantity(memory.clone()));
    }
    if let Some(gpus) = spec.gpus.filter(|&g| g > 0) {
        requests.insert(GPU_RESOURCE.to_string(), Quantity(gpus.to_string()));
        limits.insert(GPU_RESOURCE.to_string(), Quantity(gpus.to_string()));
    }
    ResourceRequirements {
        requests: Some(requests),
        limits: (!limits.is_empty()).then_some(limits),
        ..ResourceRequirements::default()
    }
}
