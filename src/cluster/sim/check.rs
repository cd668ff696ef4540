//! Scenario validation: the first defect, as the field path and what is wrong.

use super::scenario::{PodShape, Scenario};
use crate::model::Resources;

impl Scenario {
    /// The first defect as (field, message).
    pub(super) fn check(&self) -> Result<(), (String, String)> {
        let bad = |field: String, message: &str| Err((field, message.to_string()));
        let positive = |v: f64| v.is_finite() && v > 0.0;
        let non_negative = |v: f64| v.is_finite() && v >= 0.0;
        if !positive(self.tick_s) {
            return bad("tick_s".into(), "must be a positive number of seconds");
        }
        if !non_negative(self.pod_startup_s) {
            return bad("pod_startup_s".into(), "must be >= 0 seconds");
        }
        if !positive(self.end_s) {
            return bad("end_s".into(), "must be a positive number of seconds");
        }
        if self.cluster.nodes.is_empty() {
            return bad(
                "cluster.nodes".into(),
                "the cluster needs at least one node",
            );
        }
        let mut capacity = Resources::ZERO;
        let mut largest = Vec::new();
        for (i, g) in self.cluster.nodes.iter().enumerate() {
            let f = |name: &str| format!("cluster.nodes[{i}].{name}");
            match &g.autoscale {
                None if g.count == 0 => return bad(f("count"), "must be at least 1"),
                None => {}
                Some(a) => {
                    let f = |name: &str| format!("cluster.nodes[{i}].autoscale.{name}");
                    if a.min > a.max || a.max == 0 {
                        return bad(f("max"), "must be at least 1 and at least min");
                    }
                    if !(a.min..=a.max).contains(&g.count) {
                        return bad(
                            format!("cluster.nodes[{i}].count"),
                            "an autoscaled group starts between its min and max",
                        );
                    }
                    if a.delay_s.is_some_and(|d| !non_negative(d)) {
                        return bad(f("delay_s"), "must be >= 0 seconds");
                    }
                    if !non_negative(a.unneeded_s) {
                        return bad(f("unneeded_s"), "must be >= 0 seconds");
                    }
                    if !(a.utilisation.is_finite() && (0.0..=1.0).contains(&a.utilisation)) {
                        return bad(f("utilisation"), "must be between 0 and 1");
                    }
                    if a.price_per_node_hour.is_some_and(|p| !non_negative(p)) {
                        return bad(f("price_per_node_hour"), "must be >= 0");
                    }
                }
            }
            check_shape(&f(""), g.cpu, g.memory_gib, g.gpus, true)?;
            let shape = PodShape {
                cpu: g.cpu,
                memory_gib: g.memory_gib,
                gpus: g.gpus,
            }
            .resources();
            for (k, t) in g.taints.iter().enumerate() {
                if let Err(e) = t.check() {
                    return bad(f(&format!("taints[{k}].{}", e.field)), &e.message);
                }
            }
            capacity = capacity.add(&shape.times(i64::from(g.nodes_ever())));
            largest.push(shape);
        }
        let mut names = std::collections::HashSet::new();
        for (i, s) in self.services.iter().enumerate() {
            let f = |name: &str| format!("services[{i}].{name}");
            if !names.insert(("svc", s.name.clone())) {
                return bad(f("name"), "two services have this name");
            }
            check_shape(&f("pod."), s.pod.cpu, s.pod.memory_gib, s.pod.gpus, true)?;
            if let Err(e) = s.placement.check() {
                return bad(f(&format!("placement.{}", e.field)), &e.message);
            }
            let h = &s.hpa;
            if h.min_replicas > h.max_replicas {
                return bad(f("hpa.min_replicas"), "must be <= hpa.max_replicas");
            }
            if !positive(h.target_qps_per_pod) {
                return bad(f("hpa.target_qps_per_pod"), "must be > 0");
            }
            if !non_negative(h.tolerance) || h.tolerance >= 1.0 {
                return bad(f("hpa.tolerance"), "must be in [0, 1)");
            }
            if !positive(h.sync_period_s) {
                return bad(f("hpa.sync_period_s"), "must be > 0");
            }
            if !non_negative(h.scale_down_stabilization_s) {
                return bad(f("hpa.scale_down_stabilization_s"), "must be >= 0");
            }
            if s.load.is_empty() {
                return bad(f("load"), "needs at least one step");
            }
            for (k, step) in s.load.iter().enumerate() {
                if !non_negative(step.at_s) {
                    return bad(f(&format!("load[{k}].at_s")), "must be >= 0 seconds");
                }
                if !non_negative(step.qps) {
                    return bad(f(&format!("load[{k}].qps")), "must be >= 0");
                }
            }
        }
        for (i, j) in self.jobs.iter().enumerate() {
            let f = |name: &str| format!("jobs[{i}].{name}");
            if !names.insert(("job", j.name.clone())) {
                return bad(f("name"), "two jobs have this name");
            }
            if !non_negative(j.submit_s) {
                return bad(f("submit_s"), "must be >= 0 seconds");
            }
            check_shape(
                &f("master."),
                j.master.cpu,
                j.master.memory_gib,
                j.master.gpus,
                true,
            )?;
            let p = &j.pservers.shape();
            check_shape(&f("pservers."), p.cpu, p.memory_gib, p.gpus, false)?;
            let t = &j.trainers;
            check_shape(&f("trainers."), t.cpu, t.memory_gib, t.gpus, true)?;
            if t.min > t.max {
                return bad(f("trainers.min"), "must be <= trainers.max");
            }
            if t.max == 0 {
                return bad(f("trainers.max"), "must be at least 1");
            }
            if t.requested == 0 || t.requested > t.max {
                return bad(f("trainers.requested"), "must be in 1..=trainers.max");
            }
            if let Err(e) = j.placement.check() {
                return bad(f(&format!("placement.{}", e.field)), &e.message);
            }
            if !positive(j.work) {
                return bad(f("work"), "must be > 0 samples");
            }
            if !positive(j.rate_per_trainer) {
                return bad(f("rate_per_trainer"), "must be > 0 samples per second");
            }
            if !non_negative(j.rescale_pause_s) {
                return bad(f("rescale_pause_s"), "must be >= 0 seconds");
            }
            for (k, &(n, s)) in j.speedup.iter().enumerate() {
                if n == 0 || !positive(s) {
                    return bad(
                        f(&format!("speedup[{k}]")),
                        "needs trainers >= 1 and speedup > 0",
                    );
                }
                if k > 0 && j.speedup[k - 1].0 >= n {
                    return bad(f(&format!("speedup[{k}]")), "trainer counts must increase");
                }
            }
            for (k, p) in j.placement_speedup.iter().enumerate() {
                if p.per_node.is_empty() || p.per_node.contains(&0) || !positive(p.speedup) {
                    return bad(
                        f(&format!("placement_speedup[{k}]")),
                        "needs per_node counts >= 1 and speedup > 0",
                    );
                }
            }
            // The smallest gang must fit the cluster, and each pod some node.
            let trainer = t.shape().resources();
            let gang = j
                .master
                .resources()
                .add(&p.resources().times(i64::from(j.pservers.count)))
                .add(&trainer.times(i64::from(t.min)));
            if !gang.fits_in(&capacity) {
                return bad(
                    f("trainers.min"),
                    "master + pservers + min trainers exceed the whole cluster",
                );
            }
            let requested = j
                .master
                .resources()
                .add(&p.resources().times(i64::from(j.pservers.count)))
                .add(&trainer.times(i64::from(t.requested)));
            if !requested.fits_in(&capacity) {
                return bad(
                    f("trainers.requested"),
                    "master + pservers + requested trainers exceed the whole cluster (the static policy could never run the job)",
                );
            }
            for (field, shape) in [
                ("master", j.master.resources()),
                ("trainers", trainer),
                ("pservers", p.resources()),
            ] {
                if !largest.iter().any(|n| shape.fits_in(n)) {
                    return bad(f(field), "this pod fits on no node of the cluster");
                }
            }
        }
        let node_names: Vec<String> = self.nodes().into_iter().map(|n| n.name).collect();
        for (i, fault) in self.faults.iter().enumerate() {
            let f = |name: &str| format!("faults[{i}].{name}");
            if !node_names.contains(&fault.node) {
                return bad(f("node"), "no node of the cluster has this name");
            }
            if !non_negative(fault.down_s) {
                return bad(f("down_s"), "must be >= 0 seconds");
            }
            if let Some(up) = fault.up_s
                && !(up.is_finite() && up > fault.down_s)
            {
                return bad(f("up_s"), "must be after down_s");
            }
        }
        Ok(())
    }
}

/// Resources in people's units: finite, not negative, not absurd, and (for pods that
/// must hold something) not all zero.
fn check_shape(
    prefix: &str,
    cpu: f64,
    memory_gib: f64,
    gpus: i64,
    non_empty: bool,
) -> Result<(), (String, String)> {
    const MAX_CPU: f64 = 1.0e6;
    const MAX_GIB: f64 = 1.0e7;
    if !(cpu.is_finite() && (0.0..=MAX_CPU).contains(&cpu)) {
        return Err((
            format!("{prefix}cpu"),
            "must be between 0 and 1e6 cores".into(),
        ));
    }
    if !(memory_gib.is_finite() && (0.0..=MAX_GIB).contains(&memory_gib)) {
        return Err((
            format!("{prefix}memory_gib"),
            "must be between 0 and 1e7 GiB".into(),
        ));
    }
    if !(0..=1_000_000).contains(&gpus) {
        return Err((format!("{prefix}gpus"), "must be between 0 and 1e6".into()));
    }
    if non_empty && cpu == 0.0 && memory_gib == 0.0 && gpus == 0 {
        return Err((
            format!("{prefix}cpu"),
            "a pod must request something".into(),
        ));
    }
    Ok(())
}
