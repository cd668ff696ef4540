//! ebbctl's queue and cluster commands.

use super::{Output, print};
use anyhow::Result;
use clap::{Args, Subcommand};
use ebb::api::proto::{ClusterStateRequest, ListQueuesRequest, Queue, Resources};
use ebb::cli::client::Clients;
use ebb::cli::output::{queues_table, top_header, top_row};
use std::time::Duration;

#[derive(Subcommand)]
pub enum QueueCommand {
    /// Create or change a queue (operators only).
    Set(QueueSetArgs),
    List,
}

#[derive(Args)]
pub struct QueueSetArgs {
    name: String,
    #[arg(long, default_value_t = 1.0)]
    weight: f64,
    #[arg(long)]
    parent: Option<String>,
    /// Guaranteed resources: cpu quantity, memory quantity, GPUs.
    #[arg(long, default_value = "")]
    guaranteed_cpu: String,
    #[arg(long, default_value = "")]
    guaranteed_memory: String,
    #[arg(long, default_value_t = 0)]
    guaranteed_gpus: u32,
    #[arg(long)]
    limit_cpu: Option<String>,
    #[arg(long)]
    limit_memory: Option<String>,
    #[arg(long)]
    limit_gpus: Option<u32>,
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
}

pub async fn queue(c: &mut Clients, q: QueueCommand, output: Output) -> Result<()> {
    let queues = match q {
        QueueCommand::Set(a) => {
            let limited =
                a.limit_cpu.is_some() || a.limit_memory.is_some() || a.limit_gpus.is_some();
            let queue = Queue {
                name: a.name,
                weight: a.weight,
                parent: a.parent.unwrap_or_default(),
                guaranteed: Some(Resources {
                    cpu: a.guaranteed_cpu,
                    memory: a.guaranteed_memory,
                    gpus: a.guaranteed_gpus,
                }),
                limit: limited.then(|| Resources {
                    cpu: a.limit_cpu.unwrap_or_default(),
                    memory: a.limit_memory.unwrap_or_default(),
                    gpus: a.limit_gpus.unwrap_or(0),
                }),
            };
            vec![c.queues.set(queue).await?.into_inner()]
        }
        QueueCommand::List => {
            c.queues
                .list(ListQueuesRequest {})
                .await?
                .into_inner()
                .queues
        }
    };
    let views: Vec<QueueView> = queues
        .iter()
        .map(|q| QueueView {
            name: q.name.clone(),
            weight: q.weight,
            parent: q.parent.clone(),
        })
        .collect();
    print(output, &views, || queues_table(&queues))
}

pub async fn top(c: &mut Clients, a: TopArgs) -> Result<()> {
    anyhow::ensure!(a.interval_s > 0.0, "--interval-s must be positive");
    let mut start = None;
    let mut rows = 0u64;
    let mut header = String::new();
    loop {
        let state = c.cluster.state(ClusterStateRequest {}).await?.into_inner();
        let h = top_header(&state);
        if h != header {
            println!("{h}");
            header = h;
        }
        let t0 = *start.get_or_insert(state.time_s);
        println!("{}", top_row(&state, t0));
        rows += 1;
        if a.count.is_some_and(|n| rows >= n) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs_f64(a.interval_s)).await;
    }
}
