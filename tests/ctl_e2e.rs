//! ebbctl as a newcomer uses it against `ebb up`, with real processes: a failed job says
//! why where the user looks (condition, logs, events), errors name what failed, and the
//! commands behave as a kubectl user expects.

#[path = "common/up.rs"]
mod up;

use serde_json::Value;
use std::time::Duration;
use up::*;

const ONE_NODE: &str = "nodes:\n  - {name: n0, cpu: '4', memory: 8Gi}\n";

fn code_err(out: &std::process::Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn a_job_with_a_missing_dataset_says_why_in_status_logs_and_events() {
    let up = Up::start("ctl-fail", ONE_NODE, &[]);
    // A relative path: ebbctl makes it absolute against its own directory.
    let cwd = up.dir.join("caller");
    std::fs::create_dir_all(&cwd).unwrap();
    let out = std::process::Command::new(ebbctl_bin())
        .current_dir(&cwd)
        .arg("--config")
        .arg(&up.config)
        .args(submit_args("broken", "1", "1", "1", "data/nosuch.csv.gz"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected_path = cwd.join("data/nosuch.csv.gz").display().to_string();
    up.wait("the job to fail", Duration::from_secs(90), || {
        up.job("broken")["phase"] == "Failed"
    });
    let job = up.job("broken");
    let failed = job["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Failed")
        .unwrap_or_else(|| panic!("no Failed condition: {job:#}"));
    let message = failed["message"].as_str().unwrap();
    assert!(
        message.contains("broken-master-0 failed 6 times")
            && message.contains(&expected_path)
            && message.contains("No such file or directory"),
        "{message}"
    );

    // The master's log (the default pod), its last line, and the run before it.
    let (code, log, err) = code_err(&up.ctl(&["logs", "broken"]));
    assert_eq!(code, 0, "{err}");
    assert!(log.contains("No such file or directory"), "{log}");
    let (code, last, err) = code_err(&up.ctl(&["logs", "broken", "--tail", "1"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(last.lines().count(), 1, "{last}");
    let (code, previous, err) = code_err(&up.ctl(&["logs", "broken", "broken-master-0", "-p"]));
    assert_eq!(code, 0, "{err}");
    assert!(previous.contains("No such file"), "{previous}");
    let (code, _, err) = code_err(&up.ctl(&["logs", "broken", "broken-nosuch-0"]));
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("broken-master-0"),
        "the pods are listed: {err}"
    );

    // Events: each failed run, then the job's failure; as a table, as JSON, in describe.
    let (code, table, err) = code_err(&up.ctl(&["events", "broken"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        table.contains("PodFailed") && table.contains("Failed"),
        "{table}"
    );
    let events = up.json(&["events", "broken"]);
    let reasons: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"Admitted"), "{reasons:?}");
    assert_eq!(reasons.last(), Some(&"Failed"), "{reasons:?}");
    let repeats = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == "PodFailed")
        .map(|e| e["count"].as_u64().unwrap())
        .sum::<u64>();
    assert!(repeats >= 5, "every failed run counted: {events:#}");
    let (_, described, _) = code_err(&up.ctl(&["describe", "broken"]));
    assert!(
        described.contains("Events:") && described.contains("PodFailed"),
        "{described}"
    );
    // `watch` of a job that has failed ends at once with the failure; with -o json as
    // one JSON object a line.
    let (code, _, _) = code_err(&up.ctl(&["watch", "broken"]));
    assert_eq!(code, 1);
    let (code, lines, _) = code_err(&up.ctl(&["watch", "broken", "-o", "json"]));
    assert_eq!(code, 1);
    let last: Value = serde_json::from_str(lines.lines().last().unwrap()).unwrap();
    assert_eq!(last["phase"], "Failed");
    // A log is text as it is: -o json is refused as bad usage.
    let (code, _, err) = code_err(&up.ctl(&["logs", "broken", "-o", "json"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("drop -o"), "{err}");
    let done = up.json(&["delete", "broken"]);
    assert_eq!(
        (done["name"].as_str(), done["deleted"].as_bool()),
        (Some("broken"), Some(true))
    );
}

#[test]
fn a_job_that_never_started_has_no_log_and_missing_jobs_are_not_found() {
    let up = Up::start("ctl-missing", ONE_NODE, &[]);
    let data = digits();
    let out = up.ctl(&submit_args("huge", "40", "40", "1", &data));
    assert!(out.status.success());
    let (code, _, err) = code_err(&up.ctl(&["logs", "huge"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not admitted"), "{err}");
    // 40 one-core trainers on a 4-core node: it says it can never fit, naming the CPU.
    up.wait("huge to be planned", Duration::from_secs(30), || {
        up.job("huge")["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["reason"] == "NeverFits"))
    });
    let job = up.job("huge");
    let admitted = &job["conditions"].as_array().unwrap()[0];
    let message = admitted["message"].as_str().unwrap();
    assert!(
        message.contains("need cpu 41, but the whole cluster has 4"),
        "{message}"
    );

    let started = std::time::Instant::now();
    let (code, _, err) = code_err(&up.ctl(&["watch", "nosuch"]));
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("default/nosuch"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "watch answered at once"
    );
    for args in [
        &["logs", "nosuch"][..],
        &["events", "nosuch"],
        &["get", "nosuch"],
    ] {
        let (code, _, err) = code_err(&up.ctl(args));
        assert_eq!(code, 5, "{args:?}: {err}");
    }
}

#[test]
fn scale_takes_either_bound_and_queue_set_changes_only_what_it_is_given() {
    let up = Up::start("ctl-queues", ONE_NODE, &[]);
    let data = digits();
    assert!(
        up.ctl(&submit_args("small", "1", "2", "100000", &data))
            .status
            .success()
    );

    up.wait("small to be planned", Duration::from_secs(30), || {
        up.job("small")["phase"] != "Pending"
    });
    let (code, top, err) = code_err(&up.ctl(&["top", "--count", "1"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        top.contains("TIME(s)") && top.contains("default/small"),
        "{top}"
    );
    assert!(!top.contains('\x1b'), "piped: plain lines");
    // On a terminal (a pty from script(1)) the table is redrawn in place: the lines drawn
    // before are cleared (ESC [ 2 K) rather than scrolled away.
    let command = format!(
        "{} --config {} top --interval-s 0.2 --count 3",
        ebbctl_bin(),
        up.config.display()
    );
    let on_tty = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script(1) runs");
    let screen = String::from_utf8_lossy(&on_tty.stdout);
    assert!(on_tty.status.success(), "{screen}");
    assert!(
        screen.contains("\x1b[2K") && screen.contains("default/small"),
        "{screen:?}"
    );
    let job = up.json(&["scale", "small", "--max", "3"]);
    assert_eq!(
        (job["min_trainers"].as_u64(), job["max_trainers"].as_u64()),
        (Some(1), Some(3))
    );
    let job = up.json(&["scale", "small", "--min", "2"]);
    assert_eq!(
        (job["min_trainers"].as_u64(), job["max_trainers"].as_u64()),
        (Some(2), Some(3))
    );
    let (code, _, err) = code_err(&up.ctl(&["scale", "small", "--min", "5"]));
    assert_eq!(code, 3, "min above the kept max: {err}");
    assert!(err.contains("spec.trainers.min"), "{err}");
    let (code, _, err) = code_err(&up.ctl(&["scale", "small"]));
    assert_eq!(code, 2, "neither bound is bad usage: {err}");

    let queue = |args: &[&str]| {
        let mut all = vec!["queue"];
        all.extend(args);
        up.json(&all)
    };
    queue(&["set", "research", "--limit-gpus", "4", "--limit-cpu", "8"]);
    let q = &queue(&["set", "research", "--weight", "2"])[0];
    assert_eq!(q["weight"], 2.0, "{q:#}");
    assert_eq!(q["limit"]["gpus"], 4, "the limit set before stays: {q:#}");
    assert_eq!(q["limit"]["cpu"], "8", "{q:#}");
    let q = &queue(&["set", "research", "--limit-gpus", "6"])[0];
    assert_eq!(
        (q["limit"]["gpus"].as_u64(), q["limit"]["cpu"].as_str()),
        (Some(6), Some("8"))
    );
    let q = &queue(&["set", "research", "--clear-limit"])[0];
    assert!(q["limit"].is_null(), "{q:#}");
    assert_eq!(q["weight"], 2.0);
    assert_eq!(queue(&["get", "research"])[0]["weight"], 2.0);

    for (args, field) in [
        (
            &["queue", "set", "research", "--weight", "0"][..],
            "spec.weight",
        ),
        (
            &["queue", "set", "research", "--parent", "nosuch"],
            "spec.parent",
        ),
        (
            &["queue", "set", "research", "--parent", "research"],
            "spec.parent",
        ),
    ] {
        let (code, _, err) = code_err(&up.ctl(args));
        assert_eq!(code, 3, "{args:?}: {err}");
        assert!(err.contains(field), "{args:?}: {err}");
    }
    queue(&["set", "child", "--parent", "research"]);
    let (code, _, err) = code_err(&up.ctl(&["queue", "set", "research", "--parent", "child"]));
    assert_eq!(code, 3, "a cycle: {err}");
    let (code, _, err) = code_err(&up.ctl(&["queue", "delete", "research"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("parent of child"), "{err}");
    let (code, _, err) = code_err(&up.ctl(&["queue", "delete", "default"]));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("default/small"),
        "the job using it is named: {err}"
    );
    let done = queue(&["delete", "child"]);
    assert_eq!(done["deleted"], true, "{done}");
    let sample = up.json(&["top", "--count", "1"]);
    assert!(sample["trainers"]["default/small"].is_u64(), "{sample}");
    assert_eq!(code_err(&up.ctl(&["queue", "delete", "research"])).0, 0);
    let (code, _, _) = code_err(&up.ctl(&["queue", "get", "research"]));
    assert_eq!(code, 5);
    let names: Vec<String> = queue(&["list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["default"], "nothing half-done after the refusals");
    let _ = up.ctl(&["delete", "small"]);
}

#[test]
fn connection_errors_name_the_endpoint_and_the_fix() {
    let dir = Scratch::new("ctl-connect");
    let config = dir.join("config.yaml");
    // A port nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let write = |endpoint: &str| {
        std::fs::write(
            &config,
            format!("current-context: local\ncontexts:\n  - {{name: local, endpoint: '{endpoint}', token: t}}\n"),
        )
        .unwrap();
    };
    write(&format!("http://127.0.0.1:{port}"));
    let (code, _, err) = code_err(&ctl_with(&config, &["list"]));
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains(&format!(
            "endpoint http://127.0.0.1:{port} from context local"
        )) && err.contains("is `ebb up`"),
        "{err}"
    );
    write(&format!("127.0.0.1:{port}"));
    let (code, _, err) = code_err(&ctl_with(&config, &["list"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no scheme") && err.contains("http://127.0.0.1"),
        "{err}"
    );

    // TLS to a plaintext server.
    let up = Up::start("ctl-tls-mismatch", ONE_NODE, &[]);
    write(&format!("https://{}", up.addr));
    let (code, _, err) = code_err(&ctl_with(&config, &["list"]));
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("use http://"), "{err}");
}

#[test]
fn logs_written_to_a_file_are_plain() {
    let up = Up::start("ctl-plain-logs", ONE_NODE, &[]);
    let data = digits();
    assert!(
        up.ctl(&submit_args("tiny", "1", "1", "2", &data))
            .status
            .success()
    );
    up.wait("the job to finish", Duration::from_secs(120), || {
        up.job("tiny")["phase"] == "Succeeded"
    });
    let log = up.log();
    assert!(!log.contains('\x1b'), "no ANSI codes in a file");
    assert!(log.contains("job=default/tiny"), "plain values: {log}");
    assert!(!log.contains("Some(\""), "no Debug-printed options: {log}");
    // Numbers at most two decimals (three significant below 1).
    for word in log.split_whitespace().filter(|w| w.starts_with("ms=")) {
        let value = &word[3..];
        let decimals = value.split_once('.').map_or(0, |(_, d)| d.len());
        assert!(decimals <= 3, "{word}");
    }
    let master_log: Value = Value::String(code_err(&up.ctl(&["logs", "tiny"])).1);
    assert!(!master_log.as_str().unwrap().contains('\x1b'));
}

#[test]
fn list_selects_by_label_shows_age_watches_and_get_shows_pods() {
    let up = Up::start("ctl-list", ONE_NODE, &[]);
    let data = digits();
    let submit = |name: &'static str, label: &'static str| {
        let mut args = submit_args(name, "1", "1", "100000", &data);
        args.extend(["--label", label]);
        let out = up.ctl(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    submit("mine", "team=ml");
    submit("theirs", "team=web");
    let names = |selector: &str| -> Vec<String> {
        up.json(&["list", "-A", "-l", selector])
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names("team=ml"), ["mine"]);
    assert_eq!(names("team in (ml,web)"), ["mine", "theirs"]);
    assert_eq!(names("team!=ml"), ["theirs"]);
    assert!(names("!team").is_empty());
    let (code, _, err) = code_err(&up.ctl(&["list", "-l", "tier in gold"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("label selector"), "{err}");
    let mut bad = submit_args("badlabel", "1", "1", "1", &data);
    bad.extend(["--label", "Not A Key=x"]);
    let (code, _, err) = code_err(&up.ctl(&bad));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("metadata.labels"), "{err}");

    // Nothing selected: a note on stderr and no table, as kubectl.
    let (code, out, err) = code_err(&up.ctl(&["list", "-l", "team=none"]));
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert!(err.contains("No jobs found"), "{err}");
    let (_, table, _) = code_err(&up.ctl(&["list"]));
    assert!(table.lines().next().unwrap().contains("AGE"), "{table}");
    assert!(table.contains("mine") && table.contains('s'), "{table}");

    // get: each pod with role, phase, node and restarts, once the master runs.
    up.wait("mine's master to run", Duration::from_secs(30), || {
        up.job("mine")["pod_statuses"].as_array().is_some_and(|p| {
            p.iter()
                .any(|p| p["role"] == "master" && p["phase"] == "Running")
        })
    });
    let job = up.job("mine");
    let master = job["pod_statuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["role"] == "master")
        .unwrap();
    assert_eq!(
        (master["node"].as_str(), master["restarts"].as_u64()),
        (Some("n0"), Some(0))
    );
    assert_eq!(job["labels"]["team"], "ml");
    let (_, described, _) = code_err(&up.ctl(&["describe", "mine"]));
    assert!(
        described.contains("RESTARTS") && described.contains("mine-master-0"),
        "{described}"
    );
    assert!(described.contains("Labels:     team=ml"), "{described}");

    // list -w: the rows now, then a row when a job changes (here: deleted).
    let mut watcher = std::process::Command::new(ebbctl_bin())
        .arg("--config")
        .arg(&up.config)
        .args(["list", "-w", "-l", "team=web"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = watcher.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let next = || {
        rx.recv_timeout(Duration::from_secs(20))
            .expect("a row from list -w")
    };
    assert!(next().starts_with("NAMESPACE"));
    assert!(next().contains("theirs"));
    assert!(up.ctl(&["delete", "theirs"]).status.success());
    let mut deleted = false;
    for _ in 0..50 {
        let line = next();
        assert!(
            !line.contains("mine"),
            "the selector holds while watching: {line}"
        );
        if line.contains("theirs") && line.contains("Deleted") {
            deleted = true;
            break;
        }
    }
    assert!(deleted);
    let _ = watcher.kill();
    let _ = watcher.wait();
    let _ = up.ctl(&["delete", "mine"]);
}

/// Completes the last of `words` the way bash does: sources `ebbctl completions bash`
/// and calls its function with bash's COMP_* variables. Returns the candidates.
fn bash_complete(config: &std::path::Path, words: &[&str]) -> Vec<String> {
    let bin_dir = std::path::Path::new(ebbctl_bin()).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let current = words.last().unwrap();
    let script = format!(
        "source <(ebbctl completions bash)\n\
         COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_TYPE=9\n\
         _clap_complete_ebbctl ebbctl '{current}' '{previous}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        words = quoted.join(" "),
        cword = words.len() - 1,
        previous = words[words.len() - 2],
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .env("PATH", path)
        .env("EBBCTL_CONFIG", config)
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "bash: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn bash_completes_job_and_queue_names_from_the_server() {
    let up = Up::start("ctl-complete", ONE_NODE, &[]);
    let data = digits();
    for name in ["alpha", "alps", "beta"] {
        let out = up.ctl(&submit_args(name, "1", "1", "100000", &data));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = up.ctl(&["queue", "set", "research", "--weight", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut jobs = bash_complete(&up.config, &["ebbctl", "get", "al"]);
    jobs.sort();
    assert_eq!(jobs, ["alpha", "alps"]);
    assert_eq!(
        bash_complete(&up.config, &["ebbctl", "logs", "b"]),
        ["beta"]
    );
    assert_eq!(
        bash_complete(&up.config, &["ebbctl", "queue", "get", "re"]),
        ["research"]
    );
    // Flags still complete from the command tree.
    assert!(
        bash_complete(&up.config, &["ebbctl", "scale", "alpha", "--m"])
            .contains(&"--max".to_string())
    );

    // A server that is away offers nothing, promptly, rather than an error in the prompt.
    let away = up.dir.join("away.yaml");
    std::fs::write(
        &away,
        "current-context: gone\ncontexts:\n  - {name: gone, endpoint: 'http://127.0.0.1:9', token: t}\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    assert!(bash_complete(&away, &["ebbctl", "get", "a"]).is_empty());
    assert!(started.elapsed() < Duration::from_secs(10));
}
