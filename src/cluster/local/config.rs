//! The declared virtual cluster of `ebb up`: nodes and online services, from flags or a
//! YAML file.

use crate::model::placement::{Placement, Taint};
use crate::model::{self, Resources};
use crate::resource::ResourceSpec;
use crate::resource::spec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalClusterSpec {
    pub nodes: Vec<NodeDecl>,
    #[serde(default)]
    pub services: Vec<ServiceDecl>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDecl {
    pub name: String,
    /// Kubernetes quantities, as in a pod spec.
    pub cpu: String,
    pub memory: String,
    #[serde(default)]
    pub gpus: u32,
    /// The GPU model, published as the `nvidia.com/gpu.product` label (as NVIDIA GPU
    /// feature discovery does) for jobs' `gpuModels`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_model: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `spec.taints`: pods that do not tolerate a NoSchedule or NoExecute taint are not
    /// placed here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
}

/// An online service: replicas of `ebb serve-http`, scaled on request rate the way an
/// HPA scales on a metric: desired = ceil(rate / target_rps_per_replica).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDecl {
    pub name: String,
    pub cpu: String,
    pub memory: String,
    #[serde(default = "one")]
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub target_rps_per_replica: f64,
    /// Seconds the rate must stay low before replicas are removed (HPA's
    /// scale-down stabilization window).
    #[serde(default = "default_window")]
    pub scale_down_window_s: f64,
    /// Where its replicas may run (node selector, affinity, tolerations), as in a pod
    /// spec.
    #[serde(default, skip_serializing_if = "Placement::is_unconstrained")]
    pub placement: Placement,
}

fn one() -> u32 {
    1
}

fn default_window() -> f64 {
    15.0
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{field}: {message}")]
pub struct ClusterSpecError {
    pub field: String,
    pub message: String,
}

fn err(field: String, message: impl Into<String>) -> ClusterSpecError {
    ClusterSpecError {
        field,
        message: message.into(),
    }
}

/// The same parsing and bounds as a TrainingJob's resources.
pub fn resources(
    field: &str,
    cpu: &str,
    memory: &str,
    gpus: u32,
) -> Result<Resources, ClusterSpecError> {
    let spec = ResourceSpec {
        cpu: Some(cpu.to_string()),
        memory: Some(memory.to_string()),
        gpus: Some(gpus),
    };
    spec::resources(field, &spec, true).map_err(|e| err(e.field().to_string(), e.to_string()))
}

impl LocalClusterSpec {
    /// `count` identical nodes `node-0`..
    pub fn uniform(count: u32, cpu: &str, memory: &str, gpus: u32) -> LocalClusterSpec {
        LocalClusterSpec {
            nodes: (0..count)
                .map(|i| NodeDecl {
                    name: format!("node-{i}"),
                    cpu: cpu.to_string(),
                    memory: memory.to_string(),
                    gpus,
                    gpu_model: None,
                    labels: BTreeMap::new(),
                    taints: Vec::new(),
                })
                .collect(),
            services: Vec::new(),
        }
    }

    pub fn parse(text: &str) -> Result<LocalClusterSpec, ClusterSpecError> {
        let spec: LocalClusterSpec =
            serde_saphyr::from_str(text).map_err(|e| err("cluster file".into(), e.to_string()))?;
        spec.nodes()?;
        for (i, s) in spec.services.iter().enumerate() {
            let field = format!("services[{i}]");
            resources(&field, &s.cpu, &s.memory, 0)?;
            if s.min_replicas > s.max_replicas || s.max_replicas == 0 || s.max_replicas > 1000 {
                return Err(err(
                    format!("{field}.max_replicas"),
                    "need 1 <= min <= max <= 1000",
                ));
            }
            if let Err(e) = s.placement.check() {
                return Err(err(format!("{field}.placement.{}", e.field), e.message));
            }
            if !(s.target_rps_per_replica.is_finite() && s.target_rps_per_replica > 0.0) {
                return Err(err(
                    format!("{field}.target_rps_per_replica"),
                    "must be > 0",
                ));
            }
        }
        Ok(spec)
    }

    pub fn nodes(&self) -> Result<Vec<model::Node>, ClusterSpecError> {
        if self.nodes.is_empty() {
            return Err(err("nodes".into(), "declare at least one node"));
        }
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let r = resources(&format!("nodes[{i}]"), &n.cpu, &n.memory, n.gpus)?;
                for (k, t) in n.taints.iter().enumerate() {
                    t.check().map_err(|e| {
                        err(format!("nodes[{i}].taints[{k}].{}", e.field), e.message)
                    })?;
                }
                let mut node = model::Node::new(n.name.clone(), r);
                node.labels = n.labels.clone();
                if let Some(m) = &n.gpu_model {
                    node.set_gpu_model(m);
                }
                node.taints = n.taints.clone();
                Ok(node)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_files_and_bad_files() {
        let nodes = LocalClusterSpec::uniform(2, "8", "16Gi", 1)
            .nodes()
            .unwrap();
        assert_eq!(nodes[1].name, "node-1");
        assert_eq!(nodes[1].allocatable, Resources::new(8000, 16 << 30, 1));
        let e = LocalClusterSpec::parse("nodes: [{name: a, cpu: lots, memory: 1Gi}]").unwrap_err();
        assert_eq!(e.field, "nodes[0].cpu");
        let e = LocalClusterSpec::parse(
            "nodes: [{name: a, cpu: '1', memory: 1Gi}]\nservices: [{name: web, cpu: '1', memory: 1Gi, max_replicas: 2, target_rps_per_replica: 0}]",
        )
        .unwrap_err();
        assert_eq!(e.field, "services[0].target_rps_per_replica");
    }

    #[test]
    fn nodes_carry_labels_taints_and_gpu_models_and_services_their_placement() {
        let spec = LocalClusterSpec::parse(
            "nodes:\n\
             - {name: gpu-0, cpu: '8', memory: 16Gi, gpus: 2, gpu_model: H100,\n\
                taints: [{key: dedicated, value: ml, effect: NoSchedule}]}\n\
             - {name: web-0, cpu: '4', memory: 8Gi, labels: {node-role: web}}\n\
             services:\n\
             - {name: web, cpu: '1', memory: 1Gi, max_replicas: 2, target_rps_per_replica: 5,\n\
                placement: {node_selector: {node-role: web}}}\n",
        )
        .expect("valid");
        let nodes = spec.nodes().expect("nodes");
        assert_eq!(nodes[0].labels["nvidia.com/gpu.product"], "H100");
        assert_eq!(nodes[0].taints[0].key, "dedicated");
        assert_eq!(nodes[1].labels["node-role"], "web");
        let web = &spec.services[0].placement;
        assert!(web.admits(nodes[1].facts()) && !web.admits(nodes[0].facts()));
        let e = LocalClusterSpec::parse(
            "nodes: [{name: a, cpu: '1', memory: 1Gi, taints: [{key: k, effect: Never}]}]",
        )
        .unwrap_err();
        assert_eq!(e.field, "nodes[0].taints[0].effect");
        let e = LocalClusterSpec::parse(
            "nodes: [{name: a, cpu: '1', memory: 1Gi}]\nservices: [{name: web, cpu: '1', memory: 1Gi, max_replicas: 2, target_rps_per_replica: 1, placement: {required: []}}]",
        )
        .unwrap_err();
        assert_eq!(e.field, "services[0].placement.required");
    }
}
