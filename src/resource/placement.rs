//! A TrainingJob's pod template constraints (`nodeSelector`, `affinity.nodeAffinity`,
//! `tolerations`) as the model's [`Placement`], checked as Kubernetes would check them,
//! with errors naming the template's field.

use super::spec::SpecError;
use crate::model::placement::{
    AGENT_GPU_MODEL_LABEL, GPU_PRODUCT_LABEL, NodeSelectorTerm, Placement, PreferredTerm,
    Requirement, Toleration,
};
use k8s_openapi::api::core::v1::{self as core, PodTemplateSpec};

const TEMPLATE: &str = "spec.template.spec";

/// The toleration every pod that requests GPUs carries (rendered onto the pod and in
/// its model placement): GPU nodes are commonly tainted `nvidia.com/gpu:NoSchedule` to
/// keep other pods off them.
pub fn gpu_toleration() -> Toleration {
    Toleration {
        key: super::names::GPU_RESOURCE.into(),
        operator: "Exists".into(),
        value: String::new(),
        effect: crate::model::placement::NO_SCHEDULE.into(),
    }
}
const REQUIRED: &str =
    "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms";
const PREFERRED: &str = "affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution";

/// Adds to `pod` the node affinity that `gpu_models` means, so that kubelet admits the
/// pod only where ebb's model lets it go: the node's GPU model label (either of the
/// two, [`GPU_PRODUCT_LABEL`] or [`AGENT_GPU_MODEL_LABEL`]) must be one of the models.
///
/// Required terms are ORed and a term's expressions ANDed, so "some template term, and
/// one of two labels" is every template term twice, once with each label's expression.
pub fn require_gpu_models(pod: &mut core::PodSpec, models: &[String]) {
    if models.is_empty() {
        return;
    }
    let affinity = pod
        .affinity
        .get_or_insert_with(Default::default)
        .node_affinity
        .get_or_insert_with(Default::default);
    let required = affinity
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(Default::default);
    let terms = std::mem::take(&mut required.node_selector_terms);
    let bases = if terms.is_empty() {
        vec![core::NodeSelectorTerm::default()]
    } else {
        terms
    };
    for base in bases {
        for label in [GPU_PRODUCT_LABEL, AGENT_GPU_MODEL_LABEL] {
            let mut term = base.clone();
            term.match_expressions.get_or_insert_with(Vec::new).push(
                core::NodeSelectorRequirement {
                    key: label.into(),
                    operator: "In".into(),
                    values: Some(models.to_vec()),
                },
            );
            required.node_selector_terms.push(term);
        }
    }
}

/// The constraints every pod of the job carries; none without a template.
pub fn template_placement(template: Option<&PodTemplateSpec>) -> Result<Placement, SpecError> {
    let Some(pod) = template.and_then(|t| t.spec.as_ref()) else {
        return Ok(Placement::default());
    };
    let placement = pod_placement(pod);
    placement.check().map_err(|e| SpecError::Invalid {
        field: format!("{TEMPLATE}.{}", pod_spec_field(&e.field)),
        message: e.message,
    })?;
    Ok(placement)
}

/// A pod spec's `nodeSelector`, `affinity.nodeAffinity` and `tolerations` as the model's
/// placement, unchecked (see [`Placement::check`] and [`pod_spec_field`]).
pub fn pod_placement(pod: &core::PodSpec) -> Placement {
    let affinity = pod.affinity.as_ref().and_then(|a| a.node_affinity.as_ref());
    Placement {
        node_selector: pod.node_selector.clone().unwrap_or_default(),
        required: affinity
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|s| s.node_selector_terms.iter().map(term).collect()),
        preferred: affinity
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .into_iter()
            .flatten()
            .map(|p| PreferredTerm {
                weight: p.weight,
                preference: term(&p.preference),
            })
            .collect(),
        tolerations: pod
            .tolerations
            .iter()
            .flatten()
            .map(|t| Toleration {
                key: t.key.clone().unwrap_or_default(),
                operator: t.operator.clone().unwrap_or_default(),
                value: t.value.clone().unwrap_or_default(),
                effect: t.effect.clone().unwrap_or_default(),
            })
            .collect(),
        gpu_models: Vec::new(),
    }
}

fn term(t: &core::NodeSelectorTerm) -> NodeSelectorTerm {
    let reqs = |r: &Option<Vec<core::NodeSelectorRequirement>>| {
        r.iter()
            .flatten()
            .map(|r| Requirement {
                key: r.key.clone(),
                operator: r.operator.clone(),
                values: r.values.clone().unwrap_or_default(),
            })
            .collect()
    };
    NodeSelectorTerm {
        match_expressions: reqs(&t.match_expressions),
        match_fields: reqs(&t.match_fields),
    }
}

/// The model's field path (`required[0].match_expressions[1].operator`) in a pod
/// spec's words (`affinity.nodeAffinity....nodeSelectorTerms[0].matchExpressions[1].operator`).
pub fn pod_spec_field(model_field: &str) -> String {
    let (head, rest) = model_field
        .find(['[', '.'])
        .map_or((model_field, ""), |i| model_field.split_at(i));
    let head = match head {
        "required" => REQUIRED,
        "preferred" => PREFERRED,
        "node_selector" => "nodeSelector",
        other => other,
    };
    let rest = rest
        .replace("match_expressions", "matchExpressions")
        .replace("match_fields", "matchFields");
    format!("{head}{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(spec: serde_json::Value) -> PodTemplateSpec {
        serde_json::from_value(serde_json::json!({ "spec": spec })).expect("a pod template")
    }

    #[test]
    fn the_templates_constraints_become_the_placement() {
        let t = template(serde_json::json!({
            "containers": [],
            "nodeSelector": {"pool": "ml"},
            "affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [
                        {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["H100"]}
                    ]}
                ]},
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 10, "preference": {"matchExpressions": [
                        {"key": "zone", "operator": "Exists"}
                    ]}}
                ]
            }},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}]
        }));
        let p = template_placement(Some(&t)).expect("valid");
        assert_eq!(p.node_selector["pool"], "ml");
        let required = p.required.as_ref().expect("required terms");
        assert_eq!(required[0].match_expressions[0].values, ["H100"]);
        assert_eq!(p.preferred[0].weight, 10);
        assert_eq!(p.tolerations[0].value, "ml");
        assert!(template_placement(None).expect("none").is_unconstrained());
    }

    #[test]
    fn gpu_models_become_affinity_that_means_what_the_model_means() {
        use crate::model::placement::NodeFacts;
        let models = vec!["H100".to_string(), "A100".to_string()];
        let with_terms = template(serde_json::json!({
            "containers": [],
            "affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}
                ]}
            }}
        }));
        for t in [template(serde_json::json!({"containers": []})), with_terms] {
            let template_only = template_placement(Some(&t)).expect("valid");
            let mut spec = t.spec.clone().expect("a spec");
            require_gpu_models(&mut spec, &models);
            let rendered = pod_placement(&spec);
            rendered.check().expect("the rendered affinity is valid");
            let model = Placement {
                gpu_models: models.clone(),
                ..template_only
            };
            // Every combination of zone and the two model labels: the rendered pod is
            // admitted exactly where the model places it.
            let zones = [None, Some("a"), Some("b"), Some("c")];
            let values = [None, Some("H100"), Some("A100"), Some("T4")];
            for zone in zones {
                for gfd in values {
                    for agent in values {
                        let mut labels = std::collections::BTreeMap::new();
                        for (k, v) in [
                            ("zone", zone),
                            (GPU_PRODUCT_LABEL, gfd),
                            (AGENT_GPU_MODEL_LABEL, agent),
                        ] {
                            if let Some(v) = v {
                                labels.insert(k.to_string(), v.to_string());
                            }
                        }
                        let node = NodeFacts {
                            name: "n",
                            labels: &labels,
                            taints: &[],
                        };
                        assert_eq!(rendered.admits(node), model.admits(node), "{labels:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_malformed_constraint_names_the_templates_field() {
        let bad_operator = template(serde_json::json!({
            "containers": [],
            "affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["new"]}]}
                ]}
            }}
        }));
        let e = template_placement(Some(&bad_operator)).unwrap_err();
        assert_eq!(
            e.field(),
            "spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values"
        );
        let bad_effect = template(serde_json::json!({
            "containers": [],
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoScheduled"}]
        }));
        let e = template_placement(Some(&bad_effect)).unwrap_err();
        assert_eq!(e.field(), "spec.template.spec.tolerations[0].effect");
        assert!(e.to_string().contains("NoScheduled"), "{e}");
    }
}
