//! Trace replay on the shipped synthetic sample, and bad trace files.

use ebb::cluster::sim::{self, PolicyKind, trace};
use std::path::{Path, PathBuf};

const DATA: &str = "tests/data/trace";

fn sample(path: &str) -> PathBuf {
    Path::new(DATA).join(path)
}

#[test]
fn the_sample_trace_replays_and_elastic_beats_static() {
    let s = trace::load(
        &sample("jobs.csv"),
        &sample("throughput"),
        &sample("cluster.yaml"),
    )
    .expect("sample loads");
    assert_eq!(s.jobs.len(), 40);
    // Work comes from the duration at the requested size: job-000 is resnet18 or bert
    // at its replicas, so its work is positive and its speedup table starts at 1 GPU.
    assert!(
        s.jobs
            .iter()
            .all(|j| j.work > 0.0 && j.speedup.first().map(|p| p.0) == Some(1))
    );
    let elastic = sim::run(&s, PolicyKind::Elastic, &mut |_| {}).expect("elastic runs");
    let fixed = sim::run(&s, PolicyKind::Static, &mut |_| {}).expect("static runs");
    for r in [&elastic, &fixed] {
        assert!(
            r.jobs.iter().all(|j| j.end_s.is_some()),
            "every job finishes"
        );
        assert!(r.gpu_util_mean > 0.0 && r.gpu_util_mean <= 1.0);
        assert!(r.p99_completion_s >= r.avg_completion_s);
    }
    // A static job runs as long as its trace says (plus pod startup).
    let jobs_csv = std::fs::read_to_string(sample("jobs.csv")).unwrap();
    let first = jobs_csv.lines().nth(1).unwrap();
    let duration: f64 = first.rsplit(',').next().unwrap().parse().unwrap();
    let ran = fixed.jobs[0].running_s.unwrap();
    assert!(
        (ran - duration).abs() <= 31.0,
        "ran {ran} s, trace says {duration} s"
    );
    assert!(
        elastic.avg_completion_s.unwrap() < fixed.avg_completion_s.unwrap(),
        "{:?} vs {:?}",
        elastic.avg_completion_s,
        fixed.avg_completion_s
    );
    assert!(elastic.makespan_s <= fixed.makespan_s);
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn bad_traces_name_the_file_line_and_field() {
    let dir = std::env::temp_dir().join(format!("ebb-trace-{}", std::process::id()));
    let tp = sample("throughput");
    let cluster = sample("cluster.yaml");
    let cases = [
        (
            "name,time,application,num_replicas,batch_size,duration\nj,-1,bert,2,64,100\n",
            "jobs.csv:2",
            "time",
        ),
        (
            "name,time,application,num_replicas,batch_size,duration\nj,0,bert,0,64,100\n",
            "jobs.csv:2",
            "num_replicas",
        ),
        (
            "name,time,application,num_replicas,batch_size,duration\nj,0,bert,2,64,100\nk,5,bert,two,64,100\n",
            "jobs.csv:3",
            "num_replicas",
        ),
        (
            "name,time,application,num_replicas\nj,0,bert,2\n",
            "jobs.csv:1",
            "batch_size",
        ),
        (
            "name,time,application,num_replicas,batch_size\nj,0,bert,2,64\n",
            "jobs.csv:2",
            "duration",
        ),
        (
            "name,time,application,num_replicas,batch_size,duration\nj,0,../x,2,64,100\n",
            "jobs.csv:2",
            "application",
        ),
        (
            "name,time,application,num_replicas,batch_size,duration\nj,0,bert,64,64,100\n",
            "jobs.csv",
            "trainers.requested",
        ),
    ];
    for (text, at, field) in cases {
        let jobs = write(&dir, "jobs.csv", text);
        let e = trace::load(&jobs, &tp, &cluster)
            .expect_err(text)
            .to_string();
        assert!(
            e.contains(at) && e.contains(field),
            "want {at} and {field} in: {e}"
        );
    }
    // A trace naming an application with no throughput table.
    let jobs = write(
        &dir,
        "jobs.csv",
        "name,time,application,num_replicas,batch_size,duration\nj,0,gpt,2,64,100\n",
    );
    let e = trace::load(&jobs, &tp, &cluster)
        .expect_err("missing table")
        .to_string();
    assert!(e.contains("gpt") && e.contains("placements.csv"), "{e}");
    // A throughput table with a bad placement.
    write(
        &dir,
        "tp/bert/placements.csv",
        "placement,local_bsz,step_time,sync_time\n1x,32,0.4,0\n",
    );
    let jobs = write(
        &dir,
        "jobs.csv",
        "name,time,application,num_replicas,batch_size,duration\nj,0,bert,1,32,100\n",
    );
    let e = trace::load(&jobs, &dir.join("tp"), &cluster)
        .expect_err("bad placement")
        .to_string();
    assert!(
        e.contains("placements.csv:2") && e.contains("placement"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The optional `gpu_models` column: each job's trainers run only on the models it
/// names (`|`-separated); an empty cell takes any.
#[test]
fn the_gpu_models_column_constrains_each_job() {
    let dir = std::env::temp_dir().join(format!("ebb-trace-models-{}", std::process::id()));
    let cluster = write(
        &dir,
        "cluster.yaml",
        "cluster:\n  nodes:\n    - { prefix: a100, count: 2, cpu: 64, memory_gib: 256, gpus: 8, gpu_model: A100 }\n    - { prefix: t4, count: 2, cpu: 64, memory_gib: 256, gpus: 8, gpu_model: T4 }\ntrainer: { cpu: 4, memory_gib: 16, gpus: 1 }\nmaster: { cpu: 1, memory_gib: 2 }\n",
    );
    let jobs = write(
        &dir,
        "jobs.csv",
        "name,time,application,num_replicas,batch_size,duration,gpu_models\n\
         a100,0,bert,8,64,600,A100\n\
         t4,0,bert,8,64,600,T4\n\
         either,0,bert,8,64,600,A100|T4\n\
         any,0,bert,8,64,600,\n",
    );
    let scenario = trace::load(&jobs, &sample("throughput"), &cluster).expect("loads");
    let models = |name: &str| {
        let j = scenario.jobs.iter().find(|j| j.name == name).unwrap();
        j.placement.trainers.gpu_models.clone()
    };
    assert_eq!(models("either"), ["A100", "T4"]);
    assert!(models("any").is_empty());
    let r = sim::run(&scenario, PolicyKind::Elastic, &mut |_| {}).expect("runs");
    let on = |name: &str| {
        r.jobs
            .iter()
            .find(|j| j.name == name)
            .unwrap()
            .trainers_ran_on
            .clone()
    };
    assert_eq!(on("a100"), ["a100"]);
    assert_eq!(on("t4"), ["t4"]);
    assert!(r.jobs.iter().all(|j| j.end_s.is_some()));
}
