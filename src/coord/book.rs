//! The master's task book: chunks of the training set per pass, leased to trainers.
//! Pure state machine with time passed in (ms), so every transition is unit-tested;
//! `master.rs` adds RPC, clocks and durability around it.
//!
//! A chunk is in exactly one state per pass: todo, pending (leased), done or failed.
//! A completion counts only when it quotes the chunk's live lease, so a chunk is done
//! at most once; a lease whose trainer leaves, misses heartbeats or overruns its
//! deadline goes back to todo, so a chunk is done at least once (or given up after
//! `max_failures`).
//!
//! A pass ends with a seal (`seal.rs`): every chunk done must be held, durably, by
//! every pserver shard before the next pass begins.

mod seal;
pub use seal::{SealLease, SealOutcome};

use std::collections::{HashMap, VecDeque};

#[derive(Clone, Debug)]
pub struct BookConfig {
    pub records: u64,
    pub chunk_size: u64,
    pub passes: u32,
    pub lease_ms: u64,
    pub heartbeat_timeout_ms: u64,
    pub max_failures: u32,
    pub save_interval_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkState {
    Todo,
    Pending,
    Done,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub pass: u32,
    pub chunk: u32,
    pub begin: u64,
    pub end: u64,
    pub lease_id: u64,
    pub deadline_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseOutcome {
    Leased(Lease),
    Wait,
    Finished,
    /// The job failed, for this reason: nothing more is leased.
    Failed(String),
    /// Every chunk of the pass is done or given up: seal it (see `seal.rs`).
    Seal(SealLease),
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    #[error("unknown trainer {0:?}: register first")]
    UnknownTrainer(String),
    #[error("trainer_id must not be empty")]
    EmptyTrainerId,
    #[error("pass {pass} chunk {chunk}: no such chunk")]
    NoSuchChunk { pass: u32, chunk: u32 },
    #[error("pass {pass} chunk {chunk} is already done: duplicate completion ignored")]
    AlreadyDone { pass: u32, chunk: u32 },
    #[error(
        "pass {pass} chunk {chunk}: lease {lease_id} is not the live lease (expired, returned or from before a restart)"
    )]
    StaleLease {
        pass: u32,
        chunk: u32,
        lease_id: u64,
    },
    #[error(
        "pass {pass}: seal lease {lease_id} is not the live one (expired, or the pass moved on)"
    )]
    StaleSeal { pass: u32, lease_id: u64 },
}

/// What must be made durable after a transition (see `wal.rs`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Event {
    Done {
        pass: u32,
        chunk: u32,
    },
    Failure {
        pass: u32,
        chunk: u32,
        failures: u32,
        gave_up: bool,
    },
    PassAdvanced {
        pass: u32,
    },
    FinalSaved,
    /// The final model's accuracy, kept so that a restarted master still reports it.
    FinalAccuracy {
        accuracy: f64,
    },
    /// The job cannot go on (see [`TaskBook::fail_job`]).
    JobFailed {
        reason: String,
    },
}

/// Everything about progress that must survive a crash (leases need not: a restart
/// bumps the epoch and the chunks they held are simply todo again).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DurableState {
    pub records: u64,
    pub chunk_size: u64,
    pub passes: u32,
    pub epoch: u64,
    pub pass: u32,
    pub history: Vec<PassTotals>,
    pub done: Vec<u32>,
    /// (chunk, failures, gave up)
    pub failures: Vec<(u32, u32, bool)>,
    pub final_saved: bool,
    /// Why the job failed, once it has (absent in state saved before jobs could fail).
    #[serde(default)]
    pub failed: Option<String>,
    #[serde(default)]
    pub final_accuracy: Option<f64>,
}

#[derive(Clone, Debug)]
struct Pending {
    trainer: String,
    lease_id: u64,
    deadline_ms: u64,
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PassTotals {
    pub done: u32,
    pub failed: u32,
    /// Accepted completions: equals `done` unless a chunk was done twice.
    pub completions: u32,
    /// Chunks done again because a pserver shard no longer held them at the seal.
    #[serde(default)]
    pub redone: u32,
}

#[derive(Clone, Debug)]
pub struct TaskBook {
    pub config: BookConfig,
    chunks: u32,
    pass: u32,
    finished: bool,
    failed: Option<String>,
    /// The live lease of this pass's seal, once every chunk is done or given up.
    seal: Option<Pending>,
    state: Vec<ChunkState>,
    failures: Vec<u32>,
    todo: VecDeque<u32>,
    pending: HashMap<u32, Pending>,
    /// Trainer id -> last heartbeat (ms).
    trainers: HashMap<String, u64>,
    history: Vec<PassTotals>,
    /// Lease ids are `epoch << 40 | n`: a restart bumps the epoch so no lease from
    /// before it can ever match.
    epoch: u64,
    next_lease: u64,
    last_save_ms: Option<u64>,
    final_save: Option<String>,
    final_saved: bool,
    final_accuracy: Option<f64>,
    pub rejected_completions: u64,
    pub requeued_leases: u64,
}

impl TaskBook {
    pub fn new(config: BookConfig, epoch: u64) -> TaskBook {
        let chunks = config.records.div_ceil(config.chunk_size.max(1)) as u32;
        let mut book = TaskBook {
            chunks,
            pass: 0,
            finished: config.passes == 0 || chunks == 0,
            state: Vec::new(),
            failures: Vec::new(),
            todo: VecDeque::new(),
            pending: HashMap::new(),
            trainers: HashMap::new(),
            history: vec![PassTotals::default()],
            epoch,
            next_lease: 0,
            last_save_ms: None,
            final_save: None,
            final_saved: false,
            final_accuracy: None,
            failed: None,
            seal: None,
            rejected_completions: 0,
            requeued_leases: 0,
            config,
        };
        book.start_pass(0);
        book
    }

    fn start_pass(&mut self, pass: u32) {
        self.pass = pass;
        self.seal = None;
        self.state = vec![ChunkState::Todo; self.chunks as usize];
        self.failures = vec![0; self.chunks as usize];
        self.todo = (0..self.chunks).collect();
        self.pending.clear();
        while self.history.len() <= pass as usize {
            self.history.push(PassTotals::default());
        }
    }

    pub fn chunks(&self) -> u32 {
        self.chunks
    }
    pub fn pass(&self) -> u32 {
        self.pass
    }
    pub fn finished(&self) -> bool {
        self.finished
    }
    /// Whether any chunk has been completed (in any pass): from then on the pservers
    /// hold this job's parameters.
    pub fn started(&self) -> bool {
        self.pass > 0 || self.history.iter().any(|t| t.completions > 0)
    }
    /// Why the job failed, once it has.
    pub fn failed(&self) -> Option<&str> {
        self.failed.as_deref()
    }
    pub fn history(&self) -> &[PassTotals] {
        &self.history
    }
    pub fn final_saved(&self) -> bool {
        self.final_saved
    }
    pub fn trainers(&self) -> Vec<String> {
        let mut t: Vec<String> = self.trainers.keys().cloned().collect();
        t.sort();
        t
    }
    pub fn counts(&self) -> [u32; 4] {
        let mut c = [0; 4];
        for s in &self.state {
            c[*s as usize] += 1;
        }
        c
    }

    fn known(&self, trainer: &str) -> Result<(), BookError> {
        if trainer.is_empty() {
            return Err(BookError::EmptyTrainerId);
        }
        if self.trainers.contains_key(trainer) {
            Ok(())
        } else {
            Err(BookError::UnknownTrainer(trainer.to_string()))
        }
    }

    /// A call from a known trainer also counts as a heartbeat.
    fn touch(&mut self, trainer: &str, now: u64) -> Result<(), BookError> {
        if self.heartbeat(trainer, now) {
            Ok(())
        } else {
            self.known(trainer)
        }
    }

    pub fn register(&mut self, trainer: &str, now: u64) -> Result<(), BookError> {
        if trainer.is_empty() {
            return Err(BookError::EmptyTrainerId);
        }
        self.trainers.insert(trainer.to_string(), now);
        Ok(())
    }

    pub fn heartbeat(&mut self, trainer: &str, now: u64) -> bool {
        match self.trainers.get_mut(trainer) {
            Some(t) => {
                *t = now;
                true
            }
            None => false,
        }
    }

    pub fn lease(&mut self, trainer: &str, now: u64) -> Result<LeaseOutcome, BookError> {
        self.touch(trainer, now)?;
        if let Some(reason) = &self.failed {
            return Ok(LeaseOutcome::Failed(reason.clone()));
        }
        if self.finished {
            return Ok(LeaseOutcome::Finished);
        }
        let Some(chunk) = self.todo.pop_front() else {
            return Ok(self.lease_seal(trainer, now));
        };
        let lease = self.new_lease(trainer, now);
        let (lease_id, deadline_ms) = (lease.lease_id, lease.deadline_ms);
        self.state[chunk as usize] = ChunkState::Pending;
        self.pending.insert(chunk, lease);
        let begin = u64::from(chunk) * self.config.chunk_size;
        let end = (begin + self.config.chunk_size).min(self.config.records);
        Ok(LeaseOutcome::Leased(Lease {
            pass: self.pass,
            chunk,
            begin,
            end,
            lease_id,
            deadline_ms,
        }))
    }

    /// A lease for `trainer` from `now`: ids are `epoch << 40 | n`, never reused.
    fn new_lease(&mut self, trainer: &str, now: u64) -> Pending {
        self.next_lease += 1;
        Pending {
            trainer: trainer.to_string(),
            lease_id: (self.epoch << 40) | self.next_lease,
            deadline_ms: now + self.config.lease_ms,
        }
    }

    /// Checks that `lease_id` is the live lease of (pass, chunk) held by `trainer`.
    fn take_live_lease(
        &mut self,
        trainer: &str,
        pass: u32,
        chunk: u32,
        lease_id: u64,
    ) -> Result<(), BookError> {
        if chunk >= self.chunks || pass >= self.config.passes {
            return Err(BookError::NoSuchChunk { pass, chunk });
        }
        let done_already = pass < self.pass
            || (pass == self.pass && self.state[chunk as usize] == ChunkState::Done);
        if done_already {
            self.rejected_completions += 1;
            return Err(BookError::AlreadyDone { pass, chunk });
        }
        let live = pass == self.pass
            && self
                .pending
                .get(&chunk)
                .is_some_and(|p| p.lease_id == lease_id && p.trainer == trainer);
        if !live {
            self.rejected_completions += 1;
            return Err(BookError::StaleLease {
                pass,
                chunk,
                lease_id,
            });
        }
        self.pending.remove(&chunk);
        Ok(())
    }

    /// A known trainer reporting on its live lease: the lease ends here.
    fn accept(
        &mut self,
        trainer: &str,
        pass: u32,
        chunk: u32,
        lease_id: u64,
        now: u64,
    ) -> Result<(), BookError> {
        self.touch(trainer, now)?;
        self.take_live_lease(trainer, pass, chunk, lease_id)
    }

    pub fn complete(
        &mut self,
        trainer: &str,
        pass: u32,
        chunk: u32,
        lease_id: u64,
        now: u64,
    ) -> Result<Vec<Event>, BookError> {
        self.accept(trainer, pass, chunk, lease_id, now)?;
        self.state[chunk as usize] = ChunkState::Done;
        let totals = &mut self.history[pass as usize];
        totals.done += 1;
        totals.completions += 1;
        // The last chunk does not start the next pass: the seal does.
        Ok(vec![Event::Done { pass, chunk }])
    }

    pub fn fail(
        &mut self,
        trainer: &str,
        pass: u32,
        chunk: u32,
        lease_id: u64,
        now: u64,
    ) -> Result<Vec<Event>, BookError> {
        self.accept(trainer, pass, chunk, lease_id, now)?;
        Ok(self.count_failure(chunk))
    }

    fn count_failure(&mut self, chunk: u32) -> Vec<Event> {
        let i = chunk as usize;
        self.failures[i] += 1;
        let gave_up = self.failures[i] >= self.config.max_failures.max(1);
        let events = vec![Event::Failure {
            pass: self.pass,
            chunk,
            failures: self.failures[i],
            gave_up,
        }];
        if gave_up {
            self.state[i] = ChunkState::Failed;
            self.history[self.pass as usize].failed += 1;
        } else {
            self.requeue(chunk);
        }
        events
    }

    fn requeue(&mut self, chunk: u32) {
        self.state[chunk as usize] = ChunkState::Todo;
        // Front: the chunk has waited longest.
        self.todo.push_front(chunk);
        self.requeued_leases += 1;
    }

    /// A trainer leaving cleanly: its leases go back at once and do not count as failures.
    pub fn deregister(&mut self, trainer: &str) -> u32 {
        self.trainers.remove(trainer);
        let mine: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, p)| p.trainer == trainer)
            .map(|(&c, _)| c)
            .collect();
        for &c in &mine {
            self.pending.remove(&c);
            self.requeue(c);
        }
        if self.final_save.as_deref() == Some(trainer) {
            self.final_save = None;
        }
        self.drop_seal_of(trainer);
        mine.len() as u32
    }

    /// Drops trainers that missed heartbeats and re-queues expired leases: both count as
    /// failures of the chunk (a chunk that kills every trainer must stop somewhere).
    pub fn reap(&mut self, now: u64) -> Vec<Event> {
        let timeout = self.config.heartbeat_timeout_ms;
        let dead: Vec<String> = self
            .trainers
            .iter()
            .filter(|(_, seen)| now.saturating_sub(**seen) > timeout)
            .map(|(t, _)| t.clone())
            .collect();
        let mut events = Vec::new();
        for t in &dead {
            self.trainers.remove(t);
            if self.final_save.as_deref() == Some(t.as_str()) {
                self.final_save = None;
            }
            self.drop_seal_of(t);
        }
        self.expire_seal(now);
        let mut lost: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, p)| now > p.deadline_ms || !self.trainers.contains_key(&p.trainer))
            .map(|(&c, _)| c)
            .collect();
        lost.sort_unstable();
        for c in lost {
            self.pending.remove(&c);
            events.extend(self.count_failure(c));
        }
        events
    }

    /// The job cannot go on: leases nothing more from now on and says `reason` to every
    /// trainer that asks. The first reason stands; failing again records nothing.
    pub fn fail_job(&mut self, trainer: &str, reason: &str) -> Result<Vec<Event>, BookError> {
        if trainer.is_empty() {
            return Err(BookError::EmptyTrainerId);
        }
        if self.failed.is_some() {
            return Ok(Vec::new());
        }
        let reason = format!("{reason} (reported by trainer {trainer})");
        self.failed = Some(reason.clone());
        Ok(vec![Event::JobFailed { reason }])
    }

    /// The next pass, or the end: only after the seal (`seal.rs`).
    fn advance(&mut self) -> Vec<Event> {
        if self.pass + 1 >= self.config.passes {
            self.finished = true;
            return Vec::new();
        }
        let next = self.pass + 1;
        self.start_pass(next);
        vec![Event::PassAdvanced { pass: next }]
    }

    /// One periodic save per interval; once finished, exactly one final save, handed on
    /// if its holder leaves before reporting it.
    pub fn request_save(
        &mut self,
        trainer: &str,
        final_save: bool,
        now: u64,
    ) -> Result<bool, BookError> {
        self.known(trainer)?;
        if final_save {
            if !self.finished || self.final_saved {
                return Ok(false);
            }
            match &self.final_save {
                Some(holder) if holder != trainer => Ok(false),
                _ => {
                    self.final_save = Some(trainer.to_string());
                    Ok(true)
                }
            }
        } else {
            let due = self
                .last_save_ms
                .is_none_or(|t| now.saturating_sub(t) >= self.config.save_interval_ms);
            if due {
                self.last_save_ms = Some(now);
            }
            Ok(due)
        }
    }

    /// The final save's trainer reporting the saved model's accuracy.
    pub fn report_final(&mut self, trainer: &str, accuracy: f64) -> Vec<Event> {
        if self.final_save.as_deref() == Some(trainer) && !self.final_saved {
            self.final_saved = true;
            self.final_accuracy = Some(accuracy);
            vec![Event::FinalSaved, Event::FinalAccuracy { accuracy }]
        } else {
            Vec::new()
        }
    }

    pub fn final_accuracy(&self) -> Option<f64> {
        self.final_accuracy
    }

    // ---- recovery -------------------------------------------------------------------

    pub fn durable(&self) -> DurableState {
        DurableState {
            records: self.config.records,
            chunk_size: self.config.chunk_size,
            passes: self.config.passes,
            epoch: self.epoch,
            pass: self.pass,
            history: self.history.clone(),
            done: (0..self.chunks)
                .filter(|&c| self.state[c as usize] == ChunkState::Done)
                .collect(),
            failures: (0..self.chunks)
                .filter(|&c| self.failures[c as usize] > 0)
                .map(|c| {
                    (
                        c,
                        self.failures[c as usize],
                        self.state[c as usize] == ChunkState::Failed,
                    )
                })
                .collect(),
            final_saved: self.final_saved,
            failed: self.failed.clone(),
            final_accuracy: self.final_accuracy,
        }
    }

    /// A book restored from a snapshot, under a new lease epoch.
    pub fn restore(config: BookConfig, saved: &DurableState, epoch: u64) -> TaskBook {
        let mut book = TaskBook::new(config, epoch);
        if saved.pass > 0 {
            book.replay(&Event::PassAdvanced { pass: saved.pass });
        }
        for &c in &saved.done {
            book.replay(&Event::Done {
                pass: saved.pass,
                chunk: c,
            });
        }
        for &(chunk, failures, gave_up) in &saved.failures {
            book.replay(&Event::Failure {
                pass: saved.pass,
                chunk,
                failures,
                gave_up,
            });
        }
        // Totals of earlier passes (and of this one, recounted above) come from the file.
        for (i, t) in saved.history.iter().enumerate() {
            if let Some(mine) = book.history.get_mut(i) {
                *mine = t.clone();
            }
        }
        if saved.final_saved {
            book.final_saved = true;
        }
        book.failed.clone_from(&saved.failed);
        book.final_accuracy = saved.final_accuracy;
        book
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Re-applies a durable event during recovery (no lease is live after a restart).
    pub fn replay(&mut self, event: &Event) {
        match *event {
            Event::JobFailed { ref reason } => {
                self.failed.get_or_insert_with(|| reason.clone());
            }
            Event::Done { pass, chunk } => {
                if pass == self.pass
                    && chunk < self.chunks
                    && self.state[chunk as usize] != ChunkState::Done
                {
                    self.remove_from_todo(chunk);
                    self.state[chunk as usize] = ChunkState::Done;
                    let t = &mut self.history[pass as usize];
                    t.done += 1;
                    t.completions += 1;
                }
            }
            Event::Failure {
                pass,
                chunk,
                failures,
                gave_up,
            } => {
                if pass == self.pass && chunk < self.chunks {
                    self.failures[chunk as usize] = failures;
                    if gave_up && self.state[chunk as usize] != ChunkState::Failed {
                        self.remove_from_todo(chunk);
                        self.state[chunk as usize] = ChunkState::Failed;
                        self.history[pass as usize].failed += 1;
                    }
                }
            }
            Event::PassAdvanced { pass } => {
                if pass > self.pass && pass < self.config.passes {
                    self.start_pass(pass);
                }
            }
            Event::FinalSaved => self.final_saved = true,
            Event::FinalAccuracy { accuracy } => self.final_accuracy = Some(accuracy),
        }
        // A pass whose last chunk was done right before the crash waits for its seal,
        // as it would have.
    }

    fn remove_from_todo(&mut self, chunk: u32) {
        if let Some(i) = self.todo.iter().position(|&c| c == chunk) {
            self.todo.remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BookConfig {
        BookConfig {
            records: 10,
            chunk_size: 4,
            passes: 2,
            lease_ms: 1000,
            heartbeat_timeout_ms: 300,
            max_failures: 2,
            save_interval_ms: 500,
        }
    }

    fn leased(o: LeaseOutcome) -> Lease {
        match o {
            LeaseOutcome::Leased(l) => l,
            other => panic!("expected a lease, got {other:?}"),
        }
    }

    /// Trainers a and b, and every chunk of pass 0 done by a.
    fn complete_first_pass() -> TaskBook {
        let mut b = TaskBook::new(config(), 1);
        b.register("a", 0).unwrap();
        b.register("b", 0).unwrap();
        for _ in 0..3 {
            let l = leased(b.lease("a", 0).unwrap());
            b.complete("a", l.pass, l.chunk, l.lease_id, 0).unwrap();
        }
        b
    }

    /// Seals the complete pass as a job without pservers does.
    fn seal(b: &mut TaskBook, trainer: &str, now: u64) -> Vec<Event> {
        let LeaseOutcome::Seal(s) = b.lease(trainer, now).unwrap() else {
            panic!("expected the seal")
        };
        let (outcome, events) = b
            .report_seal(trainer, s.pass, s.lease_id, 0, |_, _| true, now)
            .unwrap();
        assert_eq!(outcome, SealOutcome::Sealed);
        events
    }

    #[test]
    fn chunks_cover_the_records_and_passes_advance() {
        let mut b = TaskBook::new(config(), 1);
        b.register("t", 0).unwrap();
        let mut ranges = Vec::new();
        for _ in 0..3 {
            let l = leased(b.lease("t", 0).unwrap());
            ranges.push((l.begin, l.end));
            b.complete("t", l.pass, l.chunk, l.lease_id, 0).unwrap();
        }
        assert_eq!(ranges, vec![(0, 4), (4, 8), (8, 10)]);
        assert_eq!(b.pass(), 0, "a complete pass waits for its seal");
        assert_eq!(seal(&mut b, "t", 0), vec![Event::PassAdvanced { pass: 1 }]);
        assert_eq!(b.pass(), 1);
        for _ in 0..3 {
            let l = leased(b.lease("t", 0).unwrap());
            b.complete("t", l.pass, l.chunk, l.lease_id, 0).unwrap();
        }
        assert!(!b.finished());
        assert!(seal(&mut b, "t", 0).is_empty());
        assert!(b.finished());
        assert_eq!(b.lease("t", 0).unwrap(), LeaseOutcome::Finished);
        assert!(
            b.history()
                .iter()
                .all(|h| h.done == 3 && h.completions == 3)
        );
    }

    #[test]
    fn duplicate_stale_and_foreign_completions_are_rejected() {
        let mut b = TaskBook::new(config(), 1);
        b.register("a", 0).unwrap();
        b.register("b", 0).unwrap();
        let l = leased(b.lease("a", 0).unwrap());
        assert!(matches!(
            b.complete("b", l.pass, l.chunk, l.lease_id, 0),
            Err(BookError::StaleLease { .. })
        ));
        assert!(matches!(
            b.complete("a", l.pass, l.chunk, l.lease_id + 1, 0),
            Err(BookError::StaleLease { .. })
        ));
        b.complete("a", l.pass, l.chunk, l.lease_id, 0).unwrap();
        assert!(matches!(
            b.complete("a", l.pass, l.chunk, l.lease_id, 0),
            Err(BookError::AlreadyDone { .. })
        ));
        assert!(matches!(
            b.complete("a", 0, 99, 1, 0),
            Err(BookError::NoSuchChunk { .. })
        ));
        assert!(matches!(
            b.complete("ghost", 0, 1, 1, 0),
            Err(BookError::UnknownTrainer(_))
        ));
        assert_eq!(b.history()[0].completions, 1);
    }

    #[test]
    fn leaving_trainer_returns_its_lease_at_once_without_a_failure() {
        let mut b = TaskBook::new(config(), 1);
        b.register("a", 0).unwrap();
        b.register("b", 0).unwrap();
        let l = leased(b.lease("a", 0).unwrap());
        assert_eq!(b.deregister("a"), 1);
        let again = leased(b.lease("b", 1).unwrap());
        assert_eq!(again.chunk, l.chunk);
        assert_eq!(b.failures[l.chunk as usize], 0);
        // The old lease can no longer complete it.
        assert!(b.complete("a", l.pass, l.chunk, l.lease_id, 1).is_err());
    }

    #[test]
    fn missed_heartbeats_and_deadlines_requeue_then_give_up() {
        let mut b = TaskBook::new(config(), 1);
        b.register("a", 0).unwrap();
        let l = leased(b.lease("a", 0).unwrap());
        // Silent for longer than the heartbeat timeout: dropped, lease back in todo.
        let ev = b.reap(400);
        assert!(matches!(
            ev[0],
            Event::Failure {
                failures: 1,
                gave_up: false,
                ..
            }
        ));
        assert!(b.trainers().is_empty());
        b.register("b", 400).unwrap();
        let l2 = leased(b.lease("b", 400).unwrap());
        assert_eq!(l2.chunk, l.chunk);
        // Heartbeats keep b alive, but the lease deadline passes: second failure, give up.
        b.heartbeat("b", 1300);
        let ev = b.reap(1401);
        assert!(
            matches!(
                ev[0],
                Event::Failure {
                    failures: 2,
                    gave_up: true,
                    ..
                }
            ),
            "{ev:?}"
        );
        assert_eq!(b.counts()[ChunkState::Failed as usize], 1);
    }

    #[test]
    fn one_periodic_save_per_interval_and_one_final_save() {
        let mut b = TaskBook::new(
            BookConfig {
                passes: 1,
                records: 1,
                ..config()
            },
            1,
        );
        b.register("a", 0).unwrap();
        b.register("b", 0).unwrap();
        assert!(b.request_save("a", false, 0).unwrap());
        assert!(!b.request_save("b", false, 100).unwrap());
        assert!(b.request_save("b", false, 600).unwrap());
        assert!(!b.request_save("a", true, 600).unwrap(), "not finished yet");
        let l = leased(b.lease("a", 600).unwrap());
        b.complete("a", l.pass, l.chunk, l.lease_id, 600).unwrap();
        seal(&mut b, "a", 600);
        assert!(b.request_save("a", true, 700).unwrap());
        assert!(!b.request_save("b", true, 700).unwrap());
        // The holder leaves without saving: the final save passes on.
        b.deregister("a");
        assert!(b.request_save("b", true, 800).unwrap());
        let events = b.report_final("b", 0.93);
        assert_eq!(
            events,
            vec![Event::FinalSaved, Event::FinalAccuracy { accuracy: 0.93 }]
        );
        let mut r = TaskBook::new(b.config.clone(), 2);
        for e in &events {
            r.replay(e);
        }
        assert_eq!(r.final_accuracy(), Some(0.93), "kept through a restart");
        let restored = TaskBook::restore(b.config.clone(), &b.durable(), 3);
        assert_eq!(restored.final_accuracy(), Some(0.93));
        assert!(!b.request_save("b", true, 900).unwrap());
    }

    #[test]
    fn replay_restores_progress_and_old_leases_never_match() {
        let mut b = TaskBook::new(config(), 1);
        b.register("a", 0).unwrap();
        let mut events = Vec::new();
        let l0 = leased(b.lease("a", 0).unwrap());
        events.extend(b.complete("a", 0, l0.chunk, l0.lease_id, 0).unwrap());
        let held = leased(b.lease("a", 0).unwrap());
        let mut r = TaskBook::new(config(), 2);
        for e in &events {
            r.replay(e);
        }
        r.register("a", 0).unwrap();
        assert_eq!(r.counts()[ChunkState::Done as usize], 1);
        assert!(matches!(
            r.complete("a", 0, held.chunk, held.lease_id, 0),
            Err(BookError::StaleLease { .. })
        ));
        let mut seen = Vec::new();
        while let LeaseOutcome::Leased(l) = r.lease("a", 0).unwrap() {
            if l.pass > 0 {
                break;
            }
            seen.push(l.chunk);
            r.complete("a", l.pass, l.chunk, l.lease_id, 0).unwrap();
        }
        seen.sort();
        assert_eq!(
            seen,
            vec![1, 2],
            "only the chunks not done before the crash"
        );
    }

    #[test]
    fn a_failed_job_leases_nothing_and_stays_failed_through_replay_and_snapshot() {
        let mut b = TaskBook::new(config(), 1);
        b.register("a", 0).unwrap();
        let events = b.fail_job("a", "pserver 1 lost its parameters").unwrap();
        assert_eq!(events.len(), 1);
        assert!(
            b.fail_job("b", "another reason").unwrap().is_empty(),
            "the first reason stands"
        );
        let LeaseOutcome::Failed(reason) = b.lease("a", 0).unwrap() else {
            panic!("leased after failing")
        };
        assert!(
            reason.contains("pserver 1 lost") && reason.contains("trainer a"),
            "{reason}"
        );
        assert_eq!(b.fail_job("", "x"), Err(BookError::EmptyTrainerId));
        let mut replayed = TaskBook::new(config(), 2);
        for e in &events {
            replayed.replay(e);
        }
        assert_eq!(replayed.failed(), b.failed());
        let restored = TaskBook::restore(config(), &b.durable(), 3);
        assert_eq!(restored.failed(), b.failed());
        // State saved before jobs could fail reads as not failed.
        let mut old = serde_json::to_value(b.durable()).unwrap();
        old.as_object_mut().unwrap().remove("failed");
        let old: DurableState = serde_json::from_value(old).unwrap();
        assert_eq!(old.failed, None);
    }

    #[test]
    fn a_seal_redoes_the_done_chunks_a_shard_lacks_then_advances() {
        let mut b = complete_first_pass();
        let LeaseOutcome::Seal(s) = b.lease("a", 0).unwrap() else {
            panic!("expected the seal")
        };
        assert_eq!(
            b.lease("b", 0).unwrap(),
            LeaseOutcome::Wait,
            "one seal at a time"
        );
        // Shard 1 came back from a checkpoint without chunk 2.
        let (outcome, events) = b
            .report_seal(
                "a",
                s.pass,
                s.lease_id,
                2,
                |shard, c| shard == 0 || c != 2,
                0,
            )
            .unwrap();
        assert_eq!(outcome, SealOutcome::Redo(vec![2]));
        assert!(events.is_empty(), "nothing durable: a restart seals again");
        assert_eq!(b.pass(), 0);
        assert_eq!((b.history()[0].done, b.history()[0].redone), (2, 1));
        assert!(matches!(
            b.report_seal("a", s.pass, s.lease_id, 0, |_, _| true, 0),
            Err(BookError::StaleSeal { .. })
        ));
        let l = leased(b.lease("b", 0).unwrap());
        assert_eq!(l.chunk, 2, "the lacking chunk is leased again");
        b.complete("b", l.pass, l.chunk, l.lease_id, 0).unwrap();
        assert_eq!(seal(&mut b, "b", 0), vec![Event::PassAdvanced { pass: 1 }]);
        let t = &b.history()[0];
        assert_eq!((t.done, t.completions, t.redone), (3, 3, 1));
    }

    #[test]
    fn a_seal_whose_trainer_leaves_or_overruns_goes_to_the_next() {
        let mut b = complete_first_pass();
        assert!(matches!(b.lease("a", 0).unwrap(), LeaseOutcome::Seal(_)));
        b.deregister("a");
        let LeaseOutcome::Seal(first) = b.lease("b", 10).unwrap() else {
            panic!("the seal passes on")
        };
        b.reap(10 + config().lease_ms + 1);
        b.register("b", 2000).unwrap();
        let LeaseOutcome::Seal(second) = b.lease("b", 2000).unwrap() else {
            panic!("an overrun seal is leased again")
        };
        assert_ne!(first.lease_id, second.lease_id);
        // A master restarted mid-seal finds the pass complete and seals it again.
        let mut r = TaskBook::restore(config(), &b.durable(), 2);
        r.register("c", 0).unwrap();
        assert!(matches!(r.lease("c", 0).unwrap(), LeaseOutcome::Seal(_)));
    }
}
