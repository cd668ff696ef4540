//! The end of a pass. Once every chunk is done or given up, one trainer at a time is
//! leased the pass's seal: it asks every pserver shard to checkpoint now and to say
//! which of the pass's chunks that checkpoint holds, and reports the answers. A done
//! chunk some shard lacks (the shard was killed and restored an older checkpoint) is
//! leased again: the shards that hold it drop the second push, the one that lacks it
//! applies it. Only when every shard durably holds every done chunk does the next pass
//! begin, so a shard's crash can cost only chunks of the pass in progress, and those
//! are done again before the pass ends.
//!
//! Sealing is not journaled: a master restarted mid-seal finds the pass complete and
//! seals it again.

use super::{BookError, ChunkState, Event, TaskBook};

/// A pass's seal, leased to one trainer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealLease {
    pub pass: u32,
    pub lease_id: u64,
    pub deadline_ms: u64,
}

/// What a seal report did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SealOutcome {
    /// Every shard holds every done chunk: the next pass began (or the job finished).
    Sealed,
    /// These done chunks were missing on some shard and are to be done again.
    Redo(Vec<u32>),
}

impl TaskBook {
    /// With nothing left to lease: the seal, if the pass is complete and nobody holds
    /// it; otherwise wait.
    pub(super) fn lease_seal(&mut self, trainer: &str, now: u64) -> super::LeaseOutcome {
        if !self.pending.is_empty() || self.seal.is_some() {
            return super::LeaseOutcome::Wait;
        }
        let lease = self.new_lease(trainer, now);
        let seal = SealLease {
            pass: self.pass,
            lease_id: lease.lease_id,
            deadline_ms: lease.deadline_ms,
        };
        self.seal = Some(lease);
        super::LeaseOutcome::Seal(seal)
    }

    /// A trainer's report on its seal: per shard, whether it holds each chunk
    /// (`holds(shard, chunk)`, for `shards` shards). A job without pservers reports none.
    pub fn report_seal(
        &mut self,
        trainer: &str,
        pass: u32,
        lease_id: u64,
        shards: usize,
        holds: impl Fn(usize, u32) -> bool,
        now: u64,
    ) -> Result<(SealOutcome, Vec<Event>), BookError> {
        self.touch(trainer, now)?;
        let live = pass == self.pass
            && !self.finished
            && self
                .seal
                .as_ref()
                .is_some_and(|s| s.lease_id == lease_id && s.trainer == trainer);
        if !live {
            return Err(BookError::StaleSeal { pass, lease_id });
        }
        self.seal = None;
        let lacking: Vec<u32> = (0..self.chunks)
            .filter(|&c| self.state[c as usize] == ChunkState::Done)
            .filter(|&c| (0..shards).any(|s| !holds(s, c)))
            .collect();
        if lacking.is_empty() {
            return Ok((SealOutcome::Sealed, self.advance()));
        }
        let totals = &mut self.history[pass as usize];
        for &c in &lacking {
            self.state[c as usize] = ChunkState::Todo;
            self.todo.push_back(c);
            totals.done -= 1;
            totals.completions -= 1;
            totals.redone += 1;
        }
        Ok((SealOutcome::Redo(lacking), Vec::new()))
    }

    /// A seal whose trainer left or went silent goes to the next trainer that asks.
    pub(super) fn drop_seal_of(&mut self, trainer: &str) {
        if self.seal.as_ref().is_some_and(|s| s.trainer == trainer) {
            self.seal = None;
        }
    }

    pub(super) fn expire_seal(&mut self, now: u64) {
        if self.seal.as_ref().is_some_and(|s| now > s.deadline_ms) {
            self.seal = None;
        }
    }
}
