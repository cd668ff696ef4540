//! What a run measured, in the shape `--json` writes (`docs/scenarios.md`), and the
//! seed's tables.

use super::autoscaler::NodeAccount;
use super::world::{PolicyKind, World};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub t: f64,
    pub cpu_util: f64,
    pub gpu_util: f64,
    /// Every job's live trainers, when the run keeps them (see
    /// [`super::Observer::per_job_series`]); empty otherwise.
    pub trainers: BTreeMap<String, u32>,
    /// Live trainers of all jobs together, always kept.
    #[serde(skip)]
    pub trainers_total: u32,
    pub services: BTreeMap<String, u32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct JobResult {
    pub name: String,
    pub submit_s: f64,
    pub start_s: Option<f64>,
    pub end_s: Option<f64>,
    pub pending_s: Option<f64>,
    pub running_s: Option<f64>,
    /// The node groups its trainers ran on (scenario `prefix`es), and those of its
    /// master and pservers.
    pub trainers_ran_on: Vec<String>,
    pub support_ran_on: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ServiceResult {
    pub name: String,
    /// Per load step: the offered load and, at the end of the step, the service's pods
    /// and every job's trainers.
    pub steps: Vec<StepResult>,
    pub longest_pending_s: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct StepResult {
    pub at_s: f64,
    pub qps: f64,
    pub pods: u32,
    pub trainers: u32,
    pub cpu_util_mean: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct PolicyResult {
    pub policy: PolicyKind,
    pub jobs: Vec<JobResult>,
    pub cpu_util_mean: f64,
    pub gpu_util_mean: f64,
    pub avg_pending_s: Option<f64>,
    pub avg_running_s: Option<f64>,
    /// Submit to end (job completion time), averaged over finished jobs.
    pub avg_completion_s: Option<f64>,
    pub p99_completion_s: Option<f64>,
    /// When the last job ended (or the run stopped).
    pub makespan_s: f64,
    pub services: Vec<ServiceResult>,
    /// Controller ticks that ran a plan (ticks on an unchanged world are skipped).
    pub plans: u64,
    /// Node-hours, cost and nodes an autoscaler added (see `autoscaler.rs`), written
    /// beside the other figures.
    #[serde(flatten)]
    pub nodes: NodeAccount,
    pub series: Vec<Sample>,
}

impl PolicyResult {
    pub fn build(
        kind: PolicyKind,
        w: &World,
        series: Vec<Sample>,
        now: f64,
        plans: u64,
        nodes: NodeAccount,
    ) -> Self {
        let jobs: Vec<JobResult> = w
            .jobs
            .iter()
            .zip(&w.progress)
            .map(|(j, progress)| JobResult {
                name: j.spec.name.clone(),
                submit_s: j.spec.submit_s,
                start_s: j.start_s,
                end_s: progress.end_s,
                pending_s: j.start_s.map(|s| s - j.spec.submit_s),
                running_s: j.start_s.zip(progress.end_s).map(|(s, e)| e - s),
                trainers_ran_on: groups(j, true),
                support_ran_on: groups(j, false),
            })
            .collect();
        let makespan_s = jobs
            .iter()
            .map(|j| j.end_s.unwrap_or(now))
            .fold(0.0, f64::max);
        let horizon = if jobs.is_empty() { now } else { makespan_s };
        let services = w
            .services
            .iter()
            .map(|svc| {
                let mut steps: Vec<_> = svc.spec.load.clone();
                steps.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
                let results = steps
                    .iter()
                    .enumerate()
                    .map(|(k, step)| {
                        // The last step lasts as long as the one before it (or an hour).
                        let until = match steps.get(k + 1) {
                            Some(next) => next.at_s,
                            None => {
                                let len = k
                                    .checked_sub(1)
                                    .map_or(3600.0, |p| step.at_s - steps[p].at_s);
                                (step.at_s + len).min(now)
                            }
                        };
                        // The state the step settled in, just before the next one begins.
                        let at_end = value_at(&series, until - 1e-6);
                        StepResult {
                            at_s: step.at_s,
                            qps: step.qps,
                            pods: at_end
                                .and_then(|s| s.services.get(&svc.spec.name).copied())
                                .unwrap_or(0),
                            trainers: at_end.map_or(0, |s| s.trainers_total),
                            cpu_util_mean: time_mean(&series, step.at_s, until, |s| s.cpu_util),
                        }
                    })
                    .collect();
                ServiceResult {
                    name: svc.spec.name.clone(),
                    steps: results,
                    longest_pending_s: svc.longest_pending_s,
                }
            })
            .collect();
        let mut completions: Vec<f64> = jobs
            .iter()
            .filter_map(|j| j.end_s.map(|e| e - j.submit_s))
            .collect();
        completions.sort_by(f64::total_cmp);
        let p99_completion_s = (!completions.is_empty()).then(|| {
            let rank = (0.99 * completions.len() as f64).ceil() as usize;
            completions[rank.clamp(1, completions.len()) - 1]
        });
        let mean = |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        PolicyResult {
            policy: kind,
            avg_pending_s: mean(jobs.iter().filter_map(|j| j.pending_s).collect()),
            avg_running_s: mean(jobs.iter().filter_map(|j| j.running_s).collect()),
            avg_completion_s: mean(completions),
            p99_completion_s,
            cpu_util_mean: time_mean(&series, 0.0, horizon, |s| s.cpu_util),
            gpu_util_mean: time_mean(&series, 0.0, horizon, |s| s.gpu_util),
            jobs,
            makespan_s,
            services,
            plans,
            nodes,
            series,
        }
    }
}

/// The node groups job `j`'s trainers (or its master and pservers) ran on.
fn groups(j: &super::world::SimJob, trainers: bool) -> Vec<String> {
    // The set is ordered by role first: the master's and the pservers' groups are
    // merged here, each named once.
    let g: BTreeSet<&String> = j
        .ran_on
        .iter()
        .filter(|(role, _)| (*role == crate::model::Role::Trainer) == trainers)
        .map(|(_, g)| g)
        .collect();
    g.into_iter().cloned().collect()
}

/// The last sample at or before `t` (the series is a step function).
pub fn value_at(series: &[Sample], t: f64) -> Option<&Sample> {
    let i = series.partition_point(|s| s.t <= t);
    i.checked_sub(1).map(|i| &series[i])
}

/// Time-weighted mean of `f` over [from, to] of the step function.
pub fn time_mean(series: &[Sample], from: f64, to: f64, f: impl Fn(&Sample) -> f64) -> f64 {
    if to <= from {
        return value_at(series, from).map_or(0.0, &f);
    }
    let mut total = 0.0;
    for (i, s) in series.iter().enumerate() {
        let start = s.t.max(from);
        let end = series.get(i + 1).map_or(to, |n| n.t).min(to);
        if end > start {
            total += f(s) * (end - start);
        }
    }
    total / (to - from)
}

const PER_JOB_ROWS: usize = 20;

fn hours(s: Option<f64>) -> String {
    s.map_or("—".into(), |v| format!("{:.2} h", v / 3600.0))
}

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// The seed's comparison: per job, then averages and utilisation, one column per policy.
pub fn tables(results: &[PolicyResult]) -> String {
    let mut out = String::new();
    // Per-job tables for experiments; a replayed trace is summed up only (`--json`
    // holds every job).
    for r in results.iter().filter(|r| r.jobs.len() <= PER_JOB_ROWS) {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED);
        // Where jobs ran is worth a column only on a cluster of several node groups.
        let mut groups: Vec<&String> = r
            .jobs
            .iter()
            .flat_map(|j| j.trainers_ran_on.iter().chain(&j.support_ran_on))
            .collect();
        groups.sort();
        groups.dedup();
        let show_nodes = groups.len() > 1;
        let mut header = vec!["job", "submitted", "started", "ended", "pending", "running"];
        if show_nodes {
            header.extend(["trainers on", "master, pservers on"]);
        }
        t.set_header(header);
        for j in &r.jobs {
            let mut row = vec![
                j.name.clone(),
                hours(Some(j.submit_s)),
                hours(j.start_s),
                hours(j.end_s),
                hours(j.pending_s),
                hours(j.running_s),
            ];
            if show_nodes {
                row.push(j.trainers_ran_on.join(", "));
                row.push(j.support_ran_on.join(", "));
            }
            t.add_row(row);
        }
        out.push_str(&format!("policy: {}\n{t}\n", policy_name(r.policy)));
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    let mut header = vec!["metric".to_string()];
    header.extend(results.iter().map(|r| policy_name(r.policy).to_string()));
    t.set_header(header);
    let row = |name: &str, f: &dyn Fn(&PolicyResult) -> String| {
        let mut row = vec![name.to_string()];
        row.extend(results.iter().map(f));
        row
    };
    t.add_row(row("average running time", &|r| hours(r.avg_running_s)));
    t.add_row(row("average pending time", &|r| hours(r.avg_pending_s)));
    t.add_row(row("average completion time", &|r| {
        hours(r.avg_completion_s)
    }));
    t.add_row(row("p99 completion time", &|r| hours(r.p99_completion_s)));
    t.add_row(row("makespan", &|r| hours(Some(r.makespan_s))));
    t.add_row(row("jobs finished", &|r| {
        let done = r.jobs.iter().filter(|j| j.end_s.is_some()).count();
        format!("{done} of {}", r.jobs.len())
    }));
    t.add_row(row("CPU utilisation", &|r| pct(r.cpu_util_mean)));
    t.add_row(row("GPU utilisation", &|r| pct(r.gpu_util_mean)));
    t.add_row(row("plans run", &|r| r.plans.to_string()));
    t.add_row(row("node-hours", &|r| format!("{:.2}", r.nodes.node_hours)));
    if results.iter().any(|r| r.nodes.cost.is_some()) {
        t.add_row(row("node cost", &|r| {
            r.nodes.cost.map_or("-".into(), |c| format!("{c:.2}"))
        }));
    }
    if results.iter().any(|r| r.nodes.nodes_added > 0) {
        t.add_row(row("nodes added", &|r| r.nodes.nodes_added.to_string()));
        t.add_row(row("nodes added unused", &|r| {
            r.nodes.nodes_added_unused.to_string()
        }));
    }
    out.push_str(&format!("{t}\n"));

    for (s, svc) in results
        .first()
        .map_or(&[][..], |r| &r.services[..])
        .iter()
        .enumerate()
    {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED);
        let mut header = vec!["metric".to_string()];
        header.extend(svc.steps.iter().map(|st| format!("QPS {}", st.qps)));
        t.set_header(header);
        for r in results {
            let Some(this) = r.services.get(s) else {
                continue;
            };
            let name = policy_name(r.policy);
            let cells = |f: &dyn Fn(&StepResult) -> String| this.steps.iter().map(f).collect();
            let mut row = vec![format!("trainer pods ({name})")];
            row.extend::<Vec<String>>(cells(&|st| st.trainers.to_string()));
            t.add_row(row);
            let mut row = vec![format!("{} pods ({name})", this.name)];
            row.extend::<Vec<String>>(cells(&|st| st.pods.to_string()));
            t.add_row(row);
            let mut row = vec![format!("CPU utilisation ({name})")];
            row.extend::<Vec<String>>(cells(&|st| pct(st.cpu_util_mean)));
            t.add_row(row);
        }
        out.push_str(&format!("service {}\n{t}\n", svc.name));
        for r in results {
            if let Some(this) = r.services.get(s) {
                out.push_str(&format!(
                    "longest a {} pod waited for a node ({}): {:.0} s\n",
                    this.name,
                    policy_name(r.policy),
                    this.longest_pending_s
                ));
            }
        }
    }
    out
}

pub fn policy_name(p: PolicyKind) -> &'static str {
    match p {
        PolicyKind::Elastic => "elastic",
        PolicyKind::Static => "static",
        PolicyKind::NaiveElastic => "naive-elastic",
    }
}
