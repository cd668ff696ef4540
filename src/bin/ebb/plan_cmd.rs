//! `ebb plan`: plan one snapshot file and print the plan, optionally explained.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use ebb::model::Plan;
use ebb::plan::explain::{Explanation, explain};
use ebb::plan::file::{FORMAT_VERSION, PlanFile, SnapshotFile};
use std::io::Read;
use std::path::PathBuf;

#[derive(Args)]
pub struct PlanArgs {
    /// Snapshot file (docs/snapshot.md); `-` reads standard input.
    #[arg(default_value = "-")]
    file: PathBuf,
    /// Say, per job, why it got what it got.
    #[arg(long)]
    explain: bool,
    /// A table for people, or the plan as JSON (docs/snapshot.md describes it).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Table,
}

pub fn plan(a: PlanArgs) -> Result<()> {
    let (text, name) = if a.file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the snapshot from standard input")?;
        (text, "standard input".to_string())
    } else {
        let text = std::fs::read_to_string(&a.file)
            .with_context(|| format!("reading {}", a.file.display()))?;
        (text, a.file.display().to_string())
    };
    let file = SnapshotFile::parse(&text).with_context(|| format!("{name} is not a snapshot"))?;
    let plan = ebb::plan::plan(&file.snapshot, &file.policy);
    let explained = a
        .explain
        .then(|| explain(&file.snapshot, &file.policy, &plan));
    match a.format {
        Format::Json => {
            let out = PlanFile {
                version: FORMAT_VERSION,
                plan: &plan,
                explain: explained.as_deref(),
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&out).context("serialising the plan")?
            );
        }
        Format::Table => print!("{}", table(&plan, explained.as_deref())),
    }
    Ok(())
}

fn table(plan: &Plan, explained: Option<&[Explanation]>) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_content_arrangement(ContentArrangement::Dynamic);
    t.set_width(110);
    t.set_header(vec!["job", "admitted", "trainers", "fair share", "why"]);
    for (i, jp) in plan.jobs.iter().enumerate() {
        let why = match explained.and_then(|e| e.get(i)) {
            Some(e) => e
                .because
                .iter()
                .map(|b| format!("- {}", b.text))
                .collect::<Vec<_>>()
                .join("\n"),
            None => jp.reason.as_ref().map_or(String::new(), |r| r.to_string()),
        };
        t.add_row(vec![
            jp.job.to_string(),
            if jp.admitted { "yes" } else { "pending" }.to_string(),
            format!("{} -> {}", jp.current_trainers, jp.target_trainers),
            jp.fair_trainers.to_string(),
            why,
        ]);
    }
    let mut out = format!("{t}\n");
    out.push_str(&format!(
        "pods to create: {}, to delete: {}, to recreate after delete: {}, service pods placed: {}\n",
        plan.create.len(),
        plan.delete.len(),
        plan.recreate_after_delete.len(),
        plan.service_reservations.len()
    ));
    for r in &plan.scale_up {
        let nodes: Vec<String> = r
            .nodes
            .iter()
            .map(|n| format!("{} x {}", n.count, n.group))
            .collect();
        out.push_str(&format!(
            "nodes to ask for: {}: {}\n",
            r.job,
            nodes.join(", ")
        ));
    }
    for p in &plan.problems {
        out.push_str(&format!("problem: {p}\n"));
    }
    out
}
