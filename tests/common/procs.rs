//! Real `ebb` processes on loopback for the coordination tests.
#![allow(dead_code)]

use ebb::coord::client;
use ebb::coord::proto::{StatusReply, StatusRequest};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "scratch.rs"]
mod scratch;
pub use scratch::Scratch;

pub const EBB: &str = env!("CARGO_BIN_EXE_ebb");

pub fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/digits.csv.gz")
}

pub fn workdir(name: &str) -> Scratch {
    Scratch::new(name)
}

pub fn spawn(dir: &Path, log: &str, args: &[&str]) -> Child {
    let out = std::fs::File::create(dir.join(format!("{log}.log"))).expect("log file");
    Command::new(EBB)
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .expect("spawn ebb")
}

pub fn wait_for_file(path: &Path) -> String {
    let start = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && !s.is_empty()
        {
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -TERM failed");
}

/// Waits for the process to exit; panics after `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            start.elapsed() < limit,
            "process {} still running after {limit:?}",
            child.id()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub struct Job {
    pub dir: Scratch,
    pub master: Child,
    pub master_addr: String,
    pub pservers: Vec<Child>,
    pub pserver_addrs: Vec<String>,
    pub trainers: Vec<Child>,
    pub master_args: Vec<String>,
    /// Pservers' `--checkpoint-interval-ms`.
    pub checkpoint_ms: u64,
    rt: tokio::runtime::Runtime,
}

impl Job {
    /// A master (15 passes of 32-row chunks) and `pservers` pservers checkpointing every
    /// 200 ms.
    pub fn start(name: &str, pservers: usize, extra_master: &[&str]) -> Job {
        Job::start_checkpointing(name, pservers, extra_master, 200)
    }

    /// [`Job::start`] with pservers checkpointing every `checkpoint_ms`.
    pub fn start_checkpointing(
        name: &str,
        pservers: usize,
        extra_master: &[&str],
        checkpoint_ms: u64,
    ) -> Job {
        let dir = workdir(name);
        let d = data();
        let mut master_args: Vec<String> = [
            "master",
            "--listen",
            "127.0.0.1:0",
            "--data",
            d.to_str().unwrap(),
            "--passes",
            "15",
            "--heartbeat-ms",
            "100",
            "--heartbeat-timeout-ms",
            "800",
            "--save-interval-ms",
            "500",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        master_args.extend([
            "--state-dir".into(),
            dir.join("master-state").display().to_string(),
        ]);
        master_args.extend(extra_master.iter().map(|s| s.to_string()));
        let addr_file = dir.join("master.addr");
        let mut args = master_args.clone();
        args.extend(["--addr-file".into(), addr_file.display().to_string()]);
        let master = spawn(
            &dir,
            "master",
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let master_addr = wait_for_file(&addr_file);
        let mut job = Job {
            dir,
            master,
            master_addr,
            pservers: Vec::new(),
            pserver_addrs: Vec::new(),
            trainers: Vec::new(),
            master_args,
            checkpoint_ms,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
        };
        for i in 0..pservers {
            let (child, addr) = job.spawn_pserver(i, "127.0.0.1:0");
            job.pservers.push(child);
            job.pserver_addrs.push(addr);
        }
        job
    }

    pub fn spawn_pserver(&self, i: usize, listen: &str) -> (Child, String) {
        let addr_file = self.dir.join(format!("pserver-{i}.addr"));
        let _ = std::fs::remove_file(&addr_file);
        let ckpt = self.dir.join("checkpoints");
        let child = spawn(
            &self.dir,
            &format!("pserver-{i}"),
            &[
                "pserver",
                "--listen",
                listen,
                "--index",
                &i.to_string(),
                "--checkpoint-dir",
                ckpt.to_str().unwrap(),
                "--checkpoint-interval-ms",
                &self.checkpoint_ms.to_string(),
                "--addr-file",
                addr_file.to_str().unwrap(),
            ],
        );
        let addr = wait_for_file(&addr_file);
        (child, addr)
    }

    /// SIGKILLs pserver `i`, then starts it again on the same address and checkpoints.
    pub fn restart_pserver(&mut self, i: usize) {
        self.pservers[i].kill().expect("SIGKILL pserver");
        self.pservers[i].wait().expect("reap pserver");
        let addr = self.pserver_addrs[i].clone();
        let (child, _) = self.spawn_pserver(i, &addr);
        self.pservers[i] = child;
    }

    /// Pserver `i`'s Status.
    pub fn pserver_status(&self, i: usize) -> ebb::coord::proto::PserverStatusReply {
        self.rt.block_on(async {
            let mut p = client::pserver(&self.pserver_addrs[i]).expect("client");
            p.status(ebb::coord::proto::PserverStatusRequest {})
                .await
                .expect("pserver status")
                .into_inner()
        })
    }

    /// Kills the master and starts it again on the same address and state.
    pub fn restart_master(&mut self) {
        self.master.kill().expect("SIGKILL master");
        self.master.wait().expect("reap master");
        let mut args = self.master_args.clone();
        for (i, a) in args.clone().iter().enumerate() {
            if a == "--listen" {
                args[i + 1] = self.master_addr.clone();
            }
        }
        self.master = spawn(
            &self.dir,
            "master-restarted",
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
    }

    pub fn add_trainer(&mut self, id: &str) {
        let d = data();
        let ps = self.pserver_addrs.join(",");
        let model_dir = self.dir.join("model");
        let child = spawn(
            &self.dir,
            id,
            &[
                "trainer",
                "--id",
                id,
                "--master",
                &self.master_addr,
                "--pservers",
                &ps,
                "--data",
                d.to_str().unwrap(),
                "--model-dir",
                model_dir.to_str().unwrap(),
            ],
        );
        self.trainers.push(child);
    }

    pub fn status(&self) -> Option<StatusReply> {
        self.rt.block_on(async {
            let mut m = client::master(&self.master_addr).ok()?;
            tokio::time::timeout(Duration::from_secs(2), m.status(StatusRequest {}))
                .await
                .ok()?
                .ok()
                .map(|r| r.into_inner())
        })
    }

    pub fn wait_until(
        &self,
        what: &str,
        limit: Duration,
        f: impl Fn(&StatusReply) -> bool,
    ) -> StatusReply {
        let start = Instant::now();
        loop {
            if let Some(s) = self.status()
                && f(&s)
            {
                return s;
            }
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {what}; logs in {}",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn wait_finished(&self) -> StatusReply {
        self.wait_until("the final evaluation", Duration::from_secs(120), |s| {
            s.finished && s.final_accuracy_reported
        })
    }

    pub fn rt(&self) -> &tokio::runtime::Runtime {
        &self.rt
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        for c in self
            .trainers
            .iter_mut()
            .chain(self.pservers.iter_mut())
            .chain(std::iter::once(&mut self.master))
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Every chunk of every pass done exactly once, none given up.
pub fn assert_exactly_once(s: &StatusReply) {
    assert_eq!(s.pass_status.len() as u32, s.passes, "{s:?}");
    for p in &s.pass_status {
        assert_eq!(
            p.done, p.chunks,
            "pass {}: {} of {} chunks done",
            p.pass, p.done, p.chunks
        );
        assert_eq!(
            p.completions, p.chunks,
            "pass {}: {} completions for {} chunks",
            p.pass, p.completions, p.chunks
        );
        assert_eq!(p.failed, 0, "pass {}: chunks given up", p.pass);
    }
}
