//! What ebbctl prints: tables for people, JSON and YAML for programs.

use crate::api::proto::{ClusterState, Event, Job, Queue};
use comfy_table::{Table, presets::NOTHING};
use serde::Serialize;
use std::collections::BTreeMap;

/// A job as ebbctl's `-o json|yaml` shows it.
#[derive(Debug, Serialize)]
pub struct JobView {
    pub namespace: String,
    pub name: String,
    pub queue: String,
    pub phase: String,
    pub min_trainers: u32,
    pub max_trainers: u32,
    pub current_trainers: u32,
    pub target_trainers: u32,
    pub passes: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<ProgressView>,
    pub conditions: Vec<ConditionView>,
    pub pods: BTreeMap<String, String>,
    /// With `get`: each pod's role, phase, node and restarts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pod_statuses: Vec<PodView>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// When it was submitted (seconds since the Unix epoch).
    pub submit_s: f64,
}

#[derive(Debug, Serialize)]
pub struct PodView {
    pub name: String,
    pub role: String,
    pub phase: String,
    pub node: String,
    pub restarts: u32,
}

#[derive(Debug, Serialize)]
pub struct ProgressView {
    pub current_pass: u32,
    pub passes: u32,
    pub chunks_done: u32,
    pub chunks_per_pass: u32,
    pub last_accuracy: f64,
    pub finished: bool,
    pub duplicate_completions: u64,
}

#[derive(Debug, Serialize)]
pub struct ConditionView {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub reason: String,
    pub message: String,
}

pub fn job_view(job: &Job) -> JobView {
    let spec = job.spec.clone().unwrap_or_default();
    let status = job.status.clone().unwrap_or_default();
    JobView {
        namespace: spec.namespace,
        name: spec.name,
        queue: spec.queue,
        phase: status.phase,
        min_trainers: spec.min_trainers,
        max_trainers: spec.max_trainers,
        current_trainers: status.current_trainers,
        target_trainers: status.target_trainers,
        passes: spec.passes,
        progress: status.progress.map(|p| ProgressView {
            current_pass: p.current_pass,
            passes: p.passes,
            chunks_done: p.chunks_done,
            chunks_per_pass: p.chunks_per_pass,
            last_accuracy: p.last_accuracy,
            finished: p.finished,
            duplicate_completions: p.duplicate_completions,
        }),
        conditions: status
            .conditions
            .into_iter()
            .map(|c| ConditionView {
                kind: c.r#type,
                status: c.status,
                reason: c.reason,
                message: c.message,
            })
            .collect(),
        pods: status.pods.into_iter().collect(),
        pod_statuses: status
            .pod_statuses
            .into_iter()
            .map(|p| PodView {
                name: p.name,
                role: p.role,
                phase: p.phase,
                node: p.node,
                restarts: p.restarts,
            })
            .collect(),
        labels: spec.labels.into_iter().collect(),
        submit_s: status.submit_s,
    }
}

fn progress_cell(v: &JobView) -> String {
    match &v.progress {
        Some(p) if p.finished => format!("done, accuracy {:.1}%", p.last_accuracy * 100.0),
        Some(p) => format!(
            "pass {}/{} {}/{}",
            (p.current_pass + 1).min(p.passes),
            p.passes,
            p.chunks_done,
            p.chunks_per_pass
        ),
        None => "-".into(),
    }
}

/// `ebbctl list`: one row a job, AGE as kubectl prints it (relative to `now_s`).
pub fn jobs_table(jobs: &[Job], now_s: f64) -> String {
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header(JOB_COLUMNS);
    for job in jobs {
        t.add_row(job_row(job, now_s));
    }
    t.to_string()
}

pub const JOB_COLUMNS: [&str; 9] = [
    "NAMESPACE",
    "NAME",
    "QUEUE",
    "PHASE",
    "TRAINERS",
    "MIN",
    "MAX",
    "PROGRESS",
    "AGE",
];

/// One job's cells under `JOB_COLUMNS`.
pub fn job_row(job: &Job, now_s: f64) -> [String; 9] {
    let v = job_view(job);
    [
        v.namespace.clone(),
        v.name.clone(),
        v.queue.clone(),
        v.phase.clone(),
        format!("{}/{}", v.current_trainers, v.target_trainers),
        v.min_trainers.to_string(),
        v.max_trainers.to_string(),
        progress_cell(&v),
        if v.submit_s > 0.0 {
            age(now_s - v.submit_s)
        } else {
            "-".into()
        },
    ]
}

pub fn describe(job: &Job) -> String {
    let v = job_view(job);
    let mut out = format!(
        "Name:       {}/{}\nQueue:      {}\nPhase:      {}\nTrainers:   {} running, target {} (min {}, max {})\nProgress:   {}\n",
        v.namespace,
        v.name,
        v.queue,
        v.phase,
        v.current_trainers,
        v.target_trainers,
        v.min_trainers,
        v.max_trainers,
        progress_cell(&v)
    );
    out.push_str("Conditions:\n");
    for c in &v.conditions {
        out.push_str(&format!(
            "  {:<10} {:<6} {:<22} {}\n",
            c.kind, c.status, c.reason, c.message
        ));
    }
    if !v.labels.is_empty() {
        let labels: Vec<String> = v.labels.iter().map(|(k, l)| format!("{k}={l}")).collect();
        out.push_str(&format!("Labels:     {}\n", labels.join(",")));
    }
    out.push_str("Pods:\n");
    if v.pod_statuses.is_empty() {
        for (pod, node) in &v.pods {
            let node = if node.is_empty() { "(unplaced)" } else { node };
            out.push_str(&format!("  {pod:<32} {node}\n"));
        }
        return out;
    }
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header(["  NAME", "ROLE", "PHASE", "NODE", "RESTARTS"]);
    for p in &v.pod_statuses {
        let node = if p.node.is_empty() {
            "(unplaced)"
        } else {
            &p.node
        };
        t.add_row([
            format!("  {}", p.name),
            p.role.clone(),
            p.phase.clone(),
            node.to_string(),
            p.restarts.to_string(),
        ]);
    }
    out.push_str(&t.to_string());
    out.push('\n');
    out
}

pub fn queues_table(queues: &[Queue]) -> String {
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header(["NAME", "WEIGHT", "PARENT", "GUARANTEED", "LIMIT"]);
    let res = |r: &Option<crate::api::proto::Resources>| {
        r.as_ref().map_or("-".to_string(), |r| {
            format!(
                "cpu {} mem {} gpu {}",
                or_dash(&r.cpu),
                or_dash(&r.memory),
                r.gpus
            )
        })
    };
    for q in queues {
        t.add_row([
            q.name.clone(),
            q.weight.to_string(),
            or_dash(&q.parent).to_string(),
            res(&q.guaranteed),
            res(&q.limit),
        ]);
    }
    t.to_string()
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// One line of `ebbctl top`, like the seed's watch script: time | trainers per job |
/// pods | utilisation.
pub fn top_header(state: &ClusterState) -> String {
    let mut cells = vec![format!("{:>8}", "TIME(s)")];
    let jobs: Vec<String> = state.trainers.keys().map(|j| format!("{j:>14}")).collect();
    cells.push(jobs.join(" "));
    if !state.services.is_empty() {
        let services: Vec<String> = state
            .services
            .iter()
            .map(|s| format!("{:>8}", s.name))
            .collect();
        cells.push(services.join(" "));
    }
    cells.push(format!("{:>4}", "PODS"));
    cells.push(format!("{:>5} {:>5} {:>5}", "CPU%", "MEM%", "GPU%"));
    cells.join(" | ")
}

pub fn top_row(state: &ClusterState, start_s: f64) -> String {
    let mut cells = vec![format!("{:>8.0}", state.time_s - start_s)];
    let jobs: Vec<String> = state
        .trainers
        .values()
        .map(|n| format!("{n:>14}"))
        .collect();
    cells.push(jobs.join(" "));
    if !state.services.is_empty() {
        let services: Vec<String> = state
            .services
            .iter()
            .map(|s| format!("{:>8}", s.replicas))
            .collect();
        cells.push(services.join(" "));
    }
    cells.push(format!("{:>4}", state.pods));
    cells.push(format!(
        "{:>5.1} {:>5.1} {:>5.1}",
        state.cpu_util * 100.0,
        state.memory_util * 100.0,
        state.gpu_util * 100.0
    ));
    cells.join(" | ")
}

/// An Event as `-o json|yaml` shows it.
#[derive(Debug, Serialize)]
pub struct EventView {
    pub namespace: String,
    pub job: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub reason: String,
    pub message: String,
    pub time_s: f64,
    pub count: u32,
}

pub fn event_view(e: &Event) -> EventView {
    EventView {
        namespace: e.namespace.clone(),
        job: e.job.clone(),
        kind: e.r#type.clone(),
        reason: e.reason.clone(),
        message: e.message.clone(),
        time_s: e.time_s,
        count: e.count,
    }
}

/// `ebbctl events`, like `kubectl get events`: LAST SEEN (seconds before `now_s`), TYPE,
/// REASON, OBJECT, MESSAGE (with the count when it repeated).
pub fn events_table(events: &[Event], now_s: f64) -> String {
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header(["LAST SEEN", "TYPE", "REASON", "JOB", "MESSAGE"]);
    for e in events {
        t.add_row([
            age(now_s - e.time_s),
            e.r#type.clone(),
            e.reason.clone(),
            format!("{}/{}", e.namespace, e.job),
            event_message(e),
        ]);
    }
    t.to_string()
}

/// One Event as a line, for `events -w` and `describe`.
pub fn event_line(e: &Event, now_s: f64) -> String {
    format!(
        "{:<8} {:<8} {:<12} {}/{}: {}",
        age(now_s - e.time_s),
        e.r#type,
        e.reason,
        e.namespace,
        e.job,
        event_message(e)
    )
}

fn event_message(e: &Event) -> String {
    if e.count > 1 {
        format!("{} (x{})", e.message, e.count)
    } else {
        e.message.clone()
    }
}

/// An age as kubectl prints it: 45s, 3m12s, 2h5m, 3d4h.
pub fn age(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod event_tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(age(45.2), "45s");
        assert_eq!(age(192.0), "3m12s");
        assert_eq!(age(7500.0), "2h5m");
        assert_eq!(age(3.0 * 86400.0 + 4.0 * 3600.0), "3d4h");
        assert_eq!(age(-5.0), "0s");
    }

    #[test]
    fn repeated_events_show_their_count() {
        let e = Event {
            namespace: "default".into(),
            job: "j".into(),
            r#type: "Warning".into(),
            reason: "PodFailed".into(),
            message: "j-master-0 failed".into(),
            time_s: 100.0,
            count: 3,
        };
        let line = event_line(&e, 110.0);
        assert!(line.starts_with("10s"), "{line}");
        assert!(
            line.ends_with("default/j: j-master-0 failed (x3)"),
            "{line}"
        );
        assert!(events_table(&[e], 110.0).contains("PodFailed"));
    }
}
