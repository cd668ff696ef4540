//! The `ebb` binary: every long-running part of ebb, and its tools.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use ebb::bench::{generate::ClusterSpec, plan_bench};

// glibc hands large freed buffers back to the kernel at once, so every 256 KiB parameter
// block (and every planning pass's vectors) paid fresh page faults: a third of pserver
// time went to the kernel zeroing pages. mimalloc keeps and reuses them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod agent_cmd;
mod controller_cmd;
mod coord_cmd;
mod plan_cmd;
mod sim_cmd;
mod sweep_cmd;
mod up_cmd;

#[derive(Parser)]
#[command(
    name = "ebb",
    version,
    about = "Elastic training-job scheduler for Kubernetes"
)]
struct Cli {
    /// Log lines as text (plain unless standard error is a terminal; NO_COLOR respected)
    /// or as JSON objects.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// A job's master: leases data chunks to trainers.
    Master(coord_cmd::MasterArgs),
    /// A job's parameter server: one shard of the parameters.
    Pserver(coord_cmd::PserverArgs),
    /// The reference elastic trainer (digits, softmax regression or MLP).
    Trainer(coord_cmd::TrainerArgs),
    /// The Kubernetes controller: plans every tick and applies it to the cluster.
    Controller(controller_cmd::ControllerArgs),
    /// Print the CustomResourceDefinitions (TrainingJob, TrainingQueue) as YAML.
    Crds,
    /// The whole system on this machine: controller, control API, and a declared
    /// cluster whose pods are local processes.
    Up(up_cmd::UpArgs),
    /// A minimal HTTP service that counts requests (the online service `ebb up` scales).
    #[command(hide = true)]
    ServeHttp(up_cmd::ServeHttpArgs),
    /// The node agent: GPUs and their NVLink groups, published on the Node.
    Agent(agent_cmd::AgentArgs),
    /// Plan one cluster snapshot from a file (or stdin) and print, or explain, the plan.
    Plan(plan_cmd::PlanArgs),
    /// Run a scenario on the simulator (the same planner, a virtual cluster and clock).
    Sim(sim_cmd::SimArgs),
    /// Measure ebb's hot paths.
    #[command(subcommand)]
    Bench(Bench),
}

#[derive(Subcommand)]
enum Bench {
    /// Time `plan::plan` on a generated cluster.
    Plan(PlanArgs),
    /// One controller tick (API objects -> snapshot -> plan -> actions) on a generated cluster.
    Controller(PlanArgs),
    /// Master task throughput, pserver bandwidth, trainer join and SIGTERM latency.
    Coord(CoordArgs),
    /// Wall time of the simulator replaying a synthetic trace.
    Sim(SimBenchArgs),
}

#[derive(Args)]
struct SimBenchArgs {
    /// Nodes of the virtual cluster.
    #[arg(long, default_value_t = 100)]
    nodes: u32,
    /// Jobs in the synthetic trace.
    #[arg(long, default_value_t = 1000)]
    jobs: usize,
    /// Seed of the generated trace (the same seed, the same trace).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object instead of a summary line.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CoordArgs {
    /// Concurrent trainers hammering the master.
    #[arg(long, default_value_t = 16)]
    trainers: usize,
    /// Seconds of master load.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Model size for the push + pull bandwidth.
    #[arg(long, default_value_t = 10_000_000)]
    params: u64,
    /// Dataset for the real trainer process.
    #[arg(long, default_value = "tests/data/digits.csv.gz")]
    data: std::path::PathBuf,
    /// Print one JSON object instead of a summary line.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct PlanArgs {
    /// Nodes of the generated cluster.
    #[arg(long, default_value_t = 500)]
    nodes: usize,
    /// Elastic jobs of the generated cluster, some running, some waiting.
    #[arg(long, default_value_t = 200)]
    jobs: usize,
    /// Queues the jobs are spread over.
    #[arg(long, default_value_t = 10)]
    queues: usize,
    /// GPUs on each node (0 to 64).
    #[arg(long, default_value_t = 8)]
    gpus_per_node: i64,
    /// Timed runs; the median and p99 are reported.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Seed of the generated cluster (the same seed, the same cluster).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Distinct GPU models on the GPU nodes (labelled nvidia.com/gpu.product), 1 to 6.
    #[arg(long, default_value_t = 1)]
    gpu_models: usize,
    /// Fraction of GPU nodes in a dedicated pool tainted dedicated=ml:NoSchedule.
    #[arg(long, default_value_t = 0.0)]
    tainted_nodes: f64,
    /// Fraction of jobs with placement constraints (GPU models, the dedicated pool, or
    /// CPU nodes only).
    #[arg(long, default_value_t = 0.0)]
    constrained_jobs: f64,
    /// Node groups an autoscaler could grow, the nodes dealt to them in turn: the plan
    /// also works out scale-up requests.
    #[arg(long, default_value_t = 0)]
    node_groups: usize,
    /// Print one JSON object instead of a summary line.
    #[arg(long)]
    json: bool,
    /// Also write the timed tick's snapshot here, as a file `ebb plan` reads.
    #[arg(long)]
    write_snapshot: Option<std::path::PathBuf>,
    /// `bench plan` only: run at each of these node counts instead (jobs in the ratio of
    /// --jobs to --nodes) and fit how the times grow with nodes + jobs.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    sweep: Option<Vec<usize>>,
}

fn init_logging(format: LogFormat) {
    ebb::logging::init(match format {
        LogFormat::Text => ebb::logging::LogFormat::Text,
        LogFormat::Json => ebb::logging::LogFormat::Json,
    });
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Master(a) => coord_cmd::master(a),
        Command::Pserver(a) => coord_cmd::pserver(a),
        Command::Trainer(a) => coord_cmd::trainer(a),
        Command::Controller(a) => controller_cmd::controller(a),
        Command::Crds => controller_cmd::crds(),
        Command::Up(a) => up_cmd::up(a),
        Command::ServeHttp(a) => up_cmd::serve_http(a),
        Command::Agent(a) => agent_cmd::agent(a),
        Command::Plan(a) => plan_cmd::plan(a),
        Command::Sim(a) => sim_cmd::sim(a),
        Command::Bench(Bench::Plan(a)) => bench_plan(a),
        Command::Bench(Bench::Coord(a)) => bench_coord(a),
        Command::Bench(Bench::Controller(a)) => bench_controller(a),
        Command::Bench(Bench::Sim(a)) => bench_sim(a),
    }
}

/// The generated cluster the planner and controller benchmarks share, checked.
fn cluster_spec(a: &PlanArgs) -> Result<ClusterSpec> {
    anyhow::ensure!(a.nodes > 0, "--nodes must be at least 1");
    anyhow::ensure!(a.queues > 0, "--queues must be at least 1");
    anyhow::ensure!(
        (0..=64).contains(&a.gpus_per_node),
        "--gpus-per-node must be between 0 and 64"
    );
    anyhow::ensure!(
        (1..=6).contains(&a.gpu_models),
        "--gpu-models must be between 1 and 6"
    );
    anyhow::ensure!(
        a.node_groups <= a.nodes,
        "--node-groups must be at most --nodes"
    );
    for (flag, v) in [
        ("--tainted-nodes", a.tainted_nodes),
        ("--constrained-jobs", a.constrained_jobs),
    ] {
        anyhow::ensure!((0.0..=1.0).contains(&v), "{flag} must be between 0 and 1");
    }
    Ok(ClusterSpec {
        nodes: a.nodes,
        jobs: a.jobs,
        queues: a.queues,
        gpus_per_node: a.gpus_per_node,
        seed: a.seed,
        constraints: ebb::bench::generate::Constraints {
            gpu_models: a.gpu_models,
            tainted_nodes: a.tainted_nodes,
            constrained_jobs: a.constrained_jobs,
            node_groups: a.node_groups,
        },
    })
}

fn bench_controller(a: PlanArgs) -> Result<()> {
    anyhow::ensure!(a.sweep.is_none(), "--sweep is for `ebb bench plan` only");
    let spec = cluster_spec(&a)?;
    let r = ebb::bench::controller_bench::run(&spec, a.runs);
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "controller tick on {} nodes, {} jobs, {} pods: median {:.2} ms, p99 {:.2} ms (snapshot {:.2} ms), {} actions",
            r.nodes,
            r.jobs,
            r.pods,
            r.tick_median_ms,
            r.tick_p99_ms,
            r.snapshot_median_ms,
            r.actions
        );
    }
    Ok(())
}

fn bench_plan(a: PlanArgs) -> Result<()> {
    let spec = cluster_spec(&a)?;
    if let Some(nodes) = &a.sweep {
        anyhow::ensure!(
            a.write_snapshot.is_none(),
            "--write-snapshot takes one size: leave out --sweep"
        );
        return sweep_cmd::run(&spec, nodes, a.runs, a.json);
    }
    if let Some(path) = &a.write_snapshot {
        let (snapshot, policy) = plan_bench::steady_snapshot(&spec);
        let file = ebb::plan::file::SnapshotFile::new(snapshot, policy);
        std::fs::write(path, file.to_json())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let r = plan_bench::run(&spec, a.runs);
    if a.json {
        print_json(&r)?;
    } else {
        println!(
            "plan: {} nodes, {} jobs, {} queues: median {:.2} ms, p99 {:.2} ms (cold {:.1} ms); gpu alloc {:.1}%, cpu alloc {:.1}%; input clone {:.2} ms, index {:.2} ms",
            r.nodes,
            r.jobs,
            r.queues,
            r.median_ms,
            r.p99_ms,
            r.cold_ms,
            r.gpu_alloc_frac * 100.0,
            r.cpu_alloc_frac * 100.0,
            r.input_clone_ms,
            r.input_index_ms
        );
        if spec.constraints.node_groups > 0 {
            println!("scale-up requests: {} jobs", r.scale_up_jobs);
        }
    }
    Ok(())
}

fn bench_coord(a: CoordArgs) -> Result<()> {
    anyhow::ensure!(a.trainers > 0, "--trainers must be at least 1");
    anyhow::ensure!(a.seconds > 0.0, "--seconds must be positive");
    anyhow::ensure!(a.params > 0, "--params must be at least 1");
    let exe = std::env::current_exe().context("finding the ebb binary")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let r = rt.block_on(ebb::bench::coord_bench::run(
        &exe, &a.data, a.trainers, a.seconds, a.params,
    ))?;
    if a.json {
        print_json(&r)?;
    } else {
        println!(
            "coord: {:.0} tasks/s ({} trainers), push+pull {:.2} GB/s ({} floats), join to first task {:.0} ms, SIGTERM to exit {:.0} ms",
            r.tasks_per_s,
            r.trainers,
            r.push_pull_gb_per_s,
            r.params,
            r.join_to_first_task_ms,
            r.sigterm_to_exit_ms
        );
    }
    Ok(())
}

fn bench_sim(a: SimBenchArgs) -> Result<()> {
    anyhow::ensure!(a.nodes > 0, "--nodes must be at least 1");
    let r = ebb::bench::sim_bench::run(
        a.nodes,
        a.jobs,
        a.seed,
        ebb::cluster::sim::PolicyKind::Elastic,
    )?;
    if a.json {
        print_json(&r)?;
    } else {
        println!(
            "sim: {} jobs on {} nodes: {:.2} s wall, {} plans, {:.1} virtual hours, GPU utilisation {:.1}%",
            r.jobs,
            r.nodes,
            r.wall_s,
            r.plans,
            r.virtual_hours,
            r.gpu_util_mean * 100.0
        );
    }
    Ok(())
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!(
        "{}",
        serde_json::to_string(value).context("serialising the result")?
    );
    Ok(())
}

#[cfg(test)]
mod help_tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn every_flag_and_subcommand_has_help_text() {
        let missing = ebb::cli::help_text::undocumented(&Cli::command());
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }
}
