//! ebbctl's queue and cluster commands.

use super::{Output, print};
use anyhow::Result;
use clap::{Args, Subcommand};
use clap_complete::ArgValueCompleter;
use ebb::api::proto::{
    ClusterStateRequest, ListQueuesRequest, QueuePatch, QueueRef, Resources, ResourcesPatch,
};
use ebb::cli::client::Clients;
use ebb::cli::output::{queues_table, top_header, top_row};
use std::time::Duration;

#[derive(Subcommand)]
pub enum QueueCommand {
    /// Create a queue, or change only the fields given (operators only).
    Set(QueueSetArgs),
    /// One queue.
    Get(QueueNameArgs),
    /// Every queue.
    List,
    /// Delete a queue no job and no child queue uses (operators only).
    Delete(QueueNameArgs),
}

#[derive(Args)]
pub struct QueueNameArgs {
    /// The queue's name.
    #[arg(add = ArgValueCompleter::new(crate::complete::queue_names))]
    name: String,
}

#[derive(Args)]
pub struct QueueSetArgs {
    /// The queue's name (created if it does not exist).
    #[arg(add = ArgValueCompleter::new(crate::complete::queue_names))]
    name: String,
    /// Share relative to its sibling queues, 0.01 to 1000 (a new queue: 1).
    #[arg(long)]
    weight: Option<f64>,
    /// The parent queue ("" for the top level); it must exist.
    #[arg(long)]
    parent: Option<String>,
    /// Guaranteed CPU, a Kubernetes quantity ("8", "500m").
    #[arg(long)]
    guaranteed_cpu: Option<String>,
    /// Guaranteed memory, a Kubernetes quantity ("32Gi").
    #[arg(long)]
    guaranteed_memory: Option<String>,
    /// Guaranteed GPUs.
    #[arg(long)]
    guaranteed_gpus: Option<u32>,
    /// Most CPU the queue's jobs may hold.
    #[arg(long)]
    limit_cpu: Option<String>,
    /// Most memory the queue's jobs may hold.
    #[arg(long)]
    limit_memory: Option<String>,
    /// Most GPUs the queue's jobs may hold.
    #[arg(long)]
    limit_gpus: Option<u32>,
    /// Remove the queue's limit.
    #[arg(long, conflicts_with_all = ["limit_cpu", "limit_memory", "limit_gpus"])]
    clear_limit: bool,
}

#[derive(Args)]
pub struct TopArgs {
    /// Seconds between rows.
    #[arg(long, default_value_t = 2.0)]
    interval_s: f64,
    /// Stop after this many rows (default: until interrupted).
    #[arg(long)]
    count: Option<u64>,
}

#[derive(serde::Serialize)]
struct QueueView {
    name: String,
    weight: f64,
    parent: String,
    guaranteed: Option<ResourcesView>,
    limit: Option<ResourcesView>,
}

#[derive(serde::Serialize)]
struct ResourcesView {
    cpu: String,
    memory: String,
    gpus: u32,
}

fn resources_view(r: &Option<Resources>) -> Option<ResourcesView> {
    r.as_ref().map(|r| ResourcesView {
        cpu: r.cpu.clone(),
        memory: r.memory.clone(),
        gpus: r.gpus,
    })
}

fn patch(a: QueueSetArgs) -> QueuePatch {
    let some = |cpu: &Option<String>, memory: &Option<String>, gpus: Option<u32>| {
        (cpu.is_some() || memory.is_some() || gpus.is_some()).then(|| ResourcesPatch {
            cpu: cpu.clone(),
            memory: memory.clone(),
            gpus,
        })
    };
    QueuePatch {
        guaranteed: some(&a.guaranteed_cpu, &a.guaranteed_memory, a.guaranteed_gpus),
        limit: some(&a.limit_cpu, &a.limit_memory, a.limit_gpus),
        clear_limit: a.clear_limit,
        name: a.name,
        weight: a.weight,
        parent: a.parent,
    }
}

pub async fn queue(c: &mut Clients, q: QueueCommand, output: Output) -> Result<()> {
    let queues = match q {
        QueueCommand::Set(a) => vec![c.queues.set(patch(a)).await?.into_inner()],
        QueueCommand::Get(a) => vec![c.queues.get(QueueRef { name: a.name }).await?.into_inner()],
        QueueCommand::List => {
            c.queues
                .list(ListQueuesRequest {})
                .await?
                .into_inner()
                .queues
        }
        QueueCommand::Delete(a) => {
            c.queues
                .delete(QueueRef {
                    name: a.name.clone(),
                })
                .await?;
            #[derive(serde::Serialize)]
            struct Deleted {
                name: String,
                deleted: bool,
            }
            let text = format!("queue {} deleted", a.name);
            let done = Deleted {
                name: a.name,
                deleted: true,
            };
            return print(output, &done, || text);
        }
    };
    let views: Vec<QueueView> = queues
        .iter()
        .map(|q| QueueView {
            name: q.name.clone(),
            weight: q.weight,
            parent: q.parent.clone(),
            guaranteed: resources_view(&q.guaranteed),
            limit: resources_view(&q.limit),
        })
        .collect();
    print(output, &views, || queues_table(&queues))
}

/// One sample of `top -o json|yaml`.
#[derive(serde::Serialize)]
struct TopView {
    time_s: f64,
    trainers: std::collections::BTreeMap<String, u32>,
    services: std::collections::BTreeMap<String, u32>,
    pods: u32,
    cpu_util: f64,
    memory_util: f64,
    gpu_util: f64,
}

/// Rows between repeated headers of `ebbctl top` when it prints plain lines.
const HEADER_EVERY: u64 = 20;

/// Rows `top` keeps on screen when it redraws in place.
const ROWS_ON_SCREEN: usize = 20;

pub async fn top(c: &mut Clients, a: TopArgs, output: Output) -> Result<()> {
    anyhow::ensure!(a.interval_s > 0.0, "--interval-s must be positive");
    // On a terminal the table is redrawn in place (the newest rows under one header);
    // piped, it is plain lines with the header again every HEADER_EVERY rows.
    let term = console::Term::stdout();
    let redraw = term.is_term();
    let mut start = None;
    let mut rows = 0u64;
    let mut header = String::new();
    let mut recent: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let mut drawn = 0usize;
    loop {
        let state = c.cluster.state(ClusterStateRequest {}).await?.into_inner();
        let h = top_header(&state);
        let t0 = *start.get_or_insert(state.time_s);
        let row = top_row(&state, t0);
        if output != Output::Table {
            let v = TopView {
                time_s: state.time_s - t0,
                trainers: state.trainers.clone(),
                services: state
                    .services
                    .iter()
                    .map(|s| (s.name.clone(), s.replicas))
                    .collect(),
                pods: state.pods,
                cpu_util: state.cpu_util,
                memory_util: state.memory_util,
                gpu_util: state.gpu_util,
            };
            match output {
                Output::Json => println!("{}", serde_json::to_string(&v)?),
                _ => print!("---\n{}", serde_saphyr::to_string(&v)?),
            }
        } else if redraw {
            if h != header {
                // New columns: the old rows no longer line up under them.
                recent.clear();
                header = h;
            }
            recent.push_back(row);
            let keep = usize::from(term.size().0.saturating_sub(3)).clamp(1, ROWS_ON_SCREEN);
            while recent.len() > keep {
                recent.pop_front();
            }
            term.clear_last_lines(drawn)?;
            term.write_line(&header)?;
            for r in &recent {
                term.write_line(r)?;
            }
            drawn = 1 + recent.len();
        } else {
            if h != header || rows.is_multiple_of(HEADER_EVERY) {
                println!("{h}");
                header = h;
            }
            println!("{row}");
        }
        rows += 1;
        if a.count.is_some_and(|n| rows >= n) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs_f64(a.interval_s)).await;
    }
}
