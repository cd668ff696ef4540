//! `ebbctl`: submit, inspect, resize and watch training jobs; tune queues. Talks to
//! `ebb up` or `ebb controller` over the control API.

use anyhow::{Context as _, Result};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use ebb::cli::client::{Clients, connect};
use ebb::cli::config::{CtlConfig, default_path};
use std::path::PathBuf;
use std::process::ExitCode;

mod jobs;
mod queues;

const EXIT_CODES: &str = "Exit codes: 0 ok, 1 other error, 2 bad usage, 3 invalid argument, \
4 unauthenticated or permission denied, 5 not found, 6 server unavailable.";

#[derive(Parser)]
#[command(name = "ebbctl", version, about = "Submit and watch elastic training jobs", after_help = EXIT_CODES)]
struct Cli {
    /// Config file with contexts (default: $EBBCTL_CONFIG or ~/.config/ebb/config.yaml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Context to use instead of the current one.
    #[arg(long, global = true)]
    context: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table, global = true)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

#[derive(Subcommand)]
enum Command {
    /// Submit a job from a TrainingJob YAML file (-f) or from flags.
    Submit(jobs::SubmitArgs),
    /// List jobs.
    List(jobs::ListArgs),
    /// One job (status, conditions, pods).
    #[command(alias = "describe")]
    Get(jobs::JobArgs),
    /// Change a job's trainer range.
    Scale(jobs::ScaleArgs),
    /// Delete a job; its pods stop (trainers get their grace period).
    Delete(jobs::JobArgs),
    /// Progress bars per pass until the job ends.
    Watch(jobs::JobArgs),
    /// A live table: time | trainers per job | service replicas | pods | utilisation.
    Top(queues::TopArgs),
    /// Queues (set is for operators).
    #[command(subcommand)]
    Queue(queues::QueueCommand),
    /// Shell completions: `ebbctl completions bash > /etc/bash_completion.d/ebbctl`.
    Completions(CompletionArgs),
}

#[derive(Args)]
struct CompletionArgs {
    shell: clap_complete::Shell,
}

fn clients(cli: &Cli) -> Result<Clients> {
    let path = cli.config.clone().unwrap_or_else(default_path);
    let config = CtlConfig::load(&path)?;
    let context = config.context(cli.context.as_deref(), &path)?;
    Ok(connect(context)?)
}

/// Maps a gRPC failure to the documented exit code.
fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<tonic::Status>().map(tonic::Status::code) {
        Some(tonic::Code::InvalidArgument | tonic::Code::AlreadyExists) => 3,
        Some(tonic::Code::Unauthenticated | tonic::Code::PermissionDenied) => 4,
        Some(tonic::Code::NotFound) => 5,
        Some(tonic::Code::Unavailable) => 6,
        _ => 1,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = run(cli);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = match e.downcast_ref::<tonic::Status>() {
                Some(s) => format!("{:?}: {}", s.code(), s.message()),
                None => format!("{e:#}"),
            };
            eprintln!("ebbctl: {message}");
            ExitCode::from(exit_code(&e))
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Command::Completions(a) = &cli.command {
        clap_complete::generate(
            a.shell,
            &mut Cli::command(),
            "ebbctl",
            &mut std::io::stdout(),
        );
        return Ok(());
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let output = cli.output;
    runtime.block_on(async {
        let mut c = clients(&cli)?;
        match cli.command {
            Command::Submit(a) => jobs::submit(&mut c, a, output).await,
            Command::List(a) => jobs::list(&mut c, a, output).await,
            Command::Get(a) => jobs::get(&mut c, a, output).await,
            Command::Scale(a) => jobs::scale(&mut c, a, output).await,
            Command::Delete(a) => jobs::delete(&mut c, a).await,
            Command::Watch(a) => jobs::watch(&mut c, a).await,
            Command::Top(a) => queues::top(&mut c, a).await,
            Command::Queue(q) => queues::queue(&mut c, q, output).await,
            Command::Completions(_) => Ok(()),
        }
    })
}

/// Prints `value` as JSON or YAML, or `table` for people.
pub fn print<T: serde::Serialize>(
    output: Output,
    value: &T,
    table: impl FnOnce() -> String,
) -> Result<()> {
    match output {
        Output::Table => print!("{}", with_newline(table())),
        Output::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Output::Yaml => print!("{}", serde_saphyr::to_string(value)?),
    }
    Ok(())
}

fn with_newline(mut s: String) -> String {
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}
