//! The planner on hand-made situations whose right answer is known.

mod common;
use common::*;
use ebb::model::*;
use ebb::plan::{JobIndexCache, Policy, apply::apply, plan, plan_cached};

/// The seed experiment in miniature: 240 cores, job-A alone takes everything, then
/// job-B arrives and both share, B admitted at once.
#[test]
fn seed_case1_elastic_shares_and_admits_at_once() {
    let nodes: Vec<Node> = (0..10).map(|i| cpu_node(&format!("n{i}"), 24)).collect();
    let a = job("job-a", 50, 500, one_cpu());
    let s = snapshot(nodes, vec![a]);
    let policy = Policy::default();
    let (mut s, _) = run(s, &policy, 2, 5.0);
    // 240 cores − master − 2 pservers = 237 trainers.
    assert_eq!(trainers(&s, "job-a"), 237);
    assert_no_overcommit(&s);

    let mut b = job("job-b", 50, 200, one_cpu());
    b.submit_time_s = s.time_s;
    s.jobs.push(b);
    let p = plan(&s, &policy);
    let jb = p.job(&key("job-b")).expect("job-b planned");
    assert!(
        jb.admitted,
        "job-b must be admitted in the first tick: {jb:?}"
    );
    // Job-A just scaled (cooldown): it gives up only what B's minimum forces.
    assert!(p.delete.iter().all(|d| d.job == key("job-a")));
    let s = apply(&s, &p);
    assert_no_overcommit(&s);
    assert_eq!(trainers(&s, "job-b"), 50);
    assert_eq!(trainers(&s, "job-a") + trainers(&s, "job-b"), 234);
    // Past the cooldown the two converge to equal shares, every core in use.
    let (s, _) = run(s, &policy, 20, 5.0);
    assert_no_overcommit(&s);
    let (a_n, b_n) = (trainers(&s, "job-a"), trainers(&s, "job-b"));
    assert_eq!(a_n + b_n, 234, "{a_n} + {b_n}");
    assert!(a_n.abs_diff(b_n) <= 1, "{a_n} vs {b_n}");
}

#[test]
fn static_sized_job_waits_when_its_gang_does_not_fit() {
    let nodes: Vec<Node> = (0..10).map(|i| cpu_node(&format!("n{i}"), 24)).collect();
    let a = job("job-a", 100, 100, one_cpu());
    let mut b = job("job-b", 200, 200, one_cpu());
    b.submit_time_s = 1.0;
    let p = plan(&snapshot(nodes, vec![a, b]), &Policy::default());
    assert!(p.job(&key("job-a")).is_some_and(|j| j.admitted));
    let jb = p.job(&key("job-b")).expect("planned");
    assert!(!jb.admitted);
    assert!(
        matches!(jb.reason, Some(Reason::InsufficientCapacity { .. })),
        "{:?}",
        jb.reason
    );
    assert!(
        jb.reason
            .as_ref()
            .is_some_and(|r| r.to_string().contains("min trainers"))
    );
}

/// Admission asks whether each pod shape fits some node when empty: with many nodes of
/// few shapes, a shape needs every dimension of one node (not the largest of each). One
/// that fits none can never run here, and says which resource.
#[test]
fn a_pod_larger_than_every_node_shape_never_fits_and_the_rest_are_admitted() {
    let mut nodes: Vec<Node> = (0..6).map(|i| gpu_node(&format!("g{i}"), 16, 8)).collect();
    nodes.extend((0..6).map(|i| cpu_node(&format!("c{i}"), 64)));
    let gpus = |cores: i64, gpus: i64| Resources::new(cores * 1000, GIB, gpus);
    let jobs = vec![
        job("fits-gpu", 1, 2, gpus(16, 8)),
        job("fits-cpu", 1, 2, gpus(64, 0)),
        // More GPUs than a GPU node has; more cores with GPUs than a GPU node has.
        job("too-many-gpus", 1, 1, gpus(1, 9)),
        job("too-many-cores-with-gpus", 1, 1, gpus(17, 1)),
    ];
    let p = plan(&snapshot(nodes, jobs), &Policy::default());
    for name in ["fits-gpu", "fits-cpu"] {
        assert!(p.job(&key(name)).is_some_and(|j| j.admitted), "{name}");
    }
    for (name, resource) in [
        ("too-many-gpus", "gpus"),
        ("too-many-cores-with-gpus", "cpu"),
    ] {
        let j = p.job(&key(name)).expect("planned");
        match &j.reason {
            Some(Reason::NeverFits { resource: r, .. }) => assert_eq!(r, resource, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn higher_priority_is_admitted_first_and_strict_fifo_blocks_backfill() {
    let nodes = vec![cpu_node("n0", 20)];
    let mut low = job("low", 10, 10, one_cpu());
    low.submit_time_s = 0.0;
    let mut high = job("high", 10, 10, one_cpu());
    high.submit_time_s = 5.0;
    high.priority = 10;
    let p = plan(
        &snapshot(nodes.clone(), vec![low.clone(), high.clone()]),
        &Policy::default(),
    );
    assert!(p.job(&key("high")).is_some_and(|j| j.admitted));
    assert!(p.job(&key("low")).is_some_and(|j| !j.admitted));

    // Strict FIFO: a big head job waiting for room blocks a small one behind it; a job
    // that could never fit (its gang exceeds the whole node) blocks nobody.
    let first = job("first", 10, 10, one_cpu());
    let mut never = job("never", 30, 30, one_cpu());
    never.submit_time_s = 0.2;
    let mut big = job("big", 15, 15, one_cpu());
    big.submit_time_s = 0.5;
    let mut small = job("small", 1, 1, one_cpu());
    small.submit_time_s = 1.0;
    let jobs = vec![first, never, big, small];
    let strict = Policy {
        strict_fifo: true,
        ..Policy::default()
    };
    let p = plan(&snapshot(nodes.clone(), jobs.clone()), &strict);
    let reason =
        |p: &ebb::model::Plan, name: &str| p.job(&key(name)).and_then(|j| j.reason.clone());
    assert!(p.job(&key("first")).is_some_and(|j| j.admitted));
    assert!(
        matches!(reason(&p, "never"), Some(Reason::NeverFits { ref resource, .. }) if resource == "cpu"),
        "{:?}",
        reason(&p, "never")
    );
    assert!(
        matches!(reason(&p, "big"), Some(Reason::InsufficientCapacity { .. })),
        "big waits for room, not behind the job that never fits: {:?}",
        reason(&p, "big")
    );
    assert!(matches!(reason(&p, "small"), Some(Reason::Queued { .. })));
    let p = plan(&snapshot(nodes, jobs), &Policy::default());
    assert!(p.job(&key("small")).is_some_and(|j| j.admitted));
}

#[test]
fn trainers_yield_to_pending_service_pods_but_not_below_min() {
    let nodes: Vec<Node> = (0..4).map(|i| cpu_node(&format!("n{i}"), 10)).collect();
    let s = snapshot(nodes, vec![job("train", 5, 100, one_cpu())]);
    let (mut s, _) = run(s, &Policy::default(), 1, 5.0);
    assert_eq!(trainers(&s, "train"), 37);
    // Nginx scales up by 20 one-core pods that nobody placed yet.
    for i in 0..20 {
        s.other_pods.push(OtherPod {
            placement: Default::default(),
            namespace: "web".into(),
            name: format!("nginx-{i}"),
            workload: Some("nginx".into()),
            resources: one_cpu(),
            node: None,
        });
    }
    let p = plan(&s, &Policy::default());
    assert_eq!(p.service_reservations.len(), 20);
    assert!(p.delete.iter().all(|d| matches!(
        d.reason,
        DeleteReason::MakeRoomForService { .. } | DeleteReason::ScaleDown
    )));
    let s2 = apply(&s, &p);
    assert_no_overcommit(&s2);
    assert_eq!(trainers(&s2, "train"), 17);

    // Far more demand than the job can give: it stops at its minimum.
    let mut s3 = s.clone();
    for i in 20..60 {
        s3.other_pods.push(OtherPod {
            placement: Default::default(),
            namespace: "web".into(),
            name: format!("nginx-{i}"),
            workload: None,
            resources: one_cpu(),
            node: None,
        });
    }
    let p = plan(&s3, &Policy::default());
    let s4 = apply(&s3, &p);
    assert_eq!(trainers(&s4, "train"), 5);
    assert_no_overcommit(&s4);
    // Master and pservers are never evicted for anything.
    assert!(p.delete.iter().all(|d| d.pod.contains("trainer")));
}

#[test]
fn bad_jobs_are_pending_with_the_field_named_and_the_rest_is_planned() {
    let nodes = vec![cpu_node("n0", 16)];
    let mut inverted = job("inverted", 5, 2, one_cpu());
    inverted.submit_time_s = 0.0;
    let negative = job("negative", 1, 2, Resources::new(-1000, 0, 0));
    let absurd = job("absurd", 1, 2, Resources::new(1000, 0, i64::MAX));
    let mut lost = job("lost", 1, 2, one_cpu());
    lost.queue = "nope".into();
    let mut nan = job("nan", 1, 2, one_cpu());
    nan.weight = f64::NAN;
    let mut countless = job("countless", 1, 2, one_cpu());
    countless.master.replicas = u32::MAX;
    countless.pservers.replicas = u32::MAX;
    let good = job("good", 1, 4, one_cpu());
    let s = snapshot(
        nodes,
        vec![inverted, negative, absurd, lost, nan, countless, good],
    );
    let p = plan(&s, &Policy::default());
    let reason = |n: &str| {
        p.job(&key(n))
            .and_then(|j| j.reason.clone())
            .map(|r| r.to_string())
            .unwrap_or_default()
    };
    assert!(
        reason("inverted").contains("trainers.min"),
        "{}",
        reason("inverted")
    );
    assert!(reason("negative").contains("trainers.resources.cpu_milli"));
    assert!(reason("absurd").contains("gpus"));
    assert!(reason("lost").contains("\"nope\""));
    assert!(reason("nan").contains("weight"));
    assert!(reason("countless").contains("master.replicas"));
    let good = p.job(&key("good")).expect("planned");
    assert!(good.admitted && good.target_trainers == 4);
}

#[test]
fn queue_cycles_overcommitted_and_duplicate_nodes_are_reported_not_fatal() {
    let mut s = snapshot(
        vec![cpu_node("n0", 8), cpu_node("n0", 8), cpu_node("n1", 8)],
        vec![job("ok", 1, 3, one_cpu())],
    );
    let mut a = Queue::new("a");
    a.parent = Some("b".into());
    let mut b = Queue::new("b");
    b.parent = Some("a".into());
    s.queues = vec![a, b];
    let mut cyclic = job("cyclic", 1, 1, one_cpu());
    cyclic.queue = "a".into();
    s.jobs.push(cyclic);
    // A node that already holds more GPUs than it has.
    let mut g = gpu_node("g0", 8, 1);
    g.allocatable.gpus = 1;
    s.nodes.push(g);
    let mut running = job("gpu", 2, 2, Resources::new(1000, GIB, 1));
    running.admitted = true;
    for i in 0..2 {
        running.pods.push(JobPod {
            name: format!("gpu-trainer-{i}"),
            role: Role::Trainer,
            node: Some("g0".into()),
            terminating: false,
        });
    }
    s.jobs.push(running);
    let p = plan(&s, &Policy::default());
    assert!(
        p.problems
            .iter()
            .any(|x| matches!(x, Problem::QueueCycle { .. }))
    );
    assert!(
        p.problems
            .iter()
            .any(|x| matches!(x, Problem::DuplicateNode { .. }))
    );
    assert!(
        p.problems
            .iter()
            .any(|x| matches!(x, Problem::NodeOvercommitted { node, .. } if node == "g0"))
    );
    assert!(matches!(
        p.job(&key("cyclic")).and_then(|j| j.reason.clone()),
        Some(Reason::QueueCycle { .. })
    ));
    assert!(
        p.job(&key("ok"))
            .is_some_and(|j| j.admitted && j.target_trainers == 3)
    );
    // Nothing new lands on the over-committed node.
    assert!(p.create.iter().all(|c| c.node != "g0"));
}

#[test]
fn a_queue_below_the_third_level_is_reported_and_the_tree_above_it_planned() {
    let mut s = snapshot(vec![cpu_node("n0", 16)], vec![]);
    let chain = ["org", "team", "project", "user"];
    s.queues = chain
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut q = Queue::new(*name);
            q.parent = (i > 0).then(|| chain[i - 1].to_string());
            q
        })
        .collect();
    let mut deep = job("deep", 1, 2, one_cpu());
    deep.queue = "user".into();
    let mut third = job("third", 1, 2, one_cpu());
    third.queue = "project".into();
    s.jobs = vec![deep, third];
    let p = plan(&s, &Policy::default());
    assert!(
        p.problems
            .iter()
            .any(|x| matches!(x, Problem::QueueTooDeep { queue, depth: 4 } if queue == "user"))
    );
    let deep = p.job(&key("deep")).expect("listed");
    assert!(!deep.admitted);
    assert!(
        deep.reason
            .as_ref()
            .is_some_and(|r| r.to_string().contains("at most 3")),
        "{:?}",
        deep.reason
    );
    let third = p.job(&key("third")).expect("planned");
    assert!(third.admitted && third.target_trainers == 2);
}

#[test]
fn gpu_pods_fill_partly_used_nodes_and_cpu_pods_stay_off_gpu_nodes() {
    let nodes = vec![
        gpu_node("g-empty", 64, 8),
        gpu_node("g-partial", 64, 8),
        cpu_node("c0", 32),
    ];
    let mut s = snapshot(nodes, Vec::new());
    s.other_pods.push(OtherPod {
        placement: Default::default(),
        namespace: "x".into(),
        name: "holder".into(),
        workload: None,
        resources: Resources::new(1000, GIB, 5),
        node: Some("g-partial".into()),
    });
    let mut gpu = job("gpu", 3, 3, Resources::new(4000, 8 * GIB, 1));
    gpu.pservers.replicas = 0;
    let cpu = job("cpu", 4, 4, one_cpu());
    s.jobs = vec![gpu, cpu];
    let p = plan(&s, &Policy::default());
    for c in &p.create {
        let on = c.node.as_str();
        if c.job == key("gpu") && c.role == Role::Trainer {
            assert_eq!(on, "g-partial", "GPU trainers go best-fit: {c:?}");
        } else {
            assert_eq!(on, "c0", "CPU-only pods stay off GPU nodes: {c:?}");
        }
    }
}

/// Plans an 8-trainer, 1-GPU-each job (master only) on `s`; the trainers' nodes.
fn eight_gpu_trainers_placed(s: &mut Snapshot) -> Vec<String> {
    let mut j = job("big", 8, 8, Resources::new(4000, 8 * GIB, 1));
    j.pservers.replicas = 0;
    s.jobs = vec![j];
    let p = plan(s, &Policy::default());
    p.create
        .iter()
        .filter(|c| c.role == Role::Trainer)
        .map(|c| c.node.clone())
        .collect()
}

#[test]
fn an_eight_gpu_job_lands_inside_one_nvlink_group_when_one_is_free() {
    // Two NVLink groups of two 4-GPU nodes each; group A is partly used.
    let mut nodes = Vec::new();
    for (name, group) in [("a0", "A"), ("a1", "A"), ("b0", "B"), ("b1", "B")] {
        let mut n = gpu_node(name, 64, 4);
        n.topology.nvlink_group = Some(group.into());
        n.topology.rack = Some("r".into());
        nodes.push(n);
    }
    let mut s = snapshot(nodes, Vec::new());
    s.other_pods.push(OtherPod {
        placement: Default::default(),
        namespace: "x".into(),
        name: "holder".into(),
        workload: None,
        resources: Resources::new(1000, GIB, 1),
        node: Some("a0".into()),
    });
    let trainer_nodes = eight_gpu_trainers_placed(&mut s);
    assert_eq!(trainer_nodes.len(), 8);
    assert!(
        trainer_nodes.iter().all(|n| n.starts_with('b')),
        "{trainer_nodes:?}"
    );
}

#[test]
fn an_eight_gpu_job_spans_the_fewest_nvlink_groups_when_none_is_free() {
    // Three groups of two 4-GPU nodes; 6, 5 and 3 GPUs free: no group holds 8, two do.
    let mut nodes = Vec::new();
    let groups = [
        ("a0", "A"),
        ("a1", "A"),
        ("b0", "B"),
        ("b1", "B"),
        ("c0", "C"),
        ("c1", "C"),
    ];
    for (name, group) in groups {
        let mut n = gpu_node(name, 64, 4);
        n.topology.nvlink_group = Some(group.into());
        n.topology.rack = Some("r".into());
        nodes.push(n);
    }
    let mut s = snapshot(nodes, Vec::new());
    for (node, gpus) in [("a1", 2), ("b0", 3), ("c0", 4), ("c1", 1)] {
        s.other_pods.push(OtherPod {
            placement: Default::default(),
            namespace: "x".into(),
            name: format!("holder-{node}"),
            workload: None,
            resources: Resources::new(1000, GIB, gpus),
            node: Some(node.into()),
        });
    }
    let trainer_nodes = eight_gpu_trainers_placed(&mut s);
    assert_eq!(trainer_nodes.len(), 8, "{trainer_nodes:?}");
    let mut used_groups: Vec<char> = trainer_nodes
        .iter()
        .map(|n| n.chars().next().unwrap())
        .collect();
    used_groups.sort_unstable();
    used_groups.dedup();
    assert_eq!(used_groups.len(), 2, "{trainer_nodes:?}");
}

#[test]
fn scale_down_empties_the_least_used_node_first() {
    let nodes = vec![cpu_node("n0", 8), cpu_node("n1", 8)];
    let mut j = job("j", 1, 10, one_cpu());
    j.admitted = true;
    j.master.resources = Resources::new(500, GIB, 0);
    j.pservers.replicas = 0;
    j.pods.push(JobPod {
        name: "j-master-0".into(),
        role: Role::Master,
        node: Some("n0".into()),
        terminating: false,
    });
    // Six trainers on n0, two on n1.
    for i in 0..8 {
        j.pods.push(JobPod {
            name: format!("j-trainer-{i}"),
            role: Role::Trainer,
            node: Some(if i < 6 { "n0" } else { "n1" }.into()),
            terminating: false,
        });
    }
    let mut s = snapshot(nodes, vec![j]);
    // A newcomer's gang (master + 9 trainers) needs 9.5 of the 7.5 free cores: two go.
    let mut b = job("b", 9, 9, one_cpu());
    b.master.resources = Resources::new(500, GIB, 0);
    b.pservers.replicas = 0;
    b.submit_time_s = 1.0;
    s.jobs.push(b);
    s.jobs[0].trainers.max = 8;
    let p = plan(&s, &Policy::default());
    let victims: Vec<&PodDeletion> = p.delete.iter().collect();
    assert!(!victims.is_empty());
    assert!(
        victims.iter().all(|d| d.node.as_deref() == Some("n1")),
        "victims should come from the emptier node: {victims:?}"
    );
    assert_no_overcommit(&apply(&s, &p));
}

/// EDL moved ±1 trainer a tick around a 0.97 load threshold and never settled. Here a
/// cluster where one more trainer would cross any such threshold settles in one tick
/// and then stays put, tick after tick, as the clock runs past every cooldown.
#[test]
fn no_plus_one_minus_one_oscillation() {
    let nodes: Vec<Node> = (0..3).map(|i| cpu_node(&format!("n{i}"), 33)).collect();
    let a = job("a", 1, 1000, Resources::new(3000, GIB, 0));
    let mut b = job("b", 1, 1000, Resources::new(2000, GIB, 0));
    b.submit_time_s = 1.0;
    let policy = Policy::default();
    let (mut s, _) = run(snapshot(nodes, vec![a, b]), &policy, 3, 5.0);
    let settled = (trainers(&s, "a"), trainers(&s, "b"));
    for _ in 0..50 {
        let p = plan(&s, &policy);
        assert!(
            p.create.is_empty() && p.delete.is_empty(),
            "tick moved pods: {p:?}"
        );
        s = apply(&s, &p);
        s.time_s += 30.0;
    }
    assert_eq!(settled, (trainers(&s, "a"), trainers(&s, "b")));
}

#[test]
fn queue_limits_cap_and_guarantees_are_reclaimed() {
    let nodes: Vec<Node> = (0..4).map(|i| cpu_node(&format!("n{i}"), 10)).collect();
    let mut s = snapshot(nodes, Vec::new());
    let mut capped = Queue::new("capped");
    capped.limit = Some(Resources::new(10_000, 1000 * GIB, 0));
    let mut owner = Queue::new("owner");
    owner.guaranteed = Resources::new(20_000, 80 * GIB, 0);
    let borrower = Queue::new("borrower");
    s.queues = vec![capped, owner, borrower];
    let mut c = job("c", 1, 100, one_cpu());
    c.queue = "capped".into();
    let mut b = job("b", 1, 100, one_cpu());
    b.queue = "borrower".into();
    s.jobs = vec![c, b];
    let policy = Policy::default();
    let (mut s, _) = run(s, &policy, 2, 1.0);
    // Capped queue: master + 2 pservers + 7 trainers = 10 cores.
    assert_eq!(trainers(&s, "c"), 7);
    assert_eq!(
        trainers(&s, "b"),
        27,
        "the borrower takes the idle guarantee"
    );
    // The owner arrives while the borrower is in its cooldown: it gets its guarantee.
    let mut o = job("o", 1, 100, one_cpu());
    o.queue = "owner".into();
    o.submit_time_s = s.time_s;
    s.jobs.push(o);
    let (s, _) = run(s, &policy, 2, 1.0);
    assert!(trainers(&s, "o") >= 17, "owner got {}", trainers(&s, "o"));
    // The guarantee comes off the top; the other 20 cores split three ways (DRF), so
    // the capped queue now holds about 6.7 cores: 3 or 4 trainers besides its overhead.
    assert!(
        (3..=4).contains(&trainers(&s, "c")),
        "c has {}",
        trainers(&s, "c")
    );
    assert_no_overcommit(&s);
}

#[test]
fn lost_node_recreates_master_and_restores_min() {
    let nodes = vec![cpu_node("n0", 8), cpu_node("n1", 8)];
    let s = snapshot(nodes, vec![job("j", 4, 4, one_cpu())]);
    let (mut s, _) = run(s, &Policy::default(), 1, 1.0);
    // The node holding the master disappears.
    let master_node = s.jobs[0]
        .pods
        .iter()
        .find(|p| p.role == Role::Master)
        .and_then(|p| p.node.clone())
        .expect("master placed");
    s.nodes.retain(|n| n.name != master_node);
    let p = plan(&s, &Policy::default());
    assert!(
        p.problems
            .iter()
            .any(|x| matches!(x, Problem::PodOnUnknownNode { .. }))
    );
    assert!(p.delete.iter().any(|d| d.reason == DeleteReason::NodeGone));
    // The lost master's name is still taken until its object is deleted, so it is
    // recreated after the delete, on a node whose room the plan holds.
    let again = p
        .recreate_after_delete
        .iter()
        .find(|c| c.role == Role::Master)
        .expect("master recreated after delete");
    assert_eq!(again.pod, "j-master-0");
    assert_ne!(again.node, master_node);
    let s = apply(&s, &p);
    assert_no_overcommit(&s);
    let master = s.jobs[0].pods.iter().find(|p| p.role == Role::Master);
    assert_eq!(
        master.and_then(|m| m.node.clone()),
        Some(again.node.clone())
    );
    let p = plan(&s, &Policy::default());
    assert!(p.create.is_empty() && p.delete.is_empty(), "{p:?}");
}

#[test]
fn unbound_pods_are_bound_not_duplicated() {
    let nodes = vec![cpu_node("n0", 8)];
    let mut j = job("j", 2, 2, one_cpu());
    j.admitted = true;
    j.pods = vec![
        JobPod {
            name: "j-master-0".into(),
            role: Role::Master,
            node: Some("n0".into()),
            terminating: false,
        },
        JobPod {
            name: "j-pserver-0".into(),
            role: Role::Pserver,
            node: Some("n0".into()),
            terminating: false,
        },
        JobPod {
            name: "j-pserver-1".into(),
            role: Role::Pserver,
            node: Some("n0".into()),
            terminating: false,
        },
        JobPod {
            name: "j-trainer-7".into(),
            role: Role::Trainer,
            node: None,
            terminating: false,
        },
    ];
    let p = plan(&snapshot(nodes, vec![j]), &Policy::default());
    let names: Vec<&str> = p.create.iter().map(|c| c.pod.as_str()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"j-trainer-7"), "{names:?}");
    assert!(names.contains(&"j-trainer-8"), "{names:?}");
}

/// A job lost its master and pserver with a node while services and a newcomer want the
/// room: the replacement is created one tick later (its name is still held), and the
/// tick after the first plan must not evict anybody to make that room.
#[test]
fn lost_support_pods_keep_their_room_until_recreated() {
    let mut j0 = job("j0", 0, 10, Resources::new(1500, GIB, 0));
    j0.pservers.replicas = 1;
    j0.admitted = true;
    j0.last_scale_time_s = Some(0.0);
    j0.pods.push(bound("j0-master-0", Role::Master, "gone"));
    j0.pods.push(bound("j0-pserver-0", Role::Pserver, "gone"));
    for i in 0..10 {
        j0.pods
            .push(bound(&format!("j0-trainer-{i}"), Role::Trainer, "n0"));
    }
    let mut j1 = job("j1", 0, 8, one_cpu());
    j1.pservers.replicas = 0;
    j1.submit_time_s = 7.0;
    let mut s = snapshot(vec![gpu_node("n0", 20, 2)], vec![j0, j1]);
    s.time_s = 7.0;
    for i in 0..2 {
        s.other_pods.push(unplaced_pod(
            &format!("late-{i}"),
            Resources::new(2000, GIB, 0),
        ));
    }
    let policy = Policy::default();
    let first = plan(&s, &policy);
    let after = apply(&s, &first);
    let second = plan(&after, &policy);
    assert!(
        second.delete.is_empty(),
        "second plan deletes {:?}",
        second.delete
    );
    let after = apply(&after, &second);
    assert_no_overcommit(&after);
    let third = plan(&after, &policy);
    assert!(
        third.create.is_empty() && third.delete.is_empty(),
        "{third:?}"
    );
}

/// Found by the fixed-point property: a job held above its fair share by its cooldown
/// fills its queue to the limit, and growth of a sibling must stop there rather than
/// place trainers the limit does not allow.
#[test]
fn growth_stops_at_the_queue_limit_while_a_sibling_is_in_cooldown() {
    let nodes: Vec<Node> = (0..4).map(|i| cpu_node(&format!("n{i}"), 10)).collect();
    let mut s = snapshot(nodes, Vec::new());
    let mut capped = Queue::new("capped");
    capped.limit = Some(Resources::new(20_000, 1000 * GIB, 0));
    s.queues = vec![capped];
    let mut big = job("big", 1, 100, one_cpu());
    big.queue = "capped".into();
    let policy = Policy::default();
    s.jobs = vec![big];
    let (mut s, _) = run(s, &policy, 1, 1.0);
    assert_eq!(trainers(&s, "big"), 17, "20 cores less master + 2 pservers");
    // A sibling arrives inside big's cooldown: its gang (3 + 2 trainers) forces big down
    // to make room under the limit, and nothing more.
    let mut small = job("small", 2, 10, one_cpu());
    small.queue = "capped".into();
    small.submit_time_s = s.time_s;
    s.jobs.push(small);
    let p = plan(&s, &policy);
    let s = apply(&s, &p);
    let held: i64 = ["big", "small"]
        .iter()
        .map(|n| 3 + trainers(&s, n) as i64)
        .sum();
    assert!(held <= 20, "queue holds {held} cores over its limit of 20");
    assert!(trainers(&s, "small") >= 2);
    let again = plan(&s, &policy);
    assert!(
        again.create.is_empty() && again.delete.is_empty(),
        "{again:?}"
    );
    assert_no_overcommit(&s);
}

/// A job whose measured speedup flattens gets no trainers past the flat part; the
/// capacity goes to a job that still speeds up.
#[test]
fn trainers_stop_where_the_speedup_curve_flattens() {
    let nodes: Vec<Node> = (0..4).map(|i| cpu_node(&format!("n{i}"), 10)).collect();
    let mut flat = job("flat", 1, 64, one_cpu());
    flat.speedup = vec![(1, 1.0), (8, 7.0), (16, 7.2), (64, 7.3)];
    let linear = job("linear", 1, 64, one_cpu());
    let s = snapshot(nodes, vec![flat, linear]);
    let policy = Policy::default();
    let (s, p) = run(s, &policy, 2, 1.0);
    assert_eq!(trainers(&s, "flat"), 8, "{:?}", p.jobs);
    // 40 cores less two gangs' overhead (3 each) less flat's 8: 26 for linear.
    assert_eq!(trainers(&s, "linear"), 26, "{:?}", p.jobs);
    // Bad points are refused with the field named; the other job is still planned.
    let mut bad = s.clone();
    bad.jobs[0].speedup = vec![(4, 1.0), (2, 2.0)];
    let p = plan(&bad, &policy);
    let jp = p.job(&key("flat")).unwrap();
    assert!(
        matches!(&jp.reason, Some(Reason::InvalidSpec { field, .. }) if field == "speedup[1]"),
        "{jp:?}"
    );
    assert!(p.job(&key("linear")).unwrap().admitted);
}

/// Applying a plan changes the job its actions name, told apart by namespace when two
/// jobs share a name; a name twice in one namespace changes the later job, as it did
/// when the whole snapshot was indexed.
#[test]
fn applying_a_plan_finds_each_job_by_namespace_and_name() {
    let nodes = vec![cpu_node("n0", 8)];
    let mut ml = job("train", 1, 4, one_cpu());
    ml.pods = vec![bound("train-trainer-0", Role::Trainer, "n0")];
    let mut research = ml.clone();
    research.namespace = "research".into();
    let other = job("other", 1, 4, one_cpu());
    let mut twice = job("twice", 1, 4, one_cpu());
    twice.namespace = "dup".into();
    let s = snapshot(nodes, vec![ml, research, other, twice.clone(), twice]);
    let placement = |ns: &str, name: &str, pod: &str| PodPlacement {
        job: JobKey::new(ns, name),
        pod: pod.into(),
        role: Role::Trainer,
        node: "n0".into(),
    };
    let p = Plan {
        create: vec![
            placement("research", "train", "train-trainer-1"),
            placement("dup", "twice", "twice-trainer-0"),
            placement("nowhere", "train", "lost"),
        ],
        delete: vec![PodDeletion {
            job: JobKey::new("ml", "train"),
            pod: "train-trainer-0".into(),
            node: Some("n0".into()),
            reason: DeleteReason::ScaleDown,
        }],
        ..Plan::default()
    };
    let after = apply(&s, &p);
    let pods =
        |i: usize| -> Vec<&str> { after.jobs[i].pods.iter().map(|p| p.name.as_str()).collect() };
    assert_eq!(pods(0), Vec::<&str>::new(), "ml/train lost its trainer");
    assert_eq!(
        pods(1),
        ["train-trainer-0", "train-trainer-1"],
        "research/train grew"
    );
    assert!(pods(2).is_empty(), "other is untouched");
    assert!(pods(3).is_empty(), "the first dup/twice is untouched");
    assert_eq!(pods(4), ["twice-trainer-0"], "the later dup/twice grew");
}

/// A plan's per-job lines name jobs too: the admitted mark goes to the later of two jobs
/// of one name, as for its pods (a plan lists jobs in snapshot order, and that order is
/// not taken as the answer when a name is taken twice).
#[test]
fn a_plan_admits_the_later_of_two_jobs_of_one_name() {
    let twice = job("twice", 1, 4, one_cpu());
    let s = snapshot(vec![cpu_node("n0", 8)], vec![twice.clone(), twice]);
    let line = |admitted: bool| JobPlan {
        job: key("twice"),
        admitted,
        reason: None,
        current_trainers: 0,
        target_trainers: 0,
        fair_trainers: 0,
    };
    let p = Plan {
        jobs: vec![line(true), line(false)],
        ..Plan::default()
    };
    let after = apply(&s, &p);
    assert!(
        !after.jobs[0].admitted,
        "the first of the name is untouched"
    );
    assert!(after.jobs[1].admitted, "the later one is admitted");
}

/// Three jobs settled on a CPU cluster (every trainer placed, so a plan changes nothing
/// until something happens).
fn three_settled_jobs() -> Snapshot {
    let nodes: Vec<Node> = (0..6).map(|i| cpu_node(&format!("n{i}"), 16)).collect();
    let jobs = (0..3)
        .map(|i| job(&format!("job-{i}"), 2, 10, one_cpu()))
        .collect();
    let (s, last) = run(snapshot(nodes, jobs), &Policy::default(), 3, 400.0);
    assert!(last.create.is_empty() && last.delete.is_empty(), "settled");
    s
}

/// The cache keeps the index of every job a plan leaves alone, and only those: a job
/// the plan changes is indexed anew next time.
#[test]
fn kept_job_indexes_cover_exactly_the_jobs_a_plan_leaves_alone() {
    let policy = Policy::default();
    let mut s = three_settled_jobs();
    let mut cache = JobIndexCache::new();
    let quiet = plan_cached(&s, &policy, &mut cache);
    assert_eq!(quiet, plan(&s, &policy));
    assert_eq!(cache.kept(), 3, "a quiet plan leaves every job as it was");
    // A newcomer takes room from the others: the plan changes some jobs.
    let mut newcomer = job("job-new", 20, 20, one_cpu());
    newcomer.submit_time_s = s.time_s;
    s.jobs.push(newcomer);
    cache.pushed();
    let busy = plan_cached(&s, &policy, &mut cache);
    assert_eq!(busy, plan(&s, &policy));
    let touched: std::collections::BTreeSet<&str> = busy
        .create
        .iter()
        .map(|c| c.job.name.as_str())
        .chain(busy.delete.iter().map(|d| d.job.name.as_str()))
        .collect();
    assert!(touched.contains("job-new"), "{touched:?}");
    assert_eq!(cache.kept(), 4 - touched.len(), "{touched:?}");
}

/// Plans `settled` with a fresh cache, makes `change` without telling the cache, and
/// plans again (the debug checks are to panic).
#[cfg(debug_assertions)]
fn plan_again_after_an_untold(change: impl FnOnce(&mut Snapshot)) {
    let policy = Policy::default();
    let mut s = three_settled_jobs();
    let mut cache = JobIndexCache::new();
    plan_cached(&s, &policy, &mut cache);
    change(&mut s);
    plan_cached(&s, &policy, &mut cache);
}

/// A caller that changes a job without telling the cache gets stale indexes: debug
/// builds (the tests) catch that at the next plan rather than plan a cluster that is
/// not there.
#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "the kept index of job 1 (ml/job-1) is stale")]
fn a_cache_out_of_step_with_its_snapshot_is_caught_in_debug_builds() {
    plan_again_after_an_untold(|s| {
        let pod = s.jobs[1]
            .pods
            .iter_mut()
            .find(|p| p.node.as_deref() != Some("n5"))
            .expect("a pod off n5");
        pod.node = Some("n5".into());
    });
}

/// The cache keeps the nodes' topology too: a caller that changes a node without
/// clearing the cache is caught in debug builds.
#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "kept topology is stale")]
fn a_kept_topology_out_of_step_with_the_nodes_is_caught_in_debug_builds() {
    plan_again_after_an_untold(|s| {
        s.nodes[0].topology.nvlink_group = Some("g".into());
        s.nodes[1].topology.nvlink_group = Some("g".into());
    });
}

/// Placement constraints: a job pinned to pool a grows only there, though pool b is
/// empty; a job unconstrained takes pool b; a job whose selector no node meets is
/// `NoEligibleNode`, naming the constraint and how many nodes it rules out; a job with
/// a malformed constraint is `InvalidSpec` naming the field; the rest are planned.
#[test]
fn constrained_jobs_go_only_where_they_may_and_say_why_when_nowhere() {
    use ebb::model::placement::{NodeSelectorTerm, Placement, Requirement};
    let mut nodes: Vec<Node> = (0..4).map(|i| cpu_node(&format!("n{i}"), 8)).collect();
    for (i, n) in nodes.iter_mut().enumerate() {
        let pool = if i < 2 { "a" } else { "b" };
        n.labels.insert("pool".into(), pool.into());
    }
    let one_cpu = Resources::new(1000, GIB, 0);
    let selector = |pool: &str| Placement {
        node_selector: [("pool".to_string(), pool.to_string())].into(),
        ..Placement::default()
    };
    let mut pinned = job("pinned", 1, 30, one_cpu);
    pinned.placement = JobPlacement::every_role(selector("a"));
    let mut free = job("free", 1, 30, one_cpu);
    free.submit_time_s = 1.0;
    let mut nowhere = job("nowhere", 1, 2, one_cpu);
    nowhere.placement.trainers = selector("c");
    let mut malformed = job("malformed", 1, 2, one_cpu);
    malformed.placement.trainers = Placement {
        required: Some(vec![NodeSelectorTerm {
            match_expressions: vec![Requirement {
                key: "gen".into(),
                operator: "Near".into(),
                values: vec!["1".into()],
            }],
            match_fields: Vec::new(),
        }]),
        ..Placement::default()
    };
    let s = snapshot(nodes, vec![pinned, free, nowhere, malformed]);
    let p = plan(&s, &Policy::default());
    let pinned_nodes: std::collections::BTreeSet<&str> = p
        .create
        .iter()
        .filter(|c| c.job == key("pinned"))
        .map(|c| c.node.as_str())
        .collect();
    assert!(!pinned_nodes.is_empty());
    assert!(
        pinned_nodes.iter().all(|n| *n == "n0" || *n == "n1"),
        "{pinned_nodes:?}"
    );
    assert!(
        p.create
            .iter()
            .any(|c| c.job == key("free") && (c.node == "n2" || c.node == "n3"))
    );
    match &p.job(&key("nowhere")).expect("planned").reason {
        Some(Reason::NoEligibleNode {
            role,
            constraint,
            message,
        }) => {
            assert_eq!(
                (role.as_str(), constraint.as_str()),
                ("trainer", "node_selector pool")
            );
            assert!(message.contains("4 of 4"), "{message}");
        }
        other => panic!("nowhere: {other:?}"),
    }
    match &p.job(&key("malformed")).expect("planned").reason {
        Some(Reason::InvalidSpec { field, .. }) => assert_eq!(
            field,
            "placement.trainers.required[0].match_expressions[0].operator"
        ),
        other => panic!("malformed: {other:?}"),
    }
    // Applied, the plan is where re-planning leaves it.
    let after = apply(&s, &p);
    let again = plan(&after, &Policy::default());
    assert!(
        again.create.is_empty() && again.delete.is_empty(),
        "{again:?}"
    );
}

/// A dedicated, tainted pool: only a job that tolerates the taint runs there; one that
/// selects the pool without tolerating it is `NoEligibleNode` naming the taint; the
/// others, services included, stay off it.
#[test]
fn a_tainted_pool_takes_only_the_jobs_that_tolerate_it() {
    use ebb::model::placement::{Placement, Taint, Toleration};
    let mut nodes = vec![
        cpu_node("shared", 4),
        cpu_node("dedicated", 16),
        cpu_node("dedicated-2", 16),
    ];
    for n in &mut nodes[1..] {
        n.labels.insert("pool".into(), "ml".into());
        n.taints.push(Taint {
            key: "dedicated".into(),
            value: "ml".into(),
            effect: "NoSchedule".into(),
        });
    }
    let one_cpu = Resources::new(1000, GIB, 0);
    let in_pool = |tolerate: bool| Placement {
        node_selector: [("pool".to_string(), "ml".to_string())].into(),
        tolerations: if tolerate {
            vec![Toleration {
                key: "dedicated".into(),
                operator: "Exists".into(),
                ..Toleration::default()
            }]
        } else {
            Vec::new()
        },
        ..Placement::default()
    };
    let mut tolerant = job("tolerant", 1, 8, one_cpu);
    tolerant.placement = JobPlacement::every_role(in_pool(true));
    let mut intolerant = job("intolerant", 1, 2, one_cpu);
    intolerant.placement = JobPlacement::every_role(in_pool(false));
    let anywhere = job("anywhere", 1, 30, one_cpu);
    let mut s = snapshot(nodes, vec![tolerant, intolerant, anywhere]);
    s.other_pods.push(unplaced_pod("web-0", one_cpu));
    let p = plan(&s, &Policy::default());
    for c in &p.create {
        let on_dedicated = c.node.starts_with("dedicated");
        assert_eq!(on_dedicated, c.job == key("tolerant"), "{c:?}");
    }
    assert!(p.create.iter().any(|c| c.job == key("tolerant")));
    assert!(p.service_reservations.iter().all(|r| r.node == "shared"));
    match &p.job(&key("intolerant")).expect("planned").reason {
        Some(Reason::NoEligibleNode {
            constraint,
            message,
            ..
        }) => {
            assert_eq!(constraint, "untolerated taint dedicated=ml:NoSchedule");
            assert!(message.contains("2 of 3"), "{message}");
        }
        other => panic!("intolerant: {other:?}"),
    }
}

/// Two GPU models: a job that may use only the H100s is owed what the H100s hold, not
/// an equal half of all GPUs, so the T4-only job is not held back; a newcomer whose gang
/// fits the cluster but not its eligible nodes waits for room there, said as such.
#[test]
fn each_gpu_model_is_shared_among_the_jobs_that_may_use_it() {
    use ebb::model::placement::{GPU_PRODUCT_LABEL, Placement};
    let mut nodes = Vec::new();
    for i in 0..2 {
        nodes.push(gpu_node(&format!("h100-{i}"), 32, 4));
    }
    for i in 0..6 {
        nodes.push(gpu_node(&format!("t4-{i}"), 32, 4));
    }
    for n in &mut nodes {
        let model = if n.name.starts_with("h100") {
            "H100"
        } else {
            "T4"
        };
        n.labels.insert(GPU_PRODUCT_LABEL.into(), model.into());
    }
    let one_gpu = Resources::new(1000, GIB, 1);
    let only = |model: &str| {
        JobPlacement::every_role(Placement {
            gpu_models: vec![model.into()],
            ..Placement::default()
        })
    };
    let mut h100 = job("h100", 1, 32, one_gpu);
    h100.placement = only("H100");
    let mut t4 = job("t4", 1, 32, one_gpu);
    t4.placement = only("T4");
    let mut late = job("late-h100", 2, 2, one_gpu);
    late.placement = only("H100");
    late.submit_time_s = 10.0;
    let s = snapshot(nodes, vec![h100, t4]);
    let (mut s, p) = run(s, &Policy::default(), 4, 30.0);
    assert_no_overcommit(&s);
    let fair = |p: &Plan, name: &str| p.job(&key(name)).expect("planned").fair_trainers;
    assert_eq!((fair(&p, "h100"), fair(&p, "t4")), (8, 24));
    assert_eq!((trainers(&s, "h100"), trainers(&s, "t4")), (8, 24));
    for pod in s
        .jobs
        .iter()
        .flat_map(|j| j.pods.iter().map(move |p| (j, p)))
    {
        let (j, p) = pod;
        let node = p.node.as_deref().unwrap_or_default();
        assert!(
            node.starts_with(&j.name[..2]) || p.role != Role::Trainer,
            "{} on {node}",
            p.name
        );
    }
    // The newcomer's gang is 2 GPUs: the T4s could take it, the H100s are full; it is
    // admitted by taking room from the H100 job, which is over its new fair share.
    s.jobs.push(late);
    let p = plan(&s, &Policy::default());
    assert!(p.job(&key("late-h100")).expect("planned").admitted);
    assert_eq!(fair(&p, "t4"), 24);
}

#[test]
fn a_gang_that_fits_the_cluster_but_not_its_eligible_nodes_waits_for_room_there() {
    use ebb::model::placement::{GPU_PRODUCT_LABEL, Placement};
    let mut nodes = vec![gpu_node("h100-0", 32, 4), gpu_node("t4-0", 32, 4)];
    nodes[0]
        .labels
        .insert(GPU_PRODUCT_LABEL.into(), "H100".into());
    nodes[1]
        .labels
        .insert(GPU_PRODUCT_LABEL.into(), "T4".into());
    let one_gpu = Resources::new(1000, GIB, 1);
    let mut held = job("held", 4, 4, one_gpu);
    held.placement = JobPlacement::every_role(Placement {
        gpu_models: vec!["H100".into()],
        ..Placement::default()
    });
    let mut newcomer = held.clone();
    newcomer.name = "newcomer".into();
    newcomer.trainers.min = 2;
    newcomer.submit_time_s = 5.0;
    let (mut s, _) = run(snapshot(nodes, vec![held]), &Policy::default(), 2, 30.0);
    s.jobs.push(newcomer);
    let p = plan(&s, &Policy::default());
    match &p.job(&key("newcomer")).expect("planned").reason {
        Some(r @ Reason::InsufficientEligibleCapacity { eligible_free, .. }) => {
            assert_eq!(eligible_free.gpus, 0, "{r}");
            assert!(
                r.to_string()
                    .starts_with("waiting for room on eligible nodes"),
                "{r}"
            );
        }
        other => panic!("newcomer: {other:?}"),
    }
}

/// Preferred node affinity and PreferNoSchedule taints only break ties: between nodes
/// that pack alike (here, empty identical ones), trainers go where they would rather be;
/// they still pack first, and use a disliked node when the liked ones are full.
#[test]
fn preferences_break_ties_between_nodes_that_pack_alike() {
    use ebb::model::placement::{NodeSelectorTerm, Placement, PreferredTerm, Requirement, Taint};
    let mut nodes: Vec<Node> = (0..4).map(|i| gpu_node(&format!("n{i}"), 32, 4)).collect();
    // n0 and n1 are spot nodes, which pods should avoid unless they must.
    for n in &mut nodes[..2] {
        n.taints.push(Taint {
            key: "spot".into(),
            value: String::new(),
            effect: "PreferNoSchedule".into(),
        });
    }
    nodes[3].labels.insert("zone".into(), "b".into());
    let one_gpu = Resources::new(1000, GIB, 1);
    let mut zoned = job("zoned", 4, 4, one_gpu);
    zoned.placement.trainers = Placement {
        preferred: vec![PreferredTerm {
            weight: 10,
            preference: NodeSelectorTerm {
                match_expressions: vec![Requirement {
                    key: "zone".into(),
                    operator: "In".into(),
                    values: vec!["b".into()],
                }],
                match_fields: Vec::new(),
            },
        }],
        ..Placement::default()
    };
    let (s, _) = run(
        snapshot(nodes.clone(), vec![zoned]),
        &Policy::default(),
        2,
        30.0,
    );
    let on = |s: &Snapshot, job: &str| -> Vec<String> {
        let j = s.jobs.iter().find(|j| j.name == job).expect("the job");
        let mut n: Vec<String> = j.live_trainers().filter_map(|p| p.node.clone()).collect();
        n.sort();
        n.dedup();
        n
    };
    assert_eq!(
        on(&s, "zoned"),
        ["n3"],
        "the preferred zone, packed on one node"
    );

    // With no preference of its own, a job avoids the untolerated PreferNoSchedule
    // taint while an untainted node packs as well, and takes a spot node once it must.
    let plain = job("plain", 12, 12, one_gpu);
    let (s, _) = run(snapshot(nodes, vec![plain]), &Policy::default(), 2, 30.0);
    let used = on(&s, "plain");
    assert_eq!(trainers(&s, "plain"), 12);
    assert!(
        used.contains(&"n2".into()) && used.contains(&"n3".into()),
        "{used:?}"
    );
    assert_eq!(
        used.len(),
        3,
        "one spot node, only because it must: {used:?}"
    );
}

/// A pending service replica pinned to CPU nodes (an HPA's Deployment with a node
/// selector) is given room only there: trainers on GPU nodes are not evicted for it,
/// and it is not counted as demand on nodes it can never use.
#[test]
fn a_pinned_service_replica_gets_room_only_on_the_nodes_it_may_use() {
    use ebb::model::placement::Placement;
    let mut nodes = vec![gpu_node("gpu-0", 8, 4), cpu_node("cpu-0", 8)];
    nodes[1].labels.insert("pool".into(), "cpu".into());
    // CPU trainers fill both nodes.
    let filler = job("filler", 1, 16, Resources::new(1000, GIB, 0));
    let (mut s, _) = run(snapshot(nodes, vec![filler]), &Policy::default(), 2, 30.0);
    let free_cpu = |s: &Snapshot, node: &str| {
        let n = s.nodes.iter().find(|n| n.name == node).expect("the node");
        n.allocatable.cpu_milli - used_on(s, node).cpu_milli
    };
    assert!(
        free_cpu(&s, "cpu-0") < 1000 && free_cpu(&s, "gpu-0") < 1000,
        "both full"
    );
    let evictions = (2000 - free_cpu(&s, "cpu-0") + 999) / 1000;
    let mut web = unplaced_pod("web-0", Resources::new(2000, GIB, 0));
    web.placement = Placement {
        node_selector: [("pool".to_string(), "cpu".to_string())].into(),
        ..Placement::default()
    };
    s.other_pods.push(web);
    let p = plan(&s, &Policy::default());
    let reserved: Vec<&str> = p
        .service_reservations
        .iter()
        .map(|r| r.node.as_str())
        .collect();
    assert_eq!(reserved, ["cpu-0"]);
    for d in &p.delete {
        assert!(
            d.node.as_deref() == Some("cpu-0"),
            "evicted from a node the service cannot use: {d:?}"
        );
    }
    assert_eq!(
        p.delete.len() as i64,
        evictions,
        "just enough trainers leave cpu-0"
    );
}
