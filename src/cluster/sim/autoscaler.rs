//! A simulated Cluster Autoscaler for the scenario's autoscaled node groups.
//!
//! Scale-up: after each plan, a group is asked for as many nodes as the plan's
//! scale-up requests name (ebb shows no pod pending; the requests stand for the
//! ProvisioningRequests or unschedulable gang pods the controller would show); nodes
//! already joining count, the group's max caps, and each new node joins after the
//! group's delay. Scale-down, as Cluster Autoscaler's defaults have it: a node whose
//! requests stay below the utilisation threshold (GPUs on a GPU node, else the larger
//! of CPU and memory) for the unneeded time leaves, unless the group is at its min or a
//! pod that is not safe to evict runs there (a master or pserver: ebb marks them so).
//! Trainers and service pods on a node that leaves are evicted with it.
//!
//! It also keeps the run's node accounting: node-hours (every node that is up), their
//! cost where priced, and the nodes added that never ran a pod.

use super::scenario::Scenario;
use super::world::World;
use crate::model::{NodeGroup, Resources, Role, ScaleUp};
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub struct Autoscaler {
    groups: Vec<Group>,
    /// Nodes on their way: (joins at, name, group index).
    joining: Vec<(f64, String, usize)>,
    /// Per up node of an autoscaled group below the threshold at the last step: since
    /// when, and its group.
    idle_since: HashMap<String, (f64, usize)>,
    /// Nodes that ran a pod at some point.
    used: BTreeSet<String>,
    added: Vec<String>,
    node_seconds: f64,
    cost: f64,
    /// Whether any autoscaled group has a price.
    priced: bool,
}

struct Group {
    prefix: String,
    min: u32,
    max: u32,
    delay_s: f64,
    unneeded_s: f64,
    utilisation: f64,
    price_per_node_hour: Option<f64>,
}

/// The node accounting of a run (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct NodeAccount {
    pub node_hours: f64,
    /// When some autoscaled group has a price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    pub nodes_added: usize,
    pub nodes_added_unused: usize,
}

impl Autoscaler {
    /// For `scenario`, whose autoscaled groups the planner sees as `node_groups`.
    pub fn new(scenario: &Scenario, node_groups: &[NodeGroup]) -> Autoscaler {
        let groups: Vec<Group> = node_groups
            .iter()
            .map(|g| {
                let spec = scenario
                    .cluster
                    .nodes
                    .iter()
                    .find(|s| s.prefix == g.name)
                    .and_then(|s| s.autoscale.as_ref());
                Group {
                    prefix: g.name.clone(),
                    min: g.min,
                    max: g.max,
                    delay_s: g.delay_s,
                    unneeded_s: spec.map_or(600.0, |s| s.unneeded_s),
                    utilisation: spec.map_or(0.5, |s| s.utilisation),
                    price_per_node_hour: g.price_per_node_hour,
                }
            })
            .collect();
        Autoscaler {
            joining: Vec::new(),
            idle_since: HashMap::new(),
            used: BTreeSet::new(),
            added: Vec::new(),
            node_seconds: 0.0,
            cost: 0.0,
            priced: groups.iter().any(|g| g.price_per_node_hour.is_some()),
            groups,
        }
    }

    /// Node time passes: `dt` seconds with the nodes that are up now.
    pub fn advance(&mut self, w: &World, dt: f64) {
        if dt <= 0.0 {
            return;
        }
        self.node_seconds += w.snapshot.nodes.len() as f64 * dt;
        if self.groups.is_empty() {
            return;
        }
        for n in &w.snapshot.nodes {
            if let Some(g) = self.group_of(n.group.as_deref()) {
                self.cost += self.groups[g].price_per_node_hour.unwrap_or(0.0) * dt / 3600.0;
            }
        }
    }

    fn group_of(&self, name: Option<&str>) -> Option<usize> {
        let name = name?;
        self.groups.iter().position(|g| g.prefix == name)
    }

    /// After a plan: start the nodes that `requests` (what the cluster shows the
    /// autoscaler) ask for.
    pub fn after_plan(&mut self, w: &World, requests: &[ScaleUp], now: f64) {
        let mut wanted: BTreeMap<usize, u32> = BTreeMap::new();
        for r in requests {
            for n in &r.nodes {
                if let Some(g) = self.group_of(Some(&n.group)) {
                    *wanted.entry(g).or_default() += n.count;
                }
            }
        }
        let up_now = self.up_per_group(w);
        for (g, want) in wanted {
            let joining = self.joining.iter().filter(|j| j.2 == g).count() as u32;
            let up = u32::try_from(up_now[g]).unwrap_or(u32::MAX);
            let start = want
                .saturating_sub(joining)
                .min(self.groups[g].max.saturating_sub(up + joining));
            let prefix = &self.groups[g].prefix;
            let down: Vec<String> = w
                .all_nodes
                .iter()
                .filter(|n| n.group.as_deref() == Some(prefix.as_str()))
                .filter(|n| !w.node_is_up(&n.name))
                .filter(|n| !self.joining.iter().any(|j| j.1 == n.name))
                .map(|n| n.name.clone())
                .take(start as usize)
                .collect();
            let at = now + self.groups[g].delay_s;
            self.joining
                .extend(down.into_iter().map(|name| (at, name, g)));
        }
    }

    /// Nodes up in each group, in one pass.
    fn up_per_group(&self, w: &World) -> Vec<usize> {
        let mut up = vec![0; self.groups.len()];
        for n in &w.snapshot.nodes {
            if let Some(g) = self.group_of(n.group.as_deref()) {
                up[g] += 1;
            }
        }
        up
    }

    /// Everything due at `now`: nodes that join, idle nodes that leave. True when the
    /// cluster changed.
    pub fn step(&mut self, w: &mut World, now: f64) -> bool {
        if self.groups.is_empty() {
            // Nothing to scale: no pass over the pods at every event.
            return false;
        }
        let mut changed = false;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.joining)
            .into_iter()
            .partition(|j| j.0 <= now + 1e-9);
        self.joining = later;
        for (_, name, _) in due {
            w.node_up(&name);
            self.added.push(name);
            changed = true;
        }
        let usage = usage_by_node(w);
        for n in &w.snapshot.nodes {
            if usage
                .get(n.name.as_str())
                .is_some_and(|u| u.0 != Resources::ZERO)
            {
                self.used.insert(n.name.clone());
            }
        }
        let mut leaving = Vec::new();
        let mut up = self.up_per_group(w);
        // Rebuilt from the nodes up now: a node that went away forgets its idle time.
        let mut idle = HashMap::new();
        for n in &w.snapshot.nodes {
            let Some(g) = self.group_of(n.group.as_deref()) else {
                continue;
            };
            let group = &self.groups[g];
            let (used, unsafe_pod) = usage
                .get(n.name.as_str())
                .copied()
                .unwrap_or((Resources::ZERO, false));
            if utilisation(&used, &n.allocatable) >= group.utilisation {
                continue;
            }
            let since = self.idle_since.get(&n.name).map_or(now, |&(t, _)| t);
            if now + 1e-9 >= since + group.unneeded_s && !unsafe_pod && up[g] > group.min as usize {
                up[g] -= 1;
                leaving.push(n.name.clone());
            } else {
                idle.insert(n.name.clone(), (since, g));
            }
        }
        self.idle_since = idle;
        for name in leaving {
            // Cluster Autoscaler drains the node first: its evictable pods go.
            for job in &mut w.snapshot.jobs {
                job.pods
                    .retain(|p| p.node.as_deref() != Some(name.as_str()));
            }
            w.node_down(&name);
            changed = true;
        }
        changed
    }

    /// When something is next due: a node joins, or an idle node's unneeded time ends.
    pub fn next_event(&self, w: &World, now: f64) -> f64 {
        let joins = self
            .joining
            .iter()
            .map(|j| j.0)
            .fold(f64::INFINITY, f64::min);
        let up = self.up_per_group(w);
        let leaves = self
            .idle_since
            .values()
            .filter_map(|&(since, g)| {
                (up[g] > self.groups[g].min as usize).then_some(since + self.groups[g].unneeded_s)
            })
            .filter(|&t| t > now + 1e-9)
            .fold(f64::INFINITY, f64::min);
        joins.min(leaves)
    }

    /// Whether nodes are still to join or to leave.
    pub fn busy(&self, w: &World, now: f64) -> bool {
        self.next_event(w, now).is_finite()
    }

    pub fn account(&self) -> NodeAccount {
        NodeAccount {
            node_hours: self.node_seconds / 3600.0,
            cost: self.priced.then_some(self.cost),
            nodes_added: self.added.len(),
            nodes_added_unused: self
                .added
                .iter()
                .filter(|n| !self.used.contains(*n))
                .count(),
        }
    }
}

/// Per node: the requests bound there, and whether a pod that is not safe to evict
/// (a master or pserver) is among them.
fn usage_by_node(w: &World) -> HashMap<&str, (Resources, bool)> {
    let mut usage: HashMap<&str, (Resources, bool)> = HashMap::new();
    for job in &w.snapshot.jobs {
        for p in &job.pods {
            if let Some(node) = &p.node {
                let u = usage
                    .entry(node.as_str())
                    .or_insert((Resources::ZERO, false));
                u.0 = u.0.add(&job.resources_of(p.role));
                u.1 |= p.role != Role::Trainer;
            }
        }
    }
    for p in &w.snapshot.other_pods {
        if let Some(node) = &p.node {
            let u = usage
                .entry(node.as_str())
                .or_insert((Resources::ZERO, false));
            u.0 = u.0.add(&p.resources);
        }
    }
    usage
}

/// Cluster Autoscaler's measure: GPUs on a GPU node, else the larger of CPU and memory.
fn utilisation(used: &Resources, alloc: &Resources) -> f64 {
    let ratio = |u: i64, a: i64| if a > 0 { u as f64 / a as f64 } else { 0.0 };
    if alloc.gpus > 0 {
        ratio(used.gpus, alloc.gpus)
    } else {
        ratio(used.cpu_milli, alloc.cpu_milli).max(ratio(used.memory_bytes, alloc.memory_bytes))
    }
}
