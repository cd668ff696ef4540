//! Critical XID errors: NVML reports them as events on an event set, so a thread that
//! owns its own NVML handle waits for them and keeps the recent ones per GPU.

use nvml_wrapper::Nvml;
use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A GPU that raised a critical XID this recently is reported unhealthy.
pub const XID_HOLD: Duration = Duration::from_secs(600);

/// When each critical XID was seen, by GPU UUID.
type Seen = HashMap<String, Vec<(Instant, u64)>>;

/// Recent critical XIDs by GPU UUID.
#[derive(Clone, Default)]
pub struct XidLog {
    seen: Arc<Mutex<Seen>>,
}

impl XidLog {
    pub fn record(&self, uuid: &str, xid: u64, at: Instant) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.entry(uuid.to_string()).or_default().push((at, xid));
        }
    }

    /// XIDs of `uuid` within the hold window before `now`.
    pub fn recent(&self, uuid: &str, now: Instant) -> Vec<u64> {
        let Ok(mut seen) = self.seen.lock() else {
            return Vec::new();
        };
        let Some(list) = seen.get_mut(uuid) else {
            return Vec::new();
        };
        list.retain(|(at, _)| now.duration_since(*at) < XID_HOLD);
        list.iter().map(|(_, x)| *x).collect()
    }

    /// Starts the watching thread; without NVML (or event support) it says why and
    /// the log stays empty.
    pub fn watch(&self) -> Result<(), NvmlError> {
        let nvml = Nvml::init()?;
        let log = self.clone();
        std::thread::Builder::new()
            .name("xid-events".into())
            .spawn(move || {
                if let Err(e) = wait_for_xids(&nvml, &log) {
                    tracing::warn!(error = %e, "XID events unavailable; ECC and temperature still read");
                }
            })
            .map_err(|_| NvmlError::Unknown)?;
        Ok(())
    }
}

fn wait_for_xids(nvml: &Nvml, log: &XidLog) -> Result<(), NvmlError> {
    let mut set = nvml.create_event_set()?;
    for i in 0..nvml.device_count()? {
        let device = nvml.device_by_index(i)?;
        set = device
            .register_events(EventTypes::CRITICAL_XID_ERROR, set)
            .map_err(|e| e.error)?;
    }
    loop {
        match set.wait(5_000) {
            Ok(event) => {
                let xid = match event.event_data {
                    Some(XidError::Value(x)) => x,
                    _ => 0,
                };
                let uuid = event.device.uuid().unwrap_or_default();
                tracing::warn!(gpu = %uuid, xid, "critical XID error");
                log.record(&uuid, xid, Instant::now());
            }
            Err(NvmlError::Timeout) => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xids_are_held_for_a_while_then_forgotten() {
        let log = XidLog::default();
        let t0 = Instant::now();
        log.record("GPU-1", 79, t0);
        assert_eq!(log.recent("GPU-1", t0 + Duration::from_secs(1)), vec![79]);
        assert!(log.recent("GPU-2", t0).is_empty());
        assert!(log.recent("GPU-1", t0 + XID_HOLD).is_empty());
    }
}
