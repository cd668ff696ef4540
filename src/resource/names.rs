//! Names, labels and ports that ebb's pods, Services and the controller agree on.

use crate::model::Role;

/// `spec.schedulerName` of every pod ebb places; the default scheduler leaves them alone.
pub const SCHEDULER_NAME: &str = "ebb";
pub const LABEL_JOB: &str = "ebb.dev/job";
pub const LABEL_ROLE: &str = "ebb.dev/role";
pub const LABEL_INDEX: &str = "ebb.dev/index";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGER: &str = "ebb";
pub const MASTER_PORT: i32 = 7164;
pub const PSERVER_PORT: i32 = 7165;
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";
/// Field manager and Event reporter name.
pub const CONTROLLER_NAME: &str = "ebb-controller";

pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::Master => "master",
        Role::Pserver => "pserver",
        Role::Trainer => "trainer",
    }
}

pub fn role_from_label(value: &str) -> Option<Role> {
    match value {
        "master" => Some(Role::Master),
        "pserver" => Some(Role::Pserver),
        "trainer" => Some(Role::Trainer),
        _ => None,
    }
}

pub fn master_service(job: &str) -> String {
    format!("{job}-master")
}

pub fn pserver_service(job: &str) -> String {
    format!("{job}-pserver")
}

/// `host:port` trainers dial for the master.
pub fn master_address(job: &str, namespace: &str) -> String {
    format!("{}.{namespace}.svc:{MASTER_PORT}", master_service(job))
}

/// Comma-separated pserver addresses through the headless Service's per-pod DNS names.
pub fn pserver_addresses(job: &str, namespace: &str, replicas: u32) -> String {
    (0..replicas)
        .map(|i| {
            format!(
                "{job}-pserver-{i}.{}.{namespace}.svc:{PSERVER_PORT}",
                pserver_service(job)
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The ordinal at the end of a pod name (`job-trainer-7` -> 7).
pub fn ordinal(pod: &str) -> Option<u32> {
    pod.rsplit('-').next()?.parse().ok()
}

/// `value` as a DNS-1123 label (`DNS_LABEL_PATTERN`, at most 63 characters): names of
/// namespaces, jobs and queues. The error says so, quoting the value.
pub fn check_dns_label(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not a DNS label ({}, at most 63 characters)",
            super::DNS_LABEL_PATTERN
        ))
    }
}
