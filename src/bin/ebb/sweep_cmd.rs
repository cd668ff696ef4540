//! `ebb bench plan --sweep N1,N2,...`: the plan benchmark at several sizes, and how its
//! times grow.

use anyhow::{Context, Result};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use ebb::bench::generate::ClusterSpec;
use ebb::bench::growth;

pub fn run(base: &ClusterSpec, nodes: &[usize], runs: usize, json: bool) -> Result<()> {
    anyhow::ensure!(
        nodes.iter().all(|&n| n > 0),
        "--sweep: every node count must be at least 1"
    );
    let mut distinct = nodes.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    anyhow::ensure!(
        distinct.len() >= 2,
        "--sweep needs at least two different node counts to fit a growth"
    );
    let r = growth::sweep(base, nodes, runs);
    if json {
        let text = serde_json::to_string(&r).context("serialising the result")?;
        println!("{text}");
        return Ok(());
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "nodes",
        "jobs",
        "median ms",
        "µs per node + job",
        "input clone ms",
        "input index ms",
    ]);
    for b in &r.sizes {
        let per = b.median_ms * 1e3 / (b.nodes + b.jobs) as f64;
        t.add_row(vec![
            b.nodes.to_string(),
            b.jobs.to_string(),
            format!("{:.2}", b.median_ms),
            format!("{per:.3}"),
            format!("{:.2}", b.input_clone_ms),
            format!("{:.2}", b.input_index_ms),
        ]);
    }
    println!("{t}");
    let k = |e: Option<f64>| e.map_or("-".to_string(), |e| format!("{e:.2}"));
    println!(
        "time ~ (nodes + jobs)^k: plan k = {}; input clone k = {}, input index k = {} (1 is linear)",
        k(r.exponent.median_ms),
        k(r.exponent.input_clone_ms),
        k(r.exponent.input_index_ms)
    );
    Ok(())
}
