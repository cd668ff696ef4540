//! `ebb agent`: the node agent (a DaemonSet), and `ebb agent --print`.

use anyhow::{Context as _, Result};
use clap::Args;
use ebb::agent::devices::{DeviceError, GpuDevices, Recorded};
use ebb::agent::nvml::NvmlDevices;
use ebb::agent::publish::publish;
use ebb::agent::topology::{Discovery, discover};
use ebb::agent::xid::XidLog;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
pub struct AgentArgs {
    /// Print what was discovered (GPUs, links, NVLink groups, health) as JSON and exit.
    #[arg(long)]
    print: bool,
    /// The Node to publish on (the DaemonSet sets it from spec.nodeName).
    #[arg(long, env = "NODE_NAME")]
    node_name: Option<String>,
    /// Seconds between discoveries.
    #[arg(long, default_value_t = 60)]
    interval_s: u64,
    /// Read a recorded device description (JSON) instead of asking NVML.
    #[arg(long)]
    recorded: Option<PathBuf>,
}

fn source(a: &AgentArgs, xids: &XidLog) -> Result<Box<dyn GpuDevices>, DeviceError> {
    match &a.recorded {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| DeviceError::Recorded(format!("{}: {e}", path.display())))?;
            Ok(Box::new(Recorded::parse(&text)?))
        }
        None => Ok(Box::new(NvmlDevices::open(xids.clone())?)),
    }
}

/// What the node has; without NVML (or GPUs), 0 GPUs and the reason.
fn look(a: &AgentArgs, xids: &XidLog, warned: &mut bool) -> Discovery {
    match source(a, xids).and_then(|s| discover(s.as_ref())) {
        Ok(d) => d,
        Err(e) => {
            if !*warned {
                tracing::warn!(error = %e, "no GPUs can be read; publishing 0 GPUs");
                *warned = true;
            }
            Discovery::none(e.to_string())
        }
    }
}

pub fn agent(a: AgentArgs) -> Result<()> {
    let mut warned = false;
    let xids = XidLog::default();
    if a.print {
        let d = look(&a, &xids, &mut warned);
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(());
    }
    let node = a
        .node_name
        .clone()
        .context("--node-name (or NODE_NAME) is needed to publish")?;
    if a.recorded.is_none()
        && let Err(e) = xids.watch()
    {
        tracing::debug!(error = %e, "no XID watcher");
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let client = kube::Client::try_default()
            .await
            .context("connecting to the Kubernetes API")?;
        loop {
            let d = look(&a, &xids, &mut warned);
            match publish(&client, &node, &d).await {
                Ok(true) => tracing::info!(
                    node,
                    gpus = d.gpus.len(),
                    healthy = d.healthy(),
                    groups = d.nvlink_groups.len(),
                    "published the GPU topology"
                ),
                Ok(false) => tracing::debug!(node, "GPU topology unchanged"),
                Err(e) => tracing::warn!(node, error = %e, "could not publish; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(a.interval_s.max(1))) => {}
                _ = crate::coord_cmd::terminated() => return Ok(()),
            }
        }
    })
}
