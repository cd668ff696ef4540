//! ebbctl's job commands.

use super::{Output, print};
use anyhow::{Context as _, Result};
use clap::Args;
use ebb::api::proto::{
    JobRef, JobSpec, ListJobsRequest, Resources, ScaleRequest, SubmitRequest, WatchRequest,
};
use ebb::cli::client::Clients;
use ebb::cli::output::{describe, job_view, jobs_table};
use ebb::crd::TrainingJob;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Args)]
pub struct SubmitArgs {
    /// A TrainingJob YAML file (what `kubectl apply -f` takes).
    #[arg(short = 'f', long, conflicts_with = "name")]
    file: Option<PathBuf>,
    #[arg(long, required_unless_present = "file")]
    name: Option<String>,
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
    #[arg(long, default_value = "")]
    image: String,
    /// The trainer command (split on spaces); default: ebb's reference trainer.
    #[arg(long)]
    entry: Option<String>,
    #[arg(long, default_value_t = 1)]
    min: u32,
    #[arg(long, default_value_t = 1)]
    max: u32,
    /// Per trainer.
    #[arg(long, default_value = "1")]
    cpu: String,
    #[arg(long, default_value_t = 0)]
    gpu: u32,
    #[arg(long, default_value = "1Gi")]
    memory: String,
    #[arg(long, default_value_t = 1)]
    pservers: u32,
    #[arg(long, default_value = "1")]
    pscpu: String,
    #[arg(long, default_value = "1Gi")]
    psmemory: String,
    #[arg(long, default_value_t = 1)]
    passes: u32,
    #[arg(long, default_value = "default")]
    queue: String,
    #[arg(long)]
    dataset: Option<String>,
}

#[derive(Args)]
pub struct ListArgs {
    /// Only this namespace (default: every namespace you may see).
    #[arg(short = 'n', long)]
    namespace: Option<String>,
}

#[derive(Args)]
pub struct JobArgs {
    pub name: String,
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
}

#[derive(Args)]
pub struct ScaleArgs {
    name: String,
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
    #[arg(long)]
    min: u32,
    #[arg(long)]
    max: u32,
}

fn spec_from_file(path: &PathBuf) -> Result<JobSpec> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let tj: TrainingJob = serde_saphyr::from_str(&text)
        .with_context(|| format!("{} is not a TrainingJob", path.display()))?;
    let mut spec = ebb::api::convert::job_spec(&tj);
    if spec.namespace.is_empty() {
        spec.namespace = "default".into();
    }
    Ok(spec)
}

fn spec_from_flags(a: SubmitArgs) -> JobSpec {
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
        ..JobSpec::default()
    }
}

pub async fn submit(c: &mut Clients, a: SubmitArgs, output: Output) -> Result<()> {
    let spec = match &a.file {
        Some(path) => spec_from_file(path)?,
        None => spec_from_flags(a),
    };
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

pub async fn list(c: &mut Clients, a: ListArgs, output: Output) -> Result<()> {
    let request = ListJobsRequest {
        namespace: a.namespace.unwrap_or_default(),
    };
    let jobs = c.jobs.list(request).await?.into_inner().jobs;
    let views: Vec<_> = jobs.iter().map(job_view).collect();
    print(output, &views, || jobs_table(&jobs))
}

fn job_ref(a: &JobArgs) -> JobRef {
    JobRef {
        namespace: a.namespace.clone(),
        name: a.name.clone(),
    }
}

pub async fn get(c: &mut Clients, a: JobArgs, output: Output) -> Result<()> {
    let job = c.jobs.get(job_ref(&a)).await?.into_inner();
    print(output, &job_view(&job), || describe(&job))
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

pub async fn delete(c: &mut Clients, a: JobArgs) -> Result<()> {
    c.jobs.delete(job_ref(&a)).await?;
    println!("job {}/{} deleted", a.namespace, a.name);
    Ok(())
}

/// Until the job ends: a bar per pass on a terminal, a line per change otherwise.
pub async fn watch(c: &mut Clients, a: JobArgs) -> Result<()> {
    let request = WatchRequest {
        namespace: a.namespace.clone(),
        name: a.name.clone(),
    };
    let mut stream = c.jobs.watch(request).await?.into_inner();
    let terminal = std::io::stdout().is_terminal();
    let mut bar: Option<(u32, ProgressBar)> = None;
    let mut last_line = String::new();
    while let Some(event) = stream.message().await? {
        let Some(job) = event.job else { continue };
        let v = job_view(&job);
        if event.r#type == "DELETED" {
            println!("job {}/{} deleted", v.namespace, v.name);
            return Ok(());
        }
        if let Some(p) = &v.progress {
            if terminal {
                if bar.as_ref().is_none_or(|(pass, _)| *pass != p.current_pass) {
                    if let Some((_, old)) = bar.take() {
                        old.finish();
                    }
                    let b = ProgressBar::new(u64::from(p.chunks_per_pass));
                    if let Ok(style) =
                        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} chunks")
                    {
                        b.set_style(style);
                    }
                    b.set_message(format!("pass {}/{}", p.current_pass + 1, p.passes));
                    bar = Some((p.current_pass, b));
                }
                if let Some((_, b)) = &bar {
                    b.set_position(u64::from(p.chunks_done));
                }
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
            if let Some((_, b)) = bar.take() {
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
