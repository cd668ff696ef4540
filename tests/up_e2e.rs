//! The whole system on one machine with real processes: `ebb up`, jobs submitted with
//! ebbctl, trained to accuracy; sharing, yielding to an online service, auth, bad input.

#[path = "common/up.rs"]
mod up;

use serde_json::Value;
use std::time::Duration;
use up::*;

const TWO_NODES: &str =
    "nodes:\n  - {name: n0, cpu: '4', memory: 8Gi}\n  - {name: n1, cpu: '4', memory: 8Gi}\n";

fn trainers(job: &Value) -> (u64, u64) {
    (
        job["current_trainers"].as_u64().unwrap_or(0),
        job["target_trainers"].as_u64().unwrap_or(0),
    )
}

fn assert_trained(job: &Value) {
    assert_eq!(job["phase"], "Succeeded", "{job:#}");
    let p = &job["progress"];
    assert!(p["finished"].as_bool().unwrap_or(false), "{job:#}");
    assert!(p["last_accuracy"].as_f64().unwrap_or(0.0) >= 0.9, "{job:#}");
    assert_eq!(
        p["duplicate_completions"], 0,
        "a chunk was done twice: {job:#}"
    );
    assert_eq!(
        p["chunks_done"], p["chunks_per_pass"],
        "a chunk was lost: {job:#}"
    );
}

#[test]
fn two_jobs_share_the_cluster_the_first_shrinks_and_both_finish_trained() {
    let up = Up::start("share", TWO_NODES, &[]);
    let data = digits();
    let out = up.ctl(&submit_args("first", "1", "6", "250", &data));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    up.wait(
        "first to grow to 6 trainers",
        Duration::from_secs(60),
        || trainers(&up.job("first")) == (6, 6),
    );

    let out = up.ctl(&submit_args("second", "2", "6", "40", &data));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut shrank = false;
    up.wait("second to be admitted", Duration::from_secs(60), || {
        // The second first: read the other way round, a plan falling between the two
        // reads showed the first job before its shrink and the second after its
        // admission, and the test failed under load.
        let second = up.job("second");
        let admitted = matches!(
            second["phase"].as_str(),
            Some("Running" | "Scaling" | "Succeeded")
        );
        shrank |= trainers(&up.job("first")).1 < 6;
        admitted
    });
    assert!(shrank, "the first job made room for the second");
    // A trainer stopped to make room is gone from `get`, as a deleted Pod is; it is not
    // listed as a trainer that succeeded.
    up.wait(
        "first's stopped trainers to leave get",
        Duration::from_secs(30),
        || {
            let first = up.job("first");
            let trainers: Vec<_> = first["pod_statuses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["role"] == "trainer")
                .collect();
            first["phase"] == "Succeeded"
                || (trainers.len() as u64 == first["target_trainers"].as_u64().unwrap_or(0)
                    && trainers.iter().all(|p| p["phase"] != "Succeeded"))
        },
    );
    let listed = up.json(&["list"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed:#}");

    up.wait("both jobs to finish", Duration::from_secs(240), || {
        ["first", "second"].iter().all(|j| {
            let phase = up.job(j)["phase"].as_str().unwrap_or_default().to_string();
            assert_ne!(phase, "Failed", "{j} failed\n{}", up.log());
            phase == "Succeeded"
        })
    });
    assert_trained(&up.job("first"));
    assert_trained(&up.job("second"));

    let watched = up.ctl(&["watch", "first"]);
    let text = String::from_utf8_lossy(&watched.stdout);
    assert!(
        watched.status.success() && text.contains("default/first Succeeded"),
        "{text}"
    );
    let yaml = up.ctl(&["get", "second", "-o", "yaml"]);
    assert!(String::from_utf8_lossy(&yaml.stdout).contains("phase: Succeeded"));
    let completions = up.ctl(&["completions", "bash"]);
    assert!(String::from_utf8_lossy(&completions.stdout).contains("ebbctl"));

    // Both jobs have finished: `top` no longer gives them columns; its header has units.
    let top = up.ctl(&["top", "--count", "1"]);
    let text = String::from_utf8_lossy(&top.stdout);
    assert!(
        text.contains("TIME(s)") && text.contains("CPU%") && !text.contains("default/first"),
        "{text}"
    );
}

#[test]
fn trainers_yield_to_an_online_service_under_load_and_come_back() {
    let cluster = format!(
        "{TWO_NODES}services:\n  - {{name: web, cpu: '1', memory: 128Mi, min_replicas: 1, max_replicas: 4, target_rps_per_replica: 20, scale_down_window_s: 3}}\n"
    );
    let up = Up::start("yield", &cluster, &["--scale-down-cooldown-s", "2"]);
    let data = digits();
    let out = up.ctl(&submit_args("steady", "1", "6", "100000", &data));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 8 cores - web (1) - master and pserver (1) = 6 trainers.
    up.wait(
        "the job to fill the idle cores",
        Duration::from_secs(60),
        || trainers(&up.job("steady")) == (6, 6),
    );
    let web = web_endpoint(&up);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            // A bounded request loop: at most 2 minutes, ~200 requests/s.
            let start = std::time::Instant::now();
            while !stop.load(std::sync::atomic::Ordering::Relaxed)
                && start.elapsed() < Duration::from_secs(120)
            {
                let _ = http_get(&web);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    up.wait(
        "trainers to yield to the service",
        Duration::from_secs(60),
        || trainers(&up.job("steady")).1 <= 3,
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.join().unwrap();
    up.wait(
        "trainers to come back after the load",
        Duration::from_secs(60),
        || trainers(&up.job("steady")) == (6, 6),
    );
    let out = up.ctl(&["delete", "steady"]);
    assert!(out.status.success());
}

/// The web service's first replica address, from the control API.
fn web_endpoint(up: &Up) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = ebb::cli::config::CtlConfig::load(&up.config).unwrap();
    let context = config.context(None, &up.config).unwrap().clone();
    let start = std::time::Instant::now();
    loop {
        let state = rt.block_on(async {
            let mut c = ebb::cli::client::connect(&context).unwrap();
            c.cluster
                .state(ebb::api::proto::ClusterStateRequest {})
                .await
                .unwrap()
                .into_inner()
        });
        if let Some(e) = state
            .services
            .iter()
            .flat_map(|s| s.endpoints.iter())
            .next()
        {
            return e.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "web never got an address"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn http_get(addr: &str) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    Ok(())
}

const ALICE: &str = "alice-token-0123456789abcdef";
const OPS: &str = "ops-token-0123456789abcdef";

fn auth_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("auth.yaml");
    std::fs::write(
        &path,
        format!(
            "tokens:\n  - {{token: {ALICE}, name: alice, role: user, namespaces: [team-a]}}\n  - {{token: {OPS}, name: ops, role: operator, namespaces: ['*']}}\n"
        ),
    )
    .unwrap();
    path
}

fn contexts(path: &std::path::Path, endpoint: &str, ca: Option<&std::path::Path>) {
    let ca = ca.map_or(String::new(), |c| format!(", ca: {}", c.display()));
    let text = format!(
        "current-context: alice\ncontexts:\n  - {{name: alice, endpoint: '{endpoint}', token: {ALICE}{ca}}}\n  - {{name: ops, endpoint: '{endpoint}', token: {OPS}{ca}}}\n  - {{name: nobody, endpoint: '{endpoint}', token: not-a-real-token-at-all{ca}}}\n"
    );
    std::fs::write(path, text).unwrap();
}

fn code_and_err(out: &std::process::Output) -> (i32, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn tokens_namespaces_roles_bad_specs_and_garbage() {
    let base = Scratch::new("up-auth-tokens");
    let auth = auth_file(&base);
    let up = Up::start("auth", TWO_NODES, &["--auth", auth.to_str().unwrap()]);
    let config = up.dir.join("contexts.yaml");
    contexts(&config, &format!("http://{}", up.addr), None);
    let ctl = |context: &str, args: &[&str]| {
        let mut all = vec!["--context", context];
        all.extend(args);
        ctl_with(&config, &all)
    };
    let data = digits();
    let job = |ns: &'static str, name: &'static str| -> Vec<String> {
        let mut v: Vec<String> = submit_args(name, "1", "1", "1", &data)
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(["-n".to_string(), ns.to_string()]);
        v
    };
    let run = |context: &str, args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        code_and_err(&ctl(context, &refs))
    };

    let (code, err) = code_and_err(&ctl("nobody", &["list"]));
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("Unauthenticated"), "{err}");

    assert_eq!(run("alice", job("team-a", "mine")).0, 0);
    let (code, err) = run("alice", job("team-b", "theirs"));
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("PermissionDenied"), "{err}");
    assert_eq!(run("ops", job("team-b", "ops-job")).0, 0);

    let listed = ctl("alice", &["list", "-o", "json"]);
    let jobs: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let names: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mine"], "alice sees only team-a");
    let (code, _) = code_and_err(&ctl("alice", &["get", "ops-job", "-n", "team-b"]));
    assert_eq!(code, 4);
    let (code, _) = code_and_err(&ctl("alice", &["delete", "ops-job", "-n", "team-b"]));
    assert_eq!(code, 4);

    let (code, err) = code_and_err(&ctl(
        "alice",
        &["queue", "set", "research", "--weight", "2"],
    ));
    assert_eq!(code, 4, "only operators change queues: {err}");
    let (code, err) = code_and_err(&ctl("ops", &["queue", "set", "research", "--weight", "2"]));
    assert_eq!(code, 0, "{err}");
    let queues = String::from_utf8_lossy(&ctl("alice", &["queue", "list"]).stdout).to_string();
    assert!(queues.contains("research"), "{queues}");

    // Invalid specs: INVALID_ARGUMENT (exit 3) naming the field; nothing is created.
    let bad = |args: &[&str]| {
        let mut v: Vec<String> = submit_args("bad", "1", "2", "1", &data)
            .iter()
            .map(|s| s.to_string())
            .collect();
        for pair in args.chunks(2) {
            // `--flag=value`: a value like -3 is not mistaken for a flag.
            let i = v.iter().position(|a| a == pair[0]).unwrap();
            v[i] = format!("{}={}", pair[0], pair[1]);
            v.remove(i + 1);
        }
        v.extend(["-n".to_string(), "team-a".to_string()]);
        run("alice", v)
    };
    for (args, field) in [
        (&["--min", "5"][..], "spec.trainers.min"),
        (&["--cpu", "lots"][..], "spec.trainers.resources.cpu"),
        (&["--cpu", "-3"][..], "spec.trainers.resources.cpu"),
        (&["--memory", "1e30"][..], "spec.trainers.resources.memory"),
        (&["--name", "Not_A_Name"][..], "metadata.name"),
        (&["--passes", "1000000"][..], "spec.passes"),
    ] {
        let (code, err) = bad(args);
        assert_eq!(code, 3, "{args:?}: {err}");
        assert!(
            err.contains("InvalidArgument") && err.contains(field),
            "{args:?}: {err}"
        );
    }
    let (code, err) = code_and_err(&ctl(
        "alice",
        &["scale", "mine", "-n", "team-a", "--min", "4", "--max", "2"],
    ));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("spec.trainers.min"), "{err}");

    // Garbage on the wire: raw junk, a truncated HTTP/2 preface, an oversized request.
    use std::io::Write;
    for junk in [
        &b"\x00\xffnot grpc at all\r\n\r\n"[..],
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00",
        &[0xAB; 70_000][..],
    ] {
        if let Ok(mut s) = std::net::TcpStream::connect(&up.addr) {
            let _ = s.write_all(junk);
        }
    }
    let refused = oversized_submit(&config);
    assert_eq!(
        refused,
        tonic::Code::OutOfRange,
        "a 2 MiB request is refused before decoding"
    );
    let (code, err) = code_and_err(&ctl("alice", &["list"]));
    assert_eq!(code, 0, "the server still serves after garbage: {err}");
    assert!(up.log().find("panicked").is_none(), "{}", up.log());
    let _ = std::fs::remove_file(auth);
}

/// Submits a job whose spec is 2 MiB (over the server's 1 MiB limit); the status code.
fn oversized_submit(config: &std::path::Path) -> tonic::Code {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let contexts = ebb::cli::config::CtlConfig::load(config).unwrap();
    let context = contexts.context(Some("alice"), config).unwrap().clone();
    rt.block_on(async {
        let c = ebb::cli::client::connect(&context).unwrap();
        let spec = ebb::api::proto::JobSpec {
            namespace: "team-a".into(),
            name: "big".into(),
            image: "x".repeat(2 << 20),
            ..Default::default()
        };
        let request = ebb::api::proto::SubmitRequest { spec: Some(spec) };
        let mut jobs = c.jobs.max_encoding_message_size(8 << 20);
        match jobs.submit(request).await {
            Ok(_) => tonic::Code::Ok,
            Err(e) => e.code(),
        }
    })
}

fn openssl(args: &[&str], dir: &std::path::Path) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed to make test certificates");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tls_when_a_certificate_is_configured() {
    let base = Scratch::new("tls-certs");
    // A CA, and a server certificate for 127.0.0.1 that it signs.
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=ebb-test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        &base,
    );
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "key.pem",
            "-out",
            "server.csr",
        ],
        &base,
    );
    std::fs::write(
        base.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
            "-out",
            "cert.pem",
        ],
        &base,
    );
    let (cert, key, ca) = (
        base.join("cert.pem"),
        base.join("key.pem"),
        base.join("ca.pem"),
    );
    let auth = auth_file(&base);
    let up = Up::start(
        "tls",
        TWO_NODES,
        &[
            "--auth",
            auth.to_str().unwrap(),
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let secure = up.dir.join("secure.yaml");
    contexts(&secure, &format!("https://{}", up.addr), Some(&ca));
    let out = ctl_with(&secure, &["list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plain = up.dir.join("plain.yaml");
    contexts(&plain, &format!("http://{}", up.addr), None);
    let out = ctl_with(&plain, &["list"]);
    assert!(
        !out.status.success(),
        "plaintext is refused by a TLS server"
    );
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).contains(needle))
        .count()
}

#[test]
fn killing_ebb_up_takes_its_pods_with_it() {
    let mut up = Up::start("orphans", TWO_NODES, &[]);
    let data = digits();
    let out = up.ctl(&submit_args("long", "1", "4", "100000", &data));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    up.wait("the job to run", Duration::from_secs(60), || {
        trainers(&up.job("long")).0 == 4
    });
    let work = up.dir.join("work").display().to_string();
    // ebb up itself, its master, pserver and 4 trainers (all name the work directory).
    up.wait(
        "the pods' processes to start",
        Duration::from_secs(30),
        || processes_mentioning(&work) >= 7,
    );
    up.child.kill().unwrap(); // SIGKILL: no chance to clean up
    up.child.wait().unwrap();
    let start = std::time::Instant::now();
    while processes_mentioning(&work) > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "pods outlived ebb up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes `text` to `name` in the test's directory and submits it with `ebbctl submit
/// -f`, which must succeed; the file's path.
fn submit_file(up: &Up, name: &str, text: &str) -> std::path::PathBuf {
    let file = up.dir.join(name);
    std::fs::write(&file, text).unwrap();
    let out = up.ctl(&["submit", "-f", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    file
}

#[test]
fn a_trainingjob_file_is_what_ebbctl_submits_too() {
    let up = Up::start("file", TWO_NODES, &[]);
    let file = submit_file(
        &up,
        "job.yaml",
        &format!(
            "apiVersion: ebb.dev/v1alpha1\nkind: TrainingJob\nmetadata:\n  name: from-file\n  namespace: research\nspec:\n  image: ignored-locally\n  dataset: {}\n  passes: 3\n  master:\n    resources: {{cpu: 500m, memory: 256Mi}}\n  pservers:\n    replicas: 2\n    resources: {{cpu: 250m, memory: 128Mi}}\n  trainers:\n    min: 1\n    max: 3\n    resources: {{cpu: '1', memory: 256Mi}}\n",
            digits()
        ),
    );
    up.wait(
        "the job from the file to finish",
        Duration::from_secs(120),
        || up.json(&["get", "from-file", "-n", "research"])["phase"] == "Succeeded",
    );
    let job = up.json(&["get", "from-file", "-n", "research"]);
    assert_trained(&job);
    let listed = up.json(&["list", "-n", "research"]);
    assert_eq!(listed[0]["name"], "from-file");
    // A file that is not a TrainingJob names what is wrong.
    std::fs::write(&file, "apiVersion: ebb.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: x}\nspec: {trainers: {min: one}}\n").unwrap();
    let out = up.ctl(&["submit", "-f", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        said.contains("is not a TrainingJob") && said.contains("spec.trainers.min"),
        "{said}"
    );
    // Files of other kinds, or of no kind, or outside the CRD's bounds, are refused and
    // say why, and nothing runs.
    let zero_passes = format!(
        "apiVersion: ebb.dev/v1alpha1\nkind: TrainingJob\nmetadata: {{name: zero}}\nspec:\n  image: i\n  dataset: {}\n  passes: 0\n  master: {{resources: {{cpu: 500m, memory: 256Mi}}}}\n  pservers: {{replicas: 1, resources: {{cpu: 250m, memory: 128Mi}}}}\n  trainers: {{min: 1, max: 1, resources: {{cpu: '1', memory: 256Mi}}}}\n",
        digits()
    );
    for (text, says) in [
        (zero_passes.as_str(), "spec.passes: 0 is outside"),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n",
            "is a Pod",
        ),
        (
            "apiVersion: ebb.dev/v2\nkind: TrainingJob\nmetadata: {name: x}\nspec: {}\n",
            "ebb.dev/v2 is not one ebb serves",
        ),
        ("metadata: {name: x}\nspec: {}\n", "says no kind"),
    ] {
        std::fs::write(&file, text).unwrap();
        let out = up.ctl(&["submit", "-f", file.to_str().unwrap()]);
        let said = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            !out.status.success() && said.contains(says),
            "{says}: {said}"
        );
    }
    let listed = up.json(&["list", "-A"]);
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "only the good file ran: {listed:#}"
    );
}

/// A job's command runs as an unprivileged user when `ebb up` runs as root (nobody by
/// default, with no supplementary groups), and as the user running `ebb up` otherwise.
#[test]
fn pods_do_not_run_as_root_unless_asked() {
    let up = Up::start("run-as", TWO_NODES, &[]);
    submit_file(
        &up,
        "whoami.yaml",
        &format!(
            "apiVersion: ebb.dev/v1alpha1\nkind: TrainingJob\nmetadata:\n  name: whoami\nspec:\n  image: ignored-locally\n  dataset: {}\n  passes: 1\n  master:\n    resources: {{cpu: 500m, memory: 256Mi}}\n  pservers:\n    replicas: 1\n    resources: {{cpu: 250m, memory: 128Mi}}\n  trainers:\n    min: 1\n    max: 1\n    command: [sh, -c, 'echo uid=$(id -u) groups=$(id -G); sleep 30']\n    resources: {{cpu: '1', memory: 256Mi}}\n",
            digits()
        ),
    );
    let log = up.dir.join("work/default/whoami/whoami-trainer-0.log");
    let start = std::time::Instant::now();
    let said = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("uid=") {
            break text;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the trainer never ran\n{}",
            up.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let me = std::process::Command::new("id").arg("-u").output().unwrap();
    let me = String::from_utf8_lossy(&me.stdout).trim().to_string();
    if me == "0" {
        let nobody = std::process::Command::new("id")
            .args(["-u", "nobody"])
            .output()
            .unwrap();
        let nobody = String::from_utf8_lossy(&nobody.stdout).trim().to_string();
        assert!(said.contains(&format!("uid={nobody} ")), "{said}");
        let groups = said.split("groups=").nth(1).unwrap_or_default();
        assert!(
            !groups.split_whitespace().any(|g| g == "0"),
            "root's groups kept: {said}"
        );
        assert!(
            up.log().contains("pods run as an unprivileged user"),
            "{}",
            up.log()
        );
    } else {
        assert!(said.contains(&format!("uid={me} ")), "{said}");
    }
}

/// Every file of a corpus of hostile TrainingJob files (`tests/data/hostile-jobs/`,
/// each saying on its first line what the refusal must mention) is refused by
/// `ebbctl submit -f` with that message, nothing panics, and no job is created.
#[test]
fn a_corpus_of_hostile_job_files_is_refused_by_name() {
    let up = Up::start("hostile", TWO_NODES, &[]);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hostile-jobs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 20, "the corpus: {}", files.len());
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
        let expect = String::from_utf8_lossy(first)
            .trim_start_matches("# expect:")
            .trim()
            .to_string();
        let out = up.ctl(&["submit", "-f", file.to_str().unwrap()]);
        let said = String::from_utf8_lossy(&out.stderr).to_string();
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(!out.status.success(), "{name} was accepted");
        assert!(
            said.contains(&expect),
            "{name}: expected {expect:?} in {said}"
        );
        assert!(!said.contains("panicked"), "{name}: {said}");
    }
    let listed = up.json(&["list", "-A"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed:#}");
    assert!(!up.log().contains("panicked"));
}
