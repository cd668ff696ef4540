//! Writes this replica made that its reflectors have not seen yet. Planning before they
//! arrive would see a job without the trainers just created and create more (the
//! expectations pattern of Kubernetes' own controllers).

use crate::cluster::kube::{Action, ClusterObjects};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Past this, a missing echo is assumed lost (the watch restarts, the object was deleted
/// by someone else) and planning resumes on what the stores say.
pub const EXPECTATION_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Default)]
pub struct Expectations {
    created: HashSet<(String, String)>,
    deleted: HashSet<(String, String)>,
    since: Option<Instant>,
}

impl Expectations {
    /// Expect the effect of `actions` whose calls succeeded (`failed` holds the ones that
    /// did not, by index).
    pub fn expect(&mut self, actions: &[Action], failed: &HashSet<usize>, now: Instant) {
        for (i, action) in actions.iter().enumerate() {
            if failed.contains(&i) {
                continue;
            }
            match action {
                Action::CreatePod(pod) => {
                    self.created.insert((
                        pod.metadata.namespace.clone().unwrap_or_default(),
                        pod.metadata.name.clone().unwrap_or_default(),
                    ));
                }
                Action::DeletePod {
                    namespace, name, ..
                } => {
                    self.deleted.insert((namespace.clone(), name.clone()));
                }
                _ => {}
            }
        }
        if !self.created.is_empty() || !self.deleted.is_empty() {
            self.since.get_or_insert(now);
        }
    }

    /// Forgets what the stores now show; true when nothing is outstanding (or waited
    /// long enough), i.e. the stores can be planned on.
    pub fn settled(&mut self, objects: &ClusterObjects, now: Instant) -> bool {
        if self.created.is_empty() && self.deleted.is_empty() {
            return true;
        }
        let mut present = HashSet::new();
        let mut leaving = HashSet::new();
        for pod in &objects.pods {
            let key = (
                pod.metadata.namespace.clone().unwrap_or_default(),
                pod.metadata.name.clone().unwrap_or_default(),
            );
            if pod.metadata.deletion_timestamp.is_some() {
                leaving.insert(key.clone());
            }
            present.insert(key);
        }
        self.created.retain(|k| !present.contains(k));
        self.deleted
            .retain(|k| present.contains(k) && !leaving.contains(k));
        let done = self.created.is_empty() && self.deleted.is_empty();
        let expired = self
            .since
            .is_some_and(|s| now.duration_since(s) >= EXPECTATION_TIMEOUT);
        if done || expired {
            if !done {
                tracing::warn!(
                    created = self.created.len(),
                    deleted = self.deleted.len(),
                    "watch never showed some writes; planning anyway"
                );
            }
            *self = Expectations::default();
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use std::sync::Arc;

    fn pod(name: &str, leaving: bool) -> Arc<Pod> {
        let mut v = serde_json::json!({"metadata": {"name": name, "namespace": "ml"}});
        if leaving {
            v["metadata"]["deletionTimestamp"] = "2026-11-23T10:00:00Z".into();
        }
        Arc::new(serde_json::from_value(v).unwrap())
    }

    fn create(name: &str) -> Action {
        Action::CreatePod(Box::new(
            serde_json::from_value(
                serde_json::json!({"metadata": {"name": name, "namespace": "ml"}}),
            )
            .unwrap(),
        ))
    }

    #[test]
    fn waits_for_creates_and_deletes_to_show_then_expires() {
        let t0 = Instant::now();
        let mut e = Expectations::default();
        let actions = [
            create("a"),
            create("failed"),
            Action::DeletePod {
                namespace: "ml".into(),
                name: "old".into(),
                grace_s: None,
                why: String::new(),
            },
        ];
        e.expect(&actions, &HashSet::from([1]), t0);
        let mut objects = ClusterObjects {
            pods: vec![pod("old", false)],
            ..ClusterObjects::default()
        };
        assert!(!e.settled(&objects, t0), "nothing echoed yet");
        objects.pods = vec![pod("a", false), pod("old", false)];
        assert!(!e.settled(&objects, t0), "the delete has not shown");
        objects.pods = vec![pod("a", false), pod("old", true)];
        assert!(
            e.settled(&objects, t0),
            "both seen; the failed create is not awaited"
        );

        e.expect(&[create("b")], &HashSet::new(), t0);
        assert!(!e.settled(&objects, t0 + Duration::from_secs(1)));
        assert!(e.settled(&objects, t0 + EXPECTATION_TIMEOUT));
        assert!(
            e.settled(&objects, t0 + EXPECTATION_TIMEOUT),
            "reset after expiry"
        );
    }
}
