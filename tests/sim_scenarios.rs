//! The simulator on the shipped scenarios: the seed experiment's acceptance criteria, and
//! bad scenario files. The tests run in debug builds, where the simulator checks at every
//! event that no node is over-committed (a violation fails the run with an error).

use ebb::cluster::sim::report::{Sample, time_mean};
use ebb::cluster::sim::{self, PolicyKind, PolicyResult, Scenario, SimError};

fn run(path: &str, kind: PolicyKind) -> PolicyResult {
    let scenario = Scenario::load(std::path::Path::new(path)).expect("scenario loads");
    sim::run(&scenario, kind, &mut |_| {}).expect("simulation runs without over-commit")
}

fn job<'a>(r: &'a PolicyResult, name: &str) -> &'a ebb::cluster::sim::report::JobResult {
    r.jobs
        .iter()
        .find(|j| j.name == name)
        .expect("job in results")
}

fn trainers(s: &Sample) -> u32 {
    s.trainers.values().sum()
}

#[test]
fn case1_elastic_admits_b_at_once_keeps_the_cluster_full_and_finishes_sooner() {
    let elastic = run("scenarios/seed-case1.yaml", PolicyKind::Elastic);
    let fixed = run("scenarios/seed-case1.yaml", PolicyKind::Static);
    let (a, b) = (job(&elastic, "job-a"), job(&elastic, "job-b"));
    let tick = 5.0;
    assert!(
        b.pending_s.expect("job-b started") <= tick,
        "job-b pending {:?}",
        b.pending_s
    );
    // While both run: from job-b's pods being up to job-a's end.
    let from = b.start_s.unwrap() + 10.0;
    let to = a.end_s.expect("job-a finished");
    assert!(to > from);
    let util = time_mean(&elastic.series, from, to, |s| s.cpu_util);
    assert!(util >= 0.97, "CPU utilisation while both run: {util}");
    // Job-A grew into the idle cluster before job-B came.
    let before_b = elastic
        .series
        .iter()
        .filter(|s| s.t < b.submit_s)
        .filter_map(|s| s.trainers.get("job-a").copied())
        .max();
    assert!(before_b > Some(200), "job-a alone held {before_b:?}");

    let (fa, fb) = (job(&fixed, "job-a"), job(&fixed, "job-b"));
    assert!(
        fb.start_s.unwrap() >= fa.end_s.unwrap(),
        "static job-b must wait for job-a: {fb:?} {fa:?}"
    );
    assert!(
        elastic.avg_completion_s.unwrap() < fixed.avg_completion_s.unwrap(),
        "elastic {:?} vs static {:?}",
        elastic.avg_completion_s,
        fixed.avg_completion_s
    );
    assert!(elastic.cpu_util_mean > fixed.cpu_util_mean);
}

#[test]
fn case2_trainers_yield_to_nginx_and_grow_back() {
    let r = run("scenarios/seed-case2.yaml", PolicyKind::Elastic);
    let nginx = &r.services[0];
    let steps = &nginx.steps;
    assert_eq!(steps.len(), 5);
    // Up through 1w, 10w, 50w: Nginx grows, trainers shrink; back down: the reverse.
    for k in 0..2 {
        assert!(steps[k + 1].pods > steps[k].pods, "{steps:?}");
        assert!(steps[k + 1].trainers < steps[k].trainers, "{steps:?}");
    }
    for k in 2..4 {
        assert!(steps[k + 1].pods < steps[k].pods, "{steps:?}");
        assert!(steps[k + 1].trainers > steps[k].trainers, "{steps:?}");
    }
    // No Nginx pod waits for trainers longer than one HPA sync plus one tick.
    assert!(
        nginx.longest_pending_s <= 15.0 + 5.0,
        "an nginx pod waited {} s",
        nginx.longest_pending_s
    );
    assert!(r.cpu_util_mean >= 0.95, "utilisation {}", r.cpu_util_mean);
    let job = job(&r, "mnist");
    assert!(job.end_s.is_some(), "the training job finishes");
    // Trainers never go below min, never above max, while the job runs.
    for s in r
        .series
        .iter()
        .filter(|s| s.t > job.start_s.unwrap() + 30.0)
    {
        if let Some(&n) = s.trainers.get("mnist") {
            assert!((2..=100).contains(&n), "{n} trainers at {}", s.t);
        }
    }
    assert!(
        r.series
            .iter()
            .any(|s| trainers(s) == 0 || s.t >= job.end_s.unwrap())
    );
}

#[test]
fn case2_static_job_starves_nginx() {
    let r = run("scenarios/seed-case2.yaml", PolicyKind::Static);
    assert!(
        r.services[0].longest_pending_s > 3600.0,
        "a fixed-size job never yields: {}",
        r.services[0].longest_pending_s
    );
}

fn parse_err(text: &str) -> String {
    match Scenario::parse(text, "bad.yaml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const GOOD: &str = r#"
name: t
cluster:
  nodes:
    - { prefix: n, count: 2, cpu: 8, memory_gib: 32 }
jobs:
  - name: j
    submit_s: 0
    master: { cpu: 1, memory_gib: 1 }
    pservers: { count: 1, cpu: 1, memory_gib: 1 }
    trainers: { requested: 4, min: 1, max: 8, cpu: 1, memory_gib: 1 }
    work: 1000
    rate_per_trainer: 1
"#;

#[test]
fn a_small_scenario_runs_to_the_end() {
    let s = Scenario::parse(GOOD, "good.yaml").expect("valid");
    let r = sim::run(&s, PolicyKind::Elastic, &mut |_| {}).expect("runs");
    let j = &r.jobs[0];
    // 8 trainers (max) at 1 sample/s each, after a 5 s pod startup: about 130 s.
    let end = j.end_s.expect("finishes");
    assert!((125.0..=145.0).contains(&end), "ended at {end}");
}

#[test]
fn bad_scenarios_name_the_file_and_field() {
    let cases = [
        (GOOD.replace("min: 1,", "min: 9,"), "jobs[0].trainers.min"),
        (
            GOOD.replace("submit_s: 0", "submit_s: -5"),
            "jobs[0].submit_s",
        ),
        (GOOD.replace("cpu: 8", "cpu: -8"), "cluster.nodes[0].cpu"),
        (
            GOOD.replace("min: 1, max: 8", "min: 30, max: 40")
                .replace("requested: 4", "requested: 30"),
            "jobs[0].trainers.min",
        ),
        (GOOD.replace("work: 1000", "work: 0"), "jobs[0].work"),
        (
            GOOD.replace(
                "trainers: { requested: 4, min: 1, max: 8, cpu: 1,",
                "trainers: { requested: 4, min: 1, max: 8, cpu: 100,",
            ),
            "jobs[0].trainers",
        ),
        (
            format!("{GOOD}faults:\n  - {{ node: nope, down_s: 5 }}\n"),
            "faults[0].node",
        ),
    ];
    for (text, field) in cases {
        let e = parse_err(&text);
        // The line of the offending field (the job's fields are on lines 7..13).
        let line = text
            .lines()
            .position(|l| {
                let last = field.rsplit('.').next().unwrap();
                let last = last.split('[').next().unwrap();
                l.contains(&format!("{last}:")) || l.trim_start().starts_with(&format!("{last}:"))
            })
            .map(|i| i + 1);
        if let Some(line) = line {
            assert!(
                e.contains(&format!("bad.yaml:{line}")),
                "want line {line} in: {e}"
            );
        } else {
            assert!(e.contains("bad.yaml"), "{e}");
        }
        assert!(e.contains(field), "expected {field} in: {e}");
    }
}

#[test]
fn unknown_fields_and_broken_yaml_are_refused_with_a_line() {
    let e = parse_err(&GOOD.replace("work: 1000", "work: 1000\n    wrok: 5"));
    assert!(e.contains("bad.yaml") && e.contains("wrok"), "{e}");
    assert!(
        e.contains("line") || e.contains(":10:") || e.contains("10"),
        "{e}"
    );
    let e = parse_err("name: [unclosed\n");
    assert!(e.contains("bad.yaml"), "{e}");
    let e = parse_err("");
    assert!(e.contains("bad.yaml"), "{e}");
    match Scenario::load(std::path::Path::new("scenarios/does-not-exist.yaml")) {
        Err(SimError::Io { path, .. }) => assert!(path.contains("does-not-exist")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn node_loss_and_return_are_survived() {
    let text = format!("{GOOD}faults:\n  - {{ node: n-1, down_s: 20, up_s: 60 }}\n");
    let s = Scenario::parse(&text, "fault.yaml").expect("valid");
    let r = sim::run(&s, PolicyKind::Elastic, &mut |_| {}).expect("runs");
    let j = &r.jobs[0];
    let end = j.end_s.expect("the job still finishes");
    assert!(
        end > 135.0,
        "losing half the cluster for 40 s costs time: {end}"
    );
    // While n-1 is down the job holds at most what n-0 has room for.
    let during = r
        .series
        .iter()
        .filter(|s| s.t > 25.0 && s.t < 60.0)
        .map(trainers)
        .max()
        .unwrap_or(0);
    assert!(during <= 8, "{during}");
}

/// `ebb sim ARGS...`, asserting it succeeded when `ok`; returns stdout and stderr.
fn ebb_sim(args: &[&std::ffi::OsStr], ok: bool) -> (String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ebb"))
        .arg("sim")
        .args(args)
        .output()
        .expect("ebb runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(out.status.success(), ok, "{stderr}");
    (stdout, stderr)
}

#[test]
fn the_cli_writes_the_json_fields_and_a_readable_plot() {
    let dir = std::env::temp_dir().join(format!("ebb-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, svg, png) = (dir.join("r.json"), dir.join("r.svg"), dir.join("r.png"));
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    let (table, _) = ebb_sim(
        &[
            os("scenarios/seed-case1.yaml"),
            os("--policy"),
            os("both"),
            os("--json"),
            json.as_os_str(),
            os("--plot"),
            svg.as_os_str(),
        ],
        true,
    );
    for needle in [
        "average pending time",
        "CPU utilisation",
        "job-b",
        "elastic",
        "static",
    ] {
        assert!(table.contains(needle), "missing {needle}:\n{table}");
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let list = v.as_array().expect("both policies: a list");
    assert_eq!(list.len(), 2);
    for r in list {
        for key in ["policy", "jobs", "cpu_util_mean", "gpu_util_mean", "series"] {
            assert!(r.get(key).is_some(), "missing {key}");
        }
        for key in [
            "name",
            "submit_s",
            "start_s",
            "end_s",
            "pending_s",
            "running_s",
        ] {
            assert!(r["jobs"][0].get(key).is_some(), "missing jobs[].{key}");
        }
        for key in ["t", "cpu_util", "gpu_util", "trainers", "services"] {
            assert!(r["series"][0].get(key).is_some(), "missing series[].{key}");
        }
    }
    assert!(
        table.contains(&format!("plot written to {}", svg.display())),
        "{table}"
    );
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.contains("<svg") && svg_text.contains("time (hours)"));
    assert!(svg_text.contains("job-a trainers, elastic"));
    assert!(
        svg_text.contains("job-a trainers, static"),
        "no '(dashed)' tag: the legend's line is dashed"
    );
    assert!(
        svg_text.contains("seed-case1 (elastic solid, static dashed)"),
        "the scenario in the title"
    );
    assert!(
        !svg_text.contains(".0</text>"),
        "pod ticks are whole numbers"
    );

    let args = [
        os("scenarios/seed-case2.yaml"),
        os("--policy"),
        os("elastic"),
        os("--plot"),
        png.as_os_str(),
    ];
    ebb_sim(&args, true);
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");

    let gif = dir.join("r.gif");
    let args = [
        os("scenarios/seed-case1.yaml"),
        os("--plot"),
        gif.as_os_str(),
    ];
    let (stdout, stderr) = ebb_sim(&args, false);
    assert!(stderr.contains(".svg or .png"), "{stderr}");
    assert!(
        !stdout.contains("average pending time"),
        "refused before the run: {stdout}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_measured_placement_speedup_wins_over_the_count_curve() {
    let one_node = r#"
name: placement
cluster:
  nodes:
    - { prefix: n, count: 1, cpu: 10, memory_gib: 32 }
jobs:
  - name: j
    submit_s: 0
    master: { cpu: 1, memory_gib: 1 }
    pservers: { count: 0, cpu: 0, memory_gib: 0 }
    trainers: { requested: 4, min: 4, max: 4, cpu: 1, memory_gib: 1 }
    work: 1000
    rate_per_trainer: 1
    placement_speedup:
      - { per_node: [4], speedup: 2.0 }
"#;
    let s = Scenario::parse(one_node, "placement.yaml").expect("valid");
    let r = sim::run(&s, PolicyKind::Elastic, &mut |_| {}).expect("runs");
    let end = r.jobs[0].end_s.expect("finishes");
    // Four trainers on one node go at the measured 2x, not the linear 4x: 5 s of pod
    // startup, then 1000 samples at 2 per second.
    assert!((504.0..=506.0).contains(&end), "ended at {end}");
    let linear = Scenario::parse(
        &one_node.replace(
            "placement_speedup:\n      - { per_node: [4], speedup: 2.0 }\n",
            "",
        ),
        "linear.yaml",
    )
    .expect("valid");
    let r = sim::run(&linear, PolicyKind::Elastic, &mut |_| {}).expect("runs");
    let end = r.jobs[0].end_s.expect("finishes");
    assert!((254.0..=256.0).contains(&end), "ended at {end}");
    let bad = one_node.replace("per_node: [4]", "per_node: [0]");
    let e = Scenario::parse(&bad, "bad.yaml").expect_err("zero trainers on a node");
    assert!(e.to_string().contains("placement_speedup[0]"), "{e}");
}

/// A run that keeps totals only (the benchmark, a trace without `--json`) reports what a
/// run keeping every job's trainers reports, and its samples agree with the full series.
#[test]
fn a_summary_only_run_reports_the_same_results() {
    for path in ["scenarios/seed-case1.yaml", "scenarios/seed-case2.yaml"] {
        let scenario = Scenario::load(std::path::Path::new(path)).expect("scenario loads");
        let full = sim::run(&scenario, PolicyKind::Elastic, &mut |_| {}).expect("runs");
        let summary =
            sim::run(&scenario, PolicyKind::Elastic, &mut sim::SummaryOnly).expect("runs");
        let without_series = |r: &PolicyResult| {
            let mut v = serde_json::to_value(r).expect("serialises");
            v.as_object_mut().expect("an object").remove("series");
            v
        };
        assert_eq!(without_series(&full), without_series(&summary), "{path}");
        assert!(summary.series.len() <= full.series.len());
        for (i, s) in summary.series.iter().enumerate() {
            assert!(s.trainers.is_empty(), "no per-job map kept");
            // Samples at one instant (before and after a plan): the last one holds.
            if summary.series.get(i + 1).is_some_and(|next| next.t == s.t) {
                continue;
            }
            let at = sim::report::value_at(&full.series, s.t).expect("a sample by then");
            assert_eq!(s.trainers_total, trainers(at), "{path} at {} s", s.t);
            assert_eq!(s.cpu_util, at.cpu_util);
        }
        for s in &full.series {
            assert_eq!(s.trainers_total, trainers(s));
        }
    }
}

#[test]
fn the_heterogeneous_scenario_runs_each_job_only_where_it_may() {
    for kind in [PolicyKind::Elastic, PolicyKind::Static] {
        let r = run("scenarios/heterogeneous.yaml", kind);
        let on = |name: &str| job(&r, name).trainers_ran_on.clone();
        assert_eq!(on("h100-only"), ["h100"], "{kind:?}");
        assert!(
            on("h100-or-t4").iter().all(|g| g == "h100" || g == "t4"),
            "{kind:?}: {:?}",
            on("h100-or-t4")
        );
        assert_eq!(on("dedicated"), ["a100-dedicated"], "{kind:?}");
        assert!(
            !on("untolerated").contains(&"a100-dedicated".to_string()),
            "{kind:?}: a pod on a taint it does not tolerate"
        );
        for j in &r.jobs {
            assert!(j.end_s.is_some(), "{kind:?}: {} did not finish", j.name);
        }
        // The web service, pinned to the CPU nodes, always found room there.
        assert_eq!(r.services[0].longest_pending_s, 0.0, "{kind:?}");
    }
    // Elastic: the job that takes either model grows onto the T4s the H100-only job
    // cannot use.
    let elastic = run("scenarios/heterogeneous.yaml", PolicyKind::Elastic);
    assert!(
        job(&elastic, "h100-or-t4")
            .trainers_ran_on
            .contains(&"t4".to_string())
    );
}

#[test]
fn malformed_placement_in_a_scenario_names_the_field() {
    let with = |extra: &str| GOOD.replace("    work: 1000", &format!("{extra}\n    work: 1000"));
    let cases = [
        (
            with(
                "    placement:\n      trainers:\n        required: [{ match_expressions: [{ key: gen, operator: Gt, values: [new] }] }]",
            ),
            "jobs[0].placement.trainers.required[0].match_expressions[0].values",
        ),
        (
            with(
                "    placement:\n      master:\n        tolerations: [{ key: k, effect: NoScheduled }]",
            ),
            "jobs[0].placement.master.tolerations[0].effect",
        ),
        (
            GOOD.replace(
                "memory_gib: 32 }",
                "memory_gib: 32, taints: [{ key: k, effect: Sometimes }] }",
            ),
            "cluster.nodes[0].taints[0].effect",
        ),
    ];
    for (text, field) in cases {
        let e = parse_err(&text);
        assert!(e.contains(field), "expected {field} in: {e}");
    }
    // A selector no node meets is not malformed: the job pends NoEligibleNode and the
    // rest of the cluster runs.
    let text = with("    placement:\n      trainers:\n        gpu_models: [B200]");
    let s = Scenario::parse(&text, "b200.yaml").expect("well formed");
    let r = sim::run(&s, PolicyKind::Elastic, &mut |_| {}).expect("runs");
    assert!(r.jobs[0].start_s.is_none() && r.jobs[0].end_s.is_none());
}

#[test]
fn an_autoscaled_group_grows_for_gangs_only_and_hands_nodes_back() {
    let elastic = run("scenarios/seed-autoscale.yaml", PolicyKind::Elastic);
    let fixed = run("scenarios/seed-autoscale.yaml", PolicyKind::Static);
    for r in [&elastic, &fixed] {
        assert!(r.jobs.iter().all(|j| j.end_s.is_some()), "{:?}", r.jobs);
        assert!(r.nodes.nodes_added > 0, "{:?}", r.nodes);
        assert_eq!(r.nodes.nodes_added_unused, 0, "{:?}", r.nodes);
    }
    // Nodes only for what must run: fewer added, fewer node-hours than the static
    // policy, which asks for every requested trainer.
    assert!(
        elastic.nodes.nodes_added < fixed.nodes.nodes_added,
        "{:?} vs {:?}",
        elastic.nodes,
        fixed.nodes
    );
    assert!(
        elastic.nodes.node_hours <= fixed.nodes.node_hours,
        "{:?} vs {:?}",
        elastic.nodes,
        fixed.nodes
    );
    // Showing every trainer up to max as pending buys more nodes.
    let naive = run("scenarios/seed-autoscale.yaml", PolicyKind::NaiveElastic);
    assert!(
        naive.nodes.nodes_added > elastic.nodes.nodes_added,
        "{:?} vs {:?}",
        naive.nodes,
        elastic.nodes
    );
    // Priced groups are costed by the node-hour.
    let cost = elastic.nodes.cost.expect("the group is priced");
    assert!((cost - elastic.nodes.node_hours * 1.02).abs() < 1e-6);
    // The figures sit beside the others in the policy's JSON.
    let json = serde_json::to_value(&elastic).expect("serialises");
    for key in ["node_hours", "nodes_added", "nodes_added_unused", "cost"] {
        assert!(
            json.get(key).is_some_and(|v| v.is_number()),
            "{key} in the JSON"
        );
    }
}

#[test]
fn short_tasks_on_a_spot_group_buy_no_node_that_goes_unused() {
    let elastic = run("scenarios/seed-batch-tasks.yaml", PolicyKind::Elastic);
    let naive = run("scenarios/seed-batch-tasks.yaml", PolicyKind::NaiveElastic);
    assert!(elastic.jobs[0].end_s.is_some() && naive.jobs[0].end_s.is_some());
    // The gang fits the nodes there are: elastic asks for nothing.
    assert_eq!(elastic.nodes.nodes_added, 0, "{:?}", elastic.nodes);
    // Every worker shown as pending buys nodes that join after the batch is done.
    assert!(naive.nodes.nodes_added_unused > 0, "{:?}", naive.nodes);
    assert!(elastic.nodes.node_hours < naive.nodes.node_hours);
}

#[test]
fn a_bad_autoscale_block_is_refused_naming_the_field() {
    let scaled = |block: &str| {
        GOOD.replace(
            "{ prefix: n, count: 2, cpu: 8, memory_gib: 32 }",
            &format!("{{ prefix: n, count: 2, cpu: 8, memory_gib: 32, autoscale: {block} }}"),
        )
    };
    for (block, field) in [
        ("{ min: 3, max: 2 }", "cluster.nodes[0].autoscale.max"),
        ("{ min: 0, max: 1 }", "cluster.nodes[0].count"),
        (
            "{ max: 4, delay_s: -1 }",
            "cluster.nodes[0].autoscale.delay_s",
        ),
        (
            "{ max: 4, utilisation: 2 }",
            "cluster.nodes[0].autoscale.utilisation",
        ),
    ] {
        let e = parse_err(&scaled(block));
        assert!(e.contains(field), "expected {field} in: {e}");
    }
    // A group that starts below its need grows: the job's gang of 7 cores does not fit
    // one 4-core node, and a second one joins.
    let text = GOOD
        .replace(
            "{ prefix: n, count: 2, cpu: 8, memory_gib: 32 }",
            "{ prefix: n, count: 1, cpu: 4, memory_gib: 32, autoscale: { min: 1, max: 3, delay_s: 60 } }",
        )
        .replace("min: 1, max: 8", "min: 5, max: 8")
        .replace("requested: 4", "requested: 5");
    let s = Scenario::parse(&text, "grow.yaml").expect("valid");
    let r = sim::run(&s, PolicyKind::Elastic, &mut |_| {}).expect("runs");
    assert!(r.jobs[0].end_s.is_some(), "{:?}", r.jobs[0]);
    let start = r.jobs[0].start_s.expect("started");
    assert!(
        (60.0..=60.0 + 3.0 * 5.0 + 10.0).contains(&start),
        "started at {start}"
    );
    assert!(
        r.nodes.nodes_added >= 1 && r.nodes.nodes_added <= 2,
        "{:?}",
        r.nodes
    );
}
