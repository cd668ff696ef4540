#![allow(clippy::needless_range_loop)] // per-resource index loops read like the formulas
//! Properties of `plan::plan` over random clusters, checked on the plan and on the world
//! after the plan is applied.

mod common;
use common::*;
use ebb::model::*;
use ebb::plan::apply::{apply, apply_in_place, apply_keeping_names};
use ebb::plan::fairshare::{self, FairJob, FairProblem, FairQueue, job_share};
use ebb::plan::view::View;
use ebb::plan::world::World;
use ebb::plan::{JobIndexCache, Policy, lp, plan, plan_cached};
use proptest::prelude::*;

fn arb_node(i: usize) -> impl Strategy<Value = Node> {
    (
        prop::bool::ANY,
        2i64..32,
        prop::sample::select(vec![1i64, 2, 4, 8]),
        0usize..3,
    )
        .prop_map(move |(gpu, cores, gpus, group)| {
            let mut n = if gpu {
                gpu_node(&format!("n{i}"), cores, gpus)
            } else {
                cpu_node(&format!("n{i}"), cores)
            };
            n.topology.nvlink_group = gpu.then(|| format!("g{group}"));
            n.topology.rack = Some(format!("r{}", i % 2));
            n
        })
}

fn arb_job(i: usize) -> impl Strategy<Value = Job> {
    (
        0u32..6,
        0u32..30,
        prop::bool::weighted(0.3),
        1i64..4,
        0u32..3,
        0usize..3,
        1u32..4,
        -1i32..2,
    )
        .prop_map(
            move |(min, spread, gpu, size, pservers, queue, weight, priority)| {
                let trainer = if gpu {
                    Resources::new(1000 * size, GIB * size, size.min(2))
                } else {
                    Resources::new(500 * size, GIB, 0)
                };
                let mut j = job(&format!("j{i}"), min, min + spread.max(1), trainer);
                j.pservers.replicas = pservers;
                j.queue = format!("q{queue}");
                j.weight = f64::from(weight);
                j.priority = priority;
                j.submit_time_s = i as f64;
                j
            },
        )
}

fn arb_snapshot() -> impl Strategy<Value = Snapshot> {
    let nodes = (1usize..10).prop_flat_map(|n| (0..n).map(arb_node).collect::<Vec<_>>());
    let jobs = (0usize..8).prop_flat_map(|n| (0..n).map(arb_job).collect::<Vec<_>>());
    let queues = (
        prop::option::of(2i64..40),
        prop::option::of(1i64..20),
        1u32..4,
    )
        .prop_map(|(limit, guarantee, w)| {
            let mut q0 = Queue::new("q0");
            q0.limit = limit.map(|c| Resources::new(c * 1000, c * 8 * GIB, c));
            let mut q1 = Queue::new("q1");
            q1.guaranteed =
                guarantee.map_or(Resources::ZERO, |c| Resources::new(c * 1000, c * GIB, 0));
            q1.weight = f64::from(w);
            let mut q2 = Queue::new("q2");
            q2.parent = Some("q1".into());
            vec![q0, q1, q2]
        });
    (nodes, jobs, queues, 0usize..6).prop_map(|(nodes, jobs, queues, services)| {
        let mut s = snapshot(nodes, jobs);
        s.queues = queues;
        s.other_pods = (0..services)
            .map(|i| OtherPod {
                namespace: "web".into(),
                name: format!("svc-{i}"),
                workload: Some("svc".into()),
                resources: Resources::new(1000, GIB, 0),
                node: None,
                placement: Default::default(),
            })
            .collect();
        s
    })
}

/// A world that has been running: plan and apply a few ticks, then perturb it (new
/// service demand, a lost node, a late job).
fn arb_running_world() -> impl Strategy<Value = Snapshot> {
    running_world_from(arb_snapshot())
}

/// A world grown from `snapshots` as [`arb_running_world`] grows one.
fn running_world_from(
    snapshots: impl Strategy<Value = Snapshot>,
) -> impl Strategy<Value = Snapshot> {
    (snapshots, 0usize..4, prop::bool::ANY, 1usize..4).prop_map(
        |(s, extra_services, lose_node, ticks)| {
            let policy = Policy::default();
            let late = s.jobs.len() / 2;
            let mut s = s;
            let arriving = s.jobs.split_off(late);
            let (mut s, _) = run(s, &policy, ticks, 7.0);
            s.jobs.extend(arriving.into_iter().map(|mut j| {
                j.submit_time_s = s.time_s;
                j
            }));
            for i in 0..extra_services {
                s.other_pods.push(unplaced_pod(
                    &format!("late-{i}"),
                    Resources::new(2000, GIB, 0),
                ));
            }
            if lose_node && s.nodes.len() > 1 {
                s.nodes.pop();
            }
            s
        },
    )
}

fn node_of<'a>(s: &'a Snapshot, name: &str) -> Option<&'a Node> {
    s.nodes.iter().find(|n| n.name == name)
}

/// Free room per node after the world applied a plan (gone nodes excluded).
fn free_after(s: &Snapshot) -> Vec<(String, Resources, bool)> {
    s.nodes
        .iter()
        .map(|n| {
            let used = used_on(s, &n.name);
            (n.name.clone(), n.allocatable.sub(&used), n.has_gpus())
        })
        .collect()
}

/// What the admitted jobs of a queue and its descendants hold in bound, live pods.
fn queue_held(s: &Snapshot, queue: &str) -> Resources {
    let under = |start: &str| {
        let mut q = start.to_string();
        for _ in 0..=s.queues.len() {
            if q == queue {
                return true;
            }
            match s
                .queues
                .iter()
                .find(|x| x.name == q)
                .and_then(|x| x.parent.clone())
            {
                Some(parent) => q = parent,
                None => return false,
            }
        }
        false
    };
    let mut held = Resources::ZERO;
    for j in s.jobs.iter().filter(|j| j.admitted && under(&j.queue)) {
        for p in j.pods.iter().filter(|p| p.node.is_some() && !p.terminating) {
            held = held.add(&j.resources_of(p.role));
        }
    }
    held
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn plans_never_overcommit_and_respect_bounds(s in arb_running_world()) {
        let p = plan(&s, &Policy::default());
        let after = apply(&s, &p);
        // Nodes that were sound stay sound.
        assert_no_overcommit(&after);
        for jp in p.jobs.iter().filter(|j| j.admitted) {
            let job = s.jobs.iter().find(|j| j.key() == jp.job).unwrap();
            prop_assert!(jp.target_trainers <= job.trainers.max);
            let live = after.jobs.iter().find(|j| j.key() == jp.job).unwrap().live_trainers().count() as u32;
            prop_assert_eq!(live, jp.target_trainers);
            if jp.target_trainers < job.trainers.min {
                prop_assert!(matches!(jp.reason, Some(Reason::BelowMin { .. })), "{:?}", jp);
            }
        }
        // Every created pod has a name of its own: not created twice, not the name of a
        // pod that is bound and alive.
        let mut names = std::collections::HashSet::new();
        for c in &p.create {
            prop_assert!(names.insert((c.job.clone(), c.pod.clone())), "created twice: {:?}", c);
            let job = s.jobs.iter().find(|j| j.key() == c.job).unwrap();
            let taken = job.pods.iter().any(|x| x.name == c.pod && x.node.is_some() && !x.terminating)
                && !p.delete.iter().any(|d| d.job == c.job && d.pod == c.pod);
            prop_assert!(!taken, "created over a live pod: {:?}", c);
        }
        // No queue is pushed past its limit (one already past it may only shrink).
        for q in s.queues.iter().filter(|q| q.limit.is_some()) {
            let limit = q.limit.unwrap();
            let (before, now) = (queue_held(&s, &q.name), queue_held(&after, &q.name));
            prop_assert!(now.fits_in(&limit) || now.fits_in(&before),
                "queue {} holds {} over its limit {} (held {} before)", q.name, now, limit, before);
        }
        // Masters and pservers are never deleted.
        for d in &p.delete {
            let job = s.jobs.iter().find(|j| j.key() == d.job).unwrap();
            let pod = job.pods.iter().find(|x| x.name == d.pod).unwrap();
            prop_assert!(pod.role == Role::Trainer || d.reason == DeleteReason::NodeGone, "{:?}", d);
        }
    }

    #[test]
    fn service_demand_comes_before_trainers_above_min(s in arb_running_world()) {
        let p = plan(&s, &Policy::default());
        let after = apply(&s, &p);
        let free = free_after(&after);
        for pod in s.other_pods.iter().filter(|o| o.node.is_none()) {
            if p.service_reservations.iter().any(|r| r.pod == pod.key()) {
                continue;
            }
            // Unplaced: then no node could hold it even with every trainer above its
            // job's minimum removed.
            for (name, room, _) in &free {
                let node = node_of(&after, name).unwrap();
                if node.unschedulable { continue; }
                let mut room = *room;
                for j in &after.jobs {
                    let above = (j.live_trainers().count() as u32).saturating_sub(j.trainers.min);
                    let here = j.live_trainers().filter(|t| t.node.as_deref() == Some(name)).count() as u32;
                    room = room.add(&j.trainers.resources.times(i64::from(above.min(here))));
                }
                prop_assert!(!pod.resources.fits_in(&room),
                    "service pod {} could fit on {} by evicting trainers above min", pod.key(), name);
            }
        }
    }

    #[test]
    fn plans_are_work_conserving(s in arb_running_world()) {
        let p = plan(&s, &Policy::default());
        let after = apply(&s, &p);
        let free = free_after(&after);
        for jp in p.jobs.iter().filter(|j| j.admitted) {
            let job = after.jobs.iter().find(|j| j.key() == jp.job).unwrap();
            if jp.target_trainers >= job.trainers.max { continue; }
            // Queue limits may hold it back; skip jobs whose queue sits at its limit.
            let limited = s.queues.iter().any(|q| q.limit.is_some()) && (job.queue == "q0");
            if limited { continue; }
            for (name, room, _) in &free {
                let node = node_of(&after, name).unwrap();
                prop_assert!(node.unschedulable || !job.trainers.resources.fits_in(room),
                    "{} is below max ({} < {}) while {} has room {}", jp.job, jp.target_trainers,
                    job.trainers.max, name, room);
            }
        }
    }

    #[test]
    fn plans_are_deterministic(s in arb_running_world()) {
        let policy = Policy::default();
        prop_assert_eq!(plan(&s, &policy), plan(&s, &policy));
    }

    #[test]
    fn plans_are_a_fixed_point(s in arb_running_world()) {
        let policy = Policy::default();
        let p1 = plan(&s, &policy);
        let after = apply(&s, &p1);
        // The simulator applies plans in place: the same world either way.
        let mut in_place = s.clone();
        apply_in_place(&mut in_place, &p1);
        prop_assert_eq!(&in_place, &after);
        // The planner's own rounds apply to a borrowed world, copying what changes.
        let mut world = World::of(&s);
        world.apply_keeping_names(&p1);
        prop_assert_eq!(world.to_snapshot(), apply_keeping_names(&s, &p1));
        let again = plan(&after, &policy);
        prop_assert!(again.create.is_empty(), "replan creates: {:?}", again.create);
        prop_assert!(again.delete.is_empty(), "replan deletes: {:?}", again.delete);
    }

    /// The verification round indexes only the jobs the plan changed and reuses the
    /// first round's index for the rest: the view must be the one built from scratch.
    #[test]
    fn a_view_reusing_the_last_one_is_the_view_built_anew(s in arb_running_world()) {
        let policy = Policy::default();
        // Also from a snapshot with terminating pods (the first plan's deletions), and
        // with pods being deleted that still hold their node.
        let after = apply_keeping_names(&s, &plan(&s, &policy));
        let mut leaving = s.clone();
        for job in &mut leaving.jobs {
            if let Some(pod) = job.pods.iter_mut().rev().find(|p| p.node.is_some()) {
                pod.terminating = true;
            }
        }
        // And with a job under a name already taken (a reused job's name must still be
        // noted, or a later copy of it passes as new).
        let mut twice = s.clone();
        if let Some(first) = s.jobs.first() {
            twice.jobs.insert(twice.jobs.len() / 2 + 1, first.clone());
        }
        for s in [&s, &after, &leaving, &twice] {
            let next = plan(s, &policy);
            let mut world = World::of(s);
            let memo = View::build(&world).into_memo(&world);
            world.apply_keeping_names(&next);
            views_agree(&View::build_reusing(&world, Some(memo)), &View::build(&world))?;
        }
    }
    /// A caller keeping each job's index from tick to tick, and telling the cache what it
    /// changed, gets `plan`'s plans whatever changes: jobs leaving, arriving (also under
    /// a name already taken, ahead of its holder), pods moving or terminating, nodes and
    /// queues changing, jobs reordered. (Debug builds also check each reused index.)
    #[test]
    fn plans_reusing_kept_job_indexes_are_plan_s_plans(
        s in arb_snapshot(),
        changes in prop::collection::vec((0u8..9, 0usize..64), 1..8),
    ) {
        let policy = Policy::default();
        let mut cache = JobIndexCache::new();
        let mut s = s;
        let late = s.jobs.len() / 2;
        let mut arriving = s.jobs.split_off(late);
        for (tick, &(change, pick)) in changes.iter().enumerate() {
            let cached = plan_cached(&s, &policy, &mut cache);
            prop_assert_eq!(&cached, &plan(&s, &policy), "tick {}", tick);
            for j in apply_in_place(&mut s, &cached) {
                cache.changed(j);
            }
            s.time_s += 7.0;
            let n = s.jobs.len();
            match change {
                0 if n > 0 => {
                    s.jobs.remove(pick % n);
                    cache.removed(pick % n);
                }
                1 if !arriving.is_empty() => {
                    let mut j = arriving.remove(0);
                    j.submit_time_s = s.time_s;
                    s.jobs.push(j);
                    cache.pushed();
                }
                2 if n > 0 => {
                    let mut twin = s.jobs[pick % n].clone();
                    twin.pods.clear();
                    twin.admitted = false;
                    s.jobs.insert(0, twin);
                    cache.inserted(0);
                }
                3 if n > 0 && !s.nodes.is_empty() => {
                    let node = s.nodes[pick % s.nodes.len()].name.clone();
                    if let Some(pod) = s.jobs[pick % n].pods.iter_mut().find(|p| p.node.is_some()) {
                        pod.node = Some(node);
                    }
                    cache.changed(pick % n);
                }
                4 if n > 0 => {
                    if let Some(pod) = s.jobs[pick % n].pods.last_mut() {
                        pod.terminating = true;
                    }
                    cache.changed(pick % n);
                }
                5 if s.nodes.len() > 1 => {
                    s.nodes.remove(pick % s.nodes.len());
                    cache.clear();
                }
                6 => {
                    let q = pick % s.queues.len();
                    s.queues[q].weight += 1.0;
                    cache.clear();
                }
                7 if n > 1 => {
                    s.jobs.swap(0, pick % n);
                    cache.changed(0);
                    cache.changed(pick % n);
                }
                _ => {}
            }
        }
        prop_assert_eq!(plan_cached(&s, &policy, &mut cache), plan(&s, &policy));
    }

    /// Restricted to worlds with no newcomer: still fails when a job lost its trainers with
    /// a node and the repair only fits after the first plan's own changes.
    #[test]
    fn plans_without_newcomers_are_a_fixed_point(s in arb_running_world()) {
        let policy = Policy::default();
        let mut s = s;
        s.jobs.retain(|j| j.admitted);
        let p1 = plan(&s, &policy);
        let after = apply(&s, &p1);
        let again = plan(&after, &policy);
        prop_assert!(again.create.is_empty(), "replan creates: {:?}", again.create);
        prop_assert!(again.delete.is_empty(), "replan deletes: {:?}", again.delete);
    }
}

// ---- the fair share on its own -------------------------------------------------------

fn arb_flat_problem() -> impl Strategy<Value = FairProblem> {
    let job = (
        prop::array::uniform3(0u32..5),
        prop::array::uniform3(0u32..4),
        0u32..20,
        1u32..4,
    )
        .prop_map(|(r, b, max_extra, w)| {
            let mut per_trainer = r.map(f64::from);
            if per_trainer.iter().all(|&v| v == 0.0) {
                per_trainer[0] = 1.0;
            }
            FairJob {
                queue: 0,
                weight: f64::from(w),
                base: b.map(f64::from),
                per_trainer,
                max_extra,
                current_extra: 0,
            }
        });
    (
        prop::collection::vec(job, 1..8),
        prop::array::uniform3(10u32..80),
    )
        .prop_map(|(jobs, cap)| {
            let capacity = cap.map(f64::from);
            FairProblem {
                capacity,
                room: capacity,
                queues: vec![FairQueue {
                    parent: None,
                    weight: 1.0,
                    guaranteed: [0.0; 3],
                    limit: [f64::INFINITY; 3],
                }],
                jobs,
                pools: None,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// The water-filling and the LP stages give the same continuous allocation.
    #[test]
    fn water_filling_agrees_with_the_lp(p in arb_flat_problem()) {
        let w = fairshare::continuous(&p);
        let l = lp::continuous(&p).expect("LP solves");
        for (j, (a, b)) in w.iter().zip(&l).enumerate() {
            prop_assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "job {}: water {} vs lp {} in {:?}", j, a, b, p);
        }
    }

    /// DRF up to one instance: a job below its cap cannot grow without taking from a job
    /// at or below it. Taking a trainer from a job that stays richer than the grown job
    /// is always allowed, so: even with every such trainer taken back, the job's next
    /// trainer still does not fit. (Leftovers too small for it may go to richer jobs:
    /// that is work conservation, not unfairness.)
    #[test]
    fn integer_shares_are_drf_fair(p in arb_flat_problem()) {
        let out = fairshare::solve(&p);
        let mut base = [0.0; 3];
        let mut used = [0.0; 3];
        for (j, job) in p.jobs.iter().enumerate() {
            for k in 0..3 {
                base[k] += job.base[k];
                used[k] += job.base[k] + f64::from(out.extra[j]) * job.per_trainer[k];
            }
        }
        // Extra trainers never push a resource past the room; one the bases already
        // over-fill gets none.
        for k in 0..3 { prop_assert!(used[k] <= p.room[k].max(base[k]) + 1e-6, "{:?}", out); }
        for (i, job) in p.jobs.iter().enumerate() {
            if out.extra[i] >= job.max_extra { continue; }
            let mine = job_share(job, &p.capacity, f64::from(out.extra[i]) + 1.0);
            let mut reclaimable = [0.0; 3];
            for (j, other) in p.jobs.iter().enumerate() {
                if j == i { continue; }
                let richer = (1..=out.extra[j])
                    .filter(|&m| job_share(other, &p.capacity, f64::from(out.extra[j] - m)) > mine + 1e-9)
                    .count();
                for k in 0..3 { reclaimable[k] += other.per_trainer[k] * richer as f64; }
            }
            let still_blocked = (0..3).any(|k| {
                job.per_trainer[k] > 0.0
                    && used[k] - reclaimable[k] + job.per_trainer[k] > p.room[k] + 1e-9
            });
            prop_assert!(still_blocked,
                "job {} could grow by taking only from richer jobs: {:?} (reclaimable {:?})",
                i, out, reclaimable);
        }
    }
}

fn views_agree(reused: &View, anew: &View) -> Result<(), TestCaseError> {
    prop_assert_eq!(&reused.used, &anew.used);
    prop_assert_eq!(reused.capacity(), anew.capacity());
    prop_assert_eq!(reused.room_for_jobs(), anew.room_for_jobs());
    prop_assert_eq!(&reused.problems, &anew.problems);
    prop_assert_eq!(reused.jobs.len(), anew.jobs.len());
    for (a, b) in reused.jobs.iter().zip(&anew.jobs) {
        prop_assert!(std::ptr::eq(a.job, b.job));
        prop_assert_eq!(&a.invalid, &b.invalid);
        prop_assert_eq!(
            (a.queue, a.running, a.max_trainers, a.support_complete),
            (b.queue, b.running, b.max_trainers, b.support_complete)
        );
        let nodes =
            |v: &[ebb::plan::view::BoundPod]| v.iter().map(|x| (x.pod, x.node)).collect::<Vec<_>>();
        prop_assert_eq!(nodes(&a.live_trainers), nodes(&b.live_trainers));
        prop_assert_eq!(&a.trainer_nodes, &b.trainer_nodes);
        prop_assert_eq!(nodes(&a.live_support), nodes(&b.live_support));
        prop_assert_eq!(nodes(&a.terminating), nodes(&b.terminating));
        prop_assert_eq!(&a.unbound, &b.unbound);
        prop_assert_eq!(&a.on_lost_nodes, &b.on_lost_nodes);
    }
    Ok(())
}

/// `s` with node labels (`pool`: a or b, `gen`: 1..=3), some nodes tainted
/// `dedicated=ml` (NoSchedule, NoExecute or PreferNoSchedule), and each job's pod groups
/// constrained at random: a pool, a generation above 1 (Gt), a NotIn, a toleration of
/// the taint, or nothing.
fn arb_constrained_snapshot() -> impl Strategy<Value = Snapshot> {
    use ebb::model::placement::{NodeSelectorTerm, Placement, Requirement, Taint, Toleration};
    let labels = prop::collection::vec((prop::bool::ANY, 1u32..4, 0u8..4), 10);
    let choices = prop::collection::vec((0u8..6, 0u8..6, 0u8..6), 8);
    (arb_snapshot(), labels, choices).prop_map(|(mut s, labels, choices)| {
        for (n, (pool_a, generation, taint)) in s.nodes.iter_mut().zip(labels) {
            n.labels
                .insert("pool".into(), if pool_a { "a" } else { "b" }.into());
            n.labels.insert("gen".into(), generation.to_string());
            let effect = match taint {
                0 => "NoSchedule",
                1 => "NoExecute",
                2 => "PreferNoSchedule",
                _ => continue,
            };
            n.taints.push(Taint {
                key: "dedicated".into(),
                value: "ml".into(),
                effect: effect.into(),
            });
        }
        let constraint = |c: u8| -> Placement {
            let term = |key: &str, operator: &str, value: &str| {
                Some(vec![NodeSelectorTerm {
                    match_expressions: vec![Requirement {
                        key: key.into(),
                        operator: operator.into(),
                        values: vec![value.into()],
                    }],
                    match_fields: Vec::new(),
                }])
            };
            match c {
                0 => Placement {
                    node_selector: [("pool".to_string(), "a".to_string())].into(),
                    ..Placement::default()
                },
                1 => Placement {
                    required: term("gen", "Gt", "1"),
                    ..Placement::default()
                },
                2 => Placement {
                    required: term("pool", "NotIn", "a"),
                    ..Placement::default()
                },
                3 => Placement {
                    tolerations: vec![Toleration {
                        key: "dedicated".into(),
                        operator: "Equal".into(),
                        value: "ml".into(),
                        effect: String::new(),
                    }],
                    ..Placement::default()
                },
                _ => Placement::default(),
            }
        };
        for (j, &(m, p, t)) in s.jobs.iter_mut().zip(&choices) {
            j.placement.master = constraint(m);
            j.placement.pservers = constraint(p);
            j.placement.trainers = constraint(t);
        }
        // Pending services are constrained alike (an HPA's replicas pinned to a pool).
        for (pod, &(_, _, c)) in s.other_pods.iter_mut().zip(choices.iter().rev()) {
            pod.placement = constraint(c);
        }
        s
    })
}

/// Whether service pod `key` may use `node`.
fn service_may_use(s: &Snapshot, key: &str, node: &str) -> bool {
    let (Some(pod), Some(n)) = (
        s.other_pods.iter().find(|p| p.key() == key),
        s.nodes.iter().find(|n| n.name == node),
    ) else {
        return false;
    };
    pod.placement.admits(n.facts())
}

fn may_use(s: &Snapshot, job: &JobKey, role: Role, node: &str) -> bool {
    let (Some(j), Some(n)) = (
        s.jobs.iter().find(|j| j.key() == *job),
        s.nodes.iter().find(|n| n.name == node),
    ) else {
        return false;
    };
    j.placement.of(role).admits(n.facts())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    /// Over a few ticks (with late jobs and service demand making room), every pod a
    /// plan creates, or holds room for, goes to a node its group may use (labels, and
    /// NoSchedule/NoExecute taints it does not tolerate); nothing overcommits.
    #[test]
    fn no_pod_is_placed_on_a_node_it_may_not_use(s in arb_constrained_snapshot(), ticks in 1usize..4) {
        let policy = Policy::default();
        let mut s = s;
        for _ in 0..ticks {
            let p = plan(&s, &policy);
            for c in &p.create {
                prop_assert!(may_use(&s, &c.job, c.role, &c.node), "{c:?} on a node it may not use");
            }
            for c in &p.recreate_after_delete {
                prop_assert!(may_use(&s, &c.job, c.role, &c.node), "{c:?} on a node it may not use");
            }
            for r in &p.service_reservations {
                prop_assert!(service_may_use(&s, &r.pod, &r.node), "{r:?} on a node it may not use");
            }
            s = apply(&s, &p);
            assert_no_overcommit(&s);
            s.time_s += 7.0;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// The planner's properties hold with placement constraints too: deterministic, a
    /// fixed point, never over-committing, and work conserving over the nodes each job
    /// may use (a job below max leaves no room idle on a node its trainers may use).
    #[test]
    fn constrained_plans_are_deterministic_fixed_points_and_work_conserving(
        s in running_world_from(arb_constrained_snapshot())
    ) {
        let policy = Policy::default();
        let p1 = plan(&s, &policy);
        prop_assert_eq!(&p1, &plan(&s, &policy));
        let after = apply(&s, &p1);
        assert_no_overcommit(&after);
        let again = plan(&after, &policy);
        prop_assert!(again.create.is_empty(), "replan creates: {:?}", again.create);
        prop_assert!(again.delete.is_empty(), "replan deletes: {:?}", again.delete);
        let free = free_after(&after);
        for jp in p1.jobs.iter().filter(|j| j.admitted) {
            let job = after.jobs.iter().find(|j| j.key() == jp.job).unwrap();
            let limited = s.queues.iter().any(|q| q.limit.is_some()) && job.queue == "q0";
            if jp.target_trainers >= job.trainers.max || limited {
                continue;
            }
            for (name, room, _) in &free {
                let node = node_of(&after, name).unwrap();
                let usable = !node.unschedulable && may_use(&after, &jp.job, Role::Trainer, name);
                prop_assert!(!usable || !job.trainers.resources.fits_in(room),
                    "{} is below max ({} < {}) while {}, which it may use, has room {}",
                    jp.job, jp.target_trainers, job.trainers.max, name, room);
            }
        }
    }
}
