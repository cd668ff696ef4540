//! What ebbctl prints: tables for people, JSON and YAML for programs.

use crate::api::proto::{ClusterState, Job, Queue};
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

pub fn jobs_table(jobs: &[Job]) -> String {
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header([
        "NAMESPACE",
        "NAME",
        "QUEUE",
        "PHASE",
        "TRAINERS",
        "MIN",
        "MAX",
        "PROGRESS",
    ]);
    for job in jobs {
        let v = job_view(job);
        t.add_row([
            v.namespace.clone(),
            v.name.clone(),
            v.queue.clone(),
            v.phase.clone(),
            format!("{}/{}", v.current_trainers, v.target_trainers),
            v.min_trainers.to_string(),
            v.max_trainers.to_string(),
            progress_cell(&v),
        ]);
    }
    t.to_string()
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
    out.push_str("Pods:\n");
    for (pod, node) in &v.pods {
        let node = if node.is_empty() { "(unplaced)" } else { node };
        out.push_str(&format!("  {pod:<32} {node}\n"));
    }
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
    let jobs: Vec<&String> = state.trainers.keys().collect();
    let services: Vec<&String> = state.services.iter().map(|s| &s.name).collect();
    format!(
        "{:>8} | {} | {} | {:>4} | {:>5} {:>5} {:>5}",
        "TIME",
        jobs.iter()
            .map(|j| format!("{j:>14}"))
            .collect::<Vec<_>>()
            .join(" "),
        services
            .iter()
            .map(|s| format!("{s:>8}"))
            .collect::<Vec<_>>()
            .join(" "),
        "PODS",
        "CPU%",
        "MEM%",
        "GPU%"
    )
}

pub fn top_row(state: &ClusterState, start_s: f64) -> String {
    format!(
        "{:>8.0} | {} | {} | {:>4} | {:>5.1} {:>5.1} {:>5.1}",
        state.time_s - start_s,
        state
            .trainers
            .values()
            .map(|n| format!("{n:>14}"))
            .collect::<Vec<_>>()
            .join(" "),
        state
            .services
            .iter()
            .map(|s| format!("{:>8}", s.replicas))
            .collect::<Vec<_>>()
            .join(" "),
        state.pods,
        state.cpu_util * 100.0,
        state.memory_util * 100.0,
        state.gpu_util * 100.0
    )
}
