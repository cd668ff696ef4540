//! Reading the master's write-ahead log strictly: what a crash can leave (a torn last
//! line) is told apart from damage (anything else), which is refused with the line and
//! byte offset named rather than repaired by dropping records.
//!
//! The journal writes each record as one line, `JSON \t CRC32 \n`, in one `write`, with
//! consecutive sequence numbers; a log starts right after the snapshot it follows. A
//! crash can cut only the last line, or (its page not yet flushed) leave the last
//! record's text wrong. Everything else (a bad record with good ones after it, bytes
//! the journal never writes, a missing record number, a log that does not follow its
//! snapshot) is damage: replaying past it would silently forget or repeat completed
//! chunks.

use serde::de::DeserializeOwned;

/// `body` as the journal writes it: one line, `body \t CRC32 \n` (the snapshot file is
/// one such line too).
pub fn framed(body: &str) -> String {
    format!("{body}\t{:08x}\n", crc32fast::hash(body.as_bytes()))
}

/// The body of a [`framed`] line (without its newline), if its checksum matches.
pub fn unframe(line: &str) -> Option<&str> {
    let (body, crc) = line.rsplit_once('\t')?;
    let want = (crc.len() == 8).then(|| u32::from_str_radix(crc, 16).ok())??;
    (crc32fast::hash(body.as_bytes()) == want).then_some(body)
}

/// One record the log holds, read.
#[derive(Debug)]
pub struct Entry<T> {
    /// Line number, from 1.
    pub line: usize,
    pub seq: u64,
    pub record: T,
}

/// A last line dropped as a crash's torn write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub line: usize,
    /// Byte offset of the line in the file.
    pub offset: usize,
    pub bytes: usize,
    /// Why it does not read (cut short, or a checksum that does not match).
    pub why: &'static str,
}

/// Damage: the line, its byte offset and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    pub line: usize,
    pub offset: usize,
    pub problem: String,
}

/// What a log holds: with no damage, every record (up to a torn last line); with
/// damage, the records before it.
#[derive(Debug)]
pub struct Scan<T> {
    pub entries: Vec<Entry<T>>,
    pub torn_tail: Option<TornTail>,
    pub damage: Option<Damage>,
}

/// Why one line does not read.
enum Unreadable {
    /// Bytes the journal never writes: not text, or control characters.
    Binary,
    /// No newline at its end: a write cut short.
    Cut,
    Checksum,
    /// The checksum matches but the record is not one the journal writes.
    Record(String),
}

/// What the journal's lines carry besides their record: the sequence number.
pub trait Sequenced {
    fn seq(&self) -> u64;
}

/// Reads `log`, whose records must continue the snapshot that ends at record
/// `snapshot` (None: there is none, and the log starts at record 1). Records the
/// snapshot already holds (a log whose truncation a crash undid) are skipped, but
/// still checked.
pub fn scan<L: DeserializeOwned + Sequenced>(log: &[u8], snapshot: Option<u64>) -> Scan<L> {
    let after = snapshot.unwrap_or(0);
    let mut entries: Vec<Entry<L>> = Vec::new();
    let mut prev_seq: Option<u64> = None;
    let mut offset = 0;
    let mut lines = split_lines(log).enumerate().peekable();
    while let Some((i, (text, has_newline))) = lines.next() {
        let line = i + 1;
        let is_last = lines.peek().is_none();
        let here = offset;
        offset += text.len() + usize::from(has_newline);
        let parsed = match read_line::<L>(text, has_newline) {
            Ok(parsed) => parsed,
            Err(why) => {
                let torn = |why| TornTail {
                    line,
                    offset: here,
                    bytes: text.len() + usize::from(has_newline),
                    why,
                };
                let (torn_tail, damage) = match why {
                    Unreadable::Cut if is_last => (Some(torn("cut short (no newline)")), None),
                    Unreadable::Checksum if is_last => {
                        (Some(torn("its checksum does not match")), None)
                    }
                    why => (
                        None,
                        Some(Damage {
                            line,
                            offset: here,
                            problem: describe(why, is_last),
                        }),
                    ),
                };
                return Scan {
                    entries,
                    torn_tail,
                    damage,
                };
            }
        };
        let seq = parsed.seq();
        let expected = match prev_seq {
            Some(p) => p.saturating_add(1),
            // The first record may be one the snapshot holds, or the next one.
            None if seq <= after => seq,
            None => after + 1,
        };
        if seq != expected {
            let problem = match prev_seq {
                Some(p) if seq < expected => {
                    format!("record {seq} follows record {p}: the records are out of order")
                }
                Some(p) => format!(
                    "record {seq} follows record {p}: records {expected} to {} are missing",
                    seq.saturating_sub(1)
                ),
                None if snapshot.is_none() => format!(
                    "the log starts at record {seq} but there is no snapshot: records 1 to {} are missing",
                    seq - 1
                ),
                None => format!(
                    "the log starts at record {seq} but the snapshot ends at record {after}: records {expected} to {} are missing",
                    seq - 1
                ),
            };
            return Scan {
                entries,
                torn_tail: None,
                damage: Some(Damage {
                    line,
                    offset: here,
                    problem,
                }),
            };
        }
        prev_seq = Some(seq);
        if seq > after {
            entries.push(Entry {
                line,
                seq,
                record: parsed,
            });
        }
    }
    Scan {
        entries,
        torn_tail: None,
        damage: None,
    }
}

/// Every line that passes its checksum, wherever it is: what a damaged log still says
/// (the set-aside recovery reads the highest lease epoch from it).
pub fn readable<L: DeserializeOwned>(log: &[u8]) -> Vec<L> {
    split_lines(log)
        .filter_map(|(text, has_newline)| read_line(text, has_newline).ok())
        .collect()
}

fn describe(why: Unreadable, is_last: bool) -> String {
    let after = if is_last {
        ""
    } else {
        ", and records follow it"
    };
    match why {
        Unreadable::Binary => {
            format!("holds bytes the journal never writes (binary data, not a record){after}")
        }
        Unreadable::Cut => format!("is cut short{after}"),
        Unreadable::Checksum => format!("does not match its checksum{after}"),
        Unreadable::Record(e) => format!("is not a journal record ({e}){after}"),
    }
}

/// The file's lines, each with whether a newline ended it; no empty piece after a final
/// newline.
fn split_lines(log: &[u8]) -> impl Iterator<Item = (&[u8], bool)> {
    let mut rest = log;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match rest.iter().position(|&b| b == b'\n') {
            Some(n) => {
                let line = &rest[..n];
                rest = &rest[n + 1..];
                Some((line, true))
            }
            None => {
                let line = rest;
                rest = &[];
                Some((line, false))
            }
        }
    })
}

fn read_line<L: DeserializeOwned>(bytes: &[u8], has_newline: bool) -> Result<L, Unreadable> {
    // JSON escapes every control character, so a record's only one is the tab before
    // its checksum.
    if bytes.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(Unreadable::Binary);
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        // A write cut inside a multi-byte character ends in part of one.
        Err(e) if !has_newline && e.error_len().is_none() => return Err(Unreadable::Cut),
        Err(_) => return Err(Unreadable::Binary),
    };
    let checked = unframe(text).ok_or(if has_newline {
        Unreadable::Checksum
    } else {
        Unreadable::Cut
    })?;
    if !has_newline {
        // Whole but for its newline: still a write that did not finish.
        return Err(Unreadable::Cut);
    }
    serde_json::from_str(checked).map_err(|e| Unreadable::Record(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct L {
        seq: u64,
    }
    impl Sequenced for L {
        fn seq(&self) -> u64 {
            self.seq
        }
    }

    fn line(seq: u64) -> String {
        framed(&format!("{{\"seq\":{seq}}}"))
    }

    fn log(seqs: impl IntoIterator<Item = u64>) -> Vec<u8> {
        seqs.into_iter().map(line).collect::<String>().into_bytes()
    }

    fn seqs(s: &Scan<L>) -> Vec<u64> {
        s.entries.iter().map(|e| e.seq).collect()
    }

    fn clean(log: &[u8], after: u64) -> Scan<L> {
        let s = scan::<L>(log, (after > 0).then_some(after));
        assert_eq!(s.damage, None);
        s
    }

    fn damage(log: &[u8], after: u64) -> Damage {
        scan::<L>(log, (after > 0).then_some(after))
            .damage
            .expect("refused")
    }

    #[test]
    fn a_clean_log_reads_whole_and_skips_what_the_snapshot_holds() {
        let s = clean(&log(1..=5), 0);
        assert_eq!(seqs(&s), [1, 2, 3, 4, 5]);
        assert_eq!(s.torn_tail, None);
        let s = clean(&log(3..=8), 5);
        assert_eq!(seqs(&s), [6, 7, 8]);
        assert_eq!(s.entries[0].line, 4);
        assert!(clean(b"", 9).entries.is_empty());
    }

    #[test]
    fn only_a_torn_last_line_is_dropped() {
        let mut cut = log(1..=4);
        cut.truncate(cut.len() - 5);
        let s = clean(&cut, 0);
        assert_eq!(seqs(&s), [1, 2, 3]);
        let t = s.torn_tail.unwrap();
        assert_eq!((t.line, t.offset), (4, 3 * line(1).len()));
        // A whole last line but for its newline is torn too.
        let mut no_newline = log(1..=2);
        no_newline.pop();
        assert_eq!(seqs(&clean(&no_newline, 0)), [1]);
        // A last record whose text is wrong (its page never reached the disk).
        let mut flipped = log(1..=3);
        let n = flipped.len();
        flipped[n - 12] = b'7';
        let s = clean(&flipped, 0);
        assert_eq!(seqs(&s), [1, 2]);
        assert_eq!(s.torn_tail.unwrap().why, "its checksum does not match");
    }

    #[test]
    fn a_bad_record_with_records_after_it_is_refused_by_line_and_offset() {
        let mut bad = log(1..=6);
        let at = 2 * line(1).len() + 3; // inside line 3
        bad[at] = b'9';
        let s = scan::<L>(&bad, None);
        assert_eq!(seqs(&s), [1, 2], "the records before the damage");
        let d = s.damage.unwrap();
        assert_eq!((d.line, d.offset), (3, 2 * line(1).len()));
        assert!(
            d.problem.contains("checksum") && d.problem.contains("follow"),
            "{d:?}"
        );
    }

    #[test]
    fn binary_data_is_refused_anywhere() {
        let mut tail = log(1..=3);
        tail.extend_from_slice(&[0x9f, 0x00, 0xff, 0x13]);
        let d = damage(&tail, 0);
        assert_eq!(d.line, 4);
        assert!(d.problem.contains("binary"), "{d:?}");
        let mut zeros = log(1..=3);
        zeros.extend_from_slice(&[0; 64]);
        assert!(damage(&zeros, 0).problem.contains("binary"));
        let mut middle = log(1..=3);
        middle[line(1).len() + 2] = 0xc3;
        let d = damage(&middle, 0);
        assert_eq!(d.line, 2);
    }

    #[test]
    fn missing_records_are_refused() {
        let d = damage(&log([1, 2, 4, 5]), 0);
        assert_eq!(d.line, 3);
        assert!(d.problem.contains("records 3 to 3 are missing"), "{d:?}");
        let d = damage(&log(9..=10), 5);
        assert!(d.problem.contains("snapshot ends at record 5"), "{d:?}");
        let d = damage(&log(4..=5), 0);
        assert!(d.problem.contains("no snapshot"), "{d:?}");
        // Sequence numbers going back are missing records too.
        assert!(
            damage(&log([1, 2, 3, 2]), 0)
                .problem
                .contains("out of order")
        );
    }

    #[test]
    fn a_record_with_a_good_checksum_that_is_not_a_record_is_refused() {
        let body = "{\"nope\":1}";
        let mut bytes = log(1..=1);
        bytes.extend(framed(body).bytes());
        let d = damage(&bytes, 0);
        assert!(d.problem.contains("not a journal record"), "{d:?}");
    }

    #[test]
    fn readable_lines_are_found_past_damage() {
        let mut bad = log(1..=4);
        bad[line(1).len() + 1] = b'x';
        let seqs: Vec<u64> = readable::<L>(&bad).iter().map(|l| l.seq).collect();
        assert_eq!(seqs, [1, 3, 4]);
    }
}
