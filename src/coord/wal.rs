//! The master's durability: a snapshot file plus a write-ahead log of events.
//!
//! Every event is appended (one `write`) before the RPC that caused it is answered, so
//! a killed process loses nothing; `fsync` is batched (the master calls [`Journal::sync`]
//! on a timer) so that throughput does not pay one disk flush per task. Every
//! `compact_every` events the state is written whole to a temporary file, fsynced and
//! renamed over the snapshot, and the log starts afresh. Each line carries a CRC32: a
//! torn last line from a crash is detected and dropped.

use super::book::{BookConfig, DurableState, Event, TaskBook};
use super::error::CoordError;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

const SNAPSHOT: &str = "master-state.json";
const LOG: &str = "master-wal.log";

#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum Record {
    Epoch(u64),
    Event(Event),
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Line {
    seq: u64,
    record: Record,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Snapshot {
    last_seq: u64,
    state: DurableState,
}

pub struct Journal {
    dir: PathBuf,
    log: File,
    seq: u64,
    since_compaction: u64,
    compact_every: u64,
    unsynced: bool,
}

/// What recovery found, for the log.
#[derive(Debug, Default)]
pub struct Recovered {
    pub from_snapshot: bool,
    pub replayed: u64,
    pub dropped_torn_lines: u64,
}

fn with_crc(body: &str) -> String {
    format!("{body}\t{:08x}\n", crc32fast::hash(body.as_bytes()))
}

fn check_crc(line: &str) -> Option<&str> {
    let (body, crc) = line.trim_end_matches('\n').rsplit_once('\t')?;
    let want = u32::from_str_radix(crc, 16).ok()?;
    (crc32fast::hash(body.as_bytes()) == want).then_some(body)
}

fn sync_dir(dir: &Path) -> Result<(), CoordError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CoordError::io(dir, e))
}

impl Journal {
    /// Opens (or creates) the state in `dir` and rebuilds the task book from it, under
    /// a new lease epoch that is made durable before anything else happens.
    pub fn open(
        dir: &Path,
        config: BookConfig,
        compact_every: u64,
    ) -> Result<(Journal, TaskBook, Recovered), CoordError> {
        std::fs::create_dir_all(dir).map_err(|e| CoordError::io(dir, e))?;
        let mut recovered = Recovered::default();
        let snap_path = dir.join(SNAPSHOT);
        let snapshot = match std::fs::read_to_string(&snap_path) {
            Ok(text) => {
                let body = check_crc(&text).ok_or_else(|| CoordError::State {
                    path: snap_path.clone(),
                    message: "checksum mismatch or truncated file; move it away to start over"
                        .into(),
                })?;
                let snap: Snapshot = serde_json::from_str(body).map_err(|e| CoordError::State {
                    path: snap_path.clone(),
                    message: e.to_string(),
                })?;
                Some(snap)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(CoordError::io(&snap_path, e)),
        };
        let mut last_seq = 0;
        let mut epoch = 0;
        let mut saved = None;
        if let Some(snap) = snapshot {
            let s = &snap.state;
            for (field, theirs, ours) in [
                ("records", s.records, config.records),
                ("chunk_size", s.chunk_size, config.chunk_size),
                ("passes", u64::from(s.passes), u64::from(config.passes)),
            ] {
                if theirs != ours {
                    return Err(CoordError::State {
                        path: snap_path.clone(),
                        message: format!(
                            "{field} is {theirs} in the saved state but {ours} now: use a fresh --state-dir for a different job"
                        ),
                    });
                }
            }
            last_seq = snap.last_seq;
            epoch = s.epoch;
            saved = Some(snap.state);
            recovered.from_snapshot = true;
        }
        let log_path = dir.join(LOG);
        let mut events = Vec::new();
        match File::open(&log_path) {
            Ok(f) => {
                for line in BufReader::new(f).lines() {
                    let line = line.map_err(|e| CoordError::io(&log_path, e))?;
                    let parsed =
                        check_crc(&line).and_then(|b| serde_json::from_str::<Line>(b).ok());
                    let Some(parsed) = parsed else {
                        // A torn write can only be the last line; stop there.
                        recovered.dropped_torn_lines += 1;
                        break;
                    };
                    if parsed.seq <= last_seq {
                        continue; // already in the snapshot
                    }
                    last_seq = parsed.seq;
                    match parsed.record {
                        Record::Epoch(e) => epoch = epoch.max(e),
                        Record::Event(ev) => events.push(ev),
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(CoordError::io(&log_path, e)),
        }
        let epoch = epoch + 1;
        let mut book = match &saved {
            Some(s) => TaskBook::restore(config, s, epoch),
            None => TaskBook::new(config, epoch),
        };
        for ev in &events {
            book.replay(ev);
        }
        recovered.replayed = events.len() as u64;
        // Snapshot first, then a fresh log: this also drops any torn tail, so appends
        // start on a clean line.
        write_snapshot(dir, last_seq, &book)?;
        let mut journal = Journal {
            dir: dir.to_path_buf(),
            log: fresh_log(dir)?,
            seq: last_seq,
            since_compaction: 0,
            compact_every: compact_every.max(1),
            unsynced: false,
        };
        journal.append_record(Record::Epoch(epoch))?;
        journal.sync()?;
        Ok((journal, book, recovered))
    }

    fn append_record(&mut self, record: Record) -> Result<(), CoordError> {
        self.seq += 1;
        let line = Line {
            seq: self.seq,
            record,
        };
        let body = serde_json::to_string(&line).map_err(|e| CoordError::State {
            path: self.dir.join(LOG),
            message: e.to_string(),
        })?;
        self.log
            .write_all(with_crc(&body).as_bytes())
            .map_err(|e| CoordError::io(self.dir.join(LOG), e))?;
        self.unsynced = true;
        self.since_compaction += 1;
        Ok(())
    }

    /// Appends the events of one transition; compacts when the log has grown enough.
    pub fn append(&mut self, events: &[Event], book: &TaskBook) -> Result<(), CoordError> {
        for ev in events {
            self.append_record(Record::Event(ev.clone()))?;
        }
        if self.since_compaction >= self.compact_every {
            self.compact(book)?;
        }
        Ok(())
    }

    pub fn sync(&mut self) -> Result<(), CoordError> {
        if self.unsynced {
            self.log
                .sync_data()
                .map_err(|e| CoordError::io(self.dir.join(LOG), e))?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Whole state to the snapshot, then a new empty log.
    pub fn compact(&mut self, book: &TaskBook) -> Result<(), CoordError> {
        write_snapshot(&self.dir, self.seq, book)?;
        // The snapshot holds everything up to `seq`; older log lines are skipped on
        // replay even if the truncation below is lost in a crash.
        self.log = fresh_log(&self.dir)?;
        self.since_compaction = 0;
        self.unsynced = false;
        Ok(())
    }
}

/// Whole state to a temporary file, fsync, rename over the snapshot.
fn write_snapshot(dir: &Path, last_seq: u64, book: &TaskBook) -> Result<(), CoordError> {
    let snap = Snapshot {
        last_seq,
        state: book.durable(),
    };
    let target = dir.join(SNAPSHOT);
    let body = serde_json::to_string(&snap).map_err(|e| CoordError::State {
        path: target.clone(),
        message: e.to_string(),
    })?;
    let tmp = dir.join(format!("{SNAPSHOT}.tmp"));
    {
        let mut f = File::create(&tmp).map_err(|e| CoordError::io(&tmp, e))?;
        f.write_all(with_crc(&body).as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| CoordError::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, &target).map_err(|e| CoordError::io(&target, e))?;
    sync_dir(dir)
}

/// An empty log; the journal is its only writer, so plain sequential writes append.
fn fresh_log(dir: &Path) -> Result<File, CoordError> {
    let path = dir.join(LOG);
    File::create(&path).map_err(|e| CoordError::io(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coord::book::LeaseOutcome;

    fn config() -> BookConfig {
        BookConfig {
            records: 100,
            chunk_size: 10,
            passes: 2,
            lease_ms: 1000,
            heartbeat_timeout_ms: 1000,
            max_failures: 3,
            save_interval_ms: 1000,
        }
    }

    /// A scratch directory (removed when dropped) and a state directory inside it that
    /// does not exist yet: opening a journal creates it.
    fn tmpdir(name: &str) -> (tempfile::TempDir, PathBuf) {
        let root = tempfile::Builder::new()
            .prefix(&format!("ebb-wal-{name}-"))
            .tempdir()
            .unwrap();
        let state = root.path().join("state");
        (root, state)
    }

    fn do_chunks(j: &mut Journal, b: &mut TaskBook, n: usize) {
        b.register("t", 0).unwrap();
        for _ in 0..n {
            let LeaseOutcome::Leased(l) = b.lease("t", 0).unwrap() else {
                panic!()
            };
            let ev = b.complete("t", l.pass, l.chunk, l.lease_id, 0).unwrap();
            j.append(&ev, b).unwrap();
        }
    }

    #[test]
    fn progress_survives_reopen_through_log_and_snapshot() {
        let (_root, dir) = tmpdir("reopen");
        for compact_every in [1000, 3] {
            let _ = std::fs::remove_dir_all(&dir);
            let (mut j, mut b, _) = Journal::open(&dir, config(), compact_every).unwrap();
            let epoch = b.epoch();
            do_chunks(&mut j, &mut b, 13); // pass 0 done, 3 of pass 1
            drop(j);
            let (_, r, rec) = Journal::open(&dir, config(), compact_every).unwrap();
            assert_eq!(r.pass(), 1, "compact_every {compact_every}: {rec:?}");
            assert_eq!(r.counts()[2], 3);
            assert_eq!(r.history()[0].completions, 10);
            assert!(r.epoch() > epoch);
        }
    }

    #[test]
    fn torn_last_line_is_dropped_and_a_changed_job_is_refused() {
        let (_root, dir) = tmpdir("torn");
        let (mut j, mut b, _) = Journal::open(&dir, config(), 1000).unwrap();
        do_chunks(&mut j, &mut b, 4);
        drop(j);
        let log = dir.join(LOG);
        let text = std::fs::read_to_string(&log).unwrap();
        std::fs::write(&log, &text[..text.len() - 7]).unwrap(); // cut the last line
        let (_, r, rec) = Journal::open(&dir, config(), 1000).unwrap();
        assert_eq!(rec.dropped_torn_lines, 1);
        assert_eq!(
            r.counts()[2],
            3,
            "the torn completion is lost, the rest is kept"
        );
        let err = Journal::open(
            &dir,
            BookConfig {
                chunk_size: 7,
                ..config()
            },
            1000,
        )
        .err()
        .expect("different chunking refused");
        assert!(err.to_string().contains("chunk_size"), "{err}");
        std::fs::write(dir.join(SNAPSHOT), "{garbage").unwrap();
        let err = Journal::open(&dir, config(), 1000)
            .err()
            .expect("corrupt snapshot refused");
        assert!(err.to_string().contains("checksum"), "{err}");
    }
}
