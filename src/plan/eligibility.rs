//! Which nodes each of a job's pod groups may use: its node selector, required node
//! affinity and GPU models matched against each node's labels, and its tolerations
//! against the node's NoSchedule and NoExecute taints (`model::placement`). Packing
//! places a pod only on a node its group may use, in every step (gangs, repairs,
//! growth, top-up and the search for room), so that ebb never binds what kube-scheduler
//! would not.
//!
//! On a cluster without such taints, unconstrained groups (the usual case) have no list
//! and cost nothing. Groups with the same constraints share one list, computed once per
//! view. Other workloads' pending pods (services) are taken to tolerate nothing: they
//! are given room only on untainted nodes.

use super::FastMap;
use super::fairshare::Res3;
use super::pools::Pools;
use super::view::{JobView, View};
use crate::model::placement::{Misfit, NodeFacts, Placement};
use crate::model::{Node, Reason, Role};
use std::rc::Rc;

#[derive(Default)]
pub struct Eligibility {
    /// Per job, per role (master, pserver, trainer): None when the group may use every
    /// node.
    per_job: Vec<[Option<Rc<[bool]>>; 3]>,
    /// The nodes a pod without constraints may use; None when no node repels one.
    untainted: Option<Rc<[bool]>>,
}

fn role_index(role: Role) -> usize {
    match role {
        Role::Master => 0,
        Role::Pserver => 1,
        Role::Trainer => 2,
    }
}

impl Eligibility {
    pub fn build(jobs: &[JobView<'_>], nodes: &[&Node]) -> Eligibility {
        let list_of =
            |p: &Placement| -> Rc<[bool]> { nodes.iter().map(|n| p.admits(facts(n))).collect() };
        let tainted = nodes.iter().any(|n| n.taints.iter().any(|t| t.repels()));
        let untainted = tainted.then(|| list_of(&Placement::default()));
        let mut shared: FastMap<&Placement, Rc<[bool]>> = FastMap::default();
        let mut per_job = Vec::with_capacity(jobs.len());
        for jv in jobs {
            let placement = &jv.job.placement;
            if placement.is_unconstrained() {
                per_job.push(std::array::from_fn(|_| untainted.clone()));
                continue;
            }
            let mut lists: [Option<Rc<[bool]>>; 3] = [None, None, None];
            for role in [Role::Master, Role::Pserver, Role::Trainer] {
                let p = placement.of(role);
                lists[role_index(role)] = if p.is_unconstrained() {
                    untainted.clone()
                } else {
                    Some(shared.entry(p).or_insert_with(|| list_of(p)).clone())
                };
            }
            per_job.push(lists);
        }
        Eligibility { per_job, untainted }
    }

    /// The nodes other workloads' pending pods may be given room on, or None for every
    /// node.
    pub fn for_services(&self) -> Option<&[bool]> {
        self.untainted.as_deref()
    }

    /// The nodes job `j`'s `role` pods may use (by node index), or None for every node.
    pub fn of(&self, j: usize, role: Role) -> Option<&[bool]> {
        self.per_job.get(j)?[role_index(role)].as_deref()
    }

    /// Whether job `j`'s `role` pods may use node `n`.
    pub fn allows(&self, j: usize, role: Role, n: usize) -> bool {
        self.of(j, role)
            .is_none_or(|a| a.get(n).copied().unwrap_or(false))
    }

    /// Why job `j` cannot run anywhere, when one of its pod groups may use no
    /// schedulable node: naming the constraint that rules out the most of them.
    pub fn no_eligible_node(&self, j: usize, view: &View<'_>) -> Option<Reason> {
        let lists = self.per_job.get(j)?;
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
                if let Some(m) = placement.misfit(facts(node)) {
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
        if self.untainted.is_none() && self.per_job.iter().all(|l| l[trainer].is_none()) {
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
            .per_job
            .iter()
            .map(|l| l[trainer].as_ref().map(&mut intern))
            .collect();
        let services_list = self.untainted.as_ref().map(&mut intern);
        // A pool per distinct signature (which lists admit the node).
        let mut pool_of: FastMap<Vec<bool>, usize> = FastMap::default();
        let mut room: Vec<Res3> = Vec::new();
        let mut members: Vec<Vec<bool>> = Vec::new();
        for n in 0..view.nodes.len() {
            let signature: Vec<bool> = lists
                .iter()
                .map(|l| l.get(n).copied().unwrap_or(false))
                .collect();
            let p = *pool_of.entry(signature.clone()).or_insert_with(|| {
                room.push([0.0; 3]);
                members.push(signature);
                room.len() - 1
            });
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
        let services = &mut group_fixed[services_list.unwrap_or(every)];
        for pod in &view.pending_services {
            let r = pod.resources.as_f64();
            for k in 0..3 {
                services[k] += r[k];
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

fn facts(n: &Node) -> NodeFacts<'_> {
    NodeFacts {
        name: &n.name,
        labels: &n.labels,
        taints: &n.taints,
    }
}
