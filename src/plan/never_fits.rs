//! Whether a job can never run on this cluster as it stands: one of its pods is larger
//! than every node even when that node is empty, or its gang (master + pservers + min
//! trainers) is larger than every schedulable node together. Such a job stays pending
//! like any other (the cluster may grow), but it says so, naming the resource, instead of
//! reading as one that waits for room.

use crate::model::{Job, Reason, Resources};

const NAMES: [&str; 3] = ["cpu", "memory", "gpus"];

/// `value` of resource `dim` as a person reads it: cores, Gi, GPUs.
fn amount(dim: usize, value: i64) -> String {
    match dim {
        0 if value % 1000 == 0 => format!("{}", value / 1000),
        0 => format!("{value}m"),
        1 => {
            let gib = value as f64 / (1u64 << 30) as f64;
            let s = format!("{gib:.1}");
            format!("{}Gi", s.strip_suffix(".0").unwrap_or(&s))
        }
        _ => value.to_string(),
    }
}

/// The job's pods by kind, with how many of each the gang needs.
fn pods(job: &Job) -> [(&'static str, Resources, u32); 3] {
    [
        ("the master", job.master.resources, job.master.replicas),
        ("a pserver", job.pservers.resources, job.pservers.replicas),
        ("a trainer", job.trainers.resources, job.trainers.min.max(1)),
    ]
}

/// `NeverFits` for `job` on nodes of these `shapes` (each distinct allocatable of a
/// schedulable node once) whose sum is `total`; `None` when it could run on them empty.
pub fn never_fits(job: &Job, shapes: &[Resources], total: Resources) -> Option<Reason> {
    if shapes.is_empty() {
        return None; // no node at all: waiting for one is all there is
    }
    for (what, shape, n) in pods(job) {
        if n == 0 || shapes.iter().any(|s| shape.fits_in(s)) {
            continue;
        }
        let need = shape.as_array();
        let has = |s: &Resources, d: usize| s.as_array()[d];
        // A resource beyond the largest node of that resource names itself; otherwise no
        // node has enough of everything at once: name what the closest node lacks.
        let largest: [i64; 3] =
            std::array::from_fn(|d| shapes.iter().map(|s| has(s, d)).max().unwrap_or(0));
        if let Some(d) = (0..3).find(|&d| need[d] > largest[d]) {
            return Some(Reason::NeverFits {
                resource: NAMES[d].into(),
                message: format!(
                    "{what} needs {} {}, but the largest node has {}: it can never fit on \
                     this cluster",
                    NAMES[d],
                    amount(d, need[d]),
                    amount(d, largest[d])
                ),
            });
        }
        let lacks = |s: &Resources| (0..3).filter(|&d| need[d] > has(s, d)).collect::<Vec<_>>();
        let closest = shapes.iter().min_by_key(|s| lacks(s).len())?;
        let lacking = lacks(closest);
        let words: Vec<String> = lacking
            .iter()
            .map(|&d| {
                format!(
                    "{} {} (it has {})",
                    NAMES[d],
                    amount(d, need[d]),
                    amount(d, has(closest, d))
                )
            })
            .collect();
        return Some(Reason::NeverFits {
            resource: NAMES[lacking.first().copied().unwrap_or(0)].into(),
            message: format!(
                "{what} needs more than any one node has: the closest lacks {}; it can never \
                 fit on this cluster",
                words.join(" and ")
            ),
        });
    }
    let gang = job.gang().as_array();
    let all = total.as_array();
    (0..3)
        .find(|&d| gang[d] > all[d])
        .map(|d| Reason::NeverFits {
            resource: NAMES[d].into(),
            message: format!(
                "master + pservers + min trainers need {} {}, but the whole cluster has {}: it can \
             never fit",
                NAMES[d],
                amount(d, gang[d]),
                amount(d, all[d])
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PodGroup, TrainerSpec};

    const GIB: i64 = 1 << 30;

    fn job(trainer: Resources, min: u32) -> Job {
        Job {
            namespace: "default".into(),
            name: "j".into(),
            queue: "default".into(),
            priority: 0,
            weight: 1.0,
            pods: Vec::new(),
            submit_time_s: 0.0,
            admitted: false,
            last_scale_time_s: None,
            speedup: Vec::new(),
            placement: Default::default(),
            master: PodGroup {
                replicas: 1,
                resources: Resources::new(500, GIB, 0),
            },
            pservers: PodGroup {
                replicas: 1,
                resources: Resources::new(500, GIB, 0),
            },
            trainers: TrainerSpec {
                min,
                max: min,
                resources: trainer,
            },
        }
    }

    #[test]
    fn a_pod_beyond_the_largest_node_names_the_resource() {
        let shapes = [
            Resources::new(16_000, 64 * GIB, 8),
            Resources::new(64_000, 256 * GIB, 0),
        ];
        let total = Resources::new(80_000, 320 * GIB, 8);
        let r = never_fits(&job(Resources::new(1000, GIB, 9), 1), &shapes, total).unwrap();
        let Reason::NeverFits { resource, message } = &r else {
            panic!("{r:?}")
        };
        assert_eq!(resource, "gpus");
        assert!(
            message.contains("a trainer needs gpus 9, but the largest node has 8"),
            "{message}"
        );
        // 17 cores and a GPU: each alone fits some node, both together none.
        let r = never_fits(&job(Resources::new(17_000, GIB, 1), 1), &shapes, total).unwrap();
        let Reason::NeverFits { resource, message } = &r else {
            panic!("{r:?}")
        };
        assert_eq!(resource, "cpu");
        assert!(message.contains("cpu 17 (it has 16)"), "{message}");
    }

    #[test]
    fn a_gang_beyond_the_whole_cluster_never_fits_but_one_that_fits_empty_does() {
        let shapes = [Resources::new(4000, 8 * GIB, 0)];
        let total = Resources::new(8000, 16 * GIB, 0);
        let r = never_fits(&job(Resources::new(1000, GIB, 0), 10), &shapes, total).unwrap();
        assert!(
            r.to_string()
                .contains("need cpu 11, but the whole cluster has 8"),
            "{r}"
        );
        assert_eq!(
            never_fits(&job(Resources::new(1000, GIB, 0), 6), &shapes, total),
            None
        );
        assert_eq!(
            never_fits(&job(Resources::new(500, GIB, 0), 1), &[], Resources::ZERO),
            None
        );
    }

    #[test]
    fn amounts_read_as_written() {
        assert_eq!(amount(0, 16_000), "16");
        assert_eq!(amount(0, 500), "500m");
        assert_eq!(amount(1, 8 * GIB), "8Gi");
        assert_eq!(amount(1, GIB / 2), "0.5Gi");
        assert_eq!(amount(2, 3), "3");
    }
}
