//! Cases from the Kubernetes documentation ("Taints and Tolerations", "Assigning Pods to
//! Nodes") and from upstream's matching rules.

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn taint(key: &str, value: &str, effect: &str) -> Taint {
    Taint {
        key: key.into(),
        value: value.into(),
        effect: effect.into(),
    }
}

fn toleration(key: &str, operator: &str, value: &str, effect: &str) -> Toleration {
    Toleration {
        key: key.into(),
        operator: operator.into(),
        value: value.into(),
        effect: effect.into(),
    }
}

fn req(key: &str, operator: &str, values: &[&str]) -> Requirement {
    Requirement {
        key: key.into(),
        operator: operator.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

fn term(reqs: Vec<Requirement>) -> NodeSelectorTerm {
    NodeSelectorTerm {
        match_expressions: reqs,
        match_fields: Vec::new(),
    }
}

fn node<'a>(
    name: &'a str,
    labels: &'a BTreeMap<String, String>,
    taints: &'a [Taint],
) -> NodeFacts<'a> {
    NodeFacts {
        name,
        labels,
        taints,
    }
}

#[test]
fn the_documented_tolerations_of_key1_value1_noschedule() {
    // `kubectl taint nodes node1 key1=value1:NoSchedule`: both documented tolerations
    // let a pod schedule there.
    let t = taint("key1", "value1", NO_SCHEDULE);
    assert!(toleration("key1", "Equal", "value1", NO_SCHEDULE).tolerates(&t));
    assert!(toleration("key1", "Exists", "", NO_SCHEDULE).tolerates(&t));
    // Operator defaults to Equal; another value or effect does not match.
    assert!(toleration("key1", "", "value1", NO_SCHEDULE).tolerates(&t));
    assert!(!toleration("key1", "Equal", "value2", NO_SCHEDULE).tolerates(&t));
    assert!(!toleration("key1", "Equal", "value1", NO_EXECUTE).tolerates(&t));
    // An empty effect matches every effect of key1; an empty key with Exists, every taint.
    assert!(toleration("key1", "Equal", "value1", "").tolerates(&t));
    assert!(toleration("", "Exists", "", "").tolerates(&taint("other", "x", NO_EXECUTE)));
    assert!(!toleration("key2", "Exists", "", "").tolerates(&t));
}

#[test]
fn every_repelling_taint_must_be_tolerated() {
    // The documentation's node with three taints and a pod tolerating the first two:
    // key2's NoSchedule taint keeps the pod off.
    let taints = [
        taint("key1", "value1", NO_SCHEDULE),
        taint("key1", "value1", NO_EXECUTE),
        taint("key2", "value2", NO_SCHEDULE),
    ];
    let l = labels(&[]);
    let mut p = Placement {
        tolerations: vec![
            toleration("key1", "Equal", "value1", NO_SCHEDULE),
            toleration("key1", "Equal", "value1", NO_EXECUTE),
        ],
        ..Placement::default()
    };
    assert_eq!(
        p.misfit(node("node1", &l, &taints)),
        Some(Misfit::Taint {
            taint: taints[2].clone()
        })
    );
    p.tolerations.push(toleration("key2", "Exists", "", ""));
    assert!(p.admits(node("node1", &l, &taints)));
    // PreferNoSchedule never keeps a pod off: it only lowers the node's score.
    let soft = [taint("spot", "", PREFER_NO_SCHEDULE)];
    assert!(Placement::default().admits(node("n", &l, &soft)));
    assert!(Placement::default().preference(node("n", &l, &soft)) < 0);
    assert_eq!(Placement::default().preference(node("n", &l, &[])), 0);
}

#[test]
fn the_documented_node_affinity_example() {
    // Required: zone In (antarctica-east1, antarctica-west1); preferred (weight 1):
    // another-node-label-key In (another-node-label-value).
    let p = Placement {
        required: Some(vec![term(vec![req(
            "topology.kubernetes.io/zone",
            "In",
            &["antarctica-east1", "antarctica-west1"],
        )])]),
        preferred: vec![PreferredTerm {
            weight: 1,
            preference: term(vec![req(
                "another-node-label-key",
                "In",
                &["another-node-label-value"],
            )]),
        }],
        ..Placement::default()
    };
    assert_eq!(p.check(), Ok(()));
    let east = labels(&[("topology.kubernetes.io/zone", "antarctica-east1")]);
    let east_liked = labels(&[
        ("topology.kubernetes.io/zone", "antarctica-east1"),
        ("another-node-label-key", "another-node-label-value"),
    ]);
    let north = labels(&[("topology.kubernetes.io/zone", "arctic-north1")]);
    let none = labels(&[]);
    assert!(p.admits(node("a", &east, &[])));
    assert!(p.admits(node("b", &east_liked, &[])));
    assert_eq!(p.misfit(node("c", &north, &[])), Some(Misfit::Affinity));
    assert_eq!(p.misfit(node("d", &none, &[])), Some(Misfit::Affinity));
    assert_eq!(p.preference(node("b", &east_liked, &[])), 1);
    assert_eq!(p.preference(node("a", &east, &[])), 0);
}

#[test]
fn terms_are_ored_and_their_requirements_anded() {
    let p = Placement {
        required: Some(vec![
            term(vec![req("a", "In", &["1"]), req("b", "Exists", &[])]),
            term(vec![req("c", "DoesNotExist", &[])]),
        ]),
        ..Placement::default()
    };
    let both = labels(&[("a", "1"), ("b", "x"), ("c", "y")]);
    let only_a = labels(&[("a", "1"), ("c", "y")]);
    let no_c = labels(&[("a", "2")]);
    assert!(p.admits(node("n", &both, &[])));
    assert!(!p.admits(node("n", &only_a, &[])));
    assert!(p.admits(node("n", &no_c, &[])));
    // An empty term matches no node; the check refuses it.
    let empty = Placement {
        required: Some(vec![NodeSelectorTerm::default()]),
        ..Placement::default()
    };
    assert!(!empty.admits(node("n", &both, &[])));
    assert_eq!(empty.check().unwrap_err().field, "required[0]");
}

#[test]
fn operators_follow_upstream() {
    let with = labels(&[("gen", "5"), ("zone", "a")]);
    let without = labels(&[]);
    let m = |r: Requirement, l: &BTreeMap<String, String>| term(vec![r]).matches("n", l);
    assert!(m(req("zone", "NotIn", &["b"]), &with));
    assert!(!m(req("zone", "NotIn", &["a"]), &with));
    // NotIn and DoesNotExist match a node without the label; In and Exists do not.
    assert!(m(req("zone", "NotIn", &["a"]), &without));
    assert!(m(req("zone", "DoesNotExist", &[]), &without));
    assert!(!m(req("zone", "In", &["a"]), &without));
    assert!(!m(req("zone", "Exists", &[]), &without));
    // Gt and Lt compare integers; a label that is not one matches neither.
    assert!(m(req("gen", "Gt", &["4"]), &with));
    assert!(!m(req("gen", "Gt", &["5"]), &with));
    assert!(m(req("gen", "Lt", &["6"]), &with));
    assert!(!m(req("zone", "Gt", &["0"]), &with));
    assert!(!m(req("gen", "Gt", &["4"]), &without));
    // metadata.name is the one field.
    let by_name = NodeSelectorTerm {
        match_expressions: Vec::new(),
        match_fields: vec![req("metadata.name", "In", &["n1"])],
    };
    assert!(by_name.matches("n1", &without));
    assert!(!by_name.matches("n2", &without));
}

#[test]
fn node_selector_and_gpu_models() {
    let h100 = labels(&[(GPU_PRODUCT_LABEL, "H100"), ("pool", "ml")]);
    let a100_by_agent = labels(&[(AGENT_GPU_MODEL_LABEL, "A100"), ("pool", "ml")]);
    let t4 = labels(&[(GPU_PRODUCT_LABEL, "T4")]);
    let p = Placement {
        node_selector: labels(&[("pool", "ml")]),
        gpu_models: vec!["H100".into(), "A100".into()],
        ..Placement::default()
    };
    assert!(p.admits(node("a", &h100, &[])));
    assert!(p.admits(node("b", &a100_by_agent, &[])));
    assert_eq!(
        p.misfit(node("c", &t4, &[])),
        Some(Misfit::NodeSelector { key: "pool".into() })
    );
    let models_only = Placement {
        gpu_models: vec!["H100".into()],
        ..Placement::default()
    };
    assert_eq!(
        models_only.misfit(node("c", &t4, &[])),
        Some(Misfit::GpuModel)
    );
}

#[test]
fn malformed_constraints_name_their_field() {
    let field = |p: Placement| p.check().unwrap_err().field;
    let with_term = |r: Requirement| Placement {
        required: Some(vec![term(vec![r])]),
        ..Placement::default()
    };
    assert_eq!(
        field(with_term(req("a", "Near", &["1"]))),
        "required[0].match_expressions[0].operator"
    );
    assert_eq!(
        field(with_term(req("a", "Gt", &["five"]))),
        "required[0].match_expressions[0].values"
    );
    assert_eq!(
        field(with_term(req("a", "In", &[]))),
        "required[0].match_expressions[0].values"
    );
    assert_eq!(
        field(Placement {
            required: Some(Vec::new()),
            ..Placement::default()
        }),
        "required"
    );
    assert_eq!(
        field(Placement {
            tolerations: vec![toleration("k", "Equal", "v", "NoScheduled")],
            ..Placement::default()
        }),
        "tolerations[0].effect"
    );
    assert_eq!(
        field(Placement {
            tolerations: vec![toleration("", "Equal", "", "")],
            ..Placement::default()
        }),
        "tolerations[0].operator"
    );
    assert_eq!(
        field(Placement {
            preferred: vec![PreferredTerm {
                weight: 0,
                preference: term(vec![req("a", "Exists", &[])]),
            }],
            ..Placement::default()
        }),
        "preferred[0].weight"
    );
    assert_eq!(Placement::default().check(), Ok(()));
}
