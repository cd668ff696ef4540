//! Nodes that every placement of a view judges alike, so that each placement is matched
//! once per class of nodes rather than once per node.
//!
//! A placement looks only at some label keys (those its selector, affinity terms and
//! GPU models name), at the node's taints, and at its name when a term has
//! `matchFields` ([`Placement::looks_at`]). Nodes with the same values for every key
//! any placement looks at, and the same taints, are admitted and scored alike by every
//! one of them. A real cluster's nodes differ in many labels (hostname, instance id)
//! that no placement reads, and share the few that matter (GPU model, pool, zone): the
//! classes are few.

use super::FastMap;
use crate::model::Node;
use crate::model::placement::{Placement, Taint};
use std::collections::BTreeSet;
use std::rc::Rc;

pub struct NodeClasses<'n> {
    /// The class of each node, by node index.
    class_of: Vec<usize>,
    /// One node of each class.
    representatives: Vec<&'n Node>,
}

/// What placements see of a node: the values of the label keys they read, its taints,
/// and its name if any of them reads it.
#[derive(PartialEq, Eq, Hash)]
struct Signature<'n> {
    values: Vec<Option<&'n str>>,
    taints: &'n [Taint],
    name: Option<&'n str>,
}

impl<'n> NodeClasses<'n> {
    pub fn build<'p>(nodes: &[&'n Node], placements: impl Iterator<Item = &'p Placement>) -> Self {
        let mut keys: BTreeSet<&str> = BTreeSet::new();
        let mut by_name = false;
        for p in placements {
            by_name |= p.looks_at(&mut keys);
        }
        let mut class_by_signature: FastMap<Signature<'n>, usize> = FastMap::default();
        let mut class_of = Vec::with_capacity(nodes.len());
        let mut representatives = Vec::new();
        for &node in nodes {
            let signature = Signature {
                values: keys
                    .iter()
                    .map(|&k| node.labels.get(k).map(String::as_str))
                    .collect(),
                taints: &node.taints,
                name: by_name.then_some(node.name.as_str()),
            };
            let class = *class_by_signature.entry(signature).or_insert_with(|| {
                representatives.push(node);
                representatives.len() - 1
            });
            class_of.push(class);
        }
        NodeClasses {
            class_of,
            representatives,
        }
    }

    /// `f` of each class's node, one value per node.
    pub fn per_node<T: Copy>(&self, f: impl Fn(&Node) -> T) -> Rc<[T]> {
        let per_class: Vec<T> = self.representatives.iter().map(|n| f(n)).collect();
        self.class_of.iter().map(|&c| per_class[c]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Resources;
    use crate::model::placement::{NodeSelectorTerm, PreferredTerm, Requirement, Toleration};
    use proptest::prelude::*;

    fn node(i: usize, zone: u8, model: u8, pool: u8, taint: u8) -> Node {
        let mut n = Node::new(format!("n{i}"), Resources::new(1000, 1 << 30, 1));
        // A label no placement reads, unique per node (as a hostname is).
        n.labels
            .insert("kubernetes.io/hostname".into(), n.name.clone());
        n.labels.insert("zone".into(), format!("z{zone}"));
        if model > 0 {
            n.set_gpu_model(&format!("M{model}"));
        }
        if pool > 0 {
            n.labels.insert("pool".into(), format!("p{pool}"));
        }
        if taint > 0 {
            n.taints.push(Taint {
                key: "dedicated".into(),
                value: String::new(),
                effect: ["NoSchedule", "PreferNoSchedule", "NoExecute"][usize::from(taint) - 1]
                    .into(),
            });
        }
        n
    }

    fn placement(kind: u8, v: u8) -> Placement {
        let req = |key: &str, operator: &str, values: Vec<String>| NodeSelectorTerm {
            match_expressions: vec![Requirement {
                key: key.into(),
                operator: operator.into(),
                values,
            }],
            match_fields: Vec::new(),
        };
        match kind {
            0 => Placement::default(),
            1 => Placement {
                gpu_models: vec![format!("M{v}")],
                ..Placement::default()
            },
            2 => Placement {
                node_selector: [("pool".to_string(), format!("p{v}"))].into(),
                tolerations: vec![Toleration {
                    key: "dedicated".into(),
                    operator: "Exists".into(),
                    ..Toleration::default()
                }],
                ..Placement::default()
            },
            3 => Placement {
                required: Some(vec![req("zone", "NotIn", vec![format!("z{v}")])]),
                preferred: vec![PreferredTerm {
                    weight: 7,
                    preference: req("pool", "Exists", Vec::new()),
                }],
                ..Placement::default()
            },
            _ => Placement {
                required: Some(vec![NodeSelectorTerm {
                    match_expressions: Vec::new(),
                    match_fields: vec![Requirement {
                        key: "metadata.name".into(),
                        operator: "In".into(),
                        values: vec![format!("n{v}")],
                    }],
                }]),
                ..Placement::default()
            },
        }
    }

    proptest! {
        /// Matching one node per class gives what matching every node gives, for every
        /// placement the classes were built for.
        #[test]
        fn classes_judge_every_node_as_the_node_itself_would_be(
            shapes in prop::collection::vec((0u8..3, 0u8..3, 0u8..3, 0u8..4), 1..40),
            kinds in prop::collection::vec((0u8..5, 0u8..4), 1..6),
        ) {
            let nodes: Vec<Node> = shapes
                .iter()
                .enumerate()
                .map(|(i, &(z, m, p, t))| node(i, z, m, p, t))
                .collect();
            let refs: Vec<&Node> = nodes.iter().collect();
            let placements: Vec<Placement> = kinds.iter().map(|&(k, v)| placement(k, v)).collect();
            let classes = NodeClasses::build(&refs, placements.iter());
            for p in &placements {
                let admits = classes.per_node(|n| p.admits(n.facts()));
                let scores = classes.per_node(|n| p.preference(n.facts()));
                for (i, n) in nodes.iter().enumerate() {
                    prop_assert_eq!(admits[i], p.admits(n.facts()), "{:?} on {}", p, n.name);
                    prop_assert_eq!(scores[i], p.preference(n.facts()), "{:?} on {}", p, n.name);
                }
            }
            // The hostname label, read by no placement, does not split classes.
            let by_name = placements.iter().any(|p| p.required.iter().flatten().any(|t| !t.match_fields.is_empty()));
            if !by_name {
                prop_assert!(classes.representatives.len() <= 3 * 3 * 3 * 4);
            }
        }
    }
}
