//! A pod's resource requests as the kube-scheduler counts them.

use super::names::GPU_RESOURCE;
use super::quantity::{Unit, parse_quantity};
use crate::model::Resources;
use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

/// Sum over containers, at least the largest init container, plus pod overhead. A
/// malformed quantity counts as zero and is reported: one bad pod must not stop a tick.
pub fn pod_requests(pod: &Pod) -> (Resources, Vec<String>) {
    let mut problems = Vec::new();
    let Some(spec) = &pod.spec else {
        return (Resources::ZERO, problems);
    };
    let mut total = Resources::ZERO;
    for c in &spec.containers {
        total = total.add(&container_requests(c, &mut problems));
    }
    for c in spec.init_containers.iter().flatten() {
        let init = container_requests(c, &mut problems);
        total = Resources::from_array(std::array::from_fn(|i| {
            total.as_array()[i].max(init.as_array()[i])
        }));
    }
    if let Some(overhead) = &spec.overhead {
        total = total.add(&quantities(overhead, "spec.overhead", &mut problems));
    }
    (total, problems)
}

fn container_requests(c: &Container, problems: &mut Vec<String>) -> Resources {
    let Some(res) = &c.resources else {
        return Resources::ZERO;
    };
    // Kubernetes defaults requests to limits when only limits are set.
    let field = format!("container {}", c.name);
    let requests = res
        .requests
        .as_ref()
        .map(|r| quantities(r, &field, problems))
        .unwrap_or(Resources::ZERO);
    let limits = res
        .limits
        .as_ref()
        .map(|l| quantities(l, &field, problems))
        .unwrap_or(Resources::ZERO);
    let mut out = requests.as_array();
    let requested = |key: &str| res.requests.as_ref().is_some_and(|r| r.contains_key(key));
    for (i, key) in ["cpu", "memory", GPU_RESOURCE].into_iter().enumerate() {
        if !requested(key) {
            out[i] = limits.as_array()[i];
        }
    }
    Resources::from_array(out)
}

pub fn quantities(
    map: &BTreeMap<String, Quantity>,
    field: &str,
    problems: &mut Vec<String>,
) -> Resources {
    let mut get = |key: &str, unit| match map.get(key) {
        Some(q) => parse_quantity(&format!("{field}.{key}"), &q.0, unit).unwrap_or_else(|e| {
            problems.push(e.to_string());
            0
        }),
        None => 0,
    };
    Resources::new(
        get("cpu", Unit::Milli),
        get("memory", Unit::Whole),
        get(GPU_RESOURCE, Unit::Whole),
    )
}
