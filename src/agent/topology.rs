//! From NVML's answers to the node's GPU graph (petgraph) and what the planner consumes:
//! healthy GPUs in NVLink groups.

use super::devices::{Ancestor, DeviceAnswer, DeviceError, GpuDevices};
use petgraph::graph::UnGraph;
use petgraph::unionfind::UnionFind;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Above this a GPU is reported as too hot to schedule on.
pub const MAX_HEALTHY_TEMPERATURE_C: u32 = 90;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gpu {
    pub index: u32,
    pub uuid: String,
    pub model: String,
    pub memory_bytes: u64,
    pub pci_bus_id: String,
    pub healthy: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub problems: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub a: u32,
    pub b: u32,
    /// Active NVLinks wired directly between the two.
    pub nvlinks: u32,
    /// They reach each other over NVLink (directly or through an NVSwitch).
    pub nvlink: bool,
    /// None when NVML could not say.
    pub ancestor: Option<Ancestor>,
}

/// What `ebb agent --print` prints and what is published on the node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Discovery {
    pub gpus: Vec<Gpu>,
    pub links: Vec<Link>,
    /// Healthy GPUs that share NVLink, by index; largest group first.
    pub nvlink_groups: Vec<Vec<u32>>,
    /// Set when the GPUs could not be read at all (no NVML): the node has 0 GPUs for ebb.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

impl Discovery {
    pub fn none(why: String) -> Discovery {
        Discovery {
            error: Some(why),
            ..Discovery::default()
        }
    }

    pub fn healthy(&self) -> usize {
        self.gpus.iter().filter(|g| g.healthy).count()
    }

    pub fn model(&self) -> Option<&str> {
        self.gpus.first().map(|g| g.model.as_str())
    }
}

fn health(d: &DeviceAnswer) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(n) = d.ecc_uncorrected.filter(|&n| n > 0) {
        problems.push(format!("{n} uncorrected ECC errors"));
    }
    if let Some(t) = d.temperature_c.filter(|&t| t > MAX_HEALTHY_TEMPERATURE_C) {
        problems.push(format!("{t} C"));
    }
    if !d.xid_errors.is_empty() {
        problems.push(format!("critical XID errors {:?}", d.xid_errors));
    }
    for r in d.throttle.iter().filter(|r| r.starts_with("hw_")) {
        problems.push(format!("throttled: {r}"));
    }
    problems
}

/// Asks every question and builds the graph. One unreadable GPU is reported unhealthy;
/// only an unreadable count fails the whole discovery.
pub fn discover(devices: &dyn GpuDevices) -> Result<Discovery, DeviceError> {
    let count = devices.count()?;
    let mut answers = Vec::new();
    let mut gpus = Vec::new();
    for index in 0..count {
        match devices.device(index) {
            Ok(d) => {
                let problems = health(&d);
                gpus.push(Gpu {
                    index,
                    uuid: d.uuid.clone(),
                    model: d.name.clone(),
                    memory_bytes: d.memory_bytes,
                    pci_bus_id: d.pci_bus_id.clone(),
                    healthy: problems.is_empty(),
                    problems,
                });
                answers.push(d);
            }
            Err(e) => gpus.push(Gpu {
                index,
                uuid: String::new(),
                model: String::new(),
                memory_bytes: 0,
                pci_bus_id: String::new(),
                healthy: false,
                problems: vec![e.to_string()],
            }),
        }
    }
    let by_bus: HashMap<String, u32> = answers
        .iter()
        .map(|d| (normalize_bus_id(&d.pci_bus_id), d.index))
        .collect();
    let mut links = Vec::new();
    for a in 0..count {
        for b in a + 1..count {
            // A pair NVML cannot describe still counts its wired links.
            let pair = devices.pair(a, b).ok();
            let direct = answers.iter().find(|d| d.index == a).map_or(0, |d| {
                d.nvlinks
                    .iter()
                    .filter(|l| l.active)
                    .filter(|l| {
                        l.remote_pci_bus_id
                            .as_deref()
                            .and_then(|r| by_bus.get(&normalize_bus_id(r)))
                            == Some(&b)
                    })
                    .count() as u32
            });
            links.push(Link {
                a,
                b,
                nvlinks: direct,
                nvlink: pair.as_ref().is_some_and(|p| p.p2p_nvlink) || direct > 0,
                ancestor: pair.map(|p| p.ancestor),
            });
        }
    }
    let nvlink_groups = groups(&gpus, &links);
    Ok(Discovery {
        gpus,
        links,
        nvlink_groups,
        error: None,
    })
}

/// NVML writes bus ids as `00000000:18:00.0` or `0000:18:00.0` depending on the call.
fn normalize_bus_id(id: &str) -> String {
    let lower = id.to_ascii_lowercase();
    match lower.split_once(':') {
        Some((domain, rest)) => format!("{:0>8}:{rest}", domain.trim_start_matches('0')),
        None => lower,
    }
}

/// Connected components of the NVLink graph over healthy GPUs.
pub fn groups(gpus: &[Gpu], links: &[Link]) -> Vec<Vec<u32>> {
    let healthy: Vec<u32> = gpus.iter().filter(|g| g.healthy).map(|g| g.index).collect();
    let mut graph = UnGraph::<u32, u32>::new_undirected();
    let nodes: HashMap<u32, _> = healthy.iter().map(|&i| (i, graph.add_node(i))).collect();
    for l in links.iter().filter(|l| l.nvlink) {
        if let (Some(&a), Some(&b)) = (nodes.get(&l.a), nodes.get(&l.b)) {
            graph.add_edge(a, b, l.nvlinks);
        }
    }
    let mut sets = UnionFind::new(graph.node_count());
    for e in graph.edge_indices() {
        if let Some((a, b)) = graph.edge_endpoints(e) {
            sets.union(a.index(), b.index());
        }
    }
    let mut by_root: HashMap<usize, Vec<u32>> = HashMap::new();
    for n in graph.node_indices() {
        by_root
            .entry(sets.find(n.index()))
            .or_default()
            .push(graph[n]);
    }
    let mut out: Vec<Vec<u32>> = by_root
        .into_values()
        .map(|mut g| {
            g.sort_unstable();
            g
        })
        .collect();
    out.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    out
}
