//! Queue limits as packing goes: what each queue and its ancestors hold against them.

use super::Packer;
use crate::model::Resources;
use crate::plan::admission::queue_path;

/// What each queue (and its ancestors) holds against its limit, as packing goes.
pub(super) struct QueueLimits {
    /// Per queue; empty when no queue has a limit (then nothing is counted).
    used: Vec<Resources>,
}

impl QueueLimits {
    pub(super) fn new(p: &Packer) -> Self {
        if p.view.queues.iter().all(|q| q.limit.is_none()) {
            return QueueLimits { used: Vec::new() };
        }
        let mut used = vec![Resources::ZERO; p.view.queues.len()];
        for (j, jp) in p.jobs.iter().enumerate() {
            if jp.admitted {
                let job = p.view.jobs[j].job;
                let held = job
                    .overhead()
                    .add(&job.trainers.resources.times(i64::from(jp.trainers())));
                for &q in queue_path(p.view, p.view.jobs[j].queue) {
                    used[q] = used[q].add(&held);
                }
            }
        }
        QueueLimits { used }
    }

    /// How many more trainers of job `j` its queues' limits allow.
    pub(super) fn copies_allowed(&self, p: &Packer, j: usize) -> u64 {
        if self.used.is_empty() {
            return u64::MAX;
        }
        let res = p.trainer_res(j);
        queue_path(p.view, p.view.jobs[j].queue)
            .iter()
            .filter_map(|&q| {
                let limit = p.view.queues[q].limit?;
                Some(res.copies_in(&limit.sub(&self.used[q])))
            })
            .min()
            .unwrap_or(u64::MAX)
    }

    pub(super) fn add(&mut self, p: &Packer, j: usize, count: u32) {
        if self.used.is_empty() {
            return;
        }
        let res = p.trainer_res(j).times(i64::from(count));
        for &q in queue_path(p.view, p.view.jobs[j].queue) {
            self.used[q] = self.used[q].add(&res);
        }
    }
}
