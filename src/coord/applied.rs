//! Which chunks' gradients a pserver shard has applied, per pass: the record that makes
//! a gradient's effect happen at most once per shard. A push names the chunk it came
//! from; a second push for the same (pass, chunk) — a trainer retrying, or the chunk
//! leased again after its completion was lost or refused — is counted and dropped.
//! Kept in the shard's checkpoint with the parameters (under the same CRC), so a
//! restored shard's record matches its parameters.

use std::collections::{BTreeMap, BTreeSet};

/// A chunk of one pass, as a push names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChunkKey {
    pub pass: u32,
    pub chunk: u32,
}

/// One pass's record.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PassApplied {
    pub chunks: BTreeSet<u32>,
    /// Pushes for a chunk already applied, dropped.
    pub duplicates: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppliedChunks {
    passes: BTreeMap<u32, PassApplied>,
}

impl AppliedChunks {
    /// Whether `key`'s gradient is still to be applied here.
    pub fn is_new(&self, key: ChunkKey) -> bool {
        !self
            .passes
            .get(&key.pass)
            .is_some_and(|p| p.chunks.contains(&key.chunk))
    }

    /// Records `key` as applied.
    pub fn record(&mut self, key: ChunkKey) {
        self.passes
            .entry(key.pass)
            .or_default()
            .chunks
            .insert(key.chunk);
    }

    /// Counts a dropped push for `key`.
    pub fn count_duplicate(&mut self, key: ChunkKey) {
        self.passes.entry(key.pass).or_default().duplicates += 1;
    }

    /// (pass, its record), in pass order.
    pub fn passes(&self) -> impl Iterator<Item = (u32, &PassApplied)> {
        self.passes.iter().map(|(&p, a)| (p, a))
    }

    pub fn pass(&self, pass: u32) -> Option<&PassApplied> {
        self.passes.get(&pass)
    }

    /// The pass's applied chunks as a bitmap: bit `c % 8` of byte `c / 8`.
    pub fn bitmap(&self, pass: u32) -> Vec<u8> {
        let Some(p) = self.passes.get(&pass) else {
            return Vec::new();
        };
        let len = p.chunks.last().map_or(0, |&c| c as usize / 8 + 1);
        let mut bits = vec![0u8; len];
        for &c in &p.chunks {
            bits[c as usize / 8] |= 1 << (c % 8);
        }
        bits
    }
}

/// Whether `bitmap` (see [`AppliedChunks::bitmap`]) holds chunk `c`.
pub fn bit(bitmap: &[u8], c: u32) -> bool {
    bitmap
        .get(c as usize / 8)
        .is_some_and(|byte| byte >> (c % 8) & 1 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_is_new_once_per_pass() {
        let mut a = AppliedChunks::default();
        let k = ChunkKey { pass: 2, chunk: 7 };
        assert!(a.is_new(k));
        a.record(k);
        assert!(!a.is_new(k));
        a.count_duplicate(k);
        assert!(a.is_new(ChunkKey { pass: 3, chunk: 7 }), "another pass");
        assert!(a.is_new(ChunkKey { pass: 2, chunk: 8 }));
        let p = a.pass(2).unwrap();
        assert_eq!((p.chunks.len(), p.duplicates), (1, 1));
        let back: AppliedChunks =
            serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back, a);
    }
}
