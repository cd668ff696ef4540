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
//!
//! This file holds the packer's state and the moves every step makes (take room, place,
//! evict); the steps are in `room` (1, and the search for room the others use),
//! `gangs` (2 and the gangs of 3), `resize` (scale-down, 4 and 5) and `queue_limits`.

mod gangs;
mod queue_limits;
mod resize;
mod room;

use super::FastSet;
use super::admission::Admission;
use super::index::group_counts::GroupCounts;
use super::index::node_trainers::NodeTrainers;
use super::index::nodes::NodeState;
use super::index::room_memo::RoomMemo;
use super::index::topology::TopologyIndex;
use super::index::tracked::Tracked;
use super::view::View;
use crate::model::{
    DeleteReason, JobKey, PodDeletion, PodPlacement, Resources, Role, ServiceReservation,
    push_decimal,
};
use std::borrow::Cow;

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

impl JobPack<'_> {
    /// Trainers the job holds as packing stands: kept live ones plus those created.
    fn trainers(&self) -> u32 {
        self.kept + self.created
    }
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
    let trainers = p.jobs.iter().map(JobPack::trainers).collect();
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

impl<'v> Packer<'v, '_> {
    /// The nodes job `j`'s `role` pods may use, or None for every node.
    fn allowed(&self, j: usize, role: Role) -> Option<&'v [bool]> {
        let view: &'v View<'_> = self.view;
        view.eligibility.of(j, role)
    }

    /// Where job `j`'s `role` pods may go, and where they would rather (see
    /// `NodeState::best_fit_preferring`).
    fn fit(&self, j: usize, role: Role) -> (Option<&'v [bool]>, Option<&'v [i64]>) {
        let view: &'v View<'_> = self.view;
        (
            view.eligibility.of(j, role),
            view.eligibility.preference(j, role),
        )
    }
}

impl Packer<'_, '_> {
    fn trainer_res(&self, j: usize) -> Resources {
        self.view.jobs[j].job.trainers.resources
    }

    /// Whether one more trainer of job `j` fits on some node now. Free room only
    /// shrinks while jobs grow, so a trainer that fits nowhere now never will.
    fn trainer_fits_somewhere(&self, j: usize) -> bool {
        self.nodes
            .best_fit(&self.trainer_res(j), 1, self.allowed(j, Role::Trainer))
            .is_some()
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
}
