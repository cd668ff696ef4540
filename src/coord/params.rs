//! The trainer's side of the parameter traffic: a model vector cut into blocks and
//! streamed to the pservers that own them, and the pulled blocks put back together.
//! Shared by `ebb trainer` and `ebb bench coord`, so the benchmark times what a trainer does.

use super::floats;
use super::proto::pserver_client::PserverClient;
use super::proto::{Block, ChunkId, PullRequest, PushReply, PushRequest};
use tonic::Status;
use tonic::transport::Channel;

/// One pserver's blocks, all of one version.
#[derive(Debug, Default)]
pub struct PulledShard {
    pub version: u64,
    pub blocks: Vec<Block>,
}

pub async fn pull_shard(p: &mut PserverClient<Channel>) -> Result<PulledShard, Status> {
    let mut stream = p.pull(PullRequest {}).await?.into_inner();
    let mut shard = PulledShard::default();
    let mut first = true;
    while let Some(reply) = stream.message().await? {
        if !first && reply.version != shard.version {
            return Err(Status::internal(format!(
                "pull mixed versions {} and {}",
                shard.version, reply.version
            )));
        }
        first = false;
        shard.version = reply.version;
        shard.blocks.extend(reply.blocks);
    }
    Ok(shard)
}

/// Streams `blocks` (the gradient of `chunk`) a block a message; the pserver applies
/// them together at the end, unless it has already applied that chunk's.
pub async fn push_shard(
    p: &mut PserverClient<Channel>,
    chunk: ChunkId,
    blocks: Vec<Block>,
) -> Result<PushReply, Status> {
    Ok(p.push(futures::stream::iter(push_messages(chunk, blocks)))
        .await?
        .into_inner())
}

/// One block a message, the final one marked `last` and naming the chunk (an empty push
/// is one empty, last message) so the pserver can tell a finished push from one cut off.
pub fn push_messages(chunk: ChunkId, blocks: Vec<Block>) -> Vec<PushRequest> {
    let mut messages: Vec<PushRequest> = blocks
        .into_iter()
        .map(|b| PushRequest {
            gradients: vec![b],
            last: false,
            chunk: None,
        })
        .collect();
    match messages.last_mut() {
        Some(final_message) => {
            final_message.last = true;
            final_message.chunk = Some(chunk);
        }
        None => messages.push(PushRequest {
            gradients: Vec::new(),
            last: true,
            chunk: Some(chunk),
        }),
    }
    messages
}

/// `values` cut into blocks of `block_size`, dealt to `pservers` (block b to b % pservers).
pub fn split_blocks(values: &[f32], block_size: usize, pservers: usize) -> Vec<Vec<Block>> {
    let mut per: Vec<Vec<Block>> = vec![Vec::new(); pservers];
    for (b, chunk) in values.chunks(block_size.max(1)).enumerate() {
        per[b % pservers.max(1)].push(Block {
            index: b as u64,
            values: floats::to_le_bytes(chunk),
        });
    }
    per
}

/// Puts pulled blocks back into one model vector, refusing blocks that do not fit,
/// come twice, or never come.
pub struct Assembler {
    values: Vec<f32>,
    block_size: usize,
    filled: Vec<bool>,
}

impl Assembler {
    pub fn new(params: usize, block_size: usize) -> Assembler {
        Assembler::reusing(vec![0.0; params], block_size)
    }

    /// Fills `model` in place (its length is the model's): a trainer with a big model
    /// keeps one buffer instead of faulting in a fresh one every pull.
    pub fn reusing(model: Vec<f32>, block_size: usize) -> Assembler {
        let block_size = block_size.max(1);
        Assembler {
            filled: vec![false; model.len().div_ceil(block_size)],
            values: model,
            block_size,
        }
    }

    pub fn add(&mut self, block: &Block) -> Result<(), String> {
        let b = usize::try_from(block.index)
            .ok()
            .filter(|b| *b < self.filled.len())
            .ok_or_else(|| format!("block {} that does not fit the model", block.index))?;
        if std::mem::replace(&mut self.filled[b], true) {
            return Err(format!("block {b} twice"));
        }
        let start = b * self.block_size;
        let end = (start + self.block_size).min(self.values.len());
        if !floats::read_le_into(&block.values, &mut self.values[start..end]) {
            return Err(format!(
                "block {b} of {} bytes, expected {}",
                block.values.len(),
                (end - start) * 4
            ));
        }
        Ok(())
    }

    /// The model, once every block has come.
    pub fn finish(self) -> Result<Vec<f32>, String> {
        match self.filled.iter().position(|f| !f) {
            Some(b) => Err(format!("no block {b}")),
            None => Ok(self.values),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_final_push_message_is_marked_last() {
        let blocks = split_blocks(&[1.0; 10], 3, 1).remove(0);
        let chunk = ChunkId {
            pass: 1,
            chunk: 2,
            lease_id: 3,
        };
        let messages = push_messages(chunk, blocks);
        assert_eq!(
            messages.iter().map(|m| m.last).collect::<Vec<_>>(),
            vec![false, false, false, true]
        );
        assert!(messages.iter().all(|m| m.gradients.len() == 1));
        assert_eq!(
            messages.iter().map(|m| m.chunk).collect::<Vec<_>>(),
            vec![None, None, None, Some(chunk)],
            "the last message names the chunk"
        );
        let empty = push_messages(chunk, Vec::new());
        assert_eq!(empty.len(), 1, "an empty push still says it is finished");
        assert!(empty[0].last && empty[0].gradients.is_empty() && empty[0].chunk == Some(chunk));
    }

    #[test]
    fn split_then_assemble_round_trips_and_refuses_bad_blocks() {
        let model: Vec<f32> = (0..10).map(|i| i as f32 * 0.5).collect();
        let per = split_blocks(&model, 3, 2);
        assert_eq!(
            per.iter()
                .map(|p| p.iter().map(|b| b.index).collect::<Vec<_>>())
                .collect::<Vec<_>>(),
            vec![vec![0, 2], vec![1, 3]]
        );
        let mut a = Assembler::new(10, 3);
        for b in per.iter().flatten() {
            a.add(b).unwrap();
        }
        assert_eq!(a.finish().unwrap(), model);

        let mut a = Assembler::new(10, 3);
        a.add(&per[0][0]).unwrap();
        assert!(a.add(&per[0][0]).unwrap_err().contains("twice"));
        let wrong = Block {
            index: 3,
            values: floats::to_le_bytes(&[1.0, 2.0]),
        };
        assert!(a.add(&wrong).unwrap_err().contains("block 3 of 8 bytes"));
        let far = Block {
            index: u64::MAX,
            values: Default::default(),
        };
        assert!(a.add(&far).unwrap_err().contains("does not fit"));
        assert_eq!(a.finish().unwrap_err(), "no block 1");
    }
}
