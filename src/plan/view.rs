//! The snapshot checked and indexed: every later step works on indices, and every defect
//! is either a per-job reason (that job stays pending) or a plan-level problem.

use super::apply::Editable;
use super::eligibility::{Eligibility, JobLists, PoolMap};
use super::world::{Edited, World};
use super::{FastMap, FastSet};
use crate::model::{Job, Node, OtherPod, Problem, Queue, Reason, Resources, Role, default_queue};

pub const MAX_TRAINERS: u32 = 100_000;
pub const MAX_POD_REPLICAS: u32 = 1_024;
pub const MAX_WEIGHT: f64 = 1e6;

pub struct NodeView {
    pub allocatable: Resources,
    pub schedulable: bool,
}

pub struct QueueView {
    pub name: String,
    pub parent: Option<usize>,
    pub weight: f64,
    pub guaranteed: Resources,
    pub limit: Option<Resources>,
    /// Part of (or below) a parent cycle: its jobs cannot be planned.
    pub broken: bool,
    /// Deeper than `MAX_QUEUE_DEPTH` (its level): its jobs cannot be planned.
    pub too_deep: Option<usize>,
}

/// A bound pod of a job, by index into `job.pods` and into `View::nodes`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoundPod {
    pub pod: usize,
    pub node: usize,
}

pub struct JobView<'a> {
    pub job: &'a Job,
    /// Boxed: it moves from view to view (and, in the simulator, from plan to plan) as
    /// a pointer.
    index: Box<JobIndex>,
}

impl std::ops::Deref for JobView<'_> {
    type Target = JobIndex;
    fn deref(&self) -> &JobIndex {
        &self.index
    }
}

/// What indexing found of one job, owned, so that it can outlive the view: for the
/// next round of a plan, or for the next plan of a caller that knows the job is the
/// same on the same nodes and queues (see [`super::JobIndexCache`]).
#[derive(Clone, Debug, PartialEq)]
pub struct JobIndex {
    /// Why the job cannot be planned at all (bad spec, queue).
    pub invalid: Option<Reason>,
    pub queue: usize,
    /// Admitted before: keeps its gang, never pushed below min.
    pub running: bool,
    pub live_trainers: Vec<BoundPod>,
    /// The nodes of `live_trainers`, ascending, each once: where packing starts a job's
    /// locality from (every sizing pass of every round asks).
    pub trainer_nodes: Vec<usize>,
    /// Bound, not terminating masters and pservers.
    pub live_support: Vec<BoundPod>,
    /// Every master and pserver is live under its fixed name (the usual case: then
    /// packing has none to repair).
    pub support_complete: bool,
    /// Existing pods without a node, by role (reused by name when placing).
    pub unbound: Vec<usize>,
    /// Pods, not terminating, bound to a node the snapshot does not have.
    pub on_lost_nodes: Vec<usize>,
    /// Terminating pods still bound to a known node (they hold its room).
    pub terminating: Vec<BoundPod>,
    /// What indexing this job reported (also in `View::problems`).
    pub problems: Vec<Problem>,
    /// The most trainers worth giving: `trainers.max`, or less where the job's speedup
    /// points show throughput no longer rising (never below `min`).
    pub max_trainers: u32,
}

/// Per job of a world, by index: its index in an earlier view, while the job is the
/// snapshot's own (borrowed, unchanged).
pub struct ViewMemo<'s> {
    jobs: Vec<Option<KnownJob<'s>>>,
    /// The job lists of an earlier round of the same plan (see [`JobLists`]).
    job_lists: Option<JobLists>,
}

struct KnownJob<'s> {
    job: &'s Job,
    index: Box<JobIndex>,
}

impl JobIndex {
    /// Whether the job's name was taken by an earlier job: that depends on the other
    /// jobs, so such an index is never reused.
    pub(crate) fn was_duplicate(&self) -> bool {
        self.problems
            .iter()
            .any(|p| matches!(p, Problem::DuplicateJob { .. }))
    }
}

impl<'s> ViewMemo<'s> {
    /// Indexes kept by a caller, one per job of `jobs` (the snapshot about to be
    /// planned), each of a job unchanged since it was made.
    pub fn of_kept(jobs: &'s [Job], kept: Vec<Option<Box<JobIndex>>>) -> ViewMemo<'s> {
        ViewMemo {
            jobs: jobs
                .iter()
                .zip(kept)
                .map(|(job, index)| index.map(|index| KnownJob { job, index }))
                .collect(),
            // Between plans placements and nodes may have changed.
            job_lists: None,
        }
    }

    /// The indexes held, owned.
    pub fn into_kept(self) -> Vec<Option<Box<JobIndex>>> {
        self.jobs.into_iter().map(|k| k.map(|k| k.index)).collect()
    }
}

pub struct View<'a> {
    capacity: Resources,
    room_for_jobs: Resources,
    /// Each queue's path to the top of its tree, itself first.
    pub queue_paths: Vec<Vec<usize>>,
    pub nodes: Vec<NodeView>,
    pub node_names: Vec<&'a str>,
    pub node_refs: Vec<&'a Node>,
    pub node_index: FastMap<&'a str, usize>,
    pub queues: Vec<QueueView>,
    pub jobs: Vec<JobView<'a>>,
    /// Per node: everything bound there (other pods and ebb pods, terminating too).
    pub used: Vec<Resources>,
    /// Per node: only pods ebb does not manage.
    pub other_used: Vec<Resources>,
    pub pending_services: Vec<&'a OtherPod>,
    pub problems: Vec<Problem>,
    /// The nodes each constrained pod group may use.
    pub eligibility: Eligibility,
    /// The pools those constraints cut the cluster into (None: one pool).
    pub pools: Option<PoolMap>,
}

impl<'a> View<'a> {
    pub fn build(world: &'a World<'_>) -> View<'a> {
        Self::build_reusing(world, None)
    }

    /// [`View::build`], reusing the per-job index of `memo` (an earlier view of a world
    /// with the same nodes and queues) for every job still borrowed from the snapshot:
    /// the verification round re-indexes only the jobs the plan changed.
    pub fn build_reusing<'s>(world: &'a World<'s>, memo: Option<ViewMemo<'s>>) -> View<'a> {
        let (mut memo, job_lists) = memo.map_or((Vec::new(), None), |m| (m.jobs, m.job_lists));
        let mut problems = Vec::new();
        let (nodes, node_refs, node_index) = index_nodes(world.nodes, &mut problems);
        let node_names: Vec<&str> = node_refs.iter().map(|n| n.name.as_str()).collect();
        let queues = index_queues(world.queues, &mut problems);
        let queue_paths = (0..queues.len()).map(|q| path_up(&queues, q)).collect();
        let mut used = vec![Resources::ZERO; nodes.len()];
        let mut other_used = vec![Resources::ZERO; nodes.len()];
        let mut pending_services = Vec::new();
        for pod in world.other_pods() {
            if let Err(e) = pod.resources.validate("resources", false) {
                problems.push(Problem::InvalidOtherPod {
                    pod: pod.key(),
                    message: e.to_string(),
                });
                continue;
            }
            if pod.node.is_none()
                && let Err(e) = pod.placement.check()
            {
                // Still wanted: its demand stays, on no node its malformed constraint
                // cannot be shown to allow.
                problems.push(Problem::InvalidOtherPod {
                    pod: pod.key(),
                    message: format!("placement.{e}"),
                });
            }
            match &pod.node {
                None => pending_services.push(pod),
                Some(n) => match node_index.get(n.as_str()) {
                    Some(&i) => {
                        used[i] = used[i].add(&pod.resources);
                        other_used[i] = other_used[i].add(&pod.resources);
                    }
                    None => problems.push(Problem::PodOnUnknownNode {
                        pod: pod.key(),
                        node: n.clone(),
                    }),
                },
            }
        }
        let queue_index: FastMap<&str, usize> = queues
            .iter()
            .enumerate()
            .map(|(i, q)| (q.name.as_str(), i))
            .collect();
        let mut seen: FastSet<(&str, &str)> =
            FastSet::with_capacity_and_hasher(world.jobs.len(), Default::default());
        let mut jobs = Vec::with_capacity(world.jobs.len());
        let mut useful = UsefulSizes::default();
        for (index, edited) in world.jobs.iter().enumerate() {
            let job = edited.read();
            // A job first of its name is only known so while no earlier job takes
            // it: a duplicate (then or now) is indexed anew.
            if let Some(KnownJob {
                job: known_job,
                index: known,
            }) = memo.get_mut(index).and_then(Option::take)
                && let Edited::Borrowed(now) = edited
                && std::ptr::eq(*now, known_job)
                && !known.was_duplicate()
                && seen.insert((job.namespace.as_str(), job.name.as_str()))
            {
                // Live trainers are trainers: their pods need not be read (tens of
                // thousands of scattered reads, a quarter of this round's view).
                let per_trainer = job.trainers.resources;
                for b in &known.live_trainers {
                    used[b.node] = used[b.node].add(&per_trainer);
                }
                for b in known.live_support.iter().chain(&known.terminating) {
                    used[b.node] = used[b.node].add(&job.resources_of(job.pods[b.pod].role));
                }
                problems.extend(known.problems.iter().cloned());
                jobs.push(JobView { job, index: known });
                continue;
            }
            let problems_before = problems.len();
            let mut invalid = validate_job(job).err();
            if !seen.insert((job.namespace.as_str(), job.name.as_str())) {
                let key = job.key();
                problems.push(Problem::DuplicateJob { job: key.clone() });
                invalid.get_or_insert(Reason::InvalidSpec {
                    field: "name".into(),
                    message: format!("{key} appears twice in the snapshot"),
                });
            }
            let queue = match queue_index.get(job.queue.as_str()) {
                Some(&q) => {
                    if queues[q].broken {
                        invalid.get_or_insert(Reason::QueueCycle {
                            queue: job.queue.clone(),
                        });
                    }
                    if let Some(depth) = queues[q].too_deep {
                        invalid.get_or_insert(Reason::QueueTooDeep {
                            queue: job.queue.clone(),
                            depth,
                        });
                    }
                    q
                }
                None => {
                    invalid.get_or_insert(Reason::UnknownQueue {
                        queue: job.queue.clone(),
                    });
                    0
                }
            };
            let mut view = JobIndex {
                invalid,
                queue,
                running: job.admitted,
                // Nearly every pod of a running job is a live trainer.
                live_trainers: Vec::with_capacity(job.pods.len()),
                trainer_nodes: Vec::new(),
                // Saturating: an invalid job's replica counts can be anything.
                live_support: Vec::with_capacity(
                    job.master
                        .replicas
                        .saturating_add(job.pservers.replicas)
                        .min(MAX_POD_REPLICAS) as usize,
                ),
                support_complete: false,
                unbound: Vec::new(),
                on_lost_nodes: Vec::new(),
                terminating: Vec::new(),
                problems: Vec::new(),
                max_trainers: useful
                    .of(&job.speedup, job.trainers.max)
                    .max(job.trainers.min),
            };
            for (p, pod) in job.pods.iter().enumerate() {
                view.running = true;
                let res = job.resources_of(pod.role);
                match &pod.node {
                    None if !pod.terminating => view.unbound.push(p),
                    None => {}
                    Some(n) => match node_index.get(n.as_str()) {
                        Some(&i) => {
                            used[i] = used[i].add(&res);
                            let b = BoundPod { pod: p, node: i };
                            if pod.terminating {
                                view.terminating.push(b);
                            } else if pod.role == Role::Trainer {
                                view.live_trainers.push(b);
                            } else {
                                view.live_support.push(b);
                            }
                        }
                        None => {
                            if !pod.terminating {
                                view.on_lost_nodes.push(p);
                            }
                            problems.push(Problem::PodOnUnknownNode {
                                pod: format!("{}/{}", job.namespace, pod.name),
                                node: n.clone(),
                            })
                        }
                    },
                }
            }
            view.problems = problems[problems_before..].to_vec();
            view.support_complete = support_complete(job, &view.live_support);
            view.trainer_nodes = view.live_trainers.iter().map(|b| b.node).collect();
            view.trainer_nodes.sort_unstable();
            view.trainer_nodes.dedup();
            jobs.push(JobView {
                job,
                index: Box::new(view),
            });
        }
        for (i, node) in nodes.iter().enumerate() {
            let over = used[i].sub(&node.allocatable);
            if over.as_array().iter().any(|&v| v > 0) && !node.allocatable.is_zero() {
                problems.push(Problem::NodeOvercommitted {
                    node: node_names[i].to_string(),
                    over: over.clamp_non_negative(),
                });
            }
        }
        // Asked for by every step of every pass: summed once.
        let capacity = capacity(&nodes, &used);
        let room_for_jobs = room_for_jobs(capacity, &other_used, &pending_services);
        let eligibility = Eligibility::build(&jobs, &node_refs, &pending_services, job_lists);
        let mut view = View {
            capacity,
            room_for_jobs,
            queue_paths,
            nodes,
            node_names,
            node_refs,
            node_index,
            queues,
            jobs,
            used,
            other_used,
            pending_services,
            problems,
            eligibility,
            pools: None,
        };
        view.pools = view.eligibility.pools(&view);
        view
    }

    /// Every job's index, in job order.
    pub fn into_indexes(self) -> Vec<Box<JobIndex>> {
        self.jobs.into_iter().map(|jv| jv.index).collect()
    }

    /// The per-job index of the jobs `world` (the world this view was built on) still
    /// borrows from the snapshot, and the job lists, for [`View::build_reusing`] on the
    /// next round's world.
    pub fn into_memo<'s>(self, world: &World<'s>) -> ViewMemo<'s> {
        let job_lists = Some(self.eligibility.into_job_lists());
        let jobs = self
            .jobs
            .into_iter()
            .zip(&world.jobs)
            .map(|(jv, edited)| match edited {
                Edited::Borrowed(job) => Some(KnownJob {
                    job,
                    index: jv.index,
                }),
                Edited::Copied(_) => None,
            })
            .collect();
        ViewMemo { jobs, job_lists }
    }

    /// Capacity the cluster offers, for shares: schedulable nodes whole, cordoned nodes
    /// only as far as their pods already use them.
    pub fn capacity(&self) -> Resources {
        self.capacity
    }

    /// What ebb's jobs may hold in aggregate: capacity less other pods and the demand of
    /// services that wait for room.
    pub fn room_for_jobs(&self) -> Resources {
        self.room_for_jobs
    }

    /// Node `n`'s part of the capacity less the pods ebb does not manage there.
    pub fn node_room_for_jobs(&self, n: usize) -> Resources {
        node_capacity(&self.nodes[n], &self.used[n])
            .sub(&self.other_used[n])
            .clamp_non_negative()
    }
}

fn capacity(nodes: &[NodeView], used: &[Resources]) -> Resources {
    let mut total = Resources::ZERO;
    for (n, u) in nodes.iter().zip(used) {
        total = total.add(&node_capacity(n, u));
    }
    total
}

/// What a node adds to the capacity: a schedulable node whole, a cordoned one only as
/// far as its pods already use it.
fn node_capacity(n: &NodeView, used: &Resources) -> Resources {
    if n.schedulable {
        n.allocatable
    } else {
        Resources::from_array(std::array::from_fn(|k| {
            used.as_array()[k].min(n.allocatable.as_array()[k])
        }))
    }
}

fn room_for_jobs(
    capacity: Resources,
    other_used: &[Resources],
    pending_services: &[&OtherPod],
) -> Resources {
    let mut room = capacity;
    for u in other_used {
        room = room.sub(u);
    }
    for p in pending_services {
        room = room.sub(&p.resources);
    }
    room.clamp_non_negative()
}

/// Whether every master and pserver of `job` is live under its fixed name, told apart
/// without formatting a single name.
fn support_complete(job: &Job, live_support: &[BoundPod]) -> bool {
    let want = [Role::Master, Role::Pserver].map(|r| job.replicas_of(r));
    let mut have = [0u32; 2];
    for b in live_support {
        let pod = &job.pods[b.pod];
        let slot = match pod.role {
            Role::Master => 0,
            Role::Pserver => 1,
            Role::Trainer => continue,
        };
        // Pod names are unique within a job, so counting the fixed names is enough.
        let fixed = pod
            .name
            .strip_prefix(job.name.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|rest| rest.strip_prefix(if slot == 0 { "master-" } else { "pserver-" }))
            .and_then(|i| i.parse::<u32>().ok())
            .is_some_and(|i| i < want[slot]);
        have[slot] += u32::from(fixed);
    }
    have == want
}

fn index_nodes<'a>(
    nodes: &'a [Node],
    problems: &mut Vec<Problem>,
) -> (Vec<NodeView>, Vec<&'a Node>, FastMap<&'a str, usize>) {
    let mut out = Vec::with_capacity(nodes.len());
    let mut names = Vec::with_capacity(nodes.len());
    let mut index = FastMap::with_capacity_and_hasher(nodes.len(), Default::default());
    for node in nodes {
        if index.contains_key(node.name.as_str()) {
            problems.push(Problem::DuplicateNode {
                node: node.name.clone(),
            });
            continue;
        }
        // A node with a bad allocatable keeps its pods (they exist) but gets no new ones.
        let (allocatable, schedulable) = match node.allocatable.validate("allocatable", false) {
            Ok(()) => (node.allocatable, !node.unschedulable),
            Err(e) => {
                problems.push(Problem::InvalidNode {
                    node: node.name.clone(),
                    message: e.to_string(),
                });
                (Resources::ZERO, false)
            }
        };
        index.insert(node.name.as_str(), out.len());
        names.push(node);
        out.push(NodeView {
            allocatable,
            schedulable,
        });
    }
    (out, names, index)
}

fn index_queues(queues: &[Queue], problems: &mut Vec<Problem>) -> Vec<QueueView> {
    let mut out: Vec<QueueView> = Vec::with_capacity(queues.len() + 1);
    let mut index: FastMap<String, usize> = FastMap::default();
    for q in queues {
        if index.contains_key(&q.name) {
            problems.push(Problem::InvalidQueue {
                queue: q.name.clone(),
                message: "listed twice; the first one is used".into(),
            });
            continue;
        }
        let mut weight = q.weight;
        if !(weight.is_finite() && weight > 0.0 && weight <= MAX_WEIGHT) {
            problems.push(Problem::InvalidQueue {
                queue: q.name.clone(),
                message: format!("weight {weight} must be in (0, {MAX_WEIGHT}]; using 1"),
            });
            weight = 1.0;
        }
        let mut guaranteed = q.guaranteed;
        if let Err(e) = guaranteed.validate("guaranteed", false) {
            problems.push(Problem::InvalidQueue {
                queue: q.name.clone(),
                message: format!("{e}; using no guarantee"),
            });
            guaranteed = Resources::ZERO;
        }
        let mut limit = q.limit;
        if let Some(l) = limit
            && let Err(e) = l.validate("limit", false)
        {
            problems.push(Problem::InvalidQueue {
                queue: q.name.clone(),
                message: format!("{e}; using a zero limit"),
            });
            limit = Some(Resources::ZERO);
        }
        index.insert(q.name.clone(), out.len());
        out.push(QueueView {
            name: q.name.clone(),
            parent: None,
            weight,
            guaranteed,
            limit,
            broken: false,
            too_deep: None,
        });
    }
    if let std::collections::hash_map::Entry::Vacant(slot) = index.entry(default_queue()) {
        slot.insert(out.len());
        out.push(QueueView {
            name: default_queue(),
            parent: None,
            weight: 1.0,
            guaranteed: Resources::ZERO,
            limit: None,
            broken: false,
            too_deep: None,
        });
    }
    for q in queues {
        let Some(&i) = index.get(&q.name) else {
            continue;
        };
        if out[i].parent.is_some() {
            continue; // duplicate entry
        }
        if let Some(parent) = &q.parent {
            match index.get(parent) {
                Some(&p) => out[i].parent = Some(p),
                None => problems.push(Problem::InvalidQueue {
                    queue: q.name.clone(),
                    message: format!("parent {parent:?} does not exist; treated as top-level"),
                }),
            }
        }
    }
    // A queue whose parent chain does not reach the top within n steps is in or below a
    // cycle; mark it, and report the queues on the cycle itself.
    let n = out.len();
    for i in 0..n {
        let mut cur = i;
        let mut steps = 0;
        while let Some(p) = out[cur].parent {
            cur = p;
            steps += 1;
            if steps > n {
                break;
            }
        }
        if steps > n {
            out[i].broken = true;
        }
    }
    for i in 0..n {
        if !out[i].broken {
            continue;
        }
        // On the cycle when following parents leads back to i.
        let mut cur = out[i].parent;
        for _ in 0..n {
            match cur {
                Some(c) if c == i => {
                    problems.push(Problem::QueueCycle {
                        queue: out[i].name.clone(),
                    });
                    break;
                }
                Some(c) => cur = out[c].parent,
                None => break,
            }
        }
    }
    for q in &mut out {
        if q.broken {
            q.parent = None; // keep later tree walks finite
        }
    }
    for i in 0..n {
        let mut depth = 1;
        let mut cur = i;
        while let Some(p) = out[cur].parent {
            depth += 1;
            cur = p;
        }
        if depth > crate::model::MAX_QUEUE_DEPTH {
            out[i].too_deep = Some(depth);
            problems.push(Problem::QueueTooDeep {
                queue: out[i].name.clone(),
                depth,
            });
        }
    }
    out
}

/// Queue q and its ancestors, up to the top (parent chains were cut at cycles).
fn path_up(queues: &[QueueView], q: usize) -> Vec<usize> {
    let mut path = vec![q];
    let mut cur = q;
    while let Some(p) = queues[cur].parent {
        if path.len() > queues.len() {
            break;
        }
        path.push(p);
        cur = p;
    }
    path
}

/// Trainers are not given past the point where they add less than this to throughput.
pub const USEFUL_SPEEDUP_SLACK: f64 = 0.05;

/// [`super::speedup::useful_trainers`] of the curves met so far in one build: jobs of
/// one model share a curve, and working it out for every job was a thirtieth of a plan.
#[derive(Default)]
struct UsefulSizes<'j> {
    /// At most [`UsefulSizes::KEPT`] of them.
    met: Vec<UsefulSize<'j>>,
}

/// (speedup curve, max trainers, useful trainers).
type UsefulSize<'j> = (&'j [(u32, f64)], u32, u32);

impl<'j> UsefulSizes<'j> {
    const KEPT: usize = 32;

    fn of(&mut self, curve: &'j [(u32, f64)], max: u32) -> u32 {
        if curve.is_empty() {
            return max;
        }
        if let Some(&(_, _, useful)) = self.met.iter().find(|m| m.1 == max && m.0 == curve) {
            return useful;
        }
        let useful = super::speedup::useful_trainers(curve, max, USEFUL_SPEEDUP_SLACK);
        if self.met.len() < Self::KEPT {
            self.met.push((curve, max, useful));
        }
        useful
    }
}

fn invalid(field: &str, message: impl Into<String>) -> Reason {
    Reason::InvalidSpec {
        field: field.to_string(),
        message: message.into(),
    }
}

/// Checks one job's spec; the error names the field and what would fix it.
pub fn validate_job(job: &Job) -> Result<(), Reason> {
    if job.name.is_empty() {
        return Err(invalid("name", "must not be empty"));
    }
    if job.namespace.is_empty() {
        return Err(invalid("namespace", "must not be empty"));
    }
    if !(job.weight.is_finite() && job.weight > 0.0 && job.weight <= MAX_WEIGHT) {
        return Err(invalid(
            "weight",
            format!("{} must be in (0, {MAX_WEIGHT}]", job.weight),
        ));
    }
    if !job.submit_time_s.is_finite() {
        return Err(invalid("submit_time_s", "must be a finite number"));
    }
    let t = &job.trainers;
    if t.min > t.max {
        return Err(invalid(
            "trainers.min",
            format!(
                "min ({}) is greater than max ({}); set min <= max",
                t.min, t.max
            ),
        ));
    }
    if t.max == 0 || t.max > MAX_TRAINERS {
        return Err(invalid(
            "trainers.max",
            format!("{} must be between 1 and {MAX_TRAINERS}", t.max),
        ));
    }
    for (k, &(n, v)) in job.speedup.iter().enumerate() {
        let ok = n >= 1 && v.is_finite() && v > 0.0;
        let increasing = k == 0 || job.speedup[k - 1].0 < n;
        if !ok || !increasing {
            return Err(invalid(
                &format!("speedup[{k}]"),
                "points need trainers >= 1, increasing, and a throughput > 0",
            ));
        }
    }
    if let Err(e) = job.placement.check() {
        return Err(invalid(&format!("placement.{}", e.field), e.message));
    }
    if job.master.replicas == 0 || job.master.replicas > 16 {
        return Err(invalid(
            "master.replicas",
            format!("{} must be between 1 and 16", job.master.replicas),
        ));
    }
    if job.pservers.replicas > MAX_POD_REPLICAS {
        return Err(invalid(
            "pservers.replicas",
            format!(
                "{} must be at most {MAX_POD_REPLICAS}",
                job.pservers.replicas
            ),
        ));
    }
    let bad = |e: crate::model::ResourceError| {
        let s = e.to_string();
        let field = s.split(' ').next().unwrap_or("resources").to_string();
        invalid(&field, s)
    };
    t.resources
        .validate("trainers.resources", true)
        .map_err(bad)?;
    job.master
        .resources
        .validate("master.resources", true)
        .map_err(bad)?;
    job.pservers
        .resources
        .validate("pservers.resources", job.pservers.replicas > 0)
        .map_err(bad)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{USEFUL_SPEEDUP_SLACK, UsefulSizes};
    use crate::plan::speedup::useful_trainers;

    #[test]
    fn a_kept_useful_size_is_the_one_worked_out_for_that_curve_and_max() {
        let flat = vec![(1, 1.0), (8, 8.0), (16, 8.0)];
        let flat_copy = flat.clone(); // the same curve in another job
        let rising = vec![(1, 1.0), (8, 8.0), (16, 15.0)];
        let asks: [(&[(u32, f64)], u32); 7] = [
            (&flat, 64),
            (&flat_copy, 64),
            (&flat, 4),
            (&rising, 64),
            (&flat_copy, 4),
            (&[], 12),
            (&rising, 64),
        ];
        let mut useful = UsefulSizes::default();
        for (curve, max) in asks {
            assert_eq!(
                useful.of(curve, max),
                useful_trainers(curve, max, USEFUL_SPEEDUP_SLACK),
                "{curve:?} up to {max}"
            );
        }
        // Only distinct (curve, max) pairs are kept, and never more than KEPT.
        assert_eq!(useful.met.len(), 3);
        for max in 1..=100 {
            useful.of(&rising, max);
        }
        assert_eq!(useful.met.len(), UsefulSizes::KEPT);
        assert_eq!(useful.of(&rising, 100), 16);
    }
}
