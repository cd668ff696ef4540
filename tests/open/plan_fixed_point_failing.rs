// NOT COMPILED: the fixed-point property fails today, with and without newcomers; it
// moves back into tests/plan_properties.rs (inside its `proptest!` block, which
// supplies `arb_running_world`) once it passes. Analysis: docs/known-issues.md.

#[test]
fn plans_are_a_fixed_point(s in arb_running_world()) {
    let policy = Policy::default();
    let p1 = plan(&s, &policy);
    let after = apply(&s, &p1);
    let again = plan(&after, &policy);
    prop_assert!(again.create.is_empty(), "replan creates: {:?}", again.create);
    prop_assert!(again.delete.is_empty(), "replan deletes: {:?}", again.delete);
}

/// Restricted to worlds with no newcomer: still fails when a job lost its trainers with
/// a node and the repair only fits after the first plan's own changes.
#[test]
fn plans_without_newcomers_are_a_fixed_point(s in arb_running_world()) {
    let policy = Policy::default();
    let mut s = s;
    s.jobs.retain(|j| j.admitted);
    let p1 = plan(&s, &policy);
    let after = apply(&s, &p1);
    let again = plan(&after, &policy);
    prop_assert!(again.create.is_empty(), "replan creates: {:?}", again.create);
    prop_assert!(again.delete.is_empty(), "replan deletes: {:?}", again.delete);
}
