//! Online services in the virtual cluster: Deployments that follow their HPA, and the
//! kube-scheduler that places their pods.

use super::hpa::Hpa;
use super::scenario::ServiceSpec;
use super::world::World;
use crate::model::{OtherPod, Resources};
use std::collections::HashMap;

pub struct SimService {
    pub spec: ServiceSpec,
    pub hpa: Hpa,
    pub replicas: u32,
    pub next_ordinal: u64,
    /// Creation time of each pod still pending, by pod name.
    pub pending_since: HashMap<String, f64>,
    /// Longest any pod of the service waited for a node.
    pub longest_pending_s: f64,
}

impl SimService {
    /// What the HPA settles on for the load at time 0, without its step limit.
    pub fn initial_replicas(&self) -> u32 {
        let h = &self.spec.hpa;
        let want = (self.qps_at(0.0) / h.target_qps_per_pod).ceil();
        let want = if want >= f64::from(u32::MAX) {
            u32::MAX
        } else {
            want.max(0.0) as u32
        };
        want.clamp(h.min_replicas, h.max_replicas)
    }

    pub fn qps_at(&self, t: f64) -> f64 {
        self.spec
            .load
            .iter()
            .filter(|s| s.at_s <= t)
            .max_by(|a, b| a.at_s.total_cmp(&b.at_s))
            .map_or(0.0, |s| s.qps)
    }
}

impl World {
    /// Pending service pods go where kube-scheduler would put them: among the nodes
    /// their placement allows (selector, affinity, taints), the one with the most room
    /// left (its default least-allocated scoring), if any fits.
    pub fn schedule_services(&mut self, now: f64) {
        if self.snapshot.other_pods.iter().any(|p| p.node.is_none()) {
            self.place_pending_services();
        }
        self.note_service_waits(now);
    }

    fn place_pending_services(&mut self) {
        self.pods_changed();
        struct Room<'n> {
            node: &'n crate::model::Node,
            free: Resources,
            cpu: i64,
        }
        let usage = self.snapshot.usage_by_node();
        let mut rooms: Vec<Room> = self
            .snapshot
            .nodes
            .iter()
            .map(|n| Room {
                node: n,
                free: usage
                    .get(n.name.as_str())
                    .map_or(n.allocatable, |u| n.allocatable.sub(u)),
                cpu: n.allocatable.cpu_milli.max(1),
            })
            .collect();
        let free_share = |r: &Room| r.free.cpu_milli as f64 / r.cpu as f64;
        let mut placed: Vec<(usize, String)> = Vec::new();
        for (i, pod) in self.snapshot.other_pods.iter().enumerate() {
            if pod.node.is_some() {
                continue;
            }
            let best = rooms
                .iter_mut()
                .filter(|r| {
                    !r.node.unschedulable
                        && pod.resources.fits_in(&r.free)
                        && pod.placement.admits(r.node.facts())
                })
                .max_by(|a, b| {
                    free_share(a)
                        .total_cmp(&free_share(b))
                        .then_with(|| b.node.name.cmp(&a.node.name))
                });
            if let Some(room) = best {
                room.free = room.free.sub(&pod.resources);
                placed.push((i, room.node.name.clone()));
            }
        }
        for (i, node) in placed {
            self.snapshot.other_pods[i].node = Some(node);
        }
    }

    /// Track how long each service pod has waited for a node.
    pub fn note_service_waits(&mut self, now: f64) {
        for svc in &mut self.services {
            let pending: Vec<&OtherPod> = self
                .snapshot
                .other_pods
                .iter()
                .filter(|p| p.workload.as_deref() == Some(svc.spec.name.as_str()))
                .filter(|p| p.node.is_none())
                .collect();
            svc.pending_since
                .retain(|name, _| pending.iter().any(|p| &p.name == name));
            for p in pending {
                svc.pending_since.entry(p.name.clone()).or_insert(now);
            }
            for &since in svc.pending_since.values() {
                svc.longest_pending_s = svc.longest_pending_s.max(now - since);
            }
        }
    }

    /// The Deployment follows its HPA: new replicas start pending; going down, pending
    /// replicas go first, then the newest.
    pub fn set_replicas(&mut self, s: usize, replicas: u32) {
        self.pods_changed();
        let svc = &mut self.services[s];
        let name = svc.spec.name.clone();
        let mine = |p: &OtherPod| p.workload.as_deref() == Some(name.as_str());
        let have = self.snapshot.other_pods.iter().filter(|p| mine(p)).count() as u32;
        if replicas > have {
            for _ in have..replicas {
                let pod = OtherPod {
                    namespace: svc.spec.namespace.clone(),
                    name: format!("{}-{}", name, svc.next_ordinal),
                    workload: Some(name.clone()),
                    resources: svc.spec.pod.resources(),
                    node: None,
                    placement: svc.spec.placement.clone(),
                };
                svc.next_ordinal += 1;
                self.snapshot.other_pods.push(pod);
            }
        } else {
            let mut excess = (have - replicas) as usize;
            for pass in [true, false] {
                let pods = &mut self.snapshot.other_pods;
                let mut i = pods.len();
                while excess > 0 && i > 0 {
                    i -= 1;
                    if mine(&pods[i]) && (pods[i].node.is_none() == pass) {
                        pods.remove(i);
                        excess -= 1;
                    }
                }
            }
        }
        svc.replicas = replicas;
    }

    pub fn service_pods(&self, s: usize) -> (u32, u32) {
        let name = self.services[s].spec.name.as_str();
        let mut placed = 0;
        let mut pending = 0;
        for p in &self.snapshot.other_pods {
            if p.workload.as_deref() == Some(name) {
                if p.node.is_some() {
                    placed += 1;
                } else {
                    pending += 1;
                }
            }
        }
        (placed, pending)
    }
}
