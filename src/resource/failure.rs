//! Why a pod's process failed, in one line a person can act on: the last error line of
//! what it wrote (ebb up: its log file; Kubernetes: the container's termination message,
//! which `terminationMessagePolicy: FallbackToLogsOnError` fills from the log's tail).

/// The line that says why: the last one that reads as an error (anyhow's `Error: ...`,
/// a tracing `ERROR` line, a panic), else the last non-empty line. Prefixes that say
/// nothing (`Error: `, a tracing timestamp and level) are dropped; the line is cut at
/// 300 characters so a condition message stays readable.
pub fn failure_line(log_tail: &str) -> Option<String> {
    let lines: Vec<&str> = log_tail
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let is_error = |l: &&&str| {
        l.starts_with("Error: ")
            || l.contains(" ERROR ")
            || l.starts_with("ERROR ")
            || l.contains("panicked at")
    };
    let line = lines.iter().rev().find(is_error).or_else(|| lines.last())?;
    let line = match line.strip_prefix("Error: ") {
        Some(rest) => rest,
        None => match line.find(" ERROR ") {
            // `2026-01-01T00:00:00Z ERROR target: message`: keep the message.
            Some(i) => {
                let rest = line[i + " ERROR ".len()..].trim_start();
                rest.split_once(": ").map_or(rest, |(_, m)| m)
            }
            None => line,
        },
    };
    let mut out: String = line.chars().take(300).collect();
    if line.chars().count() > 300 {
        out.push('…');
    }
    Some(out)
}

/// The message of a job whose `pod` failed `times` times (exit `code`): the failure line
/// when there is one.
pub fn failed_message(pod: &str, times: u32, code: Option<i32>, line: Option<&str>) -> String {
    let exit = code.map(|c| format!(" (exit {c})")).unwrap_or_default();
    let times = if times == 1 {
        "once".to_string()
    } else {
        format!("{times} times")
    };
    match line {
        Some(l) => format!("{pod} failed {times}{exit}: {l}"),
        None => format!("{pod} failed {times}{exit}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_line_wins_over_later_noise() {
        let log = "2026-12-07T03:00:00Z  INFO ebb::coord::master: listening addr=127.0.0.1:1\n\
                   Error: dataset tests/data/digits.csv.gz: No such file or directory (os error 2)\n\n";
        assert_eq!(
            failure_line(log).as_deref(),
            Some("dataset tests/data/digits.csv.gz: No such file or directory (os error 2)")
        );
    }

    #[test]
    fn a_tracing_error_keeps_its_message() {
        let log = "2026-12-07T03:00:00.1Z ERROR ebb::coord::trainer: lost the master\nbye\n";
        assert_eq!(failure_line(log).as_deref(), Some("lost the master"));
    }

    #[test]
    fn otherwise_the_last_line_and_nothing_for_an_empty_log() {
        assert_eq!(failure_line("a\nb\n").as_deref(), Some("b"));
        assert_eq!(failure_line("\n \n"), None);
        let long = "x".repeat(400);
        assert_eq!(failure_line(&long).unwrap().chars().count(), 301);
    }

    #[test]
    fn messages_name_pod_count_and_cause() {
        assert_eq!(
            failed_message("j-master-0", 5, Some(1), Some("no data")),
            "j-master-0 failed 5 times (exit 1): no data"
        );
        assert_eq!(failed_message("p", 1, None, None), "p failed once");
    }
}
