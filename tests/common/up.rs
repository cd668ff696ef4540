//! `ebb up` and `ebbctl` as real processes, for the end-to-end tests.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn ebb() -> &'static str {
    env!("CARGO_BIN_EXE_ebb")
}

pub fn ebbctl_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ebbctl")
}

pub fn digits() -> String {
    format!("{}/tests/data/digits.csv.gz", env!("CARGO_MANIFEST_DIR"))
}

#[path = "scratch.rs"]
mod scratch;
pub use scratch::Scratch;

pub struct Up {
    pub dir: Scratch,
    pub child: Child,
    pub addr: String,
    pub config: PathBuf,
}

impl Up {
    /// `ebb up` on a fresh directory with `cluster_yaml`, plus extra flags.
    pub fn start(name: &str, cluster_yaml: &str, extra: &[&str]) -> Up {
        let dir = Scratch::new(&format!("up-{name}"));
        std::fs::write(dir.join("cluster.yaml"), cluster_yaml).unwrap();
        let config = dir.join("ebbctl.yaml");
        let log = std::fs::File::create(dir.join("up.log")).unwrap();
        let child = Command::new(ebb())
            .args(["up", "--listen", "127.0.0.1:0", "--tick-ms", "500"])
            .arg("--cluster")
            .arg(dir.join("cluster.yaml"))
            .arg("--addr-file")
            .arg(dir.join("addr"))
            .arg("--work-dir")
            .arg(dir.join("work"))
            .arg("--ebbctl-config")
            .arg(&config)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("ebb up");
        let addr = wait_for_file(&dir.join("addr"), Duration::from_secs(30));
        Up {
            dir,
            child,
            addr,
            config,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("up.log")).unwrap_or_default()
    }

    /// Runs ebbctl with this cluster's config.
    pub fn ctl(&self, args: &[&str]) -> Output {
        ctl_with(&self.config, args)
    }

    /// ebbctl with `-o json`, which must succeed.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.ctl(&all);
        assert!(
            out.status.success(),
            "ebbctl {args:?}: {}\n--- ebb up log ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log())
        );
        serde_json::from_slice(&out.stdout).expect("ebbctl -o json prints JSON")
    }

    pub fn job(&self, name: &str) -> Value {
        self.json(&["get", name])
    }

    /// Polls `what` until it holds; panics with the log after `limit`.
    pub fn wait(&self, what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
        let start = Instant::now();
        while !ok() {
            assert!(
                start.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}\n--- ebb up log ---\n{}",
                tail(&self.log())
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn ctl_with(config: &Path, args: &[&str]) -> Output {
    Command::new(ebbctl_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("ebbctl")
}

pub fn wait_for_file(path: &Path, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.trim().is_empty()
        {
            return text.trim().to_string();
        }
        assert!(start.elapsed() < limit, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

pub fn submit_args<'a>(
    name: &'a str,
    min: &'a str,
    max: &'a str,
    passes: &'a str,
    data: &'a str,
) -> Vec<&'a str> {
    vec![
        "submit",
        "--name",
        name,
        "--min",
        min,
        "--max",
        max,
        "--cpu",
        "1",
        "--memory",
        "256Mi",
        "--pscpu",
        "500m",
        "--psmemory",
        "256Mi",
        "--passes",
        passes,
        "--dataset",
        data,
    ]
}
