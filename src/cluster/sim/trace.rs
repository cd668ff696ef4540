//! Trace replay: a public DL-trace job list plus per-application throughput tables,
//! turned into a scenario the simulator runs like any other.
//!
//! `JOBS.csv`: `name,time,application,num_replicas,batch_size[,duration]` — `time` is the
//! submit second, `num_replicas` the GPUs asked for (the static count, and max for
//! elastic), `duration` (optional) the seconds the job ran at that size, from which its
//! work is derived. Without it the cluster file's `work` table gives samples per job.
//! `gpu_models` (optional) names the GPU models a job's trainers may use, separated by
//! `|` (`H100|A100`); empty: any.
//! `DIR/APP/placements.csv`: `placement,local_bsz,step_time,sync_time` — one digit per
//! node giving its GPUs (`1123` is 7 GPUs on 4 nodes); an iteration takes
//! step_time + sync_time seconds and processes local_bsz samples per GPU.

use super::error::SimError;
use super::scenario::{
    ClusterSpec, JobSpec, PlacementSpeedup, PodShape, PserverSpec, Scenario, TrainerSpec,
};
use crate::model::placement::Placement;
use crate::model::{JobPlacement, Queue};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The cluster side of a replay: nodes, and the pod shapes a trace does not give.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceCluster {
    pub cluster: ClusterSpec,
    #[serde(default)]
    pub queues: Vec<Queue>,
    #[serde(default = "default_tick_s")]
    pub tick_s: f64,
    #[serde(default = "default_startup_s")]
    pub pod_startup_s: f64,
    /// What each GPU trainer asks for besides its GPU.
    pub trainer: PodShape,
    pub master: PodShape,
    /// Trainers an elastic job may shrink to.
    #[serde(default = "default_min")]
    pub min_trainers: u32,
    #[serde(default = "default_rescale_s")]
    pub rescale_pause_s: f64,
    /// Samples per job, by job name, for traces without a duration column.
    #[serde(default)]
    pub work: BTreeMap<String, f64>,
}

fn default_tick_s() -> f64 {
    30.0
}
fn default_startup_s() -> f64 {
    30.0
}
fn default_min() -> u32 {
    1
}
fn default_rescale_s() -> f64 {
    30.0
}

/// Samples per second of an application: per placement (GPUs per node, largest first),
/// and per GPU count (its best placement).
#[derive(Clone, Debug, Default)]
pub struct Throughput {
    pub by_gpus: BTreeMap<u32, f64>,
    pub by_placement: BTreeMap<Vec<u32>, f64>,
}

impl Throughput {
    /// Rate of one GPU, and speedup points relative to it, for the simulator.
    fn rate_and_speedup(&self) -> Option<(f64, Vec<(u32, f64)>)> {
        let (&n1, &t1) = self.by_gpus.iter().next()?;
        let one = t1 / f64::from(n1);
        let points = self.by_gpus.iter().map(|(&n, &t)| (n, t / one)).collect();
        Some((one, points))
    }

    /// Measured placements as speedups over one GPU.
    fn placement_speedups(&self) -> Vec<PlacementSpeedup> {
        let Some((one, _)) = self.rate_and_speedup() else {
            return Vec::new();
        };
        self.by_placement
            .iter()
            .map(|(k, &t)| PlacementSpeedup {
                per_node: k.clone(),
                speedup: t / one,
            })
            .collect()
    }

    /// Samples per second at `gpus`, interpolated like the simulator does.
    fn at(&self, gpus: u32) -> Option<f64> {
        let (one, points) = self.rate_and_speedup()?;
        Some(one * crate::plan::speedup::speedup(&points, gpus))
    }
}

struct TraceRow {
    line: usize,
    name: String,
    time: f64,
    application: String,
    replicas: u32,
    duration: Option<f64>,
    gpu_models: Vec<String>,
}

pub fn load(jobs_csv: &Path, throughput_dir: &Path, cluster: &Path) -> Result<Scenario, SimError> {
    let cluster_text = read(cluster)?;
    let tc: TraceCluster = serde_saphyr::from_str(&cluster_text).map_err(|e| SimError::Parse {
        path: cluster.display().to_string(),
        message: e.to_string(),
    })?;
    let rows = parse_jobs(jobs_csv, &read(jobs_csv)?)?;
    let mut tables: HashMap<String, Throughput> = HashMap::new();
    let mut jobs = Vec::with_capacity(rows.len());
    for row in rows {
        if !tables.contains_key(&row.application) {
            let path = throughput_dir.join(&row.application).join("placements.csv");
            let t = parse_placements(&path, &read(&path)?)?;
            tables.insert(row.application.clone(), t);
        }
        let table = &tables[&row.application];
        let invalid = |field: &str, message: String| SimError::Invalid {
            path: format!("{}:{}", jobs_csv.display(), row.line),
            field: field.to_string(),
            message,
        };
        let (rate, speedup) = table.rate_and_speedup().ok_or_else(|| {
            invalid(
                "application",
                format!("the throughput table of {:?} has no rows", row.application),
            )
        })?;
        let work = match (row.duration, tc.work.get(&row.name)) {
            (Some(d), _) => d * table.at(row.replicas).unwrap_or(0.0),
            (None, Some(&w)) => w,
            (None, None) => {
                return Err(invalid(
                    "duration",
                    "no duration column and no `work` entry for this job in the cluster file"
                        .into(),
                ));
            }
        };
        jobs.push(JobSpec {
            name: row.name,
            namespace: "trace".into(),
            queue: crate::model::default_queue(),
            priority: 0,
            weight: 1.0,
            submit_s: row.time,
            master: tc.master,
            pservers: PserverSpec::none(),
            trainers: TrainerSpec {
                requested: row.replicas,
                min: tc.min_trainers.min(row.replicas),
                max: row.replicas,
                cpu: tc.trainer.cpu,
                memory_gib: tc.trainer.memory_gib,
                gpus: tc.trainer.gpus.max(1),
            },
            work,
            rate_per_trainer: rate,
            speedup,
            placement_speedup: table.placement_speedups(),
            rescale_pause_s: tc.rescale_pause_s,
            placement: JobPlacement {
                trainers: Placement {
                    gpu_models: row.gpu_models,
                    ..Placement::default()
                },
                ..JobPlacement::default()
            },
        });
    }
    let scenario = Scenario {
        name: format!("trace {}", jobs_csv.display()),
        description: String::new(),
        tick_s: tc.tick_s,
        pod_startup_s: tc.pod_startup_s,
        end_s: 365.0 * 24.0 * 3600.0,
        cluster: tc.cluster,
        queues: tc.queues,
        services: Vec::new(),
        jobs,
        faults: Vec::new(),
    };
    scenario
        .check()
        .map_err(|(field, message)| SimError::Invalid {
            path: jobs_csv.display().to_string(),
            field,
            message,
        })?;
    Ok(scenario)
}

fn read(path: &Path) -> Result<String, SimError> {
    std::fs::read_to_string(path).map_err(|e| SimError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Column index by name.
type Columns = HashMap<String, usize>;
/// A data row: its 1-based line number and its cells.
type Row<'t> = (usize, Vec<&'t str>);

/// The data rows of a CSV text (1-based line number and cells), and its columns by name;
/// `required` columns must be in the header.
fn csv_rows<'t>(
    path: &Path,
    text: &'t str,
    required: &[&str],
) -> Result<(Columns, Vec<Row<'t>>), SimError> {
    let mut lines = text.lines().enumerate();
    let header = lines.next().map_or("", |(_, l)| l);
    let cols = columns(path, header, required)?;
    let rows = lines
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.split(',').collect()))
        .collect();
    Ok((cols, rows))
}

fn bad_cell(path: &Path, line: usize, field: &str, message: &str) -> SimError {
    SimError::Invalid {
        path: format!("{}:{line}", path.display()),
        field: field.to_string(),
        message: message.to_string(),
    }
}

/// Column index by name, from a CSV header.
fn columns(
    path: &Path,
    header: &str,
    required: &[&str],
) -> Result<HashMap<String, usize>, SimError> {
    let cols: HashMap<String, usize> = header
        .split(',')
        .enumerate()
        .map(|(i, c)| (c.trim().to_string(), i))
        .collect();
    for name in required {
        if !cols.contains_key(*name) {
            return Err(SimError::Invalid {
                path: format!("{}:1", path.display()),
                field: (*name).to_string(),
                message: "missing column".into(),
            });
        }
    }
    Ok(cols)
}

fn field<'a>(cells: &[&'a str], cols: &HashMap<String, usize>, name: &str) -> Option<&'a str> {
    cols.get(name).and_then(|&i| cells.get(i)).map(|s| s.trim())
}

fn parse_jobs(path: &Path, text: &str) -> Result<Vec<TraceRow>, SimError> {
    let required = ["name", "time", "application", "num_replicas", "batch_size"];
    let (cols, rows) = csv_rows(path, text, &required)?;
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (line_no, cells) in rows {
        let bad = |name: &str, message: &str| bad_cell(path, line_no, name, message);
        let get = |name: &str| field(&cells, &cols, name).ok_or_else(|| bad(name, "missing value"));
        let name = get("name")?.to_string();
        if name.is_empty() || !seen.insert(name.clone()) {
            return Err(bad("name", "empty or repeated job name"));
        }
        let time: f64 = get("time")?
            .parse()
            .map_err(|_| bad("time", "not a number of seconds"))?;
        if !(time.is_finite() && time >= 0.0) {
            return Err(bad("time", "must be >= 0 seconds"));
        }
        let application = get("application")?.to_string();
        if application.is_empty() || application.contains(['/', '\\']) || application == ".." {
            return Err(bad("application", "must be a plain directory name"));
        }
        let replicas: u32 = get("num_replicas")?
            .parse()
            .map_err(|_| bad("num_replicas", "not a whole number"))?;
        if replicas == 0 {
            return Err(bad("num_replicas", "must be at least 1"));
        }
        let batch: f64 = get("batch_size")?
            .parse()
            .map_err(|_| bad("batch_size", "not a number"))?;
        if !(batch.is_finite() && batch > 0.0) {
            return Err(bad("batch_size", "must be > 0"));
        }
        let duration = match field(&cells, &cols, "duration") {
            None | Some("") => None,
            Some(d) => {
                let d: f64 = d
                    .parse()
                    .map_err(|_| bad("duration", "not a number of seconds"))?;
                if !(d.is_finite() && d > 0.0) {
                    return Err(bad("duration", "must be > 0 seconds"));
                }
                Some(d)
            }
        };
        let gpu_models: Vec<String> = field(&cells, &cols, "gpu_models")
            .unwrap_or_default()
            .split('|')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(String::from)
            .collect();
        out.push(TraceRow {
            line: line_no,
            name,
            time,
            application,
            replicas,
            duration,
            gpu_models,
        });
    }
    Ok(out)
}

fn parse_placements(path: &Path, text: &str) -> Result<Throughput, SimError> {
    let required = ["placement", "local_bsz", "step_time", "sync_time"];
    let (cols, rows) = csv_rows(path, text, &required)?;
    let mut t = Throughput::default();
    for (line_no, cells) in rows {
        let bad = |name: &str, message: &str| bad_cell(path, line_no, name, message);
        let num = |name: &str| -> Result<f64, SimError> {
            let v: f64 = field(&cells, &cols, name)
                .ok_or_else(|| bad(name, "missing value"))?
                .parse()
                .map_err(|_| bad(name, "not a number"))?;
            if v.is_finite() && v >= 0.0 {
                Ok(v)
            } else {
                Err(bad(name, "must be a finite number >= 0"))
            }
        };
        let placement =
            field(&cells, &cols, "placement").ok_or_else(|| bad("placement", "missing value"))?;
        let per_node: Vec<u32> = placement
            .chars()
            .map(|c| {
                c.to_digit(10)
                    .ok_or_else(|| bad("placement", "one digit per node"))
            })
            .collect::<Result<_, _>>()?;
        let gpus: u32 = per_node.iter().sum();
        if gpus == 0 {
            return Err(bad("placement", "places no GPU"));
        }
        let (bsz, step, sync) = (num("local_bsz")?, num("step_time")?, num("sync_time")?);
        if step + sync <= 0.0 {
            return Err(bad("step_time", "an iteration must take time"));
        }
        let samples_per_s = bsz * f64::from(gpus) / (step + sync);
        let best = t.by_gpus.entry(gpus).or_insert(0.0);
        *best = best.max(samples_per_s);
        let same = t
            .by_placement
            .entry(PlacementSpeedup::key(&per_node))
            .or_insert(0.0);
        *same = same.max(samples_per_s);
    }
    Ok(t)
}
