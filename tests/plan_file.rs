//! `ebb plan`'s file format, explanations and command line.

mod common;

use common::*;
use ebb::model::*;
use ebb::plan::explain::{Kind, explain};
use ebb::plan::file::{FileError, SnapshotFile};
use ebb::plan::{Policy, apply::apply, plan};

const EXAMPLE: &str = "docs/examples/snapshot.json";

fn example_text() -> String {
    std::fs::read_to_string(EXAMPLE).expect("the documented example exists")
}

fn kinds(s: &Snapshot, policy: &Policy, name: &str) -> Vec<Kind> {
    let p = plan(s, policy);
    let e = explain(s, policy, &p);
    e.into_iter()
        .find(|x| x.job.name == name)
        .map(|x| x.because.into_iter().map(|b| b.kind).collect())
        .unwrap_or_default()
}

#[test]
fn the_documented_example_parses_plans_and_explains() {
    let file = SnapshotFile::parse(&example_text()).expect("example parses");
    assert_eq!(file.snapshot.nodes.len(), 3);
    let k = |name| kinds(&file.snapshot, &file.policy, name);
    assert!(
        k("resnet").contains(&Kind::NoFurtherSpeedup),
        "{:?}",
        k("resnet")
    );
    assert!(k("bert").contains(&Kind::QueueLimit), "{:?}", k("bert"));
    let p = plan(&file.snapshot, &file.policy);
    let bert = explain(&file.snapshot, &file.policy, &p)
        .into_iter()
        .find(|e| e.job.name == "bert")
        .unwrap();
    let limit = bert
        .because
        .iter()
        .find(|b| b.kind == Kind::QueueLimit)
        .unwrap();
    assert!(
        limit.text.contains("memory limit"),
        "names the binding resource: {}",
        limit.text
    );
    assert_eq!(k("huge"), vec![Kind::Pending]);
    let p = plan(&file.snapshot, &file.policy);
    let resnet = p.jobs.iter().find(|j| j.job.name == "resnet").unwrap();
    assert_eq!(resnet.target_trainers, 8, "its speedup flattens at 8");
}

#[test]
fn snapshot_files_round_trip() {
    let file = SnapshotFile::parse(&example_text()).unwrap();
    let again = SnapshotFile::parse(&file.to_json()).expect("what we write, we read");
    assert_eq!(file, again);
    // A dumped simulator world round-trips too (pods, times, cooldowns).
    let mut s = snapshot(
        vec![cpu_node("a", 8), gpu_node("b", 16, 4)],
        vec![job("j", 1, 6, one_cpu())],
    );
    s.queues.push(Queue::new("q"));
    let (s, _) = run(s, &Policy::default(), 2, 5.0);
    let file = SnapshotFile::new(s, Policy::default());
    assert_eq!(SnapshotFile::parse(&file.to_json()).unwrap(), file);
}

fn parse_err(text: &str) -> String {
    match SnapshotFile::parse(text) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn malformed_files_name_the_json_path() {
    let text = example_text();
    let e = parse_err(&text[..text.len() / 2]);
    assert!(e.contains("EOF"), "truncated: {e}");
    let e = parse_err(&text.replacen("\"min\": 2", "\"min\": \"two\"", 1));
    assert!(e.contains("snapshot.jobs[0].trainers.min"), "{e}");
    let e = parse_err(&text.replacen("\"gpus\": 8 }", "\"gpus\": 99999999999999999999999 }", 1));
    assert!(e.contains("snapshot.nodes[0].allocatable.gpus"), "{e}");
    let e = parse_err(&text.replacen("\"weight\": 2.0", "\"weight\": 2.0, \"wieght\": 1", 1));
    assert!(
        e.contains("snapshot.queues[0]") && e.contains("wieght"),
        "{e}"
    );
    let e = parse_err(&text.replacen("\"version\": 1", "\"version\": 2", 1));
    assert!(e.contains("version") && e.contains('2'), "{e}");
    assert!(matches!(
        SnapshotFile::parse(""),
        Err(FileError::Json { .. })
    ));
    assert!(matches!(
        SnapshotFile::parse("[]"),
        Err(FileError::Json { .. })
    ));
    // Wrong in meaning, right in form: the job is pending with the field named.
    let file = SnapshotFile::parse(&text.replacen("\"min\": 2", "\"min\": 20", 1)).unwrap();
    let p = plan(&file.snapshot, &file.policy);
    let r = &p.jobs[0].reason;
    assert!(
        matches!(r, Some(Reason::InvalidSpec { field, .. }) if field == "trainers.min"),
        "{r:?}"
    );
}

#[test]
fn explanations_name_the_binding_constraint() {
    let policy = Policy::default();
    // Max reached: a small job alone on a big cluster.
    let s = snapshot(vec![cpu_node("a", 32)], vec![job("small", 1, 4, one_cpu())]);
    let (s, _) = run(s, &policy, 1, 1.0);
    assert!(kinds(&s, &policy, "small").contains(&Kind::MaxReached));

    // Services first: a full node, a pending service pod, a job above its minimum.
    let s = snapshot(vec![cpu_node("a", 10)], vec![job("j", 1, 20, one_cpu())]);
    let (mut s, _) = run(s, &policy, 1, 1.0);
    s.other_pods
        .push(unplaced_pod("web-0", Resources::new(2000, GIB, 0)));
    let k = kinds(&s, &policy, "j");
    assert!(k.contains(&Kind::ServicesFirst), "{k:?}");

    // Cooldown: a job that just grew keeps more than its fair share when a newcomer
    // arrives whose minimum fits beside it.
    let s = snapshot(vec![cpu_node("a", 40)], vec![job("old", 1, 40, one_cpu())]);
    let (mut s, _) = run(s, &policy, 1, 1.0);
    let mut new = job("new", 2, 40, one_cpu());
    new.submit_time_s = s.time_s;
    s.jobs.push(new);
    s.time_s += 1.0;
    let k = kinds(&s, &policy, "old");
    assert!(
        k.contains(&Kind::MadeRoomForJob) || k.contains(&Kind::Cooldown),
        "{k:?}"
    );
    let after = apply(&s, &plan(&s, &policy));
    let k = kinds(&after, &policy, "old");
    assert!(k.contains(&Kind::Cooldown), "{k:?}");

    // Min not packable: an admitted job lost the node its trainers ran on.
    let mut s = snapshot(
        vec![cpu_node("a", 4), cpu_node("b", 8)],
        vec![job("lost", 6, 6, one_cpu())],
    );
    s.jobs[0].admitted = true;
    s.jobs[0].pods = vec![
        bound("lost-master-0", Role::Master, "a"),
        bound("lost-pserver-0", Role::Pserver, "a"),
        bound("lost-pserver-1", Role::Pserver, "a"),
    ];
    for i in 0..6 {
        s.jobs[0]
            .pods
            .push(bound(&format!("lost-trainer-{i}"), Role::Trainer, "gone"));
    }
    s.nodes.truncate(1);
    let k = kinds(&s, &policy, "lost");
    assert!(k.contains(&Kind::MinNotPackable), "{k:?}");
}

fn assert_ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run `ebb ARGS` with `input` on its standard input.
fn ebb_with_stdin(args: &[&str], input: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_ebb"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ebb starts");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input).expect("ebb reads its input");
    }
    child.wait_with_output().expect("ebb ends")
}

#[test]
fn the_command_reads_a_file_or_stdin_and_prints_json_or_a_table() {
    use std::process::Command;
    let exe = env!("CARGO_BIN_EXE_ebb");
    let out = Command::new(exe)
        .args(["plan", EXAMPLE, "--explain"])
        .output()
        .unwrap();
    assert_ok(&out);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("ml/resnet") && table.contains("no further speedup"),
        "{table}"
    );

    let out = ebb_with_stdin(
        &["plan", "-", "--format", "json", "--explain"],
        example_text().as_bytes(),
    );
    assert_ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON out");
    assert_eq!(v["version"], 1);
    assert!(v["plan"]["jobs"].as_array().is_some_and(|j| j.len() == 3));
    assert!(v["explain"][0]["because"][0]["kind"].is_string());

    let out = ebb_with_stdin(
        &["plan", "-"],
        b"{\"version\": 1, \"snapshot\": {\"nodes\": 5}}",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("snapshot.nodes") && err.contains("standard input"),
        "{err}"
    );
}

#[test]
fn simulator_dumps_replay_with_ebb_plan() {
    use std::process::Command;
    let exe = env!("CARGO_BIN_EXE_ebb");
    let dir = std::env::temp_dir().join(format!("ebb-dumps-{}", std::process::id()));
    let out = Command::new(exe)
        .args([
            "sim",
            "scenarios/seed-case1.yaml",
            "--policy",
            "elastic",
            "--dump-snapshots",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert_ok(&out);
    let mut dumps: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dumps.sort();
    assert!(dumps.len() >= 4, "{dumps:?}");
    // The tick at which job-b arrives: replayed, job-b is admitted at once.
    let arrival = dumps
        .iter()
        .find(|p| {
            let f = SnapshotFile::parse(&std::fs::read_to_string(p).unwrap()).unwrap();
            f.snapshot.jobs.iter().any(|j| j.name == "job-b")
        })
        .expect("a dump with job-b");
    let out = Command::new(exe)
        .args(["plan", "--format", "json"])
        .arg(arrival)
        .output()
        .unwrap();
    assert_ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let b = v["plan"]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job"]["name"] == "job-b")
        .unwrap()
        .clone();
    assert_eq!(b["admitted"], true, "{b}");
    std::fs::remove_dir_all(&dir).ok();
}
