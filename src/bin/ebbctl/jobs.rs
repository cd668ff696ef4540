//! ebbctl's job commands.

use super::{Output, print};
use anyhow::{Context as _, Result};
use clap::Args;
use clap_complete::ArgValueCompleter;
use ebb::api::proto::{
    JobRef, JobSpec, ListJobsRequest, Resources, ScaleRequest, SubmitRequest, WatchRequest,
};
use ebb::cli::client::Clients;
use ebb::cli::errors::SpecRefused;
use ebb::cli::output::{JOB_COLUMNS, describe, job_row, job_view, jobs_table};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct SubmitArgs {
    /// A TrainingJob YAML file (what `kubectl apply -f` takes).
    #[arg(short = 'f', long, conflicts_with = "name")]
    file: Option<PathBuf>,
    /// The job's name (a DNS label: lowercase letters, digits, '-').
    #[arg(long, required_unless_present = "file")]
    name: Option<String>,
    /// The job's namespace.
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
    /// Container image (Kubernetes); `ebb up` runs ebb's own processes and ignores it.
    #[arg(long, default_value = "")]
    image: String,
    /// The trainer command (split on spaces); default: ebb's reference trainer.
    #[arg(long)]
    entry: Option<String>,
    /// Fewest trainers the job runs with (its gang: master + pservers + min trainers).
    #[arg(long, default_value_t = 1)]
    min: u32,
    /// Most trainers the job grows to when the cluster has room.
    #[arg(long, default_value_t = 1)]
    max: u32,
    /// CPU per trainer, a Kubernetes quantity ("1", "500m").
    #[arg(long, default_value = "1")]
    cpu: String,
    /// GPUs per trainer.
    #[arg(long, default_value_t = 0)]
    gpu: u32,
    /// GPU models the trainers may run on, any of (`--gpu-models H100,A100`); none: any.
    #[arg(long, value_delimiter = ',')]
    gpu_models: Vec<String>,
    /// Memory per trainer, a Kubernetes quantity ("1Gi", "512Mi").
    #[arg(long, default_value = "1Gi")]
    memory: String,
    /// Parameter servers (the parameters are split across them).
    #[arg(long, default_value_t = 1)]
    pservers: u32,
    /// CPU per parameter server.
    #[arg(long, default_value = "1")]
    pscpu: String,
    /// Memory per parameter server.
    #[arg(long, default_value = "1Gi")]
    psmemory: String,
    /// Passes over the dataset before the job succeeds.
    #[arg(long, default_value_t = 1)]
    passes: u32,
    /// The queue whose share the job draws on (`ebbctl queue list`).
    #[arg(long, default_value = "default", add = ArgValueCompleter::new(crate::complete::queue_names))]
    queue: String,
    /// The training data; a relative path is made absolute against this directory.
    #[arg(long)]
    dataset: Option<String>,
    /// A label on the job, `KEY=VALUE` (repeatable): what `list -l` selects on.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
}

#[derive(Args)]
pub struct ListArgs {
    /// Only this namespace (default: every namespace you may see).
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// Every namespace you may see (the default; for kubectl habits).
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    all_namespaces: bool,
    /// Only jobs whose labels match this Kubernetes label selector (`team=ml`,
    /// `tier in (gold,silver)`, `!preemptible`).
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    selector: Option<String>,
    /// After the list, print a row each time a job changes (Ctrl-C to stop).
    #[arg(short = 'w', long)]
    watch: bool,
}

#[derive(Args)]
pub struct JobArgs {
    /// The job's name.
    #[arg(add = ArgValueCompleter::new(crate::complete::job_names))]
    pub name: String,
    /// The job's namespace.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("bounds").required(true).multiple(true).args(["min", "max"])))]
pub struct ScaleArgs {
    /// The job's name.
    #[arg(add = ArgValueCompleter::new(crate::complete::job_names))]
    name: String,
    /// The job's namespace.
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
    /// New minimum trainers (kept when not given).
    #[arg(long)]
    min: Option<u32>,
    /// New maximum trainers (kept when not given).
    #[arg(long)]
    max: Option<u32>,
}

fn spec_from_file(path: &PathBuf) -> Result<JobSpec> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let tj = ebb::resource::manifest::parse_training_job(&path.display().to_string(), &text)
        .map_err(|e| SpecRefused(e.to_string()))?;
    // Checked here as well as by the server: the control API's messages cannot tell a
    // field set to 0 (refused) from one left out (its default).
    ebb::resource::spec::job_model(&tj, 0.0)
        .map_err(|e| SpecRefused(format!("{}: {e}", path.display())))?;
    let mut spec = ebb::api::convert::job_spec(&tj);
    if spec.namespace.is_empty() {
        spec.namespace = "default".into();
    }
    Ok(spec)
}

fn spec_from_flags(a: SubmitArgs) -> Result<JobSpec> {
    let mut labels = std::collections::BTreeMap::new();
    for l in &a.labels {
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| SpecRefused(format!("--label {l:?}: write KEY=VALUE")))?;
        labels.insert(k.to_string(), v.to_string());
    }
    Ok(JobSpec {
        labels,
        ..spec_without_labels(a)
    })
}

fn spec_without_labels(a: SubmitArgs) -> JobSpec {
    let res = |cpu: &str, memory: &str, gpus| Resources {
        cpu: cpu.into(),
        memory: memory.into(),
        gpus,
    };
    JobSpec {
        namespace: a.namespace,
        name: a.name.unwrap_or_default(),
        queue: a.queue,
        image: a.image,
        command: a
            .entry
            .map(|e| e.split_whitespace().map(String::from).collect())
            .unwrap_or_default(),
        master: Some(res("500m", "512Mi", 0)),
        pservers: a.pservers,
        pserver: Some(res(&a.pscpu, &a.psmemory, 0)),
        min_trainers: a.min,
        max_trainers: a.max,
        trainer: Some(res(&a.cpu, &a.memory, a.gpu)),
        dataset: a.dataset.unwrap_or_default(),
        passes: a.passes,
        gpu_models: a.gpu_models,
        ..JobSpec::default()
    }
}

pub async fn submit(c: &mut Clients, a: SubmitArgs, endpoint: &str, output: Output) -> Result<()> {
    let mut spec = match &a.file {
        Some(path) => spec_from_file(path)?,
        None => spec_from_flags(a)?,
    };
    let cwd = std::env::current_dir().context("reading the working directory")?;
    spec.dataset = resolve_dataset(&spec.dataset, &cwd, endpoint).map_err(SpecRefused)?;
    let job = c
        .jobs
        .submit(SubmitRequest { spec: Some(spec) })
        .await?
        .into_inner();
    let view = job_view(&job);
    print(output, &view, || {
        format!("job {}/{} submitted", view.namespace, view.name)
    })
}

/// A relative dataset path means the caller's directory, not the server's: made absolute
/// against `cwd` when the server runs on this machine (a loopback endpoint, as `ebb up`
/// has), refused when it runs elsewhere, where this machine's paths mean nothing.
pub fn resolve_dataset(dataset: &str, cwd: &Path, endpoint: &str) -> Result<String, String> {
    if dataset.is_empty() || Path::new(dataset).is_absolute() || dataset.contains("://") {
        return Ok(dataset.to_string());
    }
    let host = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest)
        .split(['/', ']'])
        .next()
        .unwrap_or_default();
    let local = ["127.", "localhost", "[::1", "::1"]
        .iter()
        .any(|h| host.starts_with(h));
    if !local {
        return Err(format!(
            "--dataset {dataset:?} is a relative path, but the endpoint {endpoint} is not on \
             this machine: give the path as the server's pods see it (absolute, or a URL)"
        ));
    }
    Ok(cwd.join(dataset).display().to_string())
}

pub async fn list(c: &mut Clients, a: ListArgs, output: Output) -> Result<()> {
    let namespace = a.namespace.unwrap_or_default();
    let selector = a.selector.unwrap_or_default();
    if a.watch {
        return list_watch(c, namespace, selector, output).await;
    }
    let request = ListJobsRequest {
        namespace,
        label_selector: selector,
    };
    let jobs = c.jobs.list(request).await?.into_inner().jobs;
    if jobs.is_empty() && output == Output::Table {
        // As kubectl: a note on stderr, not an empty table a script would parse.
        eprintln!("No jobs found.");
        return Ok(());
    }
    let views: Vec<_> = jobs.iter().map(job_view).collect();
    print(output, &views, || jobs_table(&jobs, now_s()))
}

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `list -w`, as `kubectl get -w`: the jobs now, then a row for each change (a JSON or
/// YAML document each with `-o`). Columns are fixed-width so rows stay aligned.
async fn list_watch(
    c: &mut Clients,
    namespace: String,
    selector: String,
    output: Output,
) -> Result<()> {
    let request = WatchRequest {
        namespace,
        name: String::new(),
        label_selector: selector,
    };
    let mut stream = c.jobs.watch(request).await?.into_inner();
    let widths = [12, 20, 12, 10, 9, 4, 4, 22, 8];
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join(" ")
            .trim_end()
            .to_string()
    };
    if output == Output::Table {
        let header: Vec<String> = JOB_COLUMNS.iter().map(|s| s.to_string()).collect();
        println!("{}", line(&header));
    }
    while let Some(event) = stream.message().await? {
        let Some(job) = event.job else { continue };
        match output {
            Output::Table => {
                let mut row = job_row(&job, now_s());
                if event.r#type == "DELETED" {
                    row[3] = "Deleted".into();
                }
                println!("{}", line(&row));
            }
            Output::Json => println!("{}", serde_json::to_string(&job_view(&job))?),
            Output::Yaml => print!("---\n{}", serde_saphyr::to_string(&job_view(&job))?),
        }
    }
    Ok(())
}

fn job_ref(a: &JobArgs) -> JobRef {
    JobRef {
        namespace: a.namespace.clone(),
        name: a.name.clone(),
    }
}

pub async fn get(c: &mut Clients, a: JobArgs, output: Output) -> Result<()> {
    let job = c.jobs.get(job_ref(&a)).await?.into_inner();
    let events = if output == Output::Table {
        super::inspect::job_events(c, &a.namespace, &a.name, super::inspect::now()).await
    } else {
        String::new()
    };
    print(output, &job_view(&job), || describe(&job) + &events)
}

pub async fn scale(c: &mut Clients, a: ScaleArgs, output: Output) -> Result<()> {
    let request = ScaleRequest {
        job: Some(JobRef {
            namespace: a.namespace,
            name: a.name,
        }),
        min_trainers: a.min,
        max_trainers: a.max,
    };
    let job = c.jobs.scale(request).await?.into_inner();
    let view = job_view(&job);
    print(output, &view, || {
        format!(
            "job {}/{} now {}..{} trainers",
            view.namespace, view.name, view.min_trainers, view.max_trainers
        )
    })
}

#[derive(serde::Serialize)]
struct Deleted<'a> {
    namespace: &'a str,
    name: &'a str,
    deleted: bool,
}

pub async fn delete(c: &mut Clients, a: JobArgs, output: Output) -> Result<()> {
    c.jobs.delete(job_ref(&a)).await?;
    let done = Deleted {
        namespace: &a.namespace,
        name: &a.name,
        deleted: true,
    };
    print(output, &done, || {
        format!("job {}/{} deleted", a.namespace, a.name)
    })
}

/// Until the job ends: one bar redrawn in place on a terminal, a line per change otherwise.
pub async fn watch(c: &mut Clients, a: JobArgs, output: Output) -> Result<()> {
    let request = WatchRequest {
        namespace: a.namespace.clone(),
        name: a.name.clone(),
        label_selector: String::new(),
    };
    let mut stream = c.jobs.watch(request).await?.into_inner();
    let terminal = std::io::stdout().is_terminal();
    let mut bar: Option<ProgressBar> = None;
    let mut last_line = String::new();
    while let Some(event) = stream.message().await? {
        let Some(job) = event.job else { continue };
        let v = job_view(&job);
        if output != Output::Table {
            // For programs: each state as one JSON line (or YAML document), to the end.
            match output {
                Output::Json => println!("{}", serde_json::to_string(&v)?),
                _ => print!("---\n{}", serde_saphyr::to_string(&v)?),
            }
            if event.r#type == "DELETED" || v.phase == "Succeeded" || v.phase == "Failed" {
                return if v.phase == "Failed" {
                    Err(anyhow::anyhow!("the job failed"))
                } else {
                    Ok(())
                };
            }
            continue;
        }
        if event.r#type == "DELETED" {
            println!("job {}/{} deleted", v.namespace, v.name);
            return Ok(());
        }
        if let Some(p) = &v.progress {
            if terminal {
                // One bar, redrawn in place: a new pass starts it over.
                let b = bar.get_or_insert_with(|| {
                    let b = ProgressBar::new(u64::from(p.chunks_per_pass));
                    if let Ok(style) =
                        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} chunks")
                    {
                        b.set_style(style);
                    }
                    b
                });
                b.set_length(u64::from(p.chunks_per_pass));
                b.set_position(u64::from(p.chunks_done));
                b.set_message(format!(
                    "pass {}/{} trainers {}/{} accuracy {:.3}",
                    (p.current_pass + 1).min(p.passes),
                    p.passes,
                    v.current_trainers,
                    v.target_trainers,
                    p.last_accuracy
                ));
            } else {
                let line = format!(
                    "{} trainers {}/{} pass {}/{} chunks {}/{} accuracy {:.3}",
                    v.phase,
                    v.current_trainers,
                    v.target_trainers,
                    (p.current_pass + 1).min(p.passes),
                    p.passes,
                    p.chunks_done,
                    p.chunks_per_pass,
                    p.last_accuracy
                );
                if line != last_line {
                    println!("{line}");
                    last_line = line;
                }
            }
        }
        if v.phase == "Succeeded" || v.phase == "Failed" {
            if let Some(b) = bar.take() {
                b.finish();
            }
            let accuracy = v.progress.as_ref().map_or(0.0, |p| p.last_accuracy);
            println!(
                "job {}/{} {} (accuracy {:.1}%)",
                v.namespace,
                v.name,
                v.phase,
                accuracy * 100.0
            );
            return if v.phase == "Failed" {
                Err(anyhow::anyhow!("the job failed"))
            } else {
                Ok(())
            };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::resolve_dataset;
    use std::path::Path;

    #[test]
    fn a_relative_dataset_is_the_callers() {
        let cwd = Path::new("/home/me/work");
        assert_eq!(
            resolve_dataset("data/d.csv.gz", cwd, "http://127.0.0.1:7160").unwrap(),
            "/home/me/work/data/d.csv.gz"
        );
        assert_eq!(
            resolve_dataset("d.csv", cwd, "http://localhost:1").unwrap(),
            "/home/me/work/d.csv"
        );
        assert_eq!(
            resolve_dataset("/abs/d.csv", cwd, "https://ebb.example:443").unwrap(),
            "/abs/d.csv"
        );
        assert_eq!(resolve_dataset("", cwd, "http://h:1").unwrap(), "");
        let e = resolve_dataset("d.csv", cwd, "https://ebb.example:443").unwrap_err();
        assert!(
            e.contains("--dataset \"d.csv\"") && e.contains("ebb.example"),
            "{e}"
        );
    }
}
