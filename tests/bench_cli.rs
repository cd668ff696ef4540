//! `ebb bench plan` from the command line: the reference passes it reports and the
//! `--sweep` of sizes, on clusters small enough to run in a test.

use std::process::{Command, Output};

fn ebb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ebb"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("running ebb")
}

fn json_of(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn positive(v: &serde_json::Value, field: &str) -> f64 {
    let x = v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} missing: {v}"));
    assert!(x > 0.0 && x.is_finite(), "{field} = {x}");
    x
}

#[test]
fn bench_plan_reports_the_reference_passes_beside_the_tick() {
    let v = json_of(&ebb(&[
        "bench", "plan", "--nodes", "30", "--jobs", "12", "--runs", "3", "--json",
    ]));
    for field in ["median_ms", "input_clone_ms", "input_index_ms"] {
        positive(&v, field);
    }
    assert_eq!(v["nodes"], 30);
}

#[test]
fn a_sweep_runs_each_size_with_jobs_in_proportion_and_fits_the_growth() {
    let v = json_of(&ebb(&[
        "bench", "plan", "--nodes", "20", "--jobs", "8", "--queues", "2", "--runs", "2", "--sweep",
        "20,50", "--json",
    ]));
    let sizes: Vec<(u64, u64)> = v["sizes"]
        .as_array()
        .expect("sizes")
        .iter()
        .map(|b| {
            (
                b["nodes"].as_u64().unwrap_or(0),
                b["jobs"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(sizes, vec![(20, 8), (50, 20)]);
    // The exponents are fitted to timings of microseconds at these sizes: any finite
    // number is a fit (a loaded machine can make the larger size no slower), so only
    // that they were fitted is checked here; what they measure is for `ebb bench`.
    for field in ["median_ms", "input_clone_ms", "input_index_ms"] {
        let k = v["exponent"][field]
            .as_f64()
            .unwrap_or_else(|| panic!("exponent.{field} missing: {v}"));
        assert!(k.is_finite(), "exponent.{field} = {k}");
    }
}

#[test]
fn a_sweep_that_cannot_run_is_refused_by_name() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["bench", "plan", "--sweep", "20"],
            "at least two different node counts",
        ),
        (
            &["bench", "plan", "--sweep", "20,20"],
            "at least two different node counts",
        ),
        (
            &["bench", "plan", "--sweep", "20,0"],
            "every node count must be at least 1",
        ),
        (
            &["bench", "controller", "--sweep", "20,40"],
            "--sweep is for `ebb bench plan` only",
        ),
        (
            &[
                "bench",
                "plan",
                "--sweep",
                "20,40",
                "--write-snapshot",
                "never-written.json",
            ],
            "--write-snapshot takes one size",
        ),
    ];
    for (args, says) in cases {
        let out = ebb(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
