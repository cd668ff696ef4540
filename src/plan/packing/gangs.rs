//! Gangs: the masters, pservers and minimum trainers of running jobs brought back, and
//! newly admitted jobs placed all or nothing (rolled back when they do not pack).

use super::{Packer, Tier, Undo};
use crate::model::{DeleteReason, PodPlacement, Reason, Role};
use crate::plan::FastSet;
use crate::plan::admission::Admission;

impl Packer<'_, '_> {
    fn live_support_names(&self, j: usize) -> FastSet<String> {
        let jv = &self.view.jobs[j];
        jv.live_support
            .iter()
            .map(|b| jv.job.pods[b.pod].name.clone())
            .collect()
    }

    /// Missing masters/pservers (e.g. lost with a node) and trainers below min.
    pub(super) fn repair_running_gangs(&mut self) {
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
                    let fit = self.fit(j, role);
                    match self.fit_or_make_room(&res, None, fit, &reason) {
                        Some(n) => self.place_support(j, role, name, n),
                        None => break,
                    }
                }
                self.hold_room_for_renamed_support(j, role, &live);
            }
            let res = self.trainer_res(j);
            let fit = self.fit(j, Role::Trainer);
            while self.jobs[j].trainers() < self.jobs[j].min {
                let reason = DeleteReason::MakeRoomForJob { job: self.key(j) };
                match self.fit_or_make_room(&res, Some(j), fit, &reason) {
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
            let fit = self.fit(j, role);
            let Some(n) = self.fit_or_make_room(&res, None, fit, &reason) else {
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
    pub(super) fn admit_new_gangs(&mut self, admission: &mut [Admission]) -> bool {
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
            let allowed = self.allowed(j, Role::Trainer);
            for _ in placed..min {
                match self.make_room(&res, Some(j), allowed, &reason) {
                    Some(n) => self.place_trainer(j, n),
                    None => return false,
                }
            }
        }
        for role in [Role::Master, Role::Pserver] {
            while let Some(name) = self.support_name(j, role, &live) {
                let res = self.view.jobs[j].job.resources_of(role);
                let fit = self.fit(j, role);
                match self.fit_or_make_room(&res, Some(j), fit, &reason) {
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
}
