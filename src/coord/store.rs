//! A pserver's share of the parameters: fixed-size blocks (block `b` lives on pserver
//! `b % pservers`, so one big tensor is spread over all of them) and the optimiser that
//! applies pushed gradients. Pure: `pserver.rs` adds RPC and checkpoints.

use super::applied::{AppliedChunks, ChunkKey};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayoutSpec {
    pub params: u64,
    pub block_size: u32,
    pub pservers: u32,
}

/// Above this a layout is a mistake, not a model (16 G parameters).
pub const MAX_PARAMS: u64 = 1 << 34;
/// A block travels as one message: 4 M floats (16 MiB) keeps every message bounded.
pub const MAX_BLOCK_SIZE: u32 = 1 << 22;

impl LayoutSpec {
    pub fn validate(&self) -> Result<(), String> {
        if self.params == 0 || self.params > MAX_PARAMS {
            return Err(format!(
                "layout.params must be in 1..={MAX_PARAMS}, got {}",
                self.params
            ));
        }
        if self.block_size == 0 || self.block_size > MAX_BLOCK_SIZE {
            return Err(format!(
                "layout.block_size must be in 1..={MAX_BLOCK_SIZE}, got {}",
                self.block_size
            ));
        }
        if self.pservers == 0 || self.pservers > 4096 {
            return Err(format!(
                "layout.pservers must be in 1..=4096, got {}",
                self.pservers
            ));
        }
        Ok(())
    }

    pub fn blocks(&self) -> u64 {
        self.params.div_ceil(u64::from(self.block_size))
    }

    pub fn block_len(&self, b: u64) -> usize {
        let start = b * u64::from(self.block_size);
        (self.params - start).min(u64::from(self.block_size)) as usize
    }

    pub fn owner(&self, b: u64) -> u32 {
        (b % u64::from(self.pservers)) as u32
    }

    pub fn owned_by(&self, index: u32) -> impl Iterator<Item = u64> + '_ {
        (u64::from(index)..self.blocks()).step_by(self.pservers as usize)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum OptimizerKind {
    SgdMomentum,
    Adam,
}

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OptimizerSpec {
    pub kind: OptimizerKind,
    pub learning_rate: f32,
    /// SGD momentum, or Adam's beta1.
    pub momentum: f32,
}

const ADAM_BETA2: f32 = 0.999;
const ADAM_EPS: f32 = 1e-8;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredBlock {
    pub index: u64,
    pub values: Vec<f32>,
    /// Momentum, or Adam's first moment.
    pub m: Vec<f32>,
    /// Adam's second moment (empty for SGD).
    pub v: Vec<f32>,
    /// Updates applied to this block (Adam's bias correction).
    pub steps: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Store {
    pub layout: LayoutSpec,
    pub index: u32,
    pub optimizer: OptimizerSpec,
    pub blocks: Vec<StoredBlock>,
    pub version: u64,
    /// The chunks whose gradients `version` includes.
    pub applied: AppliedChunks,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Layout(String),
    #[error("gradients[{position}]: block {block} is not held by this pserver")]
    NotMine { position: usize, block: u64 },
    #[error("gradients[{position}]: block {block} has {got} bytes, expected {want} ({} floats)", want / 4)]
    WrongLength {
        position: usize,
        block: u64,
        got: usize,
        want: usize,
    },
    #[error("gradients[{position}]: block {block} was already sent in this push")]
    Duplicate { position: usize, block: u64 },
    #[error("gradients[{position}]: block {block} holds a NaN or infinite value")]
    NotFinite { position: usize, block: u64 },
}

impl Store {
    pub fn init(
        layout: LayoutSpec,
        index: u32,
        optimizer: OptimizerSpec,
        seed: u64,
        init_scale: f32,
    ) -> Result<Store, StoreError> {
        layout.validate().map_err(StoreError::Layout)?;
        if index >= layout.pservers {
            return Err(StoreError::Layout(format!(
                "pserver_index {index} must be below layout.pservers {}",
                layout.pservers
            )));
        }
        if !(optimizer.learning_rate.is_finite() && optimizer.learning_rate > 0.0) {
            return Err(StoreError::Layout(
                "learning_rate must be a finite number > 0".into(),
            ));
        }
        if !(0.0..1.0).contains(&optimizer.momentum) {
            return Err(StoreError::Layout("momentum must be in [0, 1)".into()));
        }
        let adam = optimizer.kind == OptimizerKind::Adam;
        let blocks = layout
            .owned_by(index)
            .map(|b| {
                let len = layout.block_len(b);
                // Seeded per block: the same model whichever pserver holds the block.
                let mut rng = SmallRng::seed_from_u64(seed ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                StoredBlock {
                    index: b,
                    values: (0..len)
                        .map(|_| rng.random_range(-init_scale..=init_scale))
                        .collect(),
                    m: vec![0.0; len],
                    v: if adam { vec![0.0; len] } else { Vec::new() },
                    steps: 0,
                }
            })
            .collect();
        Ok(Store {
            layout,
            index,
            optimizer,
            blocks,
            version: 0,
            applied: AppliedChunks::default(),
        })
    }

    fn slot(&self, b: u64) -> Option<usize> {
        if self.layout.owner(b) != self.index || b >= self.layout.blocks() {
            return None;
        }
        Some(((b - u64::from(self.index)) / u64::from(self.layout.pservers)) as usize)
    }

    /// Where the gradient for `block` goes, once it is known to be whole, finite and
    /// this pserver's: checked as each block arrives, so garbage is refused before the
    /// rest of the push is read and the write lock is only held for the arithmetic.
    pub fn check_gradient(
        &self,
        position: usize,
        block: u64,
        le_bytes: &[u8],
    ) -> Result<usize, StoreError> {
        let slot = self
            .slot(block)
            .ok_or(StoreError::NotMine { position, block })?;
        let want = self.blocks[slot].values.len() * 4;
        let floats = super::floats::le_floats(le_bytes)
            .filter(|f| f.len() * 4 == want)
            .ok_or(StoreError::WrongLength {
                position,
                block,
                got: le_bytes.len(),
                want,
            })?;
        if floats.into_iter().any(|x| !x.is_finite()) {
            return Err(StoreError::NotFinite { position, block });
        }
        Ok(slot)
    }

    /// Applies one gradient (little-endian f32 bytes) per listed block; checks all of
    /// them first, so a bad push changes nothing.
    pub fn apply<G: AsRef<[u8]>>(&mut self, gradients: &[(u64, G)]) -> Result<u64, StoreError> {
        let mut checked = Vec::with_capacity(gradients.len());
        let mut seen = std::collections::HashSet::with_capacity(gradients.len());
        for (position, (block, g)) in gradients.iter().enumerate() {
            if !seen.insert(*block) {
                return Err(StoreError::Duplicate {
                    position,
                    block: *block,
                });
            }
            checked.push((
                self.check_gradient(position, *block, g.as_ref())?,
                g.as_ref(),
            ));
        }
        Ok(self.apply_checked(&checked))
    }

    /// Applies the gradient of chunk `key` (blocks passed through `check_gradient`) unless
    /// this shard already has; returns the version and whether it applied.
    pub fn apply_chunk(&mut self, key: ChunkKey, gradients: &[(usize, &[u8])]) -> (u64, bool) {
        if !self.applied.is_new(key) {
            self.applied.count_duplicate(key);
            return (self.version, false);
        }
        let version = self.apply_checked(gradients);
        self.applied.record(key);
        (version, true)
    }

    /// Applies gradients already passed through `check_gradient`, as one version.
    pub fn apply_checked(&mut self, gradients: &[(usize, &[u8])]) -> u64 {
        let opt = self.optimizer;
        for &(slot, g) in gradients {
            let b = &mut self.blocks[slot];
            b.steps += 1;
            let g = g
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            match opt.kind {
                OptimizerKind::SgdMomentum => {
                    for ((w, m), g) in b.values.iter_mut().zip(&mut b.m).zip(g) {
                        *m = opt.momentum * *m + g;
                        *w -= opt.learning_rate * *m;
                    }
                }
                OptimizerKind::Adam => {
                    let t = b.steps as i32;
                    let c1 = 1.0 - opt.momentum.powi(t);
                    let c2 = 1.0 - ADAM_BETA2.powi(t);
                    for (((w, m), v), g) in b.values.iter_mut().zip(&mut b.m).zip(&mut b.v).zip(g) {
                        *m = opt.momentum * *m + (1.0 - opt.momentum) * g;
                        *v = ADAM_BETA2 * *v + (1.0 - ADAM_BETA2) * g * g;
                        *w -= opt.learning_rate * (*m / c1) / ((*v / c2).sqrt() + ADAM_EPS);
                    }
                }
            }
        }
        self.version += 1;
        self.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coord::floats::to_le_bytes as le;

    fn layout() -> LayoutSpec {
        LayoutSpec {
            params: 10,
            block_size: 3,
            pservers: 2,
        }
    }
    fn sgd() -> OptimizerSpec {
        OptimizerSpec {
            kind: OptimizerKind::SgdMomentum,
            learning_rate: 0.5,
            momentum: 0.0,
        }
    }

    #[test]
    fn blocks_spread_round_robin_and_cover_every_parameter() {
        let l = layout();
        let a = Store::init(l, 0, sgd(), 1, 0.1).unwrap();
        let b = Store::init(l, 1, sgd(), 1, 0.1).unwrap();
        let idx = |s: &Store| s.blocks.iter().map(|b| b.index).collect::<Vec<_>>();
        assert_eq!(idx(&a), vec![0, 2]);
        assert_eq!(idx(&b), vec![1, 3]);
        let total: usize = a
            .blocks
            .iter()
            .chain(&b.blocks)
            .map(|b| b.values.len())
            .sum();
        assert_eq!(total, 10);
        assert_eq!(b.blocks[1].values.len(), 1, "last block is short");
        // Same seed, same values, whichever pserver holds the block.
        let single = Store::init(LayoutSpec { pservers: 1, ..l }, 0, sgd(), 1, 0.1).unwrap();
        assert_eq!(single.blocks[2].values, a.blocks[1].values);
    }

    #[test]
    fn sgd_and_adam_step_downhill_and_bad_pushes_change_nothing() {
        let mut s = Store::init(layout(), 0, sgd(), 1, 0.0).unwrap();
        s.apply(&[(0, le(&[1.0, -1.0, 0.0]))]).unwrap();
        assert_eq!(s.blocks[0].values, vec![-0.5, 0.5, 0.0]);
        let before = s.clone();
        assert_eq!(
            s.apply(&[(0, le(&[1.0; 3])), (1, le(&[1.0; 3]))]),
            Err(StoreError::NotMine {
                position: 1,
                block: 1
            })
        );
        assert!(matches!(
            s.apply(&[(2, le(&[1.0; 2]))]),
            Err(StoreError::WrongLength { .. })
        ));
        assert!(matches!(
            s.apply(&[(2, le(&[f32::NAN; 3]))]),
            Err(StoreError::NotFinite { .. })
        ));
        assert_eq!(
            s.apply(&[(0, le(&[1.0; 3])), (0, le(&[1.0; 3]))]),
            Err(StoreError::Duplicate {
                position: 1,
                block: 0
            })
        );
        assert!(matches!(
            s.apply(&[(0, [0u8; 11])]),
            Err(StoreError::WrongLength {
                got: 11,
                want: 12,
                ..
            })
        ));
        assert_eq!(s, before);
        let adam = OptimizerSpec {
            kind: OptimizerKind::Adam,
            learning_rate: 0.1,
            momentum: 0.9,
        };
        let mut a = Store::init(layout(), 0, adam, 1, 0.0).unwrap();
        a.apply(&[(0, le(&[2.0, -2.0, 0.0]))]).unwrap();
        // Adam's first step moves each parameter by about the learning rate.
        assert!(
            (a.blocks[0].values[0] + 0.1).abs() < 1e-4,
            "{:?}",
            a.blocks[0].values
        );
        assert!((a.blocks[0].values[1] - 0.1).abs() < 1e-4);
    }

    #[test]
    fn absurd_layouts_are_rejected_by_field() {
        let e = Store::init(
            LayoutSpec {
                block_size: 0,
                ..layout()
            },
            0,
            sgd(),
            1,
            0.1,
        )
        .unwrap_err();
        assert!(e.to_string().contains("block_size"));
        let e = Store::init(
            LayoutSpec {
                block_size: MAX_BLOCK_SIZE + 1,
                ..layout()
            },
            0,
            sgd(),
            1,
            0.1,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("layout.block_size must be in 1..=4194304"),
            "{e}"
        );
        let e = Store::init(layout(), 5, sgd(), 1, 0.1).unwrap_err();
        assert!(e.to_string().contains("pserver_index"));
        let e = Store::init(
            LayoutSpec {
                params: u64::MAX,
                ..layout()
            },
            0,
            sgd(),
            1,
            0.1,
        )
        .unwrap_err();
        assert!(e.to_string().contains("layout.params"));
    }
}
