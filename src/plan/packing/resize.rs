//! Resizing running jobs: scale-down that empties nodes, growth next to a job's pods,
//! work conservation (kept victims, the top-up) and the clean-up of pods no longer needed.

use super::queue_limits::QueueLimits;
use super::{NewName, Packer, Tier};
use crate::model::{DeleteReason, PodDeletion, Role};
use crate::plan::fairshare::OrdF;
use crate::plan::{FastMap, FastSet};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

/// See [`Packer::next_trainer_node`].
enum NextNode {
    /// The node the walk would choose (None: it would find none).
    Known(Option<usize>),
    /// Only the walk can say.
    Walk,
}

impl Packer<'_, '_> {
    /// Remove each shrinking job's remaining quota, emptying nodes as much as possible.
    pub(super) fn scale_down(&mut self) {
        for j in 0..self.jobs.len() {
            if self.jobs[j].quota == 0 {
                continue;
            }
            let jv = &self.view.jobs[j];
            let res = jv.job.trainers.resources;
            // The job's trainers still on their nodes, by node, pods ascending: a
            // victim's score is its node's but for the pod index, which only breaks
            // ties (the highest goes first), so each step compares nodes, not pods.
            let mut on_node: Vec<(usize, Vec<usize>)> = Vec::new();
            let mut slot_of: FastMap<usize, usize> = FastMap::default();
            for b in &jv.live_trainers {
                if !self.node_trainers.holds(b.node, (j, b.pod)) {
                    continue;
                }
                let slot = *slot_of.entry(b.node).or_insert_with(|| {
                    on_node.push((b.node, Vec::new()));
                    on_node.len() - 1
                });
                on_node[slot].1.push(b.pod);
            }
            for (_, pods) in &mut on_node {
                pods.sort_unstable();
            }
            while self.jobs[j].quota > 0 {
                let score = |(n, pods): &(usize, Vec<usize>)| {
                    let n = *n;
                    let after = self.nodes.allocatable[n]
                        .sub(self.nodes.free(n))
                        .sub(&res)
                        .dominant_share(&self.nodes.allocatable[n]);
                    (
                        Reverse(u8::from(res.gpus == 0 && self.nodes.has_gpus[n])),
                        OrdF(after),
                        pods.len(),
                        Reverse(pods.last().copied()),
                    )
                };
                let Some(slot) = (0..on_node.len())
                    .filter(|&s| !on_node[s].1.is_empty())
                    .min_by_key(|&s| score(&on_node[s]))
                else {
                    break;
                };
                let n = on_node[slot].0;
                let Some(pod) = on_node[slot].1.pop() else {
                    break;
                };
                self.evict(j, pod, n, Tier::Quota, DeleteReason::ScaleDown);
            }
        }
    }

    fn share(&self, j: usize, trainers: u32) -> f64 {
        let job = self.view.jobs[j].job;
        let held = job
            .overhead()
            .add(&job.trainers.resources.times(i64::from(trainers)));
        held.dominant_share(&self.capacity) / job.weight
    }

    /// Place every job's growth; what does not fit lowers the job's target.
    pub(super) fn grow(&mut self) {
        // Jobs above their fair share (cooldown) can fill a queue to its limit: growth of
        // the others stops there.
        let mut limits = QueueLimits::new(self);
        // Free room only shrinks while jobs grow, so a job whose trainer fits on no node
        // now fits on none later and ends where it is, whatever its turn: only the jobs
        // that ask for more and might get it are put in order (a sort of every job was a
        // tenth of a tick in a full cluster).
        let mut order = Vec::new();
        for j in 0..self.jobs.len() {
            let jp = &self.jobs[j];
            let have = jp.trainers();
            if !jp.admitted || jp.target <= have {
                continue;
            }
            if !self.trainer_fits_somewhere(j) {
                self.jobs.get_mut(j).target = have;
                continue;
            }
            order.push(j);
        }
        order.sort_by_cached_key(|&j| (OrdF(self.share(j, self.jobs[j].kept)), j));
        for j in order {
            let have = self.jobs[j].trainers();
            let asked = self.jobs[j].target.saturating_sub(have);
            let want = u64::from(asked).min(limits.copies_allowed(self, j)) as u32;
            if want == 0 {
                if asked > 0 {
                    self.jobs.get_mut(j).target = have;
                }
                continue;
            }
            let placed = self.place_trainers(j, want);
            limits.add(self, j, placed);
            if placed < want {
                self.jobs.get_mut(j).target = have + placed;
            }
        }
    }

    /// Place up to `count` trainers of job `j`; returns how many were placed.
    pub(super) fn place_trainers(&mut self, j: usize, count: u32) -> u32 {
        let res = self.trainer_res(j);
        let cpu_pod = res.gpus == 0;
        let (allowed, preference) = self.fit(j, Role::Trainer);
        // In a full cluster most calls place nothing: one indexed look-up says so before
        // the walks over the job's nodes, groups and racks.
        if count == 0 || self.nodes.best_fit(&res, 1, allowed).is_none() {
            return 0;
        }
        let mut left = count;
        let fill = |p: &mut Self, n: usize, left: &mut u32| {
            if (cpu_pod && p.nodes.has_gpus[n]) || !crate::plan::index::allows(allowed, n) {
                return;
            }
            let c = p.nodes.copies(n, &res).min(u64::from(*left)) as u32;
            p.place_trainers_on(j, n, c);
            *left -= c;
        };
        // 1. Next to the job's own pods, then their NVLink groups and racks. Anchors
        //    only gain the node being filled, so a cursor walks them without a copy.
        let topo = self.topo;
        let had_anchors = !self.jobs[j].anchors.is_empty();
        let mut from = 0;
        while left > 0 {
            let anchors = &self.jobs[j].anchors;
            let Some(&n) = anchors.get(anchors.partition_point(|&a| a < from)) else {
                break;
            };
            fill(self, n, &mut left);
            from = n + 1;
        }
        if left > 0 && topo.shared && had_anchors {
            let anchors = &self.jobs[j].anchors;
            let groups: BTreeSet<usize> = anchors.iter().map(|&n| topo.group_of[n]).collect();
            let racks: BTreeSet<usize> = anchors.iter().map(|&n| topo.rack_of[n]).collect();
            // A group without a trainer's GPUs free has no node that takes one; with
            // placement constraints, one whose allowed nodes hold none (a group of a GPU
            // model the job may not use) is passed over whole, not node by node.
            let holds_one = |p: &mut Self, g: usize| {
                if cpu_pod {
                    true
                } else if allowed.is_some() {
                    let (counts, nodes) = (&mut p.group_counts, &p.nodes);
                    counts.holds(nodes, topo, &res, allowed, g) > 0
                } else {
                    p.nodes.group_free_gpus(g) >= res.gpus
                }
            };
            for g in groups {
                if !holds_one(self, g) {
                    continue;
                }
                for &n in &topo.group_nodes[g] {
                    if left == 0 {
                        return count;
                    }
                    fill(self, n, &mut left);
                }
            }
            for r in racks {
                for &g in &topo.rack_groups[r] {
                    if !holds_one(self, g) {
                        continue;
                    }
                    for &n in &topo.group_nodes[g] {
                        if left == 0 {
                            return count;
                        }
                        fill(self, n, &mut left);
                    }
                }
            }
        }
        // 2. A GPU job with no home yet: the smallest NVLink group that holds it all,
        //    else the fewest groups.
        if left > 1 && !cpu_pod && topo.shared && !had_anchors {
            for g in self
                .group_counts
                .choose(&self.nodes, self.topo, &res, left, allowed)
            {
                let mut members = self.topo.group_nodes[g].clone();
                members.sort_by_key(|&n| (self.nodes.copies(n, &res), n));
                for n in members {
                    fill(self, n, &mut left);
                }
            }
        }
        // 3. Best fit: one node for all that is left if one has room, else fill the
        //    tightest nodes first.
        if left > 0
            && let Some(n) =
                self.nodes
                    .best_fit_preferring(&res, u64::from(left), allowed, preference)
        {
            self.place_trainers_on(j, n, left);
            left = 0;
        }
        while left > 0 {
            let Some(n) = self.nodes.best_fit_preferring(&res, 1, allowed, preference) else {
                break;
            };
            let c = self.nodes.copies(n, &res).min(u64::from(left)).max(1) as u32;
            self.place_trainers_on(j, n, c);
            left -= c;
        }
        count - left
    }

    /// Scale-down victims whose room nobody took stay: removing them would only idle it.
    pub(super) fn keep_victims_that_fit(&mut self) {
        let mut limits = QueueLimits::new(self);
        let mut i = self.delete.len();
        while i > 0 {
            i -= 1;
            let d = &self.delete[i];
            if d.out.reason != DeleteReason::ScaleDown {
                continue;
            }
            let (j, pod, node) = (d.job, d.pod, d.node);
            let res = self.trainer_res(j);
            if !res.fits_in(self.nodes.free(node)) || limits.copies_allowed(self, j) == 0 {
                continue;
            }
            limits.add(self, j, 1);
            self.nodes.take(node, &res);
            self.node_trainers.put_back(node, (j, pod));
            let jp = self.jobs.get_mut(j);
            jp.kept += 1;
            jp.target += 1;
            self.delete.remove(i);
        }
    }

    /// Hand idle room to admitted jobs below max, lowest share first, within queue limits.
    /// A shrinking job takes part too: its victim's node may have gone to a newcomer
    /// while another node sits idle, and idle room helps nobody.
    pub(super) fn top_up(&mut self) {
        let mut limits = QueueLimits::new(self);
        let mut heap = BinaryHeap::new();
        for j in 0..self.jobs.len() {
            let jp = &self.jobs[j];
            let have = jp.trainers();
            if jp.admitted && have < jp.max && self.trainer_fits_somewhere(j) {
                heap.push(Reverse((OrdF(self.share(j, have + 1)), j)));
            }
        }
        // Where each job's last trainer went. On a constrained cluster the top-up hands
        // out thousands of trainers, one per turn, and each turn walked the job's nodes,
        // groups and racks again to find what the last turn had found.
        let mut last_node: FastMap<usize, usize> = FastMap::default();
        while let Some(Reverse((_, j))) = heap.pop() {
            if limits.copies_allowed(self, j) == 0 {
                continue;
            }
            let next = last_node.get(&j).map(|&n| self.next_trainer_node(j, n));
            let placed = match next {
                Some(NextNode::Known(Some(n))) => {
                    self.place_trainers_on(j, n, 1);
                    true
                }
                Some(NextNode::Known(None)) => false,
                Some(NextNode::Walk) | None => self.place_trainers(j, 1) == 1,
            };
            if !placed {
                continue;
            }
            if let Some(c) = self.create.last() {
                last_node.insert(j, c.node);
            }
            limits.add(self, j, 1);
            let jp = self.jobs.get_mut(j);
            let have = jp.trainers();
            jp.target = jp.target.max(have);
            if have < jp.max {
                heap.push(Reverse((OrdF(self.share(j, have + 1)), j)));
            }
        }
    }

    /// Where [`Packer::place_trainers`] would put job `j`'s next single trainer, given
    /// that its last one went to `last`, when that is known without the walk. While room
    /// only shrinks (the top-up only places):
    /// * `last` with room left is the job's first node with room: every node the walk
    ///   visits before it had none at the last placement.
    /// * A CPU trainer that went to a GPU node went there by best fit, which takes a
    ///   node without GPUs whenever one has room: the walk, which passes GPU nodes over,
    ///   found nothing then and finds nothing now, so it comes to best fit again.
    fn next_trainer_node(&self, j: usize, last: usize) -> NextNode {
        let res = self.trainer_res(j);
        if res.gpus == 0 && self.nodes.has_gpus[last] {
            let (allowed, preference) = self.fit(j, Role::Trainer);
            return NextNode::Known(self.nodes.best_fit_preferring(&res, 1, allowed, preference));
        }
        if self.nodes.copies(last, &res) >= 1 {
            NextNode::Known(Some(last))
        } else {
            NextNode::Walk
        }
    }

    /// Unbound pods nobody reused, and pods left on nodes that are gone.
    pub(super) fn clean_up_unneeded(&mut self) {
        // Only trainers are cleaned up here, and a trainer reuses an unbound pod's name
        // only by its index.
        let reused: FastSet<(usize, usize)> = self
            .create
            .iter()
            .filter_map(|c| match c.name {
                NewName::Unbound(p) => Some((c.job, p)),
                _ => None,
            })
            .collect();
        for (j, jv) in self.view.jobs.iter().enumerate() {
            if jv.unbound.is_empty() && jv.on_lost_nodes.is_empty() {
                continue;
            }
            let unneeded = jv.unbound.iter().copied().filter(|&p| {
                jv.job.pods[p].role == Role::Trainer
                    && !reused.contains(&(j, p))
                    && jv.invalid.is_none()
            });
            // In pod order, as the job lists them.
            let mut pods: Vec<(usize, DeleteReason)> = jv
                .on_lost_nodes
                .iter()
                .map(|&p| (p, DeleteReason::NodeGone))
                .chain(unneeded.map(|p| (p, DeleteReason::Unneeded)))
                .collect();
            pods.sort_unstable_by_key(|&(p, _)| p);
            for (p, reason) in pods {
                let pod = &jv.job.pods[p];
                self.cleanup.push(PodDeletion {
                    job: jv.job.key(),
                    pod: pod.name.clone(),
                    node: pod.node.clone(),
                    reason,
                });
            }
        }
    }
}
