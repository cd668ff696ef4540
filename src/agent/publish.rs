//! The node's GPU topology as labels and annotations, patched only when they change.

use super::topology::Discovery;
use crate::cluster::kube::snapshot::{GPU_UNHEALTHY_ANNOTATION, NVLINK_GROUP_ANNOTATION};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub const LABEL_GPU_COUNT: &str = "ebb.dev/gpu.count";
pub const LABEL_GPU_HEALTHY: &str = "ebb.dev/gpu.healthy";
pub const LABEL_GPU_MODEL: &str = "ebb.dev/gpu.model";
pub const LABEL_LARGEST_GROUP: &str = "ebb.dev/nvlink.largest-group";
/// Set by operators on nodes that share an NVLink domain across nodes (e.g. one NVL72
/// rack): those nodes get the same group.
pub const LABEL_NVLINK_DOMAIN: &str = "ebb.dev/nvlink-domain";
pub const TOPOLOGY_ANNOTATION: &str = "ebb.dev/gpu-topology";
pub const AGENT_MANAGER: &str = "ebb-agent";

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Published {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// A label value: at most 63 of [A-Za-z0-9_.-], starting and ending alphanumeric.
fn label_value(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    cleaned
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// What the node should carry for `discovery`.
pub fn desired(node: &str, domain: Option<&str>, discovery: &Discovery) -> Published {
    let mut p = Published::default();
    let largest = discovery.nvlink_groups.first().map_or(0, Vec::len);
    p.labels
        .insert(LABEL_GPU_COUNT.into(), discovery.gpus.len().to_string());
    p.labels
        .insert(LABEL_GPU_HEALTHY.into(), discovery.healthy().to_string());
    p.labels
        .insert(LABEL_LARGEST_GROUP.into(), largest.to_string());
    if let Some(model) = discovery.model() {
        p.labels.insert(LABEL_GPU_MODEL.into(), label_value(model));
    }
    let unhealthy = discovery.gpus.len() - discovery.healthy();
    p.annotations
        .insert(GPU_UNHEALTHY_ANNOTATION.into(), unhealthy.to_string());
    let group = match domain {
        Some(d) => Some(d.to_string()),
        None if largest >= 2 => Some(format!("{node}/nvlink")),
        None => None,
    };
    if let Some(g) = group {
        p.annotations.insert(NVLINK_GROUP_ANNOTATION.into(), g);
    }
    let summary = json!({
        "gpus": discovery.gpus.iter().map(|g| json!({
            "index": g.index, "model": g.model, "healthy": g.healthy, "problems": g.problems,
        })).collect::<Vec<_>>(),
        "nvlink_groups": discovery.nvlink_groups,
    });
    p.annotations
        .insert(TOPOLOGY_ANNOTATION.into(), summary.to_string());
    p
}

/// The merge patch that takes `current` to `want` for the keys the agent owns (keys it
/// owned before and no longer wants are removed); None when nothing changes.
pub fn patch_for(current: &Node, want: &Published) -> Option<Value> {
    let owned = |k: &String| k.starts_with("ebb.dev/gpu") || k.starts_with("ebb.dev/nvlink");
    let diff = |have: Option<&BTreeMap<String, String>>, want: &BTreeMap<String, String>| {
        let empty = BTreeMap::new();
        let have = have.unwrap_or(&empty);
        let mut m = Map::new();
        for (k, v) in want {
            if have.get(k) != Some(v) {
                m.insert(k.clone(), Value::String(v.clone()));
            }
        }
        for k in have.keys().filter(|k| owned(k) && !want.contains_key(*k)) {
            // The operator's domain label is theirs, not the agent's.
            if k != LABEL_NVLINK_DOMAIN {
                m.insert(k.clone(), Value::Null);
            }
        }
        m
    };
    let labels = diff(current.metadata.labels.as_ref(), &want.labels);
    let annotations = diff(current.metadata.annotations.as_ref(), &want.annotations);
    if labels.is_empty() && annotations.is_empty() {
        return None;
    }
    Some(json!({"metadata": {"labels": labels, "annotations": annotations}}))
}

/// Reads the node, patches it if its GPU topology changed; true when it patched.
pub async fn publish(
    client: &kube::Client,
    node: &str,
    discovery: &Discovery,
) -> Result<bool, kube::Error> {
    let api: Api<Node> = Api::all(client.clone());
    let current = api.get(node).await?;
    let domain = current
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_NVLINK_DOMAIN))
        .cloned();
    let want = desired(node, domain.as_deref(), discovery);
    let Some(patch) = patch_for(&current, &want) else {
        return Ok(false);
    };
    let params = PatchParams {
        field_manager: Some(AGENT_MANAGER.into()),
        ..PatchParams::default()
    };
    api.patch(node, &params, &Patch::Merge(&patch)).await?;
    Ok(true)
}
