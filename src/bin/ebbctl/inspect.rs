//! ebbctl's `logs` and `events`: what a job's processes wrote, and what happened to it.

use super::{Output, print};
use anyhow::Result;
use clap::{Args, ValueEnum};
use clap_complete::ArgValueCompleter;
use ebb::api::proto::{EventsRequest, JobRef, LogsRequest};
use ebb::cli::client::Clients;
use ebb::cli::output::{event_line, event_view, events_table};
use std::io::Write;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PodRole {
    Master,
    Pserver,
    Trainer,
}

#[derive(Args)]
pub struct LogsArgs {
    /// The job.
    #[arg(add = ArgValueCompleter::new(crate::complete::job_names))]
    pub job: String,
    /// One of the job's pods (see `ebbctl get JOB`); default: the first pod of --role.
    pub pod: Option<String>,
    /// The job's namespace.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Which pod to show when none is named: the master, the first pserver or the oldest
    /// trainer.
    #[arg(long, value_enum, default_value_t = PodRole::Master, conflicts_with = "pod")]
    pub role: PodRole,
    /// Keep printing new lines until the pod ends (Ctrl-C to stop).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// The log of the pod's previous run (before its last restart).
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    pub tail: Option<u32>,
}

#[derive(Args)]
pub struct EventsArgs {
    /// Only this job's Events.
    #[arg(add = ArgValueCompleter::new(crate::complete::job_names))]
    pub job: Option<String>,
    /// The namespace (default: every namespace you may see, or "default" with a job).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Every namespace you may see (the default without a job).
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// After the list, print each new Event as it happens (Ctrl-C to stop).
    #[arg(short = 'w', long)]
    pub watch: bool,
}

pub async fn logs(c: &mut Clients, a: LogsArgs) -> Result<()> {
    let role = match a.role {
        PodRole::Master => "master",
        PodRole::Pserver => "pserver",
        PodRole::Trainer => "trainer",
    };
    let request = LogsRequest {
        job: Some(JobRef {
            namespace: a.namespace,
            name: a.job,
        }),
        pod: a.pod.unwrap_or_default(),
        role: role.into(),
        follow: a.follow,
        previous: a.previous,
        tail_lines: a.tail.unwrap_or(0),
    };
    let mut stream = c.jobs.logs(request).await?.into_inner();
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = stream.message().await? {
        out.write_all(chunk.text.as_bytes())?;
        out.flush()?;
    }
    Ok(())
}

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

pub async fn events(c: &mut Clients, a: EventsArgs, output: Output) -> Result<()> {
    let namespace = match (&a.namespace, a.all_namespaces, &a.job) {
        (Some(ns), _, _) => ns.clone(),
        (None, false, Some(_)) => "default".into(),
        _ => String::new(),
    };
    let request = EventsRequest {
        namespace,
        name: a.job.unwrap_or_default(),
        watch: a.watch,
    };
    let mut stream = c.jobs.events(request).await?.into_inner();
    if !a.watch {
        let mut all = Vec::new();
        while let Some(e) = stream.message().await? {
            all.push(e);
        }
        let views: Vec<_> = all.iter().map(event_view).collect();
        return print(output, &views, || {
            if all.is_empty() {
                "No events.".to_string()
            } else {
                events_table(&all, now_s())
            }
        });
    }
    while let Some(e) = stream.message().await? {
        match output {
            Output::Table => println!("{}", event_line(&e, now_s())),
            Output::Json => println!("{}", serde_json::to_string(&event_view(&e))?),
            Output::Yaml => print!("---\n{}", serde_saphyr::to_string(&event_view(&e))?),
        }
    }
    Ok(())
}

/// The job's Events for `describe`: empty when the server cannot list them.
pub async fn job_events(c: &mut Clients, namespace: &str, job: &str, now: f64) -> String {
    let request = EventsRequest {
        namespace: namespace.into(),
        name: job.into(),
        watch: false,
    };
    let mut lines = Vec::new();
    if let Ok(response) = c.jobs.events(request).await {
        let mut stream = response.into_inner();
        while let Ok(Some(e)) = stream.message().await {
            lines.push(format!("  {}", event_line(&e, now)));
        }
    }
    if lines.is_empty() {
        "Events:     <none>\n".into()
    } else {
        format!("Events:\n{}\n", lines.join("\n"))
    }
}

pub fn now() -> f64 {
    now_s()
}
