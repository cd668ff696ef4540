//! The event loop: virtual time jumps from one event to the next (a submit, a load step,
//! an HPA sync, a pod becoming ready, a job finishing, a fault, a controller tick), and
//! jobs train at a constant rate in between.
//!
//! The controller only ticks when something changed since its last plan, or when a
//! scale-down cooldown runs out: `plan::plan` is a fixed point, so a tick on an unchanged
//! world would change nothing, and skipping it is what makes hours of virtual time cost
//! milliseconds. A tick plans with [`plan::plan_cached`] (the same plans): the world
//! tells the cache which jobs changed since the last plan, so only those are indexed
//! again.

use super::autoscaler::Autoscaler;
use super::error::SimError;
use super::report::{PolicyResult, Sample};
use super::scenario::Scenario;
use super::world::{PolicyKind, World};
use crate::model::{ScaleUp, Snapshot};
use crate::plan::{self, Policy};
use std::collections::BTreeMap;

/// Watches a run: progress, and each snapshot the controller plans.
pub trait Observer {
    /// Virtual time after each step.
    fn progress(&mut self, _t: f64) {}
    /// The snapshot of the `tick`-th plan, before planning.
    fn before_plan(&mut self, _tick: u64, _snapshot: &Snapshot, _policy: &Policy) {}
    /// Whether samples keep every job's trainer count (what `--json` and `--plot`
    /// show). Without them a sample holds totals only: a series of a long trace holds
    /// a sample per event, and a map of every running job in each grows as their product.
    fn per_job_series(&self) -> bool {
        true
    }
}

/// Progress ignored and samples with totals only: for runs that read only the summary.
pub struct SummaryOnly;

impl Observer for SummaryOnly {
    fn per_job_series(&self) -> bool {
        false
    }
}

/// A closure watches progress only.
impl<F: FnMut(f64)> Observer for F {
    fn progress(&mut self, t: f64) {
        self(t)
    }
}

pub fn run(
    scenario: &Scenario,
    kind: PolicyKind,
    observer: &mut dyn Observer,
) -> Result<PolicyResult, SimError> {
    let mut engine = Engine::new(scenario, kind, observer.per_job_series());
    while let Some((next, rates)) = engine.next_event() {
        engine.scaler.advance(&engine.w, next - engine.now);
        advance(&mut engine.w, &rates, next - engine.now);
        engine.now = next;
        engine.w.snapshot.time_s = next;
        observer.progress(next);
        engine.step(observer)?;
    }
    Ok(engine.finish())
}

/// A node going down (`up == false`) or coming back.
struct Fault {
    at_s: f64,
    up: bool,
    node: String,
}

struct Engine<'s> {
    scenario: &'s Scenario,
    kind: PolicyKind,
    policy: Policy,
    w: World,
    now: f64,
    /// Jobs by submit time, and how many of them are in.
    submit_order: Vec<usize>,
    submitted: usize,
    /// Submitted and not finished, in job order: what an event has to look at.
    active: Vec<usize>,
    finished: usize,
    next_sync: Vec<f64>,
    faults: Vec<Fault>,
    next_fault: usize,
    /// Something changed since the controller's last plan.
    dirty: bool,
    last_tick: f64,
    /// A tick due whether or not anything changed: a scale-down cooldown runs out.
    wake: f64,
    /// When the services' last load step has played out (HPA windows included).
    services_settle_at: f64,
    plans: u64,
    series: Vec<Sample>,
    per_job_series: bool,
    scaler: Autoscaler,
}

impl<'s> Engine<'s> {
    fn new(scenario: &'s Scenario, kind: PolicyKind, per_job_series: bool) -> Self {
        let policy = match kind {
            PolicyKind::Elastic | PolicyKind::NaiveElastic => Policy::default(),
            PolicyKind::Static => Policy {
                strict_fifo: true,
                ..Policy::default()
            },
        };
        let mut w = World::new(scenario, kind);
        let scaler = Autoscaler::new(scenario, &w.snapshot.node_groups);
        // Deployments exist before the run, at what their HPA wants for the first load.
        for s in 0..w.services.len() {
            let initial = w.services[s].initial_replicas();
            w.set_replicas(s, initial);
        }
        w.schedule_services(0.0);
        let mut faults: Vec<Fault> = Vec::new();
        for f in &scenario.faults {
            faults.push(Fault {
                at_s: f.down_s,
                up: false,
                node: f.node.clone(),
            });
            if let Some(up) = f.up_s {
                faults.push(Fault {
                    at_s: up,
                    up: true,
                    node: f.node.clone(),
                });
            }
        }
        faults.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        let services_settle_at = w
            .services
            .iter()
            .map(|s| {
                let last_step = s.spec.load.iter().map(|l| l.at_s).fold(0.0, f64::max);
                let h = &s.spec.hpa;
                last_step + 2.0 * (h.scale_down_stabilization_s + h.sync_period_s)
            })
            .fold(0.0, f64::max);
        let mut submit_order: Vec<usize> = (0..w.jobs.len()).collect();
        submit_order.sort_by(|&a, &b| w.jobs[a].spec.submit_s.total_cmp(&w.jobs[b].spec.submit_s));
        let mut engine = Engine {
            scenario,
            kind,
            policy,
            submit_order,
            submitted: 0,
            active: Vec::new(),
            finished: 0,
            next_sync: vec![0.0; w.services.len()],
            w,
            now: 0.0,
            faults,
            next_fault: 0,
            dirty: true,
            last_tick: f64::NEG_INFINITY,
            wake: f64::INFINITY,
            services_settle_at,
            plans: 0,
            series: Vec::new(),
            per_job_series,
            scaler,
        };
        engine.record();
        engine
    }

    /// When the next thing happens and the rates jobs train at until then, or None when
    /// the run is over.
    fn next_event(&mut self) -> Option<(f64, Rates)> {
        let now = self.now;
        let next_ready = self.w.next_ready_after(now);
        let rates = self.w.rates(now);
        debug_assert_eq!(
            rates,
            self.w.rates_afresh(now),
            "a kept rate is stale at {now}"
        );
        let w = &self.w;
        let mut next = next_ready.unwrap_or(f64::INFINITY);
        if let Some(&j) = self.submit_order.get(self.submitted) {
            next = next.min(w.jobs[j].spec.submit_s.max(now));
        }
        for &(j, rate) in &rates {
            let job = &w.progress[j];
            next = next.min(now + (job.work - job.done_work).max(0.0) / rate);
        }
        for &j in &self.active {
            let job = &w.progress[j];
            if job.paused_until > now {
                next = next.min(job.paused_until);
            }
        }
        for (s, svc) in w.services.iter().enumerate() {
            next = next.min(self.next_sync[s]);
            for step in svc.spec.load.iter().filter(|l| l.at_s > now) {
                next = next.min(step.at_s);
            }
        }
        if let Some(f) = self.faults.get(self.next_fault) {
            next = next.min(f.at_s.max(now));
        }
        next = next.min(self.scaler.next_event(w, now));
        let tick = self.scenario.tick_s;
        let mut next_tick = tick_at_or_after(now, tick);
        if next_tick <= self.last_tick + EPS {
            next_tick += tick;
        }
        if self.dirty {
            next = next.min(next_tick);
        }
        if self.wake.is_finite() {
            next = next.min(self.wake.max(next_tick));
        }
        let jobs_done = self.finished == w.jobs.len();
        // The run goes on until the autoscaler has handed back the nodes left idle.
        if (jobs_done || self.stuck(&rates))
            && now >= self.services_settle_at
            && !self.scaler.busy(w, now)
        {
            return None;
        }
        if !next.is_finite() || next > self.scenario.end_s {
            let end = self.scenario.end_s.max(now);
            advance(&mut self.w, &rates, end - now);
            self.now = end;
            return None;
        }
        Some((next, rates))
    }

    /// Nothing left that could change: every job is in, no fault is to come, the world
    /// is settled, and the jobs left make no progress (a fixed-size job that can never
    /// fit). They are reported unfinished.
    fn stuck(&self, rates: &Rates) -> bool {
        let w = &self.w;
        rates.is_empty()
            && self.submitted == self.submit_order.len()
            && self.next_fault == self.faults.len()
            && !self.dirty
            && !self.wake.is_finite()
            && w.upcoming_ready
                .last()
                .is_none_or(|&t| f64::from_bits(t) <= self.now)
    }

    /// Everything due at `now`: faults, submissions, finished jobs, HPA syncs, then the
    /// controller's tick.
    fn step(&mut self, observer: &mut dyn Observer) -> Result<(), SimError> {
        let now = self.now;
        while let Some(f) = self.faults.get(self.next_fault)
            && f.at_s <= now
        {
            if f.up {
                self.w.node_up(&f.node);
            } else {
                self.w.node_down(&f.node);
            }
            self.next_fault += 1;
            self.dirty = true;
        }
        if self.scaler.step(&mut self.w, now) {
            self.dirty = true;
        }
        let mut arrivals = Vec::new();
        while let Some(&j) = self.submit_order.get(self.submitted)
            && self.w.jobs[j].spec.submit_s <= now
        {
            self.submitted += 1;
            arrivals.push(j);
        }
        if !arrivals.is_empty() {
            // Jobs arriving together reach the controller in scenario order.
            arrivals.sort_unstable();
            for &j in &arrivals {
                self.w.submit(j, now);
            }
            self.active.extend(arrivals);
            self.active.sort_unstable();
            self.dirty = true;
        }
        let w = &mut self.w;
        let before = self.active.len();
        self.active.retain(|&j| {
            let job = &w.progress[j];
            let done = job.done_work >= job.work * (1.0 - 1e-9);
            if done {
                finish(w, j, now);
            }
            !done
        });
        if self.active.len() < before {
            self.finished += before - self.active.len();
            self.dirty = true;
        }
        for (s, next_sync) in self.next_sync.iter_mut().enumerate() {
            if *next_sync > now {
                continue;
            }
            let svc = &mut self.w.services[s];
            let (qps, current) = (svc.qps_at(now), svc.replicas);
            let want = svc.hpa.desired(now, current, qps);
            *next_sync = now + svc.hpa.sync_period_s();
            if want != current {
                self.w.set_replicas(s, want);
                self.dirty = true;
            }
        }
        if self.dirty {
            self.w.schedule_services(now);
        }
        self.tick_if_due(observer);
        self.w.note_service_waits(now);
        if cfg!(debug_assertions)
            && let Some((node, over)) = self.w.overcommitted_node()
        {
            return Err(SimError::Overcommitted {
                time_s: now,
                node,
                over: over.to_string(),
            });
        }
        self.record();
        Ok(())
    }

    fn tick_if_due(&mut self, observer: &mut dyn Observer) {
        let now = self.now;
        let tick = self.scenario.tick_s;
        let on_tick = (tick_at_or_after(now, tick) - now).abs() < EPS && now > self.last_tick + EPS;
        if !on_tick || !(self.dirty || now + EPS >= self.wake) {
            return;
        }
        observer.before_plan(self.plans, &self.w.snapshot, &self.policy);
        let p = plan::plan_cached(&self.w.snapshot, &self.policy, &mut self.w.index_cache);
        self.plans += 1;
        self.last_tick = now;
        let changed =
            !(p.create.is_empty() && p.delete.is_empty() && p.recreate_after_delete.is_empty());
        apply_plan(&mut self.w, &p, self.scenario, now);
        let naive;
        let shown = match self.kind {
            PolicyKind::NaiveElastic => {
                naive = every_trainer_pending(&self.w.snapshot, &self.policy);
                &naive
            }
            _ => &p.scale_up,
        };
        self.scaler.after_plan(&self.w, shown, now);
        self.w.schedule_services(now);
        // A plan that changed something is checked by the next tick; a quiet one means
        // the world is settled until the next event.
        self.dirty = changed;
        self.wake = cooldown_expiry(&self.w.snapshot, &self.policy, now)
            .map_or(f64::INFINITY, |t| tick_at_or_after(t, tick));
    }

    /// A sample when the state changed (the series is a step function). Most events
    /// change no trainer count, so those are compared in place before a sample (a map
    /// of every job's name) is built.
    fn record(&mut self) {
        // One pass over the pods for both (this runs at every event).
        let ((cpu, gpu), total) = self.w.counts();
        if let Some(last) = self.series.last()
            && last.cpu_util == cpu
            && last.gpu_util == gpu
            && if self.per_job_series {
                same_trainers(&last.trainers, &self.w)
            } else {
                last.trainers_total == total
            }
            && same_services(&last.services, &self.w)
        {
            return;
        }
        self.series.push(sample_of(
            &self.w,
            self.now,
            self.per_job_series,
            ((cpu, gpu), total),
        ));
    }

    fn finish(mut self) -> PolicyResult {
        if self.series.last().is_some_and(|last| last.t < self.now) {
            let s = sample(&self.w, self.now, self.per_job_series);
            self.series.push(s);
        }
        let nodes = self.scaler.account();
        PolicyResult::build(self.kind, &self.w, self.series, self.now, self.plans, nodes)
    }
}

/// (job, rate) of the jobs that train between two events.
type Rates = Vec<(usize, f64)>;

/// Jobs train for `dt` seconds at `rates` (constant between events).
fn advance(w: &mut World, rates: &Rates, dt: f64) {
    if dt <= 0.0 {
        return;
    }
    for &(j, rate) in rates {
        let job = &mut w.progress[j];
        job.done_work = (job.done_work + rate * dt).min(job.work);
    }
}

fn finish(w: &mut World, j: usize, now: f64) {
    w.progress[j].end_s = Some(now);
    w.remove_job(j);
}

fn apply_plan(w: &mut World, p: &crate::model::Plan, scenario: &Scenario, now: f64) {
    // Live trainers before the plan, in snapshot order (a plan adds and removes no job).
    let before: Vec<u32> = w
        .jobs_with_index()
        .map(|(_, job)| job.live_trainers().count() as u32)
        .collect();
    for j in plan::apply::apply_in_place(&mut w.snapshot, p) {
        w.index_cache.changed(j);
    }
    w.pods_changed();
    // Deletions first: a recreated master or pserver reuses its name.
    for d in &p.delete {
        if let Some(&j) = w.job_by_name.get(&d.job.name) {
            w.jobs[j].pod_ready_at.remove(&d.pod);
            w.forget_rate(j);
        }
    }
    for c in p.create.iter().chain(&p.recreate_after_delete) {
        if let Some(&j) = w.job_by_name.get(&c.job.name) {
            w.pod_starts(j, &c.pod, now + scenario.pod_startup_s);
            w.forget_rate(j);
            // Nodes are named `PREFIX-i` after their group.
            let group = c.node.rsplit_once('-').map_or(c.node.as_str(), |(g, _)| g);
            w.jobs[j].ran_on.insert((c.role, group.to_string()));
        }
    }
    // (job, live trainers, running), read before the sim jobs are changed.
    let after: Vec<(usize, u32, bool)> = w
        .jobs_with_index()
        .map(|(j, job)| {
            let running = job.admitted && !job.pods.is_empty();
            (j, job.live_trainers().count() as u32, running)
        })
        .collect();
    for ((j, live, running), was) in after.into_iter().zip(before) {
        let sim = &mut w.jobs[j];
        if sim.start_s.is_none() && running {
            sim.start_s = Some(now);
        }
        sim.trainers = live;
        if live != was && was > 0 {
            let pause = sim.spec.rescale_pause_s;
            let progress = &mut w.progress[j];
            progress.paused_until = now + pause;
            progress.rate_memo = None;
        }
    }
}

fn same_trainers(recorded: &BTreeMap<String, u32>, w: &World) -> bool {
    recorded.len() == w.snapshot.jobs.len()
        && w.snapshot
            .jobs
            .iter()
            .all(|job| recorded.get(&job.name) == Some(&(job.live_trainers().count() as u32)))
}

fn same_services(recorded: &BTreeMap<String, u32>, w: &World) -> bool {
    recorded.len() == w.services.len()
        && w.services
            .iter()
            .enumerate()
            .all(|(s, svc)| recorded.get(&svc.spec.name) == Some(&w.service_pods(s).0))
}

fn sample(w: &World, now: f64, per_job: bool) -> Sample {
    sample_of(w, now, per_job, w.utilisation_and_trainers())
}

/// A sample with the utilisation and trainer total already counted.
fn sample_of(w: &World, now: f64, per_job: bool, counted: ((f64, f64), u32)) -> Sample {
    let ((cpu, gpu), total) = counted;
    let mut trainers = BTreeMap::new();
    if per_job {
        for job in &w.snapshot.jobs {
            trainers.insert(job.name.clone(), job.live_trainers().count() as u32);
        }
    }
    let mut services = BTreeMap::new();
    for (s, svc) in w.services.iter().enumerate() {
        services.insert(svc.spec.name.clone(), w.service_pods(s).0);
    }
    Sample {
        t: now,
        cpu_util: cpu,
        gpu_util: gpu,
        trainers_total: total,
        trainers,
        services,
    }
}

/// Virtual times closer than this are the same instant.
const EPS: f64 = 1e-6;

/// The controller's first tick at or after `t` (ticks fall on multiples of `tick`).
fn tick_at_or_after(t: f64, tick: f64) -> f64 {
    (t / tick - 1e-9).ceil() * tick
}

/// The earliest time after `now` at which a job's scale-down cooldown ends.
fn cooldown_expiry(s: &Snapshot, policy: &Policy, now: f64) -> Option<f64> {
    s.jobs
        .iter()
        .filter_map(|j| j.last_scale_time_s)
        .map(|t| t + policy.scale_down_cooldown_s)
        .filter(|&t| t > now)
        .min_by(f64::total_cmp)
}

/// The nodes an autoscaler would add if every job showed every trainer up to its max
/// as a pending pod (the naive-elastic policy): the planner's requests for the same
/// cluster with each job's minimum raised to its maximum and no queue limits.
fn every_trainer_pending(s: &Snapshot, policy: &Policy) -> Vec<ScaleUp> {
    let mut all = s.clone();
    for job in &mut all.jobs {
        job.trainers.min = job.trainers.max;
    }
    for q in &mut all.queues {
        q.limit = None;
    }
    plan::plan(&all, policy).scale_up
}
