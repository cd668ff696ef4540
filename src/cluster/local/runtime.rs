//! The embedded cluster's loop: ask each master how far it is, then tick.

use super::backend::lock;
use super::world::World;
use crate::api::progress::MasterPoller;
use crate::model::JobKey;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub async fn run(
    world: Arc<Mutex<World>>,
    tick: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut masters = MasterPoller::default();
    loop {
        poll_masters(&world, &mut masters).await;
        let started = Instant::now();
        let plan = lock(&world).tick(started, &World::now());
        if !plan.create.is_empty() || !plan.delete.is_empty() {
            tracing::info!(
                create = plan.create.len(),
                delete = plan.delete.len(),
                ms = started.elapsed().as_secs_f64() * 1e3,
                "tick applied"
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = &mut shutdown => break,
        }
    }
    lock(&world).stop_all();
}

/// Progress for `ebbctl watch`; a master that does not answer keeps its last progress.
async fn poll_masters(world: &Arc<Mutex<World>>, masters: &mut MasterPoller) {
    let running: Vec<(JobKey, String)> = lock(world)
        .jobs
        .iter()
        .filter_map(|(k, r)| {
            let (_, pod) = r.pods.get(&format!("{}-master-0", r.name()))?;
            Some((k.clone(), pod.addr.clone()?))
        })
        .collect();
    masters.keep_only(running.iter().map(|(_, a)| a.as_str()));
    for (key, addr) in running {
        let Some(p) = masters.ask(&addr).await else {
            continue;
        };
        let mut w = lock(world);
        let changed = w.jobs.get_mut(&key).is_some_and(|r| {
            let changed = r.progress != Some(p);
            r.progress = Some(p);
            changed
        });
        if changed && let Some(r) = w.jobs.get(&key) {
            w.emit("MODIFIED", r);
        }
    }
}
