//! The real `GpuDevices`: NVML through nvml-wrapper, loaded at run time, so a machine
//! without the library gets a clear error and no crash.

use super::devices::{Ancestor, DeviceAnswer, DeviceError, GpuDevices, LinkAnswer, PairAnswer};
use super::xid::XidLog;
use nvml_wrapper::Nvml;
use nvml_wrapper::bitmasks::device::ThrottleReasons;
use nvml_wrapper::enum_wrappers::device::{
    EccCounter, MemoryError, P2pCapabilitiesIndex, P2pStatus, TemperatureSensor, TopologyLevel,
};
use nvml_wrapper::error::NvmlError;

/// NVML allows up to this many links per GPU.
const MAX_NVLINKS: u32 = 18;

pub struct NvmlDevices {
    nvml: Nvml,
    xids: XidLog,
}

impl NvmlDevices {
    /// `xids`: the critical XID errors a watcher thread collects (see `xid.rs`).
    pub fn open(xids: XidLog) -> Result<NvmlDevices, DeviceError> {
        Nvml::init()
            .map(|nvml| NvmlDevices { nvml, xids })
            .map_err(|e| DeviceError::NoNvml(e.to_string()))
    }
}

fn device_err(index: u32) -> impl Fn(NvmlError) -> DeviceError {
    move |e| DeviceError::Device {
        index,
        message: e.to_string(),
    }
}

/// Reasons that mean the GPU is held back, not merely idle or configured slower.
fn throttle_names(r: ThrottleReasons) -> Vec<String> {
    let named = [
        (ThrottleReasons::SW_POWER_CAP, "sw_power_cap"),
        (ThrottleReasons::HW_SLOWDOWN, "hw_slowdown"),
        (ThrottleReasons::SW_THERMAL_SLOWDOWN, "sw_thermal"),
        (ThrottleReasons::HW_THERMAL_SLOWDOWN, "hw_thermal"),
        (ThrottleReasons::HW_POWER_BRAKE_SLOWDOWN, "hw_power_brake"),
    ];
    named
        .into_iter()
        .filter(|(bit, _)| r.contains(*bit))
        .map(|(_, name)| name.to_string())
        .collect()
}

impl GpuDevices for NvmlDevices {
    fn count(&self) -> Result<u32, DeviceError> {
        self.nvml
            .device_count()
            .map_err(|e| DeviceError::NoNvml(e.to_string()))
    }

    fn device(&self, index: u32) -> Result<DeviceAnswer, DeviceError> {
        let err = device_err(index);
        let d = self.nvml.device_by_index(index).map_err(&err)?;
        let pci = d.pci_info().map_err(&err)?;
        let nvlinks = (0..MAX_NVLINKS)
            .map_while(|link| {
                let l = d.link_wrapper_for(link);
                // Past the last link NVML answers "invalid argument" or "not supported".
                let active = l.is_active().ok()?;
                Some(LinkAnswer {
                    link,
                    active,
                    remote_pci_bus_id: l.remote_pci_info().ok().map(|p| p.bus_id),
                })
            })
            .collect();
        let uuid = d.uuid().map_err(&err)?;
        Ok(DeviceAnswer {
            index,
            xid_errors: self.xids.recent(&uuid, std::time::Instant::now()),
            uuid,
            name: d.name().map_err(&err)?,
            memory_bytes: d.memory_info().map_err(&err)?.total,
            pci_bus_id: pci.bus_id,
            temperature_c: d.temperature(TemperatureSensor::Gpu).ok(),
            ecc_uncorrected: d
                .total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile)
                .ok(),
            throttle: d
                .current_throttle_reasons()
                .map(throttle_names)
                .unwrap_or_default(),
            nvlinks,
        })
    }

    fn pair(&self, a: u32, b: u32) -> Result<PairAnswer, DeviceError> {
        let da = self.nvml.device_by_index(a).map_err(device_err(a))?;
        let db = self.nvml.device_by_index(b).map_err(device_err(b))?;
        let ancestor = match da.topology_common_ancestor(db).map_err(device_err(a))? {
            TopologyLevel::Internal => Ancestor::Board,
            TopologyLevel::Single => Ancestor::Switch,
            TopologyLevel::Multiple => Ancestor::MultiSwitch,
            TopologyLevel::HostBridge => Ancestor::HostBridge,
            TopologyLevel::Node => Ancestor::Socket,
            TopologyLevel::System => Ancestor::System,
        };
        let db = self.nvml.device_by_index(b).map_err(device_err(b))?;
        let p2p_nvlink = matches!(
            da.p2p_status(&db, P2pCapabilitiesIndex::NvLink),
            Ok(P2pStatus::Ok)
        );
        Ok(PairAnswer {
            a,
            b,
            ancestor,
            p2p_nvlink,
        })
    }
}
