//! The master's durability: a snapshot file plus a write-ahead log of events.
//!
//! Every event is appended (one `write`) before the RPC that caused it is answered, so
//! a killed process loses nothing; `fsync` is batched (the master calls [`Journal::sync`]
//! on a timer) so that throughput does not pay one disk flush per task. Every
//! `compact_every` events the state is written whole to a temporary file, fsynced and
//! renamed over the snapshot, and the log starts afresh. Each line carries a CRC32: a
//! torn last line from a crash is detected and dropped; any other damage is refused
//! (`wal_scan`), never repaired by deleting records.

use super::book::{BookConfig, DurableState, Event, TaskBook};
use super::error::CoordError;
use super::wal_scan::{self, Sequenced, TornTail};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

const SNAPSHOT: &str = "master-state.json";
/// The log's file name in the state directory.
pub const LOG: &str = "master-wal.log";

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

/// What to do with a journal that does not replay cleanly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnDamage {
    /// Refuse to start, naming the file, line and offset; change nothing.
    #[default]
    Refuse,
    /// Move the snapshot and the log into `damaged-<unix time>/` in the state directory
    /// and resume from what reads before the damage.
    SetAside,
}

/// What recovery found, for the log.
#[derive(Debug, Default)]
pub struct Recovered {
    pub from_snapshot: bool,
    pub replayed: u64,
    /// The log's last line, dropped as a crash's torn write.
    pub torn_tail: Option<TornTail>,
    /// With [`OnDamage::SetAside`]: the damage found and where the files went.
    pub set_aside: Option<SetAside>,
}

#[derive(Debug)]
pub struct SetAside {
    pub damage: String,
    pub moved_to: PathBuf,
}

impl Line {
    fn epoch(&self) -> Option<u64> {
        match self.record {
            Record::Epoch(e) => Some(e),
            Record::Event(_) => None,
        }
    }
}

impl Sequenced for Line {
    fn seq(&self) -> u64 {
        self.seq
    }
}

fn sync_dir(dir: &Path) -> Result<(), CoordError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CoordError::io(dir, e))
}

/// What keeps a journal from replaying cleanly.
enum Found {
    Snapshot(String),
    /// A snapshot without its log.
    MissingLog,
    Log(wal_scan::Damage),
}

const WHAT_TO_DO: &str = "Nothing was changed. Restore the state directory from a backup, or start with --set-aside-damaged-state to move the damaged files aside and resume from what reads";

impl Found {
    /// The file at fault and what is wrong with it.
    fn problem(&self) -> (&'static str, String) {
        match self {
            Found::Snapshot(problem) => (SNAPSHOT, problem.clone()),
            Found::MissingLog => (
                LOG,
                format!(
                    "is missing but {SNAPSHOT} is there: the records since the snapshot are lost"
                ),
            ),
            Found::Log(d) => (
                LOG,
                format!(
                    "line {} (byte {}): the record {}",
                    d.line, d.offset, d.problem
                ),
            ),
        }
    }

    /// The damage in a few words, naming the file.
    fn describe(&self, dir: &Path) -> String {
        let (file, problem) = self.problem();
        format!("{}: {problem}", dir.join(file).display())
    }

    fn refusal(self, dir: &Path) -> CoordError {
        match self {
            Found::Log(d) => CoordError::Journal {
                path: dir.join(LOG),
                line: d.line,
                offset: d.offset,
                problem: d.problem,
            },
            other => {
                let (file, problem) = other.problem();
                CoordError::State {
                    path: dir.join(file),
                    message: format!("{problem}. {WHAT_TO_DO}"),
                }
            }
        }
    }
}

/// The snapshot, if there is one (`Err`: what is wrong with it).
fn read_snapshot(path: &Path) -> Result<Result<Option<Snapshot>, String>, CoordError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ok(None)),
        Err(e) => return Err(CoordError::io(path, e)),
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return Ok(Err("holds binary data, not a snapshot".into()));
    };
    let Some(body) = wal_scan::unframe(text.trim_end_matches('\n')) else {
        return Ok(Err("checksum mismatch or truncated file".into()));
    };
    Ok(serde_json::from_str(body)
        .map(Some)
        .map_err(|e| format!("not a snapshot ({e})")))
}

/// A snapshot of another job's data is not damage: it is refused whatever `OnDamage`.
fn check_same_job(path: &Path, s: &DurableState, config: &BookConfig) -> Result<(), CoordError> {
    for (field, theirs, ours) in [
        ("records", s.records, config.records),
        ("chunk_size", s.chunk_size, config.chunk_size),
        ("passes", u64::from(s.passes), u64::from(config.passes)),
    ] {
        if theirs != ours {
            return Err(CoordError::State {
                path: path.to_path_buf(),
                message: format!(
                    "{field} is {theirs} in the saved state but {ours} now: use a fresh --state-dir for a different job"
                ),
            });
        }
    }
    Ok(())
}

/// Moves the snapshot and the log (those that exist) into a new `damaged-*` directory.
fn set_aside(dir: &Path, files: &[&Path]) -> Result<PathBuf, CoordError> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut target = dir.join(format!("damaged-{stamp}"));
    let mut n = 1;
    while target.exists() {
        n += 1;
        target = dir.join(format!("damaged-{stamp}-{n}"));
    }
    std::fs::create_dir(&target).map_err(|e| CoordError::io(&target, e))?;
    for &file in files {
        if file.exists()
            && let Some(name) = file.file_name()
        {
            let to = target.join(name);
            std::fs::rename(file, &to).map_err(|e| CoordError::io(file, e))?;
        }
    }
    sync_dir(dir)?;
    Ok(target)
}

impl Journal {
    /// Opens (or creates) the state in `dir` and rebuilds the task book from it, under
    /// a new lease epoch that is made durable before anything else happens. A journal
    /// that does not replay cleanly (see `wal_scan`) is refused unchanged, or with
    /// [`OnDamage::SetAside`] moved aside and replayed as far as it reads.
    pub fn open(
        dir: &Path,
        config: BookConfig,
        compact_every: u64,
        on_damage: OnDamage,
    ) -> Result<(Journal, TaskBook, Recovered), CoordError> {
        std::fs::create_dir_all(dir).map_err(|e| CoordError::io(dir, e))?;
        let mut recovered = Recovered::default();
        let snap_path = dir.join(SNAPSHOT);
        let log_path = dir.join(LOG);
        let (snapshot, snapshot_damage) = match read_snapshot(&snap_path)? {
            Ok(snapshot) => (snapshot, None),
            Err(problem) => (None, Some(Found::Snapshot(problem))),
        };
        if let Some(snap) = &snapshot {
            check_same_job(&snap_path, &snap.state, &config)?;
        }
        let log = match std::fs::read(&log_path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(CoordError::io(&log_path, e)),
        };
        let log_bytes = log.as_deref().unwrap_or_default();
        // A snapshot that does not read holds nothing: the log must then go from record 1.
        let after = snapshot.as_ref().map(|s| s.last_seq);
        let scan = wal_scan::scan::<Line>(log_bytes, after);
        // The log is created before the first snapshot and only ever truncated, so a
        // snapshot without it means records were lost.
        let damage = snapshot_damage
            .or_else(|| (snapshot.is_some() && log.is_none()).then_some(Found::MissingLog))
            .or_else(|| scan.damage.clone().map(Found::Log));
        // The highest lease epoch read anywhere: the new one must be above every epoch a
        // trainer may still hold a lease of.
        let mut epoch = snapshot.as_ref().map_or(0, |s| s.state.epoch);
        if let Some(found) = damage {
            if on_damage == OnDamage::Refuse {
                return Err(found.refusal(dir));
            }
            let readable = wal_scan::readable::<Line>(log_bytes);
            epoch = readable
                .iter()
                .filter_map(Line::epoch)
                .fold(epoch, u64::max);
            let moved_to = set_aside(dir, &[&snap_path, &log_path])?;
            recovered.set_aside = Some(SetAside {
                damage: found.describe(dir),
                moved_to,
            });
        }
        recovered.torn_tail = scan.torn_tail;
        let mut last_seq = after.unwrap_or(0);
        let mut events = Vec::new();
        for entry in scan.entries {
            last_seq = entry.seq;
            match entry.record.record {
                Record::Epoch(e) => epoch = epoch.max(e),
                Record::Event(ev) => events.push(ev),
            }
        }
        if log.is_none() || recovered.set_aside.is_some() {
            // The log exists before any snapshot does, so that a snapshot without one
            // always means records were lost.
            fresh_log(dir)?;
            sync_dir(dir)?;
        }
        let epoch = epoch + 1;
        let mut book = match &snapshot {
            Some(s) => TaskBook::restore(config, &s.state, epoch),
            None => TaskBook::new(config, epoch),
        };
        recovered.from_snapshot = snapshot.is_some();
        for ev in &events {
            book.replay(ev);
        }
        recovered.replayed = events.len() as u64;
        // Snapshot first, then a fresh log: this also drops a torn tail, so appends
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
            .write_all(wal_scan::framed(&body).as_bytes())
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
        f.write_all(wal_scan::framed(&body).as_bytes())
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

    /// `n` completions, sealing each pass as a job without pservers does.
    fn do_chunks(j: &mut Journal, b: &mut TaskBook, n: usize) {
        b.register("t", 0).unwrap();
        let mut done = 0;
        while done < n {
            match b.lease("t", 0).unwrap() {
                LeaseOutcome::Leased(l) => {
                    let ev = b.complete("t", l.pass, l.chunk, l.lease_id, 0).unwrap();
                    j.append(&ev, b).unwrap();
                    done += 1;
                }
                LeaseOutcome::Seal(s) => {
                    let (_, ev) = b
                        .report_seal("t", s.pass, s.lease_id, 0, |_, _| true, 0)
                        .unwrap();
                    j.append(&ev, b).unwrap();
                }
                other => panic!("{other:?}"),
            }
        }
    }

    fn open(dir: &Path, compact_every: u64) -> Result<(Journal, TaskBook, Recovered), CoordError> {
        Journal::open(dir, config(), compact_every, OnDamage::Refuse)
    }

    /// A journal of `n` completions (one line each) after its epoch line, left as a
    /// killed master leaves it; returns the log's lines.
    fn journal_of(dir: &Path, n: usize) -> Vec<String> {
        let (mut j, mut b, _) = open(dir, 1000).unwrap();
        do_chunks(&mut j, &mut b, n);
        drop(j);
        let text = std::fs::read_to_string(dir.join(LOG)).unwrap();
        text.lines().map(|l| format!("{l}\n")).collect()
    }

    /// Both files, to show a refusal changed nothing.
    fn files(dir: &Path) -> (Vec<u8>, Vec<u8>) {
        (
            std::fs::read(dir.join(SNAPSHOT)).unwrap_or_default(),
            std::fs::read(dir.join(LOG)).unwrap_or_default(),
        )
    }

    #[test]
    fn progress_survives_reopen_through_log_and_snapshot() {
        let (_root, dir) = tmpdir("reopen");
        for compact_every in [1000, 3] {
            let _ = std::fs::remove_dir_all(&dir);
            let (mut j, mut b, _) = open(&dir, compact_every).unwrap();
            let epoch = b.epoch();
            do_chunks(&mut j, &mut b, 13); // pass 0 done, 3 of pass 1
            drop(j);
            let (_, r, rec) = open(&dir, compact_every).unwrap();
            assert_eq!(r.pass(), 1, "compact_every {compact_every}: {rec:?}");
            assert_eq!(r.counts()[2], 3);
            assert_eq!(r.history()[0].completions, 10);
            assert!(r.epoch() > epoch);
        }
    }

    #[test]
    fn torn_last_line_is_dropped_and_a_changed_job_is_refused() {
        let (_root, dir) = tmpdir("torn");
        let lines = journal_of(&dir, 4);
        let log = dir.join(LOG);
        let text = lines.concat();
        std::fs::write(&log, &text[..text.len() - 7]).unwrap(); // cut the last line
        let (_, r, rec) = open(&dir, 1000).unwrap();
        let torn = rec.torn_tail.expect("the torn line reported");
        assert_eq!(torn.line, lines.len());
        assert_eq!(torn.offset, text.len() - lines[lines.len() - 1].len());
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
            OnDamage::SetAside,
        )
        .err()
        .expect("different chunking refused, even when damage may be set aside");
        assert!(err.to_string().contains("chunk_size"), "{err}");
        std::fs::write(dir.join(SNAPSHOT), "{garbage").unwrap();
        let before = files(&dir);
        let err = open(&dir, 1000).err().expect("corrupt snapshot refused");
        assert!(err.to_string().contains("checksum"), "{err}");
        assert_eq!(files(&dir), before, "nothing changed");
    }

    #[test]
    fn a_damaged_record_with_records_after_it_is_refused_and_nothing_changes() {
        let (_root, dir) = tmpdir("middle");
        let lines = journal_of(&dir, 8);
        let mut bytes = lines.concat().into_bytes();
        let at: usize = lines[..4].iter().map(String::len).sum();
        bytes[at + 10] ^= 0x01; // one changed byte in line 5
        std::fs::write(dir.join(LOG), &bytes).unwrap();
        let before = files(&dir);
        let err = open(&dir, 1000).err().expect("refused");
        let text = err.to_string();
        assert!(
            text.contains(LOG) && text.contains("line 5") && text.contains(&format!("byte {at}")),
            "{text}"
        );
        assert!(
            text.contains("--set-aside-damaged-state"),
            "says what to do: {text}"
        );
        assert_eq!(files(&dir), before, "neither file rewritten nor truncated");
    }

    #[test]
    fn binary_data_a_gap_and_a_log_that_does_not_follow_are_refused() {
        let (_root, dir) = tmpdir("kinds");
        let lines = journal_of(&dir, 6);
        let snapshot = std::fs::read(dir.join(SNAPSHOT)).unwrap();
        let mut binary_tail = lines.concat().into_bytes();
        binary_tail.extend_from_slice(&[0x00, 0xfe, 0x81, 0x07, 0xff]);
        let mut gap = lines.clone();
        gap.remove(3);
        let cases: [(&str, Vec<u8>, &str); 3] = [
            ("binary tail", binary_tail, "binary"),
            ("gap", gap.concat().into_bytes(), "missing"),
            (
                "only the end",
                lines[4..].concat().into_bytes(),
                "snapshot ends at record 0",
            ),
        ];
        for (case, log, says) in cases {
            std::fs::write(dir.join(SNAPSHOT), &snapshot).unwrap();
            std::fs::write(dir.join(LOG), &log).unwrap();
            let before = files(&dir);
            let err = open(&dir, 1000)
                .err()
                .unwrap_or_else(|| panic!("{case}: accepted"));
            assert!(err.to_string().contains(says), "{case}: {err}");
            assert_eq!(files(&dir), before, "{case}: nothing changed");
        }
        // A log that starts past record 1 with no snapshot to come after.
        std::fs::remove_file(dir.join(SNAPSHOT)).unwrap();
        std::fs::write(dir.join(LOG), lines[2..].concat()).unwrap();
        let err = open(&dir, 1000).err().expect("refused");
        assert!(err.to_string().contains("no snapshot"), "{err}");
        // A snapshot whose log is gone.
        std::fs::write(dir.join(SNAPSHOT), &snapshot).unwrap();
        std::fs::remove_file(dir.join(LOG)).unwrap();
        let err = open(&dir, 1000).err().expect("refused");
        assert!(err.to_string().contains("is missing"), "{err}");
        assert!(!dir.join(LOG).exists(), "not recreated");
    }

    #[test]
    fn set_aside_moves_the_damage_away_and_resumes_from_what_reads() {
        let (_root, dir) = tmpdir("aside");
        let (mut j, mut b, _) = open(&dir, 1000).unwrap();
        do_chunks(&mut j, &mut b, 8);
        let epoch = b.epoch();
        drop(j);
        let log = std::fs::read_to_string(dir.join(LOG)).unwrap();
        let lines: Vec<&str> = log.split_inclusive('\n').collect();
        // Line 1 is the epoch; the completions follow. Damage the 6th completion.
        let mut damaged = lines.clone();
        let bad = damaged[6].replace("\"", "'");
        damaged[6] = &bad;
        std::fs::write(dir.join(LOG), damaged.concat()).unwrap();
        let before = files(&dir);
        let (_, r, rec) = Journal::open(&dir, config(), 1000, OnDamage::SetAside).unwrap();
        let aside = rec.set_aside.expect("set aside");
        assert!(aside.damage.contains("line 7"), "{aside:?}");
        assert_eq!(
            (
                std::fs::read(aside.moved_to.join(SNAPSHOT)).unwrap(),
                std::fs::read(aside.moved_to.join(LOG)).unwrap()
            ),
            before,
            "the damaged files kept, byte for byte"
        );
        assert_eq!(r.counts()[2], 5, "the five completions before the damage");
        assert!(r.epoch() > epoch, "a lease epoch above every one used");
        // What it resumed from is a clean journal again.
        let (_, again, rec) = open(&dir, 1000).unwrap();
        assert!(rec.set_aside.is_none() && rec.torn_tail.is_none());
        assert_eq!(again.counts()[2], 5);
    }
}
