//! Room for a pod that fits nowhere: the node where evicting the fewest trainers (scale-
//! down victims first, then trainers above their job's minimum) makes room, and the
//! pending services that come first to it.

use super::{EvictionCost, Packer, Tier, Victim, VictimScratch};
use crate::model::{DeleteReason, Resources, ServiceReservation};
use crate::plan::index::room_memo::Bound;

impl Packer<'_, '_> {
    /// Whether one more trainer of job `j` may go, `taken` being already earmarked.
    fn evictable_tier(&self, j: usize, taken: u32) -> Option<Tier> {
        let jp = &self.jobs[j];
        if !jp.admitted {
            return None;
        }
        if taken < jp.quota {
            return Some(Tier::Quota);
        }
        let forced_so_far = taken - jp.quota;
        let holds_after = jp.trainers().saturating_sub(taken);
        let target_after = jp.target.saturating_sub(forced_so_far);
        (holds_after > jp.min && target_after > jp.min).then_some(Tier::AboveMin)
    }

    /// Find the node where evicting the fewest trainers (scale-down victims first, then
    /// trainers above their job's minimum) makes room for `res`, and evict them.
    /// With `allowed`, only among the nodes it marks (the pod's placement constraints).
    pub(super) fn make_room(
        &mut self,
        res: &Resources,
        for_job: Option<usize>,
        allowed: Option<&[bool]>,
        reason: &DeleteReason,
    ) -> Option<usize> {
        self.catch_up_room_memo(for_job);
        self.room_memo.start_search(res, self.nodes.len());
        let mut best: Option<(EvictionCost, Vec<Victim>)> = None;
        let mut scratch = VictimScratch::default();
        // Only nodes holding trainers of shrinking jobs can offer scale-down victims;
        // on any other node every victim is above its job's minimum, so its cost is at
        // least (1, CPU-on-GPU, 1, n) unless the pod fits as it is. Such a node is only
        // looked into when that bound beats the best found so far: in a full cluster
        // the first node freed by one eviction ends the scan of all the rest.
        let mut quota_nodes = Vec::new();
        for &j in &self.shrinking {
            let jp = &self.jobs[j];
            if jp.admitted && jp.quota > 0 {
                quota_nodes.extend_from_slice(&self.view.jobs[j].trainer_nodes);
            }
        }
        quota_nodes.sort_unstable();
        quota_nodes.dedup();
        // Where the pod fits nowhere as it is, every node without quota costs at least
        // (1, 0, 1, n): once the best costs no more than that, only nodes with quota
        // are worth a look.
        let fits_nowhere = self.nodes.best_fit(res, 1, allowed).is_none();
        // Nodes in index order, only GPU nodes for a GPU pod; once only nodes with quota
        // are worth a look, the scan jumps from one to the next (on a large cluster it
        // walked every node for each pod that needed room, and the calls grow with the
        // jobs: quadratic). `next_quota` is the first node with quota from `n` on.
        let gpu_nodes = (res.gpus > 0).then(|| std::mem::take(self.gpu_nodes()));
        let candidates = gpu_nodes.as_ref().map_or(self.nodes.len(), Vec::len);
        let node_at = |i: usize| gpu_nodes.as_ref().map_or(i, |g| g[i]);
        // Where the pod fits nowhere, a first pass passes over the nodes known to need
        // more than one eviction above a minimum: if it finds a node where one is
        // enough, none of those could beat it. Else a second pass looks at them too.
        let mut skip_passed = fits_nowhere;
        loop {
            let mut next = 0;
            let mut next_quota = 0;
            let mut quota_nodes_only = false;
            while next < candidates {
                let n = node_at(next);
                while quota_nodes.get(next_quota).is_some_and(|&q| q < n) {
                    next_quota += 1;
                }
                let quota_here = quota_nodes.get(next_quota) == Some(&n);
                if quota_nodes_only && !quota_here {
                    let Some(&q) = quota_nodes.get(next_quota) else {
                        break;
                    };
                    next = gpu_nodes
                        .as_ref()
                        .map_or(q, |g| g.partition_point(|&m| m < q));
                    continue;
                }
                next += 1;
                if skip_passed && !quota_here && self.room_memo.passed(n) {
                    continue;
                }
                if !self.nodes.schedulable[n]
                    || !res.fits_in(&self.nodes.allocatable[n])
                    || allowed.is_some_and(|a| !a[n])
                {
                    continue;
                }
                if !quota_here && let Some((best_cost, _)) = &best {
                    let cpu_on_gpu = u8::from(res.gpus == 0 && self.nodes.has_gpus[n]);
                    let evictions = usize::from(!res.fits_in(self.nodes.free(n)));
                    if (evictions, cpu_on_gpu, evictions, n) >= *best_cost {
                        continue;
                    }
                }
                let free = *self.nodes.free(n);
                let known = self.room_memo.bound(n, res, &free, quota_here);
                let beaten = |b: &Bound| match *b {
                    Bound::Never => true,
                    Bound::AtLeast(above_min, cpu_on_gpu, evictions) => {
                        best.as_ref().is_some_and(|(best_cost, _)| {
                            (above_min, cpu_on_gpu, evictions, n) >= *best_cost
                        })
                    }
                };
                if let Some(bound) = known
                    && beaten(&bound)
                {
                    if !quota_here {
                        self.room_memo.mark_if_passed(n, bound);
                    }
                    continue;
                }
                let weighed = self.victims_on(
                    n,
                    res,
                    for_job,
                    quota_here,
                    best.as_ref().map(|b| b.0),
                    &mut scratch,
                );
                let bound = match weighed {
                    Ok((above_min, cpu_on_gpu, evictions, _)) => {
                        Bound::AtLeast(above_min, cpu_on_gpu, evictions)
                    }
                    Err(bound) => bound,
                };
                let nodes = self.nodes.len();
                self.room_memo
                    .remember(n, nodes, *res, free, quota_here, bound);
                if !quota_here {
                    self.room_memo.mark_if_passed(n, bound);
                }
                let Ok(cost) = weighed else {
                    continue;
                };
                if best.as_ref().is_none_or(|(c, _)| cost < *c) {
                    let (above_min, cpu_on_gpu, evictions, _) = cost;
                    let perfect = above_min == 0 && cpu_on_gpu == 0 && evictions <= 1;
                    best = Some((cost, scratch.cands.clone()));
                    if perfect {
                        break; // nothing later can cost less
                    }
                    quota_nodes_only = fits_nowhere && cost <= (1, 0, 1, usize::MAX);
                }
            }
            let settled = best
                .as_ref()
                .is_some_and(|(c, _)| c <= &(1, 0, 1, usize::MAX));
            if !skip_passed || settled {
                break;
            }
            skip_passed = false;
        }
        if let Some(g) = gpu_nodes {
            self.gpu_nodes = Some(g);
        }
        let (cost, victims) = best?;
        let node = cost.3;
        for (j, pod, tier) in victims {
            self.evict(j, pod, node, tier, reason.clone());
        }
        Some(node)
    }

    /// The trainers to evict from node `n` for `res`, greedily (scale-down victims
    /// first, then trainers above their job's minimum), into `cands`, and what that
    /// costs; else what is known of the cost: at least what it had reached when it
    /// could no longer cost less than `beat`, or never enough.
    fn victims_on(
        &self,
        n: usize,
        res: &Resources,
        for_job: Option<usize>,
        quota_here: bool,
        beat: Option<EvictionCost>,
        scratch: &mut VictimScratch,
    ) -> Result<EvictionCost, Bound> {
        let VictimScratch { cands, taken } = scratch;
        cands.clear();
        taken.clear();
        let cpu_on_gpu = u8::from(res.gpus == 0 && self.nodes.has_gpus[n]);
        let mut free = *self.nodes.free(n);
        let mut above_min = 0;
        // The first pass's picks, which the second passes over: both walk the node's
        // list in the same order (each trainer on it once), so a cursor into them finds
        // each one in turn.
        let mut first_pass = 0;
        // Only a node with quota holds trainers of a shrinking job: elsewhere the first
        // pass would find nothing.
        let passes: &[Tier] = if quota_here {
            &[Tier::Quota, Tier::AboveMin]
        } else {
            &[Tier::AboveMin]
        };
        let list = self.node_trainers.on(n);
        for &pass in passes {
            let mut picked_before = 0;
            for (j, pod) in list.clone() {
                if res.fits_in(&free) {
                    break;
                }
                if pass == Tier::AboveMin
                    && picked_before < first_pass
                    && (cands[picked_before].0, cands[picked_before].1) == (j, pod)
                {
                    picked_before += 1;
                    continue;
                }
                if Some(j) == for_job {
                    continue;
                }
                let slot = match taken.iter().position(|&(jj, _)| jj == j) {
                    Some(slot) => slot,
                    None => {
                        taken.push((j, 0));
                        taken.len() - 1
                    }
                };
                if self.evictable_tier(j, taken[slot].1) == Some(pass) {
                    cands.push((j, pod, pass));
                    taken[slot].1 += 1;
                    above_min += usize::from(pass == Tier::AboveMin);
                    free = free.add(&self.trainer_res(j));
                    // More victims only cost more: give up once this one cannot win.
                    if beat.is_some_and(|b| (above_min, cpu_on_gpu, cands.len(), n) >= b) {
                        return Err(Bound::AtLeast(above_min, cpu_on_gpu, cands.len()));
                    }
                }
            }
            if pass == Tier::Quota {
                first_pass = cands.len();
            }
        }
        if !res.fits_in(&free) {
            return Err(Bound::Never);
        }
        Ok((above_min, cpu_on_gpu, cands.len(), n))
    }

    /// Schedulable GPU nodes in index order, listed at the first search for room that
    /// needs them.
    fn gpu_nodes(&mut self) -> &mut Vec<usize> {
        let nodes = &self.nodes;
        self.gpu_nodes.get_or_insert_with(|| {
            (0..nodes.len())
                .filter(|&n| nodes.schedulable[n] && nodes.has_gpus[n])
                .collect()
        })
    }

    /// Before a search for room: forget what changes since the last one made stale
    /// (see `room_memo`).
    fn catch_up_room_memo(&mut self, for_job: Option<usize>) {
        let (memo, view) = (&mut self.room_memo, self.view);
        memo.rooms_changed(&self.nodes.changed_nodes);
        self.node_trainers.drain_changed(|n| memo.forget(n));
        self.jobs
            .drain_changed(|j| memo.forget_all(&view.jobs[j].trainer_nodes));
        if memo.for_job() != for_job {
            for j in [memo.for_job(), for_job].into_iter().flatten() {
                memo.forget_all(&view.jobs[j].trainer_nodes);
            }
            memo.set_for_job(for_job);
        }
    }

    pub(super) fn fit_or_make_room(
        &mut self,
        res: &Resources,
        for_job: Option<usize>,
        (allowed, preference): (Option<&[bool]>, Option<&[i64]>),
        reason: &DeleteReason,
    ) -> Option<usize> {
        self.nodes
            .best_fit_preferring(res, 1, allowed, preference)
            .or_else(|| self.make_room(res, for_job, allowed, reason))
    }

    // ---- the steps --------------------------------------------------------------

    /// Room for pending service pods, evicting trainers if need be. Runs again after the
    /// top-up: a trainer it added above a job's minimum elsewhere lets that job give up
    /// one where a service still waits.
    pub(super) fn reserve_services(&mut self) {
        let view = self.view;
        for (i, pod) in view.pending_services.iter().enumerate() {
            let key = pod.key();
            if self.reserved_services.contains(&key) {
                continue;
            }
            let reason = DeleteReason::MakeRoomForService { pod: key.clone() };
            let fit = view.eligibility.for_service(i);
            if let Some(n) = self.fit_or_make_room(&pod.resources, None, fit, &reason) {
                self.nodes.take(n, &pod.resources);
                self.reserved_services.insert(key.clone());
                self.reservations.push(ServiceReservation {
                    pod: key,
                    node: view.node_names[n].to_string(),
                });
            }
        }
    }
}
