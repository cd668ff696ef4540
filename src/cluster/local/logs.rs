//! Pod logs of the embedded cluster: each pod's process writes to `POD.log` in its job's
//! directory; a restart moves the previous run's log to `POD.log.previous` first (as the
//! kubelet keeps one previous container log), so `--previous` has something to show.

use crate::api::backend::LogStream;
use crate::api::proto::LogChunk;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::Status;

/// At most this much of a log is read for its tail: a pod that logged gigabytes must not
/// cost the server as much.
const MAX_READ: u64 = 8 << 20;

pub fn previous_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".previous");
    PathBuf::from(name)
}

/// Before a pod's process starts again: its last run's log becomes the previous one.
pub fn rotate(log: &Path) {
    if std::fs::metadata(log).is_ok_and(|m| m.len() > 0) {
        // Losing the previous log is not worth failing a start for.
        if let Err(e) = std::fs::rename(log, previous_path(log)) {
            tracing::warn!(log = %log.display(), error = %e, "cannot keep the previous log");
        }
    }
}

/// The last `tail` lines of `text` (all of it for `None`), each with its newline.
pub fn tail_lines(text: &str, tail: Option<u32>) -> String {
    let Some(n) = tail else {
        return text.to_string();
    };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let from = lines.len().saturating_sub(n as usize);
    lines[from..].concat()
}

/// What is in the file now (its last `MAX_READ` bytes), and where reading stopped.
fn read_end(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let from = len.saturating_sub(MAX_READ);
    f.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    f.take(len - from).read_to_end(&mut bytes)?;
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if from > 0 {
        // Started mid-line: drop the partial first line.
        let cut = text.find('\n').map_or(text.len(), |i| i + 1);
        text.drain(..cut);
    }
    Ok((text, len))
}

/// The log at `path` as a stream: the tail now, then (with `follow`) every new whole line,
/// checked every 200 ms, until `ended()` says the process has exited and nothing more
/// was written.
pub fn stream(
    pod: String,
    path: PathBuf,
    tail: Option<u32>,
    follow: bool,
    ended: impl Fn() -> bool + Send + 'static,
) -> Result<LogStream, Status> {
    let (text, mut offset) = read_end(&path).map_err(|e| {
        Status::failed_precondition(format!(
            "pod {pod} has no log yet ({}: {e}): it has not started",
            path.display()
        ))
    })?;
    let first = tail_lines(&text, tail);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<LogChunk, Status>>(16);
    tokio::spawn(async move {
        if !first.is_empty()
            && tx
                .send(Ok(LogChunk {
                    pod: pod.clone(),
                    text: first,
                }))
                .await
                .is_err()
        {
            return;
        }
        if !follow {
            return;
        }
        let mut partial = String::new();
        loop {
            let was_ended = ended();
            let (more, len) = match read_from(&path, offset) {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx
                        .send(Err(Status::internal(format!(
                            "reading {}: {e}",
                            path.display()
                        ))))
                        .await;
                    return;
                }
            };
            offset = len;
            partial.push_str(&more);
            if let Some(end) = partial.rfind('\n') {
                let whole: String = partial.drain(..=end).collect();
                let chunk = LogChunk {
                    pod: pod.clone(),
                    text: whole,
                };
                if tx.send(Ok(chunk)).await.is_err() {
                    return;
                }
            }
            if was_ended {
                if !partial.is_empty() {
                    partial.push('\n');
                    let _ = tx
                        .send(Ok(LogChunk {
                            pod: pod.clone(),
                            text: partial,
                        }))
                        .await;
                }
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })))
}

/// Bytes past `offset` (from the start again if the file was replaced by a shorter one).
fn read_from(path: &Path, offset: u64) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let from = if len < offset { 0 } else { offset };
    f.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    f.take(len - from).read_to_end(&mut bytes)?;
    Ok((String::from_utf8_lossy(&bytes).into_owned(), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_count_lines_from_the_end() {
        assert_eq!(tail_lines("a\nb\nc\n", Some(2)), "b\nc\n");
        assert_eq!(tail_lines("a\nb\nc", Some(1)), "c");
        assert_eq!(tail_lines("a\nb\n", Some(5)), "a\nb\n");
        assert_eq!(tail_lines("a\nb\n", None), "a\nb\n");
        assert_eq!(tail_lines("a\n", Some(0)), "");
    }

    #[test]
    fn a_restart_keeps_the_last_run_as_previous() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("p.log");
        rotate(&log); // nothing yet: nothing to keep
        assert!(!previous_path(&log).exists());
        std::fs::write(&log, "run 1\n").unwrap();
        rotate(&log);
        assert_eq!(
            std::fs::read_to_string(previous_path(&log)).unwrap(),
            "run 1\n"
        );
        assert!(!log.exists());
    }

    #[tokio::test]
    async fn follow_sends_new_lines_until_the_pod_ends() {
        use futures::StreamExt;
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("p.log");
        std::fs::write(&log, "one\ntwo\n").unwrap();
        let ended = Arc::new(AtomicBool::new(false));
        let flag = ended.clone();
        let mut s = stream("p".into(), log.clone(), Some(1), true, move || {
            flag.load(Ordering::SeqCst)
        })
        .unwrap();
        assert_eq!(s.next().await.unwrap().unwrap().text, "two\n");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"three\nfour"))
            .unwrap();
        assert_eq!(s.next().await.unwrap().unwrap().text, "three\n");
        ended.store(true, Ordering::SeqCst);
        assert_eq!(s.next().await.unwrap().unwrap().text, "four\n");
        assert!(s.next().await.is_none());
    }

    #[test]
    fn a_pod_without_a_log_has_not_started() {
        let dir = tempfile::tempdir().unwrap();
        let e = stream("p".into(), dir.path().join("none.log"), None, false, || {
            true
        })
        .err()
        .unwrap();
        assert_eq!(e.code(), tonic::Code::FailedPrecondition);
        assert!(e.message().contains("has not started"), "{}", e.message());
    }
}
