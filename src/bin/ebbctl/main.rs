//! `ebbctl`: submit, inspect, resize and watch training jobs; tune queues. Talks to
//! `ebb up` or `ebb controller` over the control API.

use anyhow::{Context as _, Result};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use ebb::cli::client::{ConnectError, connect};
use ebb::cli::config::{Context, CtlConfig, default_path};
use ebb::cli::errors::{SpecRefused, UsageError, describe_failure, is_transport};
use std::path::PathBuf;
use std::process::ExitCode;

mod complete;
mod inspect;
mod jobs;
mod queues;

const EXIT_CODES: &str = "Exit codes: 0 ok, 1 other error, 2 bad usage (flags, an endpoint \
without http:// or https://), 3 invalid argument (a spec refused by ebbctl or by the server, \
a precondition such as a queue still in use), 4 unauthenticated or permission denied, \
5 not found, 6 server unreachable or unavailable.

Completions (flags, and job and queue names from the current context's server): add \
`source <(ebbctl completions bash)` to ~/.bashrc, or `source <(ebbctl completions zsh)` to \
~/.zshrc, or run `ebbctl completions fish > ~/.config/fish/completions/ebbctl.fish`; \
ebbctl must be on PATH.";

#[derive(Parser)]
#[command(name = "ebbctl", version, about = "Submit and watch elastic training jobs", after_help = EXIT_CODES)]
struct Cli {
    /// Config file with contexts (default: $EBBCTL_CONFIG or ~/.config/ebb/config.yaml;
    /// `ebb up` writes one).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Context to use instead of the current one.
    #[arg(long, global = true)]
    context: Option<String>,
    /// How to print results: a table for people, or JSON / YAML for programs.
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
    /// One job: status, conditions, pods and, as a table, its Events.
    #[command(visible_alias = "describe")]
    Get(jobs::JobArgs),
    /// A job's pod log (the master's unless a pod or --role is given).
    Logs(inspect::LogsArgs),
    /// What happened to jobs: Admitted, Scaled, Succeeded, Failed, PodFailed, InvalidSpec.
    Events(inspect::EventsArgs),
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
    /// Shell completions (how to install them: see the end of `ebbctl --help`).
    Completions(CompletionArgs),
}

#[derive(Args)]
struct CompletionArgs {
    /// The shell to write completions for.
    shell: clap_complete::Shell,
}

fn load_context(cli: &Cli) -> Result<Context> {
    let path = cli.config.clone().unwrap_or_else(default_path);
    let config = CtlConfig::load(&path)?;
    Ok(config.context(cli.context.as_deref(), &path)?.clone())
}

/// Maps a failure to the documented exit code.
fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(s) = e.downcast_ref::<tonic::Status>() {
        if is_transport(s) {
            return 6;
        }
        return match s.code() {
            tonic::Code::InvalidArgument
            | tonic::Code::AlreadyExists
            | tonic::Code::FailedPrecondition => 3,
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => 4,
            tonic::Code::NotFound => 5,
            tonic::Code::Unavailable => 6,
            _ => 1,
        };
    }
    if e.downcast_ref::<SpecRefused>().is_some() {
        return 3;
    }
    if e.downcast_ref::<UsageError>().is_some() {
        return 2;
    }
    match e.downcast_ref::<ConnectError>() {
        Some(ConnectError::Scheme { .. } | ConnectError::Endpoint { .. }) => 2,
        _ => 1,
    }
}

fn main() -> ExitCode {
    // The shell's completion script calls back here with COMPLETE set; nothing else runs.
    clap_complete::CompleteEnv::with_factory(Cli::command).complete();
    let cli = Cli::parse();
    let mut context = None;
    let result = run(cli, &mut context);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = match (e.downcast_ref::<tonic::Status>(), &context) {
                (Some(s), Some(c)) => describe_failure(s, c),
                (Some(s), None) => format!("{:?}: {}", s.code(), s.message()),
                _ => format!("{e:#}"),
            };
            eprintln!("ebbctl: {message}");
            ExitCode::from(exit_code(&e))
        }
    }
}

fn run(cli: Cli, context_used: &mut Option<Context>) -> Result<()> {
    // What prints text as it is (a log, a shell script) has no JSON or YAML form.
    if cli.output != Output::Table
        && matches!(cli.command, Command::Logs(_) | Command::Completions(_))
    {
        return Err(UsageError(
            "-o json|yaml: logs and completions print text as it is; drop -o".into(),
        )
        .into());
    }
    if let Command::Completions(a) = &cli.command {
        complete::write_registration(a.shell, &mut std::io::stdout())
            .context("writing the completion script")?;
        return Ok(());
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let output = cli.output;
    runtime.block_on(async {
        let context = load_context(&cli)?;
        let mut c = connect(&context)?;
        let endpoint = context.endpoint.clone();
        *context_used = Some(context);
        match cli.command {
            Command::Submit(a) => jobs::submit(&mut c, a, &endpoint, output).await,
            Command::List(a) => jobs::list(&mut c, a, output).await,
            Command::Get(a) => jobs::get(&mut c, a, output).await,
            Command::Scale(a) => jobs::scale(&mut c, a, output).await,
            Command::Delete(a) => jobs::delete(&mut c, a, output).await,
            Command::Watch(a) => jobs::watch(&mut c, a, output).await,
            Command::Logs(a) => inspect::logs(&mut c, a).await,
            Command::Events(a) => inspect::events(&mut c, a, output).await,
            Command::Top(a) => queues::top(&mut c, a, output).await,
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
