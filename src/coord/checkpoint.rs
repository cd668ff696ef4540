//! Pserver checkpoints: `EBBCKPT1`, a JSON header, the blocks as little-endian f32, and
//! a CRC32 of everything before it. Written to a temporary file, fsynced, then the
//! current checkpoint becomes `.prev` and the new one takes its name, so a crash at any
//! point leaves at least one complete file. A truncated or corrupt file is rejected
//! with the reason, and the previous one is tried.

use super::applied::AppliedChunks;
use super::error::CoordError;
use super::store::{LayoutSpec, OptimizerSpec, Store, StoredBlock};
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"EBBCKPT1";
/// A header is a few hundred bytes; more means the length field is garbage.
const MAX_HEADER: usize = 1 << 20;

#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    layout: LayoutSpec,
    index: u32,
    optimizer: OptimizerSpec,
    version: u64,
    /// (block index, values, has second moment, steps)
    blocks: Vec<(u64, u32, bool, u64)>,
    /// The chunks the parameters include (absent in checkpoints from before pushes
    /// named their chunk).
    #[serde(default)]
    applied: AppliedChunks,
}

pub fn path_for(dir: &Path, index: u32) -> PathBuf {
    dir.join(format!("pserver-{index}.ckpt"))
}

fn prev_of(path: &Path) -> PathBuf {
    path.with_extension("ckpt.prev")
}

pub fn encode(store: &Store) -> Result<Vec<u8>, String> {
    let header = Header {
        layout: store.layout,
        index: store.index,
        optimizer: store.optimizer,
        version: store.version,
        blocks: store
            .blocks
            .iter()
            .map(|b| (b.index, b.values.len() as u32, !b.v.is_empty(), b.steps))
            .collect(),
        applied: store.applied.clone(),
    };
    let header = serde_json::to_vec(&header).map_err(|e| format!("header: {e}"))?;
    let floats: usize = store
        .blocks
        .iter()
        .map(|b| b.values.len() * if b.v.is_empty() { 2 } else { 3 })
        .sum();
    let mut out = Vec::with_capacity(16 + header.len() + floats * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    for b in &store.blocks {
        for part in [&b.values, &b.m, &b.v] {
            for x in part.iter() {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

pub fn decode(bytes: &[u8]) -> Result<Store, String> {
    if bytes.len() < MAGIC.len() + 8 {
        return Err(format!("truncated: {} bytes", bytes.len()));
    }
    if &bytes[..8] != MAGIC {
        return Err("not an ebb checkpoint (bad magic)".into());
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let want = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(body) != want {
        return Err("checksum mismatch: truncated or corrupt".into());
    }
    let hlen = u32::from_le_bytes([body[8], body[9], body[10], body[11]]) as usize;
    if hlen > MAX_HEADER || 12 + hlen > body.len() {
        return Err(format!("header length {hlen} does not fit the file"));
    }
    let header: Header =
        serde_json::from_slice(&body[12..12 + hlen]).map_err(|e| format!("header: {e}"))?;
    let mut rest = &body[12 + hlen..];
    let mut take = |n: usize| -> Result<Vec<f32>, String> {
        if rest.len() < n * 4 {
            return Err("payload shorter than the header says".into());
        }
        let (now, later) = rest.split_at(n * 4);
        rest = later;
        Ok(now
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    };
    let mut blocks = Vec::with_capacity(header.blocks.len());
    for &(index, len, adam, steps) in &header.blocks {
        let values = take(len as usize)?;
        let m = take(len as usize)?;
        let v = if adam {
            take(len as usize)?
        } else {
            Vec::new()
        };
        blocks.push(StoredBlock {
            index,
            values,
            m,
            v,
            steps,
        });
    }
    if !rest.is_empty() {
        return Err("payload longer than the header says".into());
    }
    Ok(Store {
        layout: header.layout,
        index: header.index,
        optimizer: header.optimizer,
        blocks,
        version: header.version,
        applied: header.applied,
    })
}

pub fn save(store: &Store, path: &Path) -> Result<(), CoordError> {
    let bytes = encode(store).map_err(|message| CoordError::Checkpoint {
        path: path.to_path_buf(),
        message,
    })?;
    save_encoded(&bytes, path)
}

/// Writes an [`encode`]d checkpoint: the pserver encodes under its lock (one copy of
/// the parameters) and writes outside it.
pub fn save_encoded(bytes: &[u8], path: &Path) -> Result<(), CoordError> {
    let tmp = path.with_extension("ckpt.tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(|e| CoordError::io(&tmp, e))?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| CoordError::io(&tmp, e))?;
    }
    if path.exists() {
        std::fs::rename(path, prev_of(path)).map_err(|e| CoordError::io(path, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| CoordError::io(path, e))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| CoordError::io(dir, e))?;
    }
    Ok(())
}

/// The newest good checkpoint: the current file, else `.prev`. `Ok(None)` when there is
/// none at all; the errors of bad files are returned alongside for the log.
pub fn load(path: &Path) -> (Option<(Store, PathBuf)>, Vec<CoordError>) {
    let mut problems = Vec::new();
    for candidate in [path.to_path_buf(), prev_of(path)] {
        match std::fs::read(&candidate) {
            Ok(bytes) => match decode(&bytes) {
                Ok(store) => return (Some((store, candidate)), problems),
                Err(message) => problems.push(CoordError::Checkpoint {
                    path: candidate,
                    message,
                }),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => problems.push(CoordError::io(&candidate, e)),
        }
    }
    (None, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coord::applied::ChunkKey;
    use crate::coord::store::OptimizerKind;

    fn store(kind: OptimizerKind) -> Store {
        let mut s = Store::init(
            LayoutSpec {
                params: 1000,
                block_size: 64,
                pservers: 3,
            },
            1,
            OptimizerSpec {
                kind,
                learning_rate: 0.1,
                momentum: 0.9,
            },
            7,
            0.5,
        )
        .unwrap();
        let grads: Vec<(u64, bytes::Bytes)> = s
            .blocks
            .iter()
            .map(|b| {
                (
                    b.index,
                    crate::coord::floats::to_le_bytes(&vec![0.25; b.values.len()]),
                )
            })
            .collect();
        s.apply(&grads).unwrap();
        let checked: Vec<(usize, &[u8])> = grads
            .iter()
            .map(|(b, g)| (s.check_gradient(0, *b, g).unwrap(), &g[..]))
            .collect();
        let key = ChunkKey { pass: 4, chunk: 9 };
        assert!(s.apply_chunk(key, &checked).1);
        let version = s.version;
        assert_eq!(
            s.apply_chunk(key, &checked),
            (version, false),
            "applied once"
        );
        s
    }

    #[test]
    fn round_trips_both_optimisers() {
        for kind in [OptimizerKind::SgdMomentum, OptimizerKind::Adam] {
            let s = store(kind);
            let back = decode(&encode(&s).unwrap()).unwrap();
            assert_eq!(back, s);
            assert!(
                !back.applied.is_new(ChunkKey { pass: 4, chunk: 9 }),
                "the applied record travels with the parameters"
            );
        }
    }

    #[test]
    fn truncated_or_flipped_files_are_rejected_and_prev_is_used() {
        let scratch = tempfile::Builder::new()
            .prefix("ebb-ckpt-")
            .tempdir()
            .unwrap();
        let dir = scratch.path();
        let path = path_for(dir, 1);
        let mut first = store(OptimizerKind::SgdMomentum);
        save(&first, &path).unwrap();
        let first_version = first.version;
        first.version = 99;
        save(&first, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        for bad in [&bytes[..bytes.len() / 2], &bytes[..5]] {
            assert!(decode(bad).is_err());
        }
        let mut flipped = bytes.clone();
        flipped[40] ^= 1;
        assert!(decode(&flipped).unwrap_err().contains("checksum"));
        std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
        let (got, problems) = load(&path);
        let (s, from) = got.expect("falls back to .prev");
        assert_eq!(s.version, first_version);
        assert!(from.to_string_lossy().ends_with(".prev"));
        assert!(
            problems[0].to_string().contains("checksum"),
            "{}",
            problems[0]
        );
    }
}
