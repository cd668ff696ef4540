//! Which nodes each of a job's pod groups may use: its node selector, required node
//! affinity and GPU models matched against each node's labels, and its tolerations
//! against the node's NoSchedule and NoExecute taints (`model::placement`). Packing
//! places a pod only on a node its group may use, in every step (gangs, repairs,
//! growth, top-up and the search for room), so that ebb never binds what kube-scheduler
//! would not.
//!
//! Other workloads' pending pods (services, replicas an HPA wants) are given room only
//! on nodes their own constraints allow, read from their pod spec the same way.
//!
//! Preferred node affinity and PreferNoSchedule taints do not rule nodes out: they
//! score each node for a group ([`Placement::preference`]), and packing uses the score
//! to choose between nodes that pack alike (`NodeState::best_fit_preferring`).
//!
//! On a cluster without taints, unconstrained groups (the usual case) have no list and
//! cost nothing. Groups with the same constraints share one list, computed once per
//! view.

use super::FastMap;
use super::fairshare::Res3;
use super::node_classes::NodeClasses;
use super::pools::Pools;
use super::view::{JobView, View};
use crate::model::placement::{Misfit, PREFER_NO_SCHEDULE, Placement};
use crate::model::{Node, OtherPod, Reason, Role};
use std::rc::Rc;

#[derive(Default)]
pub struct Eligibility {
    jobs: JobLists,
    /// Per pending service pod of the view: the nodes it may be given room on, and its
    /// preferences, as for a job's group.
    per_service: Vec<Lists>,
}

/// The lists of every job's pod groups. They depend on the jobs' placements and the
/// nodes only, which a plan's rounds never change: a later round takes them over.
#[derive(Default, Debug, PartialEq)]
pub struct JobLists {
    /// Per job, per role (master, pserver, trainer): None when the group may use every
    /// node.
    per_job: Vec<[Option<Rc<[bool]>>; 3]>,
    /// Per job, per role: how much the group would rather run on each node (preferred
    /// node affinity, PreferNoSchedule taints); None when it likes every node alike.
    prefer_job: Vec<[Option<Rc<[i64]>>; 3]>,
}

fn role_index(role: Role) -> usize {
    match role {
        Role::Master => 0,
        Role::Pserver => 1,
        Role::Trainer => 2,
    }
}

/// The lists of one placement: the nodes it may use (None: every node) and its
/// preferences (None: none).
type Lists = (Option<Rc<[bool]>>, Option<Rc<[i64]>>);

/// Builds each distinct placement's lists once, matching it once per class of nodes.
struct ListMaker<'a, 'n> {
    nodes: &'a [&'n Node],
    jobs: &'a [JobView<'a>],
    pending_services: &'a [&'a OtherPod],
    /// Built when the first list is: an unconstrained cluster needs none.
    classes: Option<NodeClasses<'n>>,
    /// Whether some node repels pods (a NoSchedule or NoExecute taint), or ranks them
    /// lower (PreferNoSchedule): without, an unconstrained placement needs no list.
    any_repelling: bool,
    any_disliked: bool,
    shared: FastMap<&'a Placement, Lists>,
}

impl<'a, 'n> ListMaker<'a, 'n> {
    fn classes(&mut self) -> &NodeClasses<'n> {
        let (jobs, services) = (self.jobs, self.pending_services);
        self.classes.get_or_insert_with(|| {
            let placements = jobs
                .iter()
                .flat_map(|jv| {
                    [Role::Master, Role::Pserver, Role::Trainer].map(|r| jv.job.placement.of(r))
                })
                .chain(services.iter().map(|pod| &pod.placement));
            NodeClasses::build(self.nodes, placements)
        })
    }

    fn job_lists(&mut self) -> JobLists {
        let mut per_job = Vec::with_capacity(self.jobs.len());
        let mut prefer_job = Vec::with_capacity(self.jobs.len());
        for jv in self.jobs {
            let mut allowed: [Option<Rc<[bool]>>; 3] = [None, None, None];
            let mut prefer: [Option<Rc<[i64]>>; 3] = [None, None, None];
            for role in [Role::Master, Role::Pserver, Role::Trainer] {
                let (a, p) = self.lists(jv.job.placement.of(role));
                allowed[role_index(role)] = a;
                prefer[role_index(role)] = p;
            }
            per_job.push(allowed);
            prefer_job.push(prefer);
        }
        JobLists {
            per_job,
            prefer_job,
        }
    }

    /// Takes `lists` (built for these jobs) as the lists of their placements.
    fn remember(&mut self, lists: &JobLists) {
        for (jv, (allowed, prefer)) in self
            .jobs
            .iter()
            .zip(lists.per_job.iter().zip(&lists.prefer_job))
        {
            for role in [Role::Master, Role::Pserver, Role::Trainer] {
                let r = role_index(role);
                self.shared
                    .entry(jv.job.placement.of(role))
                    .or_insert_with(|| (allowed[r].clone(), prefer[r].clone()));
            }
        }
    }

    fn lists(&mut self, p: &'a Placement) -> Lists {
        if let Some(l) = self.shared.get(p) {
            return l.clone();
        }
        let needs_allowed = self.any_repelling || p.has_node_filters();
        let allowed: Option<Rc<[bool]>> =
            needs_allowed.then(|| self.classes().per_node(|n| p.admits(n.facts())));
        let needs_preference = self.any_disliked || !p.preferred.is_empty();
        let preference: Option<Rc<[i64]>> = needs_preference
            .then(|| self.classes().per_node(|n| p.preference(n.facts())))
            // A placement that likes every node alike breaks no tie.
            .filter(|scores| !scores.iter().all(|&s| s == scores[0]));
        let lists = (allowed, preference);
        self.shared.insert(p, lists.clone());
        lists
    }
}

impl Eligibility {
    /// The lists of `jobs` and `pending_services` on `nodes`; `earlier` are the job
    /// lists of an earlier round of the same plan (the same jobs, placements and nodes).
    pub fn build(
        jobs: &[JobView<'_>],
        nodes: &[&Node],
        pending_services: &[&OtherPod],
        earlier: Option<JobLists>,
    ) -> Eligibility {
        let mut maker = ListMaker {
            nodes,
            jobs,
            pending_services,
            classes: None,
            any_repelling: nodes.iter().any(|n| n.taints.iter().any(|t| t.repels())),
            any_disliked: nodes
                .iter()
                .any(|n| n.taints.iter().any(|t| t.effect == PREFER_NO_SCHEDULE)),
            shared: FastMap::default(),
        };
        let job_lists = match earlier.filter(|e| e.per_job.len() == jobs.len()) {
            Some(earlier) => {
                if cfg!(debug_assertions) {
                    let mut fresh = ListMaker {
                        shared: FastMap::default(),
                        classes: None,
                        ..maker
                    };
                    assert_eq!(earlier, fresh.job_lists(), "an earlier round's job lists");
                }
                if !pending_services.is_empty() {
                    // A service whose placement is a job's shares its list, as when
                    // built afresh: lists are told apart by identity (`pools`).
                    maker.remember(&earlier);
                }
                earlier
            }
            None => maker.job_lists(),
        };
        let per_service = pending_services
            .iter()
            .map(|pod| maker.lists(&pod.placement))
            .collect();
        Eligibility {
            jobs: job_lists,
            per_service,
        }
    }

    /// The job lists, for a later round (see [`JobLists`]).
    pub fn into_job_lists(self) -> JobLists {
        self.jobs
    }

    /// The nodes the view's `i`th pending service pod may be given room on (None: every
    /// node), and how much it would rather have each (None: no preference).
    pub fn for_service(&self, i: usize) -> (Option<&[bool]>, Option<&[i64]>) {
        self.per_service
            .get(i)
            .map_or((None, None), |(a, p)| (a.as_deref(), p.as_deref()))
    }

    /// The nodes job `j`'s `role` pods may use (by node index), or None for every node.
    pub fn of(&self, j: usize, role: Role) -> Option<&[bool]> {
        self.jobs.per_job.get(j)?[role_index(role)].as_deref()
    }

    /// How much job `j`'s `role` pods would rather run on each node (by node index), or
    /// None when they like every node alike: it only breaks ties between nodes that
    /// pack alike.
    pub fn preference(&self, j: usize, role: Role) -> Option<&[i64]> {
        self.jobs.prefer_job.get(j)?[role_index(role)].as_deref()
    }

    /// Whether job `j`'s `role` pods may use node `n`.
    pub fn allows(&self, j: usize, role: Role, n: usize) -> bool {
        super::index::allows(self.of(j, role), n)
    }

    /// Why job `j` cannot run anywhere, when one of its pod groups may use no
    /// schedulable node: naming the constraint that rules out the most of them.
    pub fn no_eligible_node(&self, j: usize, view: &View<'_>) -> Option<Reason> {
        let lists = self.jobs.per_job.get(j)?;
        for role in [Role::Trainer, Role::Master, Role::Pserver] {
            let Some(allowed) = &lists[role_index(role)] else {
                continue;
            };
            let schedulable = || (0..view.nodes.len()).filter(|&n| view.nodes[n].schedulable);
            if schedulable().any(|n| allowed[n]) {
                continue;
            }
            let placement = view.jobs[j].job.placement.of(role);
            let mut ruled_out: FastMap<Misfit, usize> = FastMap::default();
            for n in schedulable() {
                let node = view.node_refs[n];
                if let Some(m) = placement.misfit(node.facts()) {
                    *ruled_out.entry(m).or_default() += 1;
                }
            }
            let total = schedulable().count();
            // Most nodes ruled out first; ties by the constraint, so the reason is stable.
            let worst = ruled_out
                .into_iter()
                .max_by(|(ma, ca), (mb, cb)| ca.cmp(cb).then_with(|| mb.cmp(ma)));
            let (constraint, count) = worst.map_or(("no schedulable node".into(), 0), |(m, c)| {
                (m.to_string(), c)
            });
            return Some(Reason::NoEligibleNode {
                role: role.to_string(),
                message: format!(
                    "no node may take its {role}s: {constraint} rules out {count} of {total} \
                     schedulable nodes"
                ),
                constraint,
            });
        }
        None
    }
}

/// The cluster cut into pools for the fair share and admission, and the pool group of
/// each job of the view.
pub struct PoolMap {
    pub pools: Pools,
    /// Per job of the view: its group (the nodes its trainers may use).
    pub job_group: Vec<usize>,
}

impl Eligibility {
    /// Pools of nodes that every trainer group's eligibility (and that of pending
    /// services) treats alike, with each job's group: None when every group may use
    /// every node, and the cluster is one pool.
    ///
    /// A job's master and pservers count in its trainers' group: on a GPU cluster the
    /// trainers' constraints are the ones that bind.
    pub fn pools(&self, view: &View<'_>) -> Option<PoolMap> {
        let trainer = role_index(Role::Trainer);
        if self.jobs.per_job.iter().all(|l| l[trainer].is_none())
            && self.per_service.iter().all(|(a, _)| a.is_none())
        {
            return None;
        }
        // Distinct lists, by identity (groups with the same constraints share one).
        let mut lists: Vec<Rc<[bool]>> = Vec::new();
        let mut list_of: FastMap<*const bool, usize> = FastMap::default();
        // The pointer is only compared, never dereferenced.
        let mut intern = |l: &Rc<[bool]>| -> usize {
            *list_of.entry(l.as_ptr()).or_insert_with(|| {
                lists.push(l.clone());
                lists.len() - 1
            })
        };
        let job_list: Vec<Option<usize>> = self
            .jobs
            .per_job
            .iter()
            .map(|l| l[trainer].as_ref().map(&mut intern))
            .collect();
        let service_list: Vec<Option<usize>> = self
            .per_service
            .iter()
            .map(|(a, _)| a.as_ref().map(&mut intern))
            .collect();
        // A pool per distinct signature (which lists admit the node).
        let mut pool_of: FastMap<Vec<bool>, usize> = FastMap::default();
        let mut room: Vec<Res3> = Vec::new();
        let mut members: Vec<Vec<bool>> = Vec::new();
        for n in 0..view.nodes.len() {
            let signature: Vec<bool> = lists
                .iter()
                .map(|l| l.get(n).copied().unwrap_or(false))
                .collect();
            let p = match pool_of.get(&signature) {
                Some(&p) => p,
                None => {
                    room.push([0.0; 3]);
                    members.push(signature.clone());
                    pool_of.insert(signature, room.len() - 1);
                    room.len() - 1
                }
            };
            let r = view.node_room_for_jobs(n).as_f64();
            for k in 0..3 {
                room[p][k] += r[k];
            }
        }
        // Groups: one per list, and one for "every node" when a job has no list.
        let every = lists.len();
        let mut group_pools: Vec<Vec<usize>> = (0..lists.len())
            .map(|l| (0..room.len()).filter(|&p| members[p][l]).collect())
            .collect();
        group_pools.push((0..room.len()).collect());
        let mut group_fixed = vec![[0.0; 3]; group_pools.len()];
        for (pod, list) in view.pending_services.iter().zip(&service_list) {
            let fixed = &mut group_fixed[list.unwrap_or(every)];
            let r = pod.resources.as_f64();
            for k in 0..3 {
                fixed[k] += r[k];
            }
        }
        Some(PoolMap {
            pools: Pools {
                room,
                group_pools,
                group_fixed,
            },
            job_group: job_list.into_iter().map(|l| l.unwrap_or(every)).collect(),
        })
    }
}
