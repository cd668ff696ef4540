//! Scale-up requests: nodes of the snapshot's node groups for gangs that cannot pack on
//! the nodes there are, and never for what may not run.

mod common;
use common::*;
use ebb::model::*;
use ebb::plan::{Policy, plan};
use proptest::prelude::*;

fn a100_group(max: u32) -> NodeGroup {
    let mut template = gpu_node("a100", 32, 8);
    template.set_gpu_model("A100");
    NodeGroup {
        name: "gpu-a100".into(),
        template,
        min: 0,
        max,
        delay_s: 300.0,
        price_per_node_hour: Some(30.0),
    }
}

fn cpu_group(max: u32) -> NodeGroup {
    NodeGroup {
        name: "cpu".into(),
        template: cpu_node("cpu", 16),
        min: 1,
        max,
        delay_s: 120.0,
        price_per_node_hour: Some(1.0),
    }
}

/// One CPU node of the cpu group, full of a running job's trainers, and a GPU job that
/// needs two A100 nodes' worth of GPUs.
fn waiting_gpu_job() -> Snapshot {
    let mut cpu = cpu_node("cpu-0", 16);
    cpu.group = Some("cpu".into());
    let mut s = snapshot(
        vec![cpu],
        vec![job("gpu", 12, 16, Resources::new(2000, 8 * GIB, 1))],
    );
    s.node_groups = vec![a100_group(4), cpu_group(3)];
    s
}

fn request<'p>(p: &'p Plan, name: &str) -> Option<&'p ScaleUp> {
    p.scale_up.iter().find(|r| r.job == key(name))
}

/// The snapshot with the nodes `r` asks for added, as the autoscaler would bring them.
fn with_requested(s: &Snapshot, r: &ScaleUp) -> Snapshot {
    let mut s = s.clone();
    for want in &r.nodes {
        let g = s
            .node_groups
            .iter()
            .find(|g| g.name == want.group)
            .expect("a requested group exists")
            .clone();
        for i in 0..want.count {
            let mut n = g.pictured_node(i);
            n.name = format!("{}-up-{}-{i}", g.name, r.job.name);
            s.nodes.push(n);
        }
    }
    s
}

#[test]
fn a_gang_that_does_not_fit_asks_for_the_nodes_that_hold_it() {
    let s = waiting_gpu_job();
    let p = plan(&s, &Policy::default());
    let jp = p.job(&key("gpu")).expect("planned");
    assert!(!jp.admitted);
    let r = request(&p, "gpu").expect("asks for nodes");
    // 12 one-GPU trainers and the master and pservers: two 8-GPU nodes hold them.
    assert_eq!(
        r.nodes,
        vec![GroupNodes {
            group: "gpu-a100".into(),
            count: 2
        }]
    );
    // Once they are there the gang packs, and nothing more is asked.
    let grown = with_requested(&s, r);
    let p = plan(&grown, &Policy::default());
    let jp = p.job(&key("gpu")).expect("planned");
    assert!(jp.admitted && jp.target_trainers >= 12, "{jp:?}");
    assert!(p.scale_up.is_empty(), "{:?}", p.scale_up);
}

#[test]
fn explain_says_which_nodes_a_job_waits_for() {
    let s = waiting_gpu_job();
    let p = plan(&s, &Policy::default());
    let e = ebb::plan::explain::explain(&s, &Policy::default(), &p);
    let gpu = e.iter().find(|x| x.job == key("gpu")).expect("explained");
    assert_eq!(
        gpu.summary,
        "pending: waiting for 2 nodes of group gpu-a100"
    );
    assert!(
        gpu.because
            .iter()
            .any(|b| b.kind == ebb::plan::explain::Kind::WaitingForNodes)
    );
}

#[test]
fn a_job_that_asks_for_no_nodes_says_why() {
    let why = |s: &Snapshot| {
        let p = plan(s, &Policy::default());
        let e = ebb::plan::explain::explain(s, &Policy::default(), &p);
        let gpu = e.iter().find(|x| x.job == key("gpu")).expect("explained");
        gpu.because
            .iter()
            .find(|b| b.kind == ebb::plan::explain::Kind::NoNodesAsked)
            .map(|b| b.text.clone())
            .expect("says why no node is asked for")
    };
    let mut s = waiting_gpu_job();
    s.node_groups[0].max = 1;
    assert!(why(&s).contains("no node group it may use"), "{}", why(&s));
    let mut s = waiting_gpu_job();
    s.jobs[0].queue = "capped".into();
    let mut q = Queue::new("capped");
    q.limit = Some(Resources::new(1_000_000, 1 << 44, 8));
    s.queues = vec![q];
    assert!(why(&s).contains("queue capped's limit"), "{}", why(&s));
}

#[test]
fn elastic_extras_and_fitting_jobs_ask_for_nothing() {
    // The gang fits; its extras up to max would not, and are not asked for.
    let mut s = snapshot(
        vec![gpu_node("g0", 32, 8)],
        vec![job("gpu", 2, 40, Resources::new(2000, 8 * GIB, 1))],
    );
    s.node_groups = vec![a100_group(4)];
    let p = plan(&s, &Policy::default());
    assert!(p.job(&key("gpu")).is_some_and(|j| j.admitted));
    assert!(p.scale_up.is_empty(), "{:?}", p.scale_up);
}

#[test]
fn a_job_its_queue_limit_holds_back_asks_for_nothing() {
    let mut s = waiting_gpu_job();
    s.jobs[0].queue = "capped".into();
    let mut q = Queue::new("capped");
    q.limit = Some(Resources::new(1_000_000, 1 << 44, 8));
    s.queues = vec![q];
    let p = plan(&s, &Policy::default());
    assert!(request(&p, "gpu").is_none(), "{:?}", p.scale_up);
}

#[test]
fn a_group_at_its_max_or_that_the_job_may_not_use_is_not_asked() {
    let mut s = waiting_gpu_job();
    s.node_groups[0].max = 1; // two nodes needed, one allowed: all or nothing
    let p = plan(&s, &Policy::default());
    assert!(request(&p, "gpu").is_none(), "{:?}", p.scale_up);

    let mut s = waiting_gpu_job();
    s.jobs[0].placement.trainers.gpu_models = vec!["H100".into()];
    let p = plan(&s, &Policy::default());
    assert!(request(&p, "gpu").is_none(), "{:?}", p.scale_up);

    // A tainted group is for jobs that tolerate its taint.
    let mut s = waiting_gpu_job();
    s.node_groups[0].template.taints = vec![placement::Taint {
        key: "dedicated".into(),
        value: "ml".into(),
        effect: "NoSchedule".into(),
    }];
    assert!(request(&plan(&s, &Policy::default()), "gpu").is_none());
    let toleration = placement::Toleration {
        key: "dedicated".into(),
        operator: "Equal".into(),
        value: "ml".into(),
        effect: "NoSchedule".into(),
    };
    let placement = &mut s.jobs[0].placement;
    for role in [
        &mut placement.master,
        &mut placement.pservers,
        &mut placement.trainers,
    ] {
        role.tolerations = vec![toleration.clone()];
    }
    let p = plan(&s, &Policy::default());
    assert!(request(&p, "gpu").is_some(), "{:?}", p.scale_up);
}

#[test]
fn a_broken_group_is_named_and_left_out() {
    let mut s = waiting_gpu_job();
    s.node_groups[0].min = 9; // above its max of 4
    let p = plan(&s, &Policy::default());
    assert!(request(&p, "gpu").is_none());
    let named = p
        .problems
        .iter()
        .map(ToString::to_string)
        .find(|m| m.contains("gpu-a100"))
        .expect("the group's problem is reported");
    assert!(named.contains("min: 9 is more than max (4)"), "{named}");
}

#[test]
fn a_snapshot_with_node_groups_reads_back_and_version_one_files_still_read() {
    let s = waiting_gpu_job();
    let text = serde_json::to_string(&s).expect("serialises");
    let back: Snapshot = serde_json::from_str(&text).expect("reads back");
    assert_eq!(back, s);
    let old: Snapshot = serde_json::from_str(
        r#"{"time_s": 0, "nodes": [{"name": "n", "allocatable": {"cpu_milli": 1000}}]}"#,
    )
    .expect("a file without groups reads");
    assert!(old.node_groups.is_empty() && old.nodes[0].group.is_none());
}

fn arb_case() -> impl Strategy<Value = Snapshot> {
    (
        1usize..4,
        prop::collection::vec(
            (1u32..12, 0u32..3, 1i64..3, prop::bool::ANY, 0usize..2),
            1..6,
        ),
        prop::collection::vec((0u32..4, 1i64..9, prop::bool::ANY), 1..4),
        prop::option::of(1i64..24),
    )
        .prop_map(|(nodes, jobs, groups, limit)| {
            let nodes = (0..nodes)
                .map(|i| gpu_node(&format!("n{i}"), 16, 4))
                .collect();
            let jobs = jobs
                .into_iter()
                .enumerate()
                .map(|(i, (min, pservers, gpus, a100_only, queue))| {
                    let mut j = job(
                        &format!("j{i}"),
                        min,
                        min + 4,
                        Resources::new(2000, 4 * GIB, gpus),
                    );
                    j.pservers.replicas = pservers;
                    j.queue = format!("q{queue}");
                    j.submit_time_s = i as f64;
                    if a100_only {
                        j.placement.trainers.gpu_models = vec!["A100".into()];
                    }
                    j
                })
                .collect();
            let mut s = snapshot(nodes, jobs);
            s.queues = (0..2)
                .map(|q| {
                    let mut queue = Queue::new(format!("q{q}"));
                    queue.limit = (q == 1)
                        .then(|| limit.map(|g| Resources::new(10_000_000, 1 << 44, g)))
                        .flatten();
                    queue
                })
                .collect();
            s.node_groups = groups
                .into_iter()
                .enumerate()
                .map(|(g, (max, gpus, a100))| {
                    let mut template = gpu_node(&format!("t{g}"), 32, gpus);
                    if a100 {
                        template.set_gpu_model("A100");
                    }
                    NodeGroup {
                        name: format!("group-{g}"),
                        template,
                        min: 0,
                        max,
                        delay_s: 60.0,
                        price_per_node_hour: Some(f64::from(u32::try_from(gpus).unwrap_or(0))),
                    }
                })
                .collect();
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Requests are never for a job its queue's limit holds, together stay within each
    /// group's max, and the nodes of each with the room the plan leaves hold its gang.
    #[test]
    fn requests_are_for_runnable_gangs_within_group_max(s in arb_case()) {
        let p = plan(&s, &Policy::default());
        let after = ebb::plan::apply::apply(&s, &p);
        let left: Vec<Node> = after
            .nodes
            .iter()
            .map(|n| {
                let mut room = n.clone();
                room.allocatable = n.allocatable.sub(&used_on(&after, &n.name));
                room
            })
            .filter(|n| !n.allocatable.is_zero())
            .collect();
        let mut asked = std::collections::HashMap::<&str, u32>::new();
        for r in &p.scale_up {
            let jp = p.job(&r.job).expect("a planned job");
            prop_assert!(!matches!(jp.reason, Some(Reason::QueueLimit { .. })), "{:?}", jp);
            for n in &r.nodes {
                *asked.entry(n.group.as_str()).or_default() += n.count;
            }
            // The requested nodes and the room left hold the job's gang.
            let mut job = s.jobs.iter().find(|j| j.key() == r.job).expect("the job").clone();
            job.pods.clear();
            job.admitted = false;
            let mut alone = with_requested(&s, r);
            alone.nodes.retain(|n| n.group.is_some());
            alone.nodes.extend(left.iter().cloned());
            alone.jobs = vec![job];
            alone.queues.clear();
            alone.jobs[0].queue = "default".into();
            let q = plan(&alone, &Policy::default());
            let got = q.job(&r.job).expect("planned alone");
            prop_assert!(got.admitted && got.target_trainers >= alone.jobs[0].trainers.min,
                "{:?} does not hold {:?}", r, got);
        }
        for g in &s.node_groups {
            prop_assert!(asked.get(g.name.as_str()).copied().unwrap_or(0) <= g.max);
        }
        // Jobs under the queue limit: the gangs asked for fit it together with the admitted.
        if let Some(limit) = s.queues[1].limit {
            let held: Resources = s.jobs.iter()
                .filter(|j| j.queue == "q1")
                .filter(|j| p.job(&j.key()).is_some_and(|jp| jp.admitted)
                    || p.scale_up.iter().any(|r| r.job == j.key()))
                .fold(Resources::ZERO, |a, j| a.add(&j.gang()));
            prop_assert!(held.fits_in(&limit), "{} over {}", held, limit);
        }
    }
}
