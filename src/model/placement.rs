//! Where a pod may run: the node filters kube-scheduler would apply and kubelet enforces
//! (nodeSelector, required node affinity, taints with their tolerations), and the soft
//! ones that only rank nodes (preferred node affinity, PreferNoSchedule taints).
//!
//! ebb binds its own pods, so it owns these filters. The semantics are upstream's:
//! - `nodeSelector`: every pair must equal a node label (core/v1 `PodSpec.nodeSelector`).
//! - Required node affinity: the terms are ORed, a term's expressions and fields are
//!   ANDed, and an empty term matches no node (core/v1 `NodeSelector`,
//!   component-helpers `nodeaffinity`). `In` and `NotIn` compare with the label's value
//!   (`NotIn` and `DoesNotExist` also match a node without the label); `Gt`/`Lt` parse
//!   the single value and the label as integers and match only if both parse. The only
//!   field is `metadata.name`.
//! - Tolerations (component-helpers `Toleration.ToleratesTaint`): an empty effect
//!   matches every effect, an empty key with `Exists` matches every taint, `Exists`
//!   matches any value, `Equal` (the default) needs the same value. A pod may use a
//!   node only if every NoSchedule and NoExecute taint is tolerated; PreferNoSchedule
//!   taints it does not tolerate only lower the node's score.
//!
//! Operators and effects are kept as written and checked by [`Placement::check`], so a
//! job with a typo pends naming the field while the rest of the cluster is planned.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Labels a node's GPU model is read from: NVIDIA GPU feature discovery's, then the one
/// ebb's node agent writes. `gpu_models` on a job matches either.
pub const GPU_PRODUCT_LABEL: &str = "nvidia.com/gpu.product";
pub const AGENT_GPU_MODEL_LABEL: &str = "ebb.dev/gpu.model";

pub const NO_SCHEDULE: &str = "NoSchedule";
pub const PREFER_NO_SCHEDULE: &str = "PreferNoSchedule";
pub const NO_EXECUTE: &str = "NoExecute";

/// A node's taint (core/v1 `Taint`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taint {
    pub key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// NoSchedule, PreferNoSchedule or NoExecute.
    pub effect: String,
}

impl Taint {
    /// Refuses what Kubernetes' validation would: an empty key, an unknown effect.
    pub fn check(&self) -> Result<(), PlacementError> {
        let bad = |field: &str, message: String| {
            Err(PlacementError {
                field: field.into(),
                message,
            })
        };
        if self.key.is_empty() {
            return bad("key", "must not be empty".into());
        }
        if !matches!(
            self.effect.as_str(),
            NO_SCHEDULE | PREFER_NO_SCHEDULE | NO_EXECUTE
        ) {
            return bad(
                "effect",
                format!(
                    "{:?} is not one of NoSchedule, PreferNoSchedule, NoExecute",
                    self.effect
                ),
            );
        }
        Ok(())
    }

    /// Whether a pod that does not tolerate this taint may not be placed on the node.
    pub fn repels(&self) -> bool {
        self.effect == NO_SCHEDULE || self.effect == NO_EXECUTE
    }
}

/// A pod's toleration (core/v1 `Toleration`). `tolerationSeconds` only bounds how long
/// a pod stays after a NoExecute taint appears; it does not change where it may go.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Toleration {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// Equal (the default when empty) or Exists.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub operator: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// Empty: every effect.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub effect: String,
}

impl Toleration {
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if !self.effect.is_empty() && self.effect != taint.effect {
            return false;
        }
        if !self.key.is_empty() && self.key != taint.key {
            return false;
        }
        match self.operator.as_str() {
            "" | "Equal" => self.value == taint.value,
            "Exists" => true,
            _ => false,
        }
    }
}

/// One requirement of a node selector term (core/v1 `NodeSelectorRequirement`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub key: String,
    /// In, NotIn, Exists, DoesNotExist, Gt or Lt.
    pub operator: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl Requirement {
    /// Whether a label with `value` (None: the label is absent) meets the requirement.
    pub fn matches(&self, value: Option<&str>) -> bool {
        match (self.operator.as_str(), value) {
            ("In", Some(v)) => self.values.iter().any(|x| x == v),
            ("NotIn", Some(v)) => !self.values.iter().any(|x| x == v),
            ("NotIn", None) | ("DoesNotExist", None) | ("Exists", Some(_)) => true,
            ("Gt" | "Lt", Some(v)) => {
                let (Some(want), Ok(have)) = (
                    self.values.first().and_then(|w| w.parse::<i64>().ok()),
                    v.parse::<i64>(),
                ) else {
                    return false;
                };
                if self.operator == "Gt" {
                    have > want
                } else {
                    have < want
                }
            }
            _ => false,
        }
    }

    fn check(&self, field: &str) -> Result<(), PlacementError> {
        let bad = |what: &str, message: String| PlacementError {
            field: format!("{field}.{what}"),
            message,
        };
        if self.key.is_empty() {
            return Err(bad("key", "must not be empty".into()));
        }
        match self.operator.as_str() {
            "In" | "NotIn" if self.values.is_empty() => Err(bad(
                "values",
                format!("{} needs at least one value", self.operator),
            )),
            "In" | "NotIn" => Ok(()),
            "Exists" | "DoesNotExist" if !self.values.is_empty() => {
                Err(bad("values", format!("{} takes no values", self.operator)))
            }
            "Exists" | "DoesNotExist" => Ok(()),
            "Gt" | "Lt" => match self.values.as_slice() {
                [v] if v.parse::<i64>().is_ok() => Ok(()),
                [v] => Err(bad("values", format!("{v:?} is not an integer"))),
                _ => Err(bad(
                    "values",
                    format!("{} takes exactly one integer", self.operator),
                )),
            },
            other => Err(bad(
                "operator",
                format!("{other:?} is not one of In, NotIn, Exists, DoesNotExist, Gt, Lt"),
            )),
        }
    }
}

/// A node selector term: its requirements ANDed. An empty term matches no node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSelectorTerm {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<Requirement>,
    /// Requirements on the node's fields; Kubernetes supports only `metadata.name`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_fields: Vec<Requirement>,
}

impl NodeSelectorTerm {
    pub fn matches(&self, node_name: &str, labels: &BTreeMap<String, String>) -> bool {
        if self.match_expressions.is_empty() && self.match_fields.is_empty() {
            return false;
        }
        self.match_expressions
            .iter()
            .all(|r| r.matches(labels.get(&r.key).map(String::as_str)))
            && self
                .match_fields
                .iter()
                .all(|r| r.key == "metadata.name" && r.matches(Some(node_name)))
    }

    fn check(&self, field: &str) -> Result<(), PlacementError> {
        if self.match_expressions.is_empty() && self.match_fields.is_empty() {
            return Err(PlacementError {
                field: field.to_string(),
                message: "an empty term matches no node".into(),
            });
        }
        for (i, r) in self.match_expressions.iter().enumerate() {
            r.check(&format!("{field}.match_expressions[{i}]"))?;
        }
        for (i, r) in self.match_fields.iter().enumerate() {
            let f = format!("{field}.match_fields[{i}]");
            r.check(&f)?;
            if r.key != "metadata.name" {
                return Err(PlacementError {
                    field: format!("{f}.key"),
                    message: format!("{:?}: the only node field is metadata.name", r.key),
                });
            }
        }
        Ok(())
    }
}

/// A preferred node affinity term: nodes it matches score `weight` more.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreferredTerm {
    /// 1..=100, as in Kubernetes.
    pub weight: i32,
    pub preference: NodeSelectorTerm,
}

/// Where a group of pods (a job's master, its pservers, its trainers, or another
/// workload's pod) may run. The default places anywhere untainted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// Labels the node must have, with these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Required node affinity: the node must match one of these terms. None: no
    /// requirement (an empty list is refused, as Kubernetes refuses it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<Vec<NodeSelectorTerm>>,
    /// Preferred node affinity: only ranks the nodes the pod may use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferred: Vec<PreferredTerm>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// GPU models the pods may run on, any of (e.g. `[H100, A100]`): the node's
    /// `nvidia.com/gpu.product` or `ebb.dev/gpu.model` label must be one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu_models: Vec<String>,
}

/// A constraint that is not well formed, with the path of the field in the placement.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PlacementError {
    pub field: String,
    pub message: String,
}

/// What a node offers the filters: its name, labels and taints.
#[derive(Clone, Copy, Debug)]
pub struct NodeFacts<'a> {
    pub name: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub taints: &'a [Taint],
}

/// The first filter a node fails, to tell a user which constraint rules nodes out.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Misfit {
    NodeSelector { key: String },
    Affinity,
    GpuModel,
    Taint { taint: Taint },
}

impl std::fmt::Display for Misfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Misfit::NodeSelector { key } => write!(f, "node_selector {key}"),
            Misfit::Affinity => write!(f, "required node affinity"),
            Misfit::GpuModel => write!(f, "gpu_models"),
            Misfit::Taint { taint } if taint.value.is_empty() => {
                write!(f, "untolerated taint {}:{}", taint.key, taint.effect)
            }
            Misfit::Taint { taint } => write!(
                f,
                "untolerated taint {}={}:{}",
                taint.key, taint.value, taint.effect
            ),
        }
    }
}

impl Placement {
    /// No constraint at all: such pods may use every untainted node.
    pub fn is_unconstrained(&self) -> bool {
        *self == Placement::default()
    }

    /// Adds to `keys` every node label the placement reads (its selector's, its terms',
    /// the GPU model labels for `gpu_models`); true if it also reads the node's name
    /// (`match_fields`). Besides these, only the node's taints matter to it.
    pub fn looks_at<'p>(&'p self, keys: &mut std::collections::BTreeSet<&'p str>) -> bool {
        keys.extend(self.node_selector.keys().map(String::as_str));
        let terms = self
            .required
            .iter()
            .flatten()
            .chain(self.preferred.iter().map(|p| &p.preference));
        let mut by_name = false;
        for t in terms {
            keys.extend(t.match_expressions.iter().map(|r| r.key.as_str()));
            by_name |= !t.match_fields.is_empty();
        }
        if !self.gpu_models.is_empty() {
            keys.extend([GPU_PRODUCT_LABEL, AGENT_GPU_MODEL_LABEL]);
        }
        by_name
    }

    /// Whether the placement rules nodes out by their labels (a node selector, required
    /// affinity, GPU models); tolerations only matter on tainted nodes.
    pub fn has_node_filters(&self) -> bool {
        !self.node_selector.is_empty() || self.required.is_some() || !self.gpu_models.is_empty()
    }

    /// Why the pods may not use `node`, or None when they may.
    pub fn misfit(&self, node: NodeFacts<'_>) -> Option<Misfit> {
        for (k, v) in &self.node_selector {
            if node.labels.get(k) != Some(v) {
                return Some(Misfit::NodeSelector { key: k.clone() });
            }
        }
        if let Some(terms) = &self.required
            && !terms.iter().any(|t| t.matches(node.name, node.labels))
        {
            return Some(Misfit::Affinity);
        }
        if !self.gpu_models.is_empty() && !self.gpu_model_matches(node.labels) {
            return Some(Misfit::GpuModel);
        }
        node.taints
            .iter()
            .find(|t| t.repels() && !self.tolerates(t))
            .map(|t| Misfit::Taint { taint: t.clone() })
    }

    pub fn admits(&self, node: NodeFacts<'_>) -> bool {
        self.misfit(node).is_none()
    }

    fn gpu_model_matches(&self, labels: &BTreeMap<String, String>) -> bool {
        [GPU_PRODUCT_LABEL, AGENT_GPU_MODEL_LABEL]
            .iter()
            .filter_map(|l| labels.get(*l))
            .any(|m| self.gpu_models.iter().any(|g| g == m))
    }

    pub fn tolerates(&self, taint: &Taint) -> bool {
        self.tolerations.iter().any(|t| t.tolerates(taint))
    }

    /// How much the pods would rather run on `node` (which they may use): the weights
    /// of the preferred terms it matches, less 100 for each PreferNoSchedule taint not
    /// tolerated (one such taint outweighs any single preference, as kube-scheduler's
    /// TaintToleration score sorts before NodeAffinity's in effect).
    pub fn preference(&self, node: NodeFacts<'_>) -> i64 {
        let liked: i64 = self
            .preferred
            .iter()
            .filter(|p| p.preference.matches(node.name, node.labels))
            .map(|p| i64::from(p.weight))
            .sum();
        let disliked = node
            .taints
            .iter()
            .filter(|t| t.effect == PREFER_NO_SCHEDULE && !self.tolerates(t))
            .count() as i64;
        liked - 100 * disliked
    }

    /// Refuses what Kubernetes' validation would: unknown operators and effects, `Gt`
    /// with a non-integer, an empty term or term list, weights outside 1..=100.
    pub fn check(&self) -> Result<(), PlacementError> {
        let err = |field: String, message: String| Err(PlacementError { field, message });
        for k in self.node_selector.keys() {
            if k.is_empty() {
                return err("node_selector".into(), "a key must not be empty".into());
            }
        }
        if let Some(terms) = &self.required {
            if terms.is_empty() {
                return err(
                    "required".into(),
                    "needs at least one term (omit it for no requirement)".into(),
                );
            }
            for (i, t) in terms.iter().enumerate() {
                t.check(&format!("required[{i}]"))?;
            }
        }
        for (i, p) in self.preferred.iter().enumerate() {
            if !(1..=100).contains(&p.weight) {
                return err(
                    format!("preferred[{i}].weight"),
                    format!("{} is not in 1..=100", p.weight),
                );
            }
            p.preference.check(&format!("preferred[{i}].preference"))?;
        }
        for (i, t) in self.tolerations.iter().enumerate() {
            let field = |f: &str| format!("tolerations[{i}].{f}");
            match t.operator.as_str() {
                "" | "Equal" if t.key.is_empty() => {
                    return err(
                        field("operator"),
                        "an empty key needs operator Exists (it matches every taint)".into(),
                    );
                }
                "" | "Equal" => {}
                "Exists" if !t.value.is_empty() => {
                    return err(field("value"), "must be empty with operator Exists".into());
                }
                "Exists" => {}
                other => {
                    return err(
                        field("operator"),
                        format!("{other:?} is not one of Equal, Exists"),
                    );
                }
            }
            if !matches!(
                t.effect.as_str(),
                "" | NO_SCHEDULE | PREFER_NO_SCHEDULE | NO_EXECUTE
            ) {
                return err(
                    field("effect"),
                    format!(
                        "{:?} is not one of NoSchedule, PreferNoSchedule, NoExecute",
                        t.effect
                    ),
                );
            }
        }
        for (i, m) in self.gpu_models.iter().enumerate() {
            if m.is_empty() {
                return err(format!("gpu_models[{i}]"), "must not be empty".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "placement_tests.rs"]
mod tests;
