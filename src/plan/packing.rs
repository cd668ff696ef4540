//! Packing: turn target trainer counts into pods on nodes.
//!
//! Order of work, each step seeing what the previous ones took:
//! 1. Pending service pods get a node (best fit); if none has room, trainers above their
//!    job's minimum are evicted from the node that needs the fewest evictions.
//! 2. Missing masters/pservers and trainers below `min` of running jobs come back.
//! 3. Scale-down: each shrinking job loses the trainers whose removal empties nodes the
//!    most (CPU-only trainers on GPU nodes first), so newcomers find whole free nodes.
//!    Then the gangs of newly admitted jobs, all-or-nothing (rolled back when they do not
//!    pack; the job goes back to pending). Masters and pservers are never evicted.
//! 4. Growth, lowest share first: next to the job's pods (same node, NVLink group, rack),
//!    else in the smallest domain that holds them all, else best fit: partly used nodes
//!    first so whole nodes stay free; CPU-only pods stay off GPU nodes while others fit.
//!    What cannot be placed lowers the job's target (a plan never over-commits a node).
//! 5. Work conservation: if growth fell short, planned scale-down victims that still fit
//!    are kept; then idle room goes one trainer at a time to the job with the lowest share.

use super::admission::{Admission, queue_path};
use super::fairshare::OrdF;
use super::group_counts::GroupCounts;
use super::node_trainers::NodeTrainers;
use super::nodes::NodeState;
use super::room_memo::{Bound, RoomMemo};
use super::topology::TopologyIndex;
use super::tracked::Tracked;
use super::view::View;
use super::{FastMap, FastSet};
use crate::model::{
    DeleteReason, JobKey, PodDeletion, PodPlacement, Reason, Resources, Role, ServiceReservation,
    push_decimal,
};
use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

pub struct Packed {
    /// By index: a sizing pass that is not kept never builds the strings.
    pub create: Vec<NewPod>,
    pub delete: Vec<PodDeletion>,
    pub recreate_after_delete: Vec<PodPlacement>,
    pub reservations: Vec<ServiceReservation>,
    /// Trainers each job will hold after the plan.
    pub trainers: Vec<u32>,
    /// Some newcomer's gang did not pack (its admission is now pending).
    pub gang_failed: bool,
}

/// A pod this plan creates, with its job and node as indices into the view.
#[derive(Clone, Debug, PartialEq)]
pub struct NewPod {
    pub job: usize,
    pub role: Role,
    pub node: usize,
    pub name: NewName,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NewName {
    /// An unbound pod of the job (index into its pods) whose name is reused.
    Unbound(usize),
    /// `JOB-trainer-N`.
    TrainerOrdinal(u32),
    /// A master's or pserver's fixed name.
    Support(String),
}

impl NewPod {
    pub fn placement(&self, view: &View) -> PodPlacement {
        let jv = &view.jobs[self.job];
        let pod = match &self.name {
            NewName::Unbound(p) => jv.job.pods[*p].name.clone(),
            NewName::TrainerOrdinal(n) => trainer_name(&jv.job.name, *n),
            NewName::Support(name) => name.clone(),
        };
        PodPlacement {
            job: jv.job.key(),
            pod,
            role: self.role,
            node: view.node_names[self.node].to_string(),
        }
    }
}

impl Packed {
    pub fn placements(&self, view: &View) -> Vec<PodPlacement> {
        self.create.iter().map(|c| c.placement(view)).collect()
    }
}

const TRAINER_INFIX: &str = "-trainer-";

/// One allocation, no formatting machinery: this runs for every new trainer kept.
fn trainer_name(job: &str, ordinal: u32) -> String {
    let mut name = String::with_capacity(job.len() + TRAINER_INFIX.len() + 10);
    name.push_str(job);
    name.push_str(TRAINER_INFIX);
    push_decimal(&mut name, ordinal);
    name
}

struct JobPack<'v> {
    admitted: bool,
    target: u32,
    min: u32,
    max: u32,
    kept: u32,
    /// Trainers still to be removed for scale-down.
    quota: u32,
    created: u32,
    /// Nodes holding the job's trainers, sorted (a set; a vector costs far less to build
    /// for every job of every packing): the view's list until a trainer is placed.
    anchors: Cow<'v, [usize]>,
    next_ordinal: Option<u32>,
    /// Unbound trainer pods whose names are reused before new names are minted.
    reusable: Vec<usize>,
    /// Masters and pservers this plan creates (so the next name is not handed twice).
    support_created: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tier {
    /// Already due to leave for scale-down.
    Quota = 0,
    /// Above its job's minimum.
    AboveMin = 1,
}

/// (trainers above min evicted, CPU pod on a GPU node, evictions, node): lower is better.
type EvictionCost = (usize, u8, usize, usize);
/// (job, pod, tier) of a trainer chosen to make room.
type Victim = (usize, usize, Tier);

/// What weighing one node's victims needs, kept across the nodes of one search.
#[derive(Default)]
struct VictimScratch {
    cands: Vec<Victim>,
    /// (job, trainers of it picked so far).
    taken: Vec<(usize, u32)>,
}

enum Undo {
    Take {
        node: usize,
        res: Resources,
    },
    Evict {
        job: usize,
        pod: usize,
        node: usize,
        tier: Tier,
    },
    Create {
        job: usize,
        role: Role,
        /// The unbound pod whose name a trainer took (None: a minted name).
        reused: Option<usize>,
    },
}

/// A deletion with the indices that later steps need to undo it.
struct Deletion {
    out: PodDeletion,
    job: usize,
    pod: usize,
    node: usize,
}

struct Packer<'v, 'a> {
    view: &'v View<'a>,
    topo: &'v TopologyIndex,
    nodes: NodeState,
    /// Trainers each node holds that may be evicted; it tracks its changes (as `jobs`
    /// does) so that `room_memo` forgets what they make stale.
    node_trainers: NodeTrainers,
    jobs: Tracked<JobPack<'v>>,
    create: Vec<NewPod>,
    delete: Vec<Deletion>,
    recreate_after_delete: Vec<PodPlacement>,
    /// Deletions that need no undo (unbound or lost pods).
    cleanup: Vec<PodDeletion>,
    reservations: Vec<ServiceReservation>,
    /// The pods in `reservations`: the second pass over pending services asks of each.
    reserved_services: FastSet<String>,
    journal: Option<Vec<Undo>>,
    capacity: Resources,
    group_counts: GroupCounts,
    /// Jobs with scale-down quota when packing began: a job's quota only falls from
    /// there (an undo gives back what an eviction took), so these are all that can
    /// have some later.
    shrinking: Vec<usize>,
    room_memo: RoomMemo,
    /// See `gpu_nodes()`.
    gpu_nodes: Option<Vec<usize>>,
}

/// What every sizing pass of a round starts from: the nodes' free room as the view has
/// it, indexed for packing, and the trainers on each node. A pass uses it up.
pub struct Start {
    nodes: NodeState,
    trainers: NodeTrainers,
}

/// The start of packing `view`. Between the passes of a round only jobs without live
/// trainers (newcomers whose gang did not pack) change admission, so `admission` may be
/// any pass's.
pub fn start(view: &View, topo: &TopologyIndex, admission: &[Admission]) -> Start {
    Start {
        nodes: NodeState::new(
            view.nodes.iter().map(|n| n.allocatable).collect(),
            &view.used,
            view.nodes.iter().map(|n| n.schedulable).collect(),
            topo.group_of.clone(),
        ),
        trainers: NodeTrainers::build(view, |j| admission[j].admitted()),
    }
}

/// `start` is [`start`] of this view and topology.
pub fn pack(
    view: &View,
    topo: &TopologyIndex,
    start: Start,
    admission: &mut [Admission],
    targets: &[u32],
    capacity: Resources,
) -> Packed {
    let mut jobs = Vec::with_capacity(view.jobs.len());
    for (j, jv) in view.jobs.iter().enumerate() {
        let admitted = admission[j].admitted();
        let kept = jv.live_trainers.len() as u32;
        // Trainers talk to each other most: they, not the master, set the locality.
        let anchors = Cow::Borrowed(if admitted {
            jv.trainer_nodes.as_slice()
        } else {
            &[]
        });
        let reusable = jv
            .unbound
            .iter()
            .copied()
            .filter(|&p| jv.job.pods[p].role == Role::Trainer)
            .collect();
        jobs.push(JobPack {
            admitted,
            target: if admitted { targets[j] } else { kept },
            min: jv.job.trainers.min,
            max: jv.max_trainers,
            kept,
            quota: if admitted {
                kept.saturating_sub(targets[j])
            } else {
                0
            },
            created: 0,
            anchors,
            next_ordinal: None,
            support_created: Vec::new(),
            reusable,
        });
    }
    let shrinking = (0..jobs.len())
        .filter(|&j| jobs[j].admitted && jobs[j].quota > 0)
        .collect();
    let mut p = Packer {
        view,
        topo,
        nodes: start.nodes,
        node_trainers: start.trainers,
        jobs: Tracked::new(jobs),
        shrinking,
        room_memo: RoomMemo::default(),
        gpu_nodes: None,
        create: Vec::new(),
        delete: Vec::new(),
        recreate_after_delete: Vec::new(),
        cleanup: Vec::new(),
        reservations: Vec::new(),
        reserved_services: FastSet::default(),
        journal: None,
        capacity,
        group_counts: GroupCounts::default(),
    };
    p.reserve_services();
    p.repair_running_gangs();
    p.scale_down();
    let gang_failed = p.admit_new_gangs(admission);
    p.grow();
    p.keep_victims_that_fit();
    p.top_up();
    p.reserve_services();
    p.clean_up_unneeded();
    let trainers = p.jobs.iter().map(|j| j.kept + j.created).collect();
    let mut delete: Vec<PodDeletion> = p.delete.into_iter().map(|d| d.out).collect();
    delete.extend(p.cleanup);
    Packed {
        create: p.create,
        delete,
        recreate_after_delete: p.recreate_after_delete,
        reservations: p.reservations,
        trainers,
        gang_failed,
    }
}

impl Packer<'_, '_> {
    fn trainer_res(&self, j: usize) -> Resources {
        self.view.jobs[j].job.trainers.resources
    }

    fn key(&self, j: usize) -> JobKey {
        self.view.jobs[j].job.key()
    }

    fn record(&mut self, u: Undo) {
        if let Some(journal) = &mut self.journal {
            journal.push(u);
        }
    }

    fn take(&mut self, node: usize, res: Resources) {
        self.nodes.take(node, &res);
        self.record(Undo::Take { node, res });
    }

    // ---- pod naming -------------------------------------------------------------

    /// A name for a new trainer of job `j`: an unbound pod's, else the next ordinal.
    fn new_trainer_name(&mut self, j: usize) -> NewName {
        if let Some(p) = self.jobs.get_mut(j).reusable.pop() {
            return NewName::Unbound(p);
        }
        let job = self.view.jobs[j].job;
        // Ordinals only grow, so a new name can never collide with an existing pod.
        let next = *self.jobs.get_mut(j).next_ordinal.get_or_insert_with(|| {
            job.pods
                .iter()
                .filter_map(|p| {
                    p.name
                        .strip_prefix(job.name.as_str())?
                        .strip_prefix(TRAINER_INFIX)?
                        .parse::<u32>()
                        .ok()
                })
                .max()
                .map_or(0, |m| m + 1)
        });
        self.jobs.get_mut(j).next_ordinal = Some(next + 1);
        NewName::TrainerOrdinal(next)
    }

    /// Name for the next missing master or pserver: the fixed names `JOB-ROLE-i`,
    /// reusing an unbound pod of that name. None when the name is still taken by a pod
    /// that is going away (retry next tick).
    fn support_name(&mut self, j: usize, role: Role, live: &FastSet<String>) -> Option<String> {
        let job = self.view.jobs[j].job;
        for i in 0..job.replicas_of(role) {
            let name = job.support_pod_name(role, i);
            if live.contains(&name) {
                continue;
            }
            let existing = job.pods.iter().find(|p| p.name == name);
            match existing {
                Some(p) if p.node.is_none() && !p.terminating => return Some(name),
                Some(_) => continue,
                None => {
                    if self.jobs[j].support_created.contains(&name) {
                        continue;
                    }
                    return Some(name);
                }
            }
        }
        None
    }

    // ---- placing and evicting ---------------------------------------------------

    fn place_trainer(&mut self, j: usize, node: usize) {
        self.place_trainers_on(j, node, 1);
    }

    /// `count` trainers of job `j` on `node`, which has room for them: the node's free
    /// room (and its index entries) change once, not once per trainer.
    fn place_trainers_on(&mut self, j: usize, node: usize, count: u32) {
        if count == 0 {
            return;
        }
        let res = self.trainer_res(j).times(i64::from(count));
        self.take(node, res);
        let anchors = &mut self.jobs.get_mut(j).anchors;
        if let Err(at) = anchors.binary_search(&node) {
            anchors.to_mut().insert(at, node);
        }
        for _ in 0..count {
            let name = self.new_trainer_name(j);
            let reused = match name {
                NewName::Unbound(p) => Some(p),
                _ => None,
            };
            self.jobs.get_mut(j).created += 1;
            self.create.push(NewPod {
                job: j,
                role: Role::Trainer,
                node,
                name,
            });
            self.record(Undo::Create {
                job: j,
                role: Role::Trainer,
                reused,
            });
        }
    }

    fn place_support(&mut self, j: usize, role: Role, name: String, node: usize) {
        let res = self.view.jobs[j].job.resources_of(role);
        self.take(node, res);
        self.jobs.get_mut(j).support_created.push(name.clone());
        self.create.push(NewPod {
            job: j,
            role,
            node,
            name: NewName::Support(name),
        });
        self.record(Undo::Create {
            job: j,
            role,
            reused: None,
        });
    }

    fn evict(&mut self, j: usize, pod: usize, node: usize, tier: Tier, reason: DeleteReason) {
        let res = self.trainer_res(j);
        self.nodes.give(node, &res);
        self.node_trainers.remove(node, (j, pod));
        let jp = self.jobs.get_mut(j);
        jp.kept -= 1;
        match tier {
            Tier::Quota => jp.quota -= 1,
            Tier::AboveMin => jp.target = jp.target.saturating_sub(1),
        }
        self.delete.push(Deletion {
            out: PodDeletion {
                job: self.view.jobs[j].job.key(),
                pod: self.view.jobs[j].job.pods[pod].name.clone(),
                node: Some(self.view.node_names[node].to_string()),
                reason,
            },
            job: j,
            pod,
            node,
        });
        self.record(Undo::Evict {
            job: j,
            pod,
            node,
            tier,
        });
    }

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
        let holds_after = (jp.kept + jp.created).saturating_sub(taken);
        let target_after = jp.target.saturating_sub(forced_so_far);
        (holds_after > jp.min && target_after > jp.min).then_some(Tier::AboveMin)
    }

    /// Find the node where evicting the fewest trainers (scale-down victims first, then
    /// trainers above their job's minimum) makes room for `res`, and evict them.
    fn make_room(
        &mut self,
        res: &Resources,
        for_job: Option<usize>,
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
        let fits_nowhere = self.nodes.best_fit(res, 1).is_none();
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
                if !self.nodes.schedulable[n] || !res.fits_in(&self.nodes.allocatable[n]) {
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

    fn fit_or_make_room(
        &mut self,
        res: &Resources,
        for_job: Option<usize>,
        reason: &DeleteReason,
    ) -> Option<usize> {
        self.nodes
            .best_fit(res, 1)
            .or_else(|| self.make_room(res, for_job, reason))
    }

    // ---- the steps --------------------------------------------------------------

    /// Room for pending service pods, evicting trainers if need be. Runs again after the
    /// top-up: a trainer it added above a job's minimum elsewhere lets that job give up
    /// one where a service still waits.
    fn reserve_services(&mut self) {
        let view = self.view;
        for pod in &view.pending_services {
            let key = pod.key();
            if self.reserved_services.contains(&key) {
                continue;
            }
            let reason = DeleteReason::MakeRoomForService { pod: key.clone() };
            if let Some(n) = self.fit_or_make_room(&pod.resources, None, &reason) {
                self.nodes.take(n, &pod.resources);
                self.reserved_services.insert(key.clone());
                self.reservations.push(ServiceReservation {
                    pod: key,
                    node: view.node_names[n].to_string(),
                });
            }
        }
    }

    fn live_support_names(&self, j: usize) -> FastSet<String> {
        let jv = &self.view.jobs[j];
        jv.live_support
            .iter()
            .map(|b| jv.job.pods[b.pod].name.clone())
            .collect()
    }

    /// Missing masters/pservers (e.g. lost with a node) and trainers below min.
    fn repair_running_gangs(&mut self) {
        for j in 0..self.jobs.len() {
            if !self.jobs[j].admitted || !self.view.jobs[j].running {
                continue;
            }
            let support_roles: &[Role] = if self.view.jobs[j].support_complete {
                &[]
            } else {
                &[Role::Master, Role::Pserver]
            };
            let live = if support_roles.is_empty() {
                FastSet::default()
            } else {
                self.live_support_names(j)
            };
            for &role in support_roles {
                while let Some(name) = self.support_name(j, role, &live) {
                    let res = self.view.jobs[j].job.resources_of(role);
                    let reason = DeleteReason::MakeRoomForJob { job: self.key(j) };
                    // A master or pserver may displace the job's own trainers: without
                    // it they cannot train anyway.
                    match self.fit_or_make_room(&res, None, &reason) {
                        Some(n) => self.place_support(j, role, name, n),
                        None => break,
                    }
                }
                self.hold_room_for_renamed_support(j, role, &live);
            }
            let res = self.trainer_res(j);
            while self.jobs[j].kept + self.jobs[j].created < self.jobs[j].min {
                let reason = DeleteReason::MakeRoomForJob { job: self.key(j) };
                match self.fit_or_make_room(&res, Some(j), &reason) {
                    Some(n) => self.place_trainer(j, n),
                    None => break,
                }
            }
        }
    }

    /// A lost master or pserver whose name is still held by the pod being deleted is
    /// created next tick; hold its room now, or this plan would hand that room to
    /// trainers and the next would have to evict one of them (no fixed point).
    fn hold_room_for_renamed_support(&mut self, j: usize, role: Role, live: &FastSet<String>) {
        let job = self.view.jobs[j].job;
        let res = job.resources_of(role);
        for i in 0..job.replicas_of(role) {
            let name = job.support_pod_name(role, i);
            if live.contains(&name) || self.jobs[j].support_created.contains(&name) {
                continue;
            }
            let reason = DeleteReason::MakeRoomForJob { job: self.key(j) };
            let Some(n) = self.fit_or_make_room(&res, None, &reason) else {
                break;
            };
            self.take(n, res);
            self.recreate_after_delete.push(PodPlacement {
                job: self.key(j),
                pod: name,
                role,
                node: self.view.node_names[n].to_string(),
            });
        }
    }

    /// Places each newcomer's gang or turns it pending; whether any turned pending.
    fn admit_new_gangs(&mut self, admission: &mut [Admission]) -> bool {
        let mut failed = false;
        let mut order: Vec<usize> = (0..self.jobs.len())
            .filter(|&j| admission[j] == Admission::New)
            .collect();
        order.sort_by(|&a, &b| {
            let (ja, jb) = (self.view.jobs[a].job, self.view.jobs[b].job);
            jb.priority
                .cmp(&ja.priority)
                .then(ja.submit_time_s.total_cmp(&jb.submit_time_s))
                .then(a.cmp(&b))
        });
        for j in order {
            self.journal = Some(Vec::new());
            let ok = self.place_gang(j);
            let journal = self.journal.take().unwrap_or_default();
            if !ok {
                self.roll_back(journal);
                admission[j] = Admission::Pending(Reason::NotPackable);
                let jp = self.jobs.get_mut(j);
                jp.admitted = false;
                jp.target = 0;
                failed = true;
            }
        }
        failed
    }

    /// Trainers first: they are the big (often GPU) pods, and a master placed first on
    /// the tightest node can take the CPU a GPU trainer needed there.
    fn place_gang(&mut self, j: usize) -> bool {
        let live = FastSet::default();
        let reason = DeleteReason::MakeRoomForJob { job: self.key(j) };
        let min = self.jobs[j].min;
        let placed = self.place_trainers(j, min);
        if placed < min {
            let res = self.trainer_res(j);
            for _ in placed..min {
                match self.make_room(&res, Some(j), &reason) {
                    Some(n) => self.place_trainer(j, n),
                    None => return false,
                }
            }
        }
        for role in [Role::Master, Role::Pserver] {
            while let Some(name) = self.support_name(j, role, &live) {
                let res = self.view.jobs[j].job.resources_of(role);
                match self.fit_or_make_room(&res, Some(j), &reason) {
                    Some(n) => self.place_support(j, role, name, n),
                    None => return false,
                }
            }
        }
        true
    }

    fn roll_back(&mut self, journal: Vec<Undo>) {
        for u in journal.into_iter().rev() {
            match u {
                Undo::Take { node, res } => self.nodes.give(node, &res),
                Undo::Create { job, role, reused } => {
                    if self.create.pop().is_some() {
                        let jp = self.jobs.get_mut(job);
                        if role == Role::Trainer {
                            jp.created -= 1;
                            // Give back exactly the name that was taken: a reused pod's
                            // name to the pool, a minted ordinal to the counter.
                            match reused {
                                Some(p) => jp.reusable.push(p),
                                None => {
                                    jp.next_ordinal = jp.next_ordinal.map(|n| n.saturating_sub(1))
                                }
                            }
                        } else {
                            jp.support_created.pop();
                        }
                    }
                }
                Undo::Evict {
                    job,
                    pod,
                    node,
                    tier,
                } => {
                    let res = self.trainer_res(job);
                    self.nodes.take(node, &res);
                    self.node_trainers.put_back(node, (job, pod));
                    let jp = self.jobs.get_mut(job);
                    jp.kept += 1;
                    match tier {
                        Tier::Quota => jp.quota += 1,
                        Tier::AboveMin => jp.target += 1,
                    }
                    self.delete.pop();
                }
            }
        }
    }

    /// Remove each shrinking job's remaining quota, emptying nodes as much as possible.
    fn scale_down(&mut self) {
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
    fn grow(&mut self) {
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
            let have = jp.kept + jp.created;
            if !jp.admitted || jp.target <= have {
                continue;
            }
            if self.nodes.best_fit(&self.trainer_res(j), 1).is_none() {
                self.jobs.get_mut(j).target = have;
                continue;
            }
            order.push(j);
        }
        order.sort_by_cached_key(|&j| (OrdF(self.share(j, self.jobs[j].kept)), j));
        for j in order {
            let have = self.jobs[j].kept + self.jobs[j].created;
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
    fn place_trainers(&mut self, j: usize, count: u32) -> u32 {
        let res = self.trainer_res(j);
        let cpu_pod = res.gpus == 0;
        // In a full cluster most calls place nothing: one indexed look-up says so before
        // the walks over the job's nodes, groups and racks.
        if count == 0 || self.nodes.best_fit(&res, 1).is_none() {
            return 0;
        }
        let mut left = count;
        let fill = |p: &mut Self, n: usize, left: &mut u32| {
            if cpu_pod && p.nodes.has_gpus[n] {
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
            // A group without a trainer's GPUs free has no node that takes one.
            let no_room = |p: &Self, g: usize| !cpu_pod && p.nodes.group_free_gpus(g) < res.gpus;
            for g in groups {
                if no_room(self, g) {
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
                    if no_room(self, g) {
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
            for g in self.group_counts.choose(&self.nodes, self.topo, &res, left) {
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
            && let Some(n) = self.nodes.best_fit(&res, u64::from(left))
        {
            self.place_trainers_on(j, n, left);
            left = 0;
        }
        while left > 0 {
            let Some(n) = self.nodes.best_fit(&res, 1) else {
                break;
            };
            let c = self.nodes.copies(n, &res).min(u64::from(left)).max(1) as u32;
            self.place_trainers_on(j, n, c);
            left -= c;
        }
        count - left
    }

    /// Scale-down victims whose room nobody took stay: removing them would only idle it.
    fn keep_victims_that_fit(&mut self) {
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
    fn top_up(&mut self) {
        let mut limits = QueueLimits::new(self);
        let mut heap = BinaryHeap::new();
        for j in 0..self.jobs.len() {
            let jp = &self.jobs[j];
            let have = jp.kept + jp.created;
            // As in `grow`: a trainer that fits nowhere now never will.
            if jp.admitted
                && have < jp.max
                && self.nodes.best_fit(&self.trainer_res(j), 1).is_some()
            {
                heap.push(Reverse((OrdF(self.share(j, have + 1)), j)));
            }
        }
        while let Some(Reverse((_, j))) = heap.pop() {
            if limits.copies_allowed(self, j) == 0 || self.place_trainers(j, 1) == 0 {
                continue;
            }
            limits.add(self, j, 1);
            let jp = self.jobs.get_mut(j);
            let have = jp.kept + jp.created;
            jp.target = jp.target.max(have);
            if have < jp.max {
                heap.push(Reverse((OrdF(self.share(j, have + 1)), j)));
            }
        }
    }

    /// Unbound pods nobody reused, and pods left on nodes that are gone.
    fn clean_up_unneeded(&mut self) {
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

/// What each queue (and its ancestors) holds against its limit, as packing goes.
struct QueueLimits {
    /// Per queue; empty when no queue has a limit (then nothing is counted).
    used: Vec<Resources>,
}

impl QueueLimits {
    fn new(p: &Packer) -> Self {
        if p.view.queues.iter().all(|q| q.limit.is_none()) {
            return QueueLimits { used: Vec::new() };
        }
        let mut used = vec![Resources::ZERO; p.view.queues.len()];
        for (j, jp) in p.jobs.iter().enumerate() {
            if jp.admitted {
                let job = p.view.jobs[j].job;
                let held = job.overhead().add(
                    &job.trainers
                        .resources
                        .times(i64::from(jp.kept + jp.created)),
                );
                for &q in queue_path(p.view, p.view.jobs[j].queue) {
                    used[q] = used[q].add(&held);
                }
            }
        }
        QueueLimits { used }
    }

    /// How many more trainers of job `j` its queues' limits allow.
    fn copies_allowed(&self, p: &Packer, j: usize) -> u64 {
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

    fn add(&mut self, p: &Packer, j: usize, count: u32) {
        if self.used.is_empty() {
            return;
        }
        let res = p.trainer_res(j).times(i64::from(count));
        for &q in queue_path(p.view, p.view.jobs[j].queue) {
            self.used[q] = self.used[q].add(&res);
        }
    }
}
