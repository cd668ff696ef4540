//! The shipped Grafana dashboard asks only for metrics the controller exports: every
//! metric name in every panel's query is a sample name of the controller's /metrics.

use ebb::cluster::kube::Tick;
use ebb::controller::metrics::Metrics;
use ebb::model::{JobKey, JobPlan, Node, Resources};
use std::collections::BTreeSet;

/// Sample names in the exposition (`ebb_jobs`, `ebb_tick_duration_seconds_bucket`, ...).
fn exported() -> BTreeSet<String> {
    let metrics = Metrics::default();
    let mut tick = Tick::default();
    tick.build
        .snapshot
        .nodes
        .push(Node::new("n", Resources::new(4000, 1 << 30, 2)));
    // A queue, so that the per-queue family has a sample to show.
    tick.build
        .snapshot
        .queues
        .push(serde_json::from_value(serde_json::json!({"name": "default"})).expect("a queue"));
    tick.plan.jobs.push(JobPlan {
        job: JobKey::new("ml", "a"),
        admitted: true,
        reason: None,
        current_trainers: 2,
        target_trainers: 2,
        fair_trainers: 2,
    });
    metrics.record(&tick, 0.01, 1);
    metrics.set_leader(true);
    metrics
        .encode()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// The `ebb_...` names a PromQL expression reads.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("ebb_") {
        let start = i + at;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = expr[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(expr.len(), |e| start + e);
        if boundary {
            names.push(expr[start..end].to_string());
        }
        i = end;
    }
    names
}

#[test]
fn every_dashboard_query_names_exported_metrics() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/monitoring/grafana-dashboard.json"
    );
    let text = std::fs::read_to_string(path).expect("the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    let exported = exported();
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(
        panels.len() >= 6,
        "tick, phases, trainers, allocation, failures, leader"
    );
    let mut asked = 0;
    for panel in panels {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let names = metric_names(expr);
            assert!(
                !names.is_empty(),
                "{}: {expr} reads no ebb metric",
                panel["title"]
            );
            for name in names {
                asked += 1;
                assert!(
                    exported.contains(&name),
                    "{}: {name} is not exported (exported: {exported:?})",
                    panel["title"]
                );
            }
        }
    }
    assert!(asked >= 7);
}

#[test]
fn names_are_read_out_of_queries() {
    assert_eq!(
        metric_names(
            "histogram_quantile(0.9, sum by (le) (rate(ebb_tick_duration_seconds_bucket[5m]))) / ebb_x"
        ),
        ["ebb_tick_duration_seconds_bucket", "ebb_x"]
    );
    assert!(metric_names("rate(myebb_x[1m])").is_empty());
}
