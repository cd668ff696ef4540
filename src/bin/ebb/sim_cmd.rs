//! `ebb sim`: run a scenario on the simulator under one or both policies.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use ebb::cluster::sim::{self, PolicyKind, PolicyResult, Scenario, plot, report};
use ebb::model::Snapshot;
use ebb::plan::Policy;
use ebb::plan::file::SnapshotFile;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Args)]
pub struct SimArgs {
    /// Scenario file (YAML; see docs/scenarios.md).
    #[arg(required_unless_present = "trace")]
    scenario: Option<PathBuf>,
    /// Replay a DL trace instead: `name,time,application,num_replicas,batch_size[,duration]`.
    #[arg(long, conflicts_with = "scenario", requires_all = ["throughput", "cluster"])]
    trace: Option<PathBuf>,
    /// Directory of per-application throughput tables (`APP/placements.csv`).
    #[arg(long, requires = "trace")]
    throughput: Option<PathBuf>,
    /// The cluster to replay the trace on (YAML; see docs/scenarios.md).
    #[arg(long, requires = "trace")]
    cluster: Option<PathBuf>,
    /// Run the elastic policy, the static one (each job at its requested size, strict
    /// FIFO), or both to compare them.
    #[arg(long, value_enum, default_value_t = PolicyChoice::Both)]
    policy: PolicyChoice,
    /// Write the results (per policy: jobs, utilisation, time series) as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Draw utilisation and pods over time here (.svg or .png).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Write the snapshot of every controller plan here, as `POLICY-TICK.json` files that
    /// `ebb plan` replays.
    #[arg(long)]
    dump_snapshots: Option<PathBuf>,
    /// Override the scenario's controller period (seconds).
    #[arg(long)]
    tick_s: Option<f64>,
}

#[derive(Clone, Copy, ValueEnum)]
enum PolicyChoice {
    Elastic,
    Static,
    NaiveElastic,
    /// Elastic and static.
    Both,
    /// Elastic, static and naive-elastic.
    All,
}

pub fn sim(a: SimArgs) -> Result<()> {
    let (mut scenario, source) = match (&a.scenario, &a.trace, &a.throughput, &a.cluster) {
        (Some(path), _, _, _) => (Scenario::load(path)?, path.clone()),
        (None, Some(trace), Some(dir), Some(cluster)) => {
            (sim::trace::load(trace, dir, cluster)?, trace.clone())
        }
        _ => anyhow::bail!("give a scenario, or --trace with --throughput and --cluster"),
    };
    if let Some(t) = a.tick_s {
        anyhow::ensure!(
            t.is_finite() && t > 0.0,
            "--tick-s must be a positive number of seconds"
        );
        scenario.tick_s = t;
    }
    // A plot that could not be written is refused before the run, not after it.
    if let Some(path) = &a.plot {
        plot::check_path(path)?;
    }
    let kinds = match a.policy {
        PolicyChoice::Elastic => vec![PolicyKind::Elastic],
        PolicyChoice::Static => vec![PolicyKind::Static],
        PolicyChoice::NaiveElastic => vec![PolicyKind::NaiveElastic],
        PolicyChoice::Both => vec![PolicyKind::Elastic, PolicyKind::Static],
        PolicyChoice::All => vec![
            PolicyKind::Elastic,
            PolicyKind::Static,
            PolicyKind::NaiveElastic,
        ],
    };
    let mut results: Vec<PolicyResult> = Vec::new();
    for kind in kinds {
        if let Some(dir) = &a.dump_snapshots {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut watch = Watch {
            bar: progress_bar(kind),
            dump: a.dump_snapshots.clone(),
            kind,
            failed: None,
            per_job_series: a.json.is_some() || a.plot.is_some(),
        };
        let started = std::time::Instant::now();
        let r = sim::run(&scenario, kind, &mut watch)
            .with_context(|| format!("simulating {}", source.display()))?;
        if let Some(bar) = &watch.bar {
            bar.finish_and_clear();
        }
        if let Some(e) = watch.failed {
            return Err(e);
        }
        tracing::info!(
            policy = report::policy_name(kind),
            wall_ms = started.elapsed().as_secs_f64() * 1e3,
            plans = r.plans,
            "simulated"
        );
        results.push(r);
    }
    println!("scenario: {}", scenario.name);
    if !scenario.description.is_empty() {
        println!("{}", scenario.description.trim());
    }
    print!("{}", report::tables(&results));
    if let Some(path) = &a.json {
        let text = if results.len() == 1 {
            serde_json::to_string_pretty(&results[0])
        } else {
            serde_json::to_string_pretty(&results)
        }
        .context("serialising the results")?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &a.plot {
        plot::plot(&results, &scenario.name, path)?;
        println!("plot written to {}", path.display());
    }
    Ok(())
}

/// Progress on a terminal, and snapshot dumps.
struct Watch {
    bar: Option<ProgressBar>,
    dump: Option<PathBuf>,
    kind: PolicyKind,
    /// The first dump that could not be written (the run goes on; the command fails).
    failed: Option<anyhow::Error>,
    /// `--json` or `--plot` will show every job's trainers over time.
    per_job_series: bool,
}

impl sim::Observer for Watch {
    fn per_job_series(&self) -> bool {
        self.per_job_series
    }

    fn progress(&mut self, t: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position(t as u64);
        }
    }

    fn before_plan(&mut self, tick: u64, snapshot: &Snapshot, policy: &Policy) {
        let Some(dir) = &self.dump else { return };
        if self.failed.is_some() {
            return;
        }
        let path = dir.join(format!("{}-{tick:06}.json", report::policy_name(self.kind)));
        let file = SnapshotFile::new(snapshot.clone(), policy.clone());
        if let Err(e) = std::fs::write(&path, file.to_json()) {
            self.failed = Some(anyhow::anyhow!("writing {}: {e}", path.display()));
        }
    }
}

/// A spinner showing virtual time, only when stderr is a terminal (the end of a run is
/// not known in advance: it is when the last job finishes).
fn progress_bar(kind: PolicyKind) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}: virtual time {pos} s") {
        bar.set_style(style);
    }
    bar.set_message(format!("simulating {}", report::policy_name(kind)));
    Some(bar)
}
