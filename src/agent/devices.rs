//! The small trait between NVML's answers and everything built from them, so the graph
//! and the published topology are tested with recorded device descriptions.

use serde::{Deserialize, Serialize};

/// Where two GPUs' closest common PCIe ancestor is (NVML's topology levels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ancestor {
    /// Same board (e.g. a dual-GPU card).
    Board,
    /// One PCIe switch.
    Switch,
    /// Several switches, no host bridge.
    MultiSwitch,
    HostBridge,
    /// Same CPU socket (NUMA node).
    Socket,
    /// Across sockets.
    System,
}

/// One GPU as NVML describes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceAnswer {
    pub index: u32,
    pub uuid: String,
    pub name: String,
    pub memory_bytes: u64,
    pub pci_bus_id: String,
    #[serde(default)]
    pub temperature_c: Option<u32>,
    /// Uncorrected ECC errors since the driver loaded (None: ECC not supported).
    #[serde(default)]
    pub ecc_uncorrected: Option<u64>,
    /// Clock throttle reasons other than idle / application settings.
    #[serde(default)]
    pub throttle: Vec<String>,
    /// Critical XID errors seen recently (e.g. 79: fallen off the bus, 48: double-bit ECC).
    #[serde(default)]
    pub xid_errors: Vec<u64>,
    /// Each NVLink of the device: whether it is up and the PCI bus id at the other end
    /// (a peer GPU, or an NVSwitch).
    #[serde(default)]
    pub nvlinks: Vec<LinkAnswer>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkAnswer {
    pub link: u32,
    pub active: bool,
    #[serde(default)]
    pub remote_pci_bus_id: Option<String>,
}

/// What NVML says about a pair of GPUs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairAnswer {
    pub a: u32,
    pub b: u32,
    pub ancestor: Ancestor,
    /// `p2p_status(.., NvLink) == Ok`: they talk over NVLink (directly or via NVSwitch).
    pub p2p_nvlink: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("no NVIDIA management library: {0}")]
    NoNvml(String),
    #[error("GPU {index}: {message}")]
    Device { index: u32, message: String },
    #[error("{0}")]
    Recorded(String),
}

/// The questions the agent asks of NVML.
pub trait GpuDevices {
    fn count(&self) -> Result<u32, DeviceError>;
    fn device(&self, index: u32) -> Result<DeviceAnswer, DeviceError>;
    fn pair(&self, a: u32, b: u32) -> Result<PairAnswer, DeviceError>;
}

/// A machine's answers recorded to a file (JSON): for tests and `--recorded`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recorded {
    pub devices: Vec<DeviceAnswer>,
    #[serde(default)]
    pub pairs: Vec<PairAnswer>,
}

impl Recorded {
    pub fn parse(text: &str) -> Result<Recorded, DeviceError> {
        serde_json::from_str(text).map_err(|e| DeviceError::Recorded(e.to_string()))
    }
}

impl GpuDevices for Recorded {
    fn count(&self) -> Result<u32, DeviceError> {
        Ok(self.devices.len() as u32)
    }

    fn device(&self, index: u32) -> Result<DeviceAnswer, DeviceError> {
        self.devices
            .iter()
            .find(|d| d.index == index)
            .cloned()
            .ok_or(DeviceError::Device {
                index,
                message: "not recorded".into(),
            })
    }

    fn pair(&self, a: u32, b: u32) -> Result<PairAnswer, DeviceError> {
        self.pairs
            .iter()
            .find(|p| (p.a, p.b) == (a, b) || (p.a, p.b) == (b, a))
            .cloned()
            .ok_or(DeviceError::Device {
                index: a,
                message: format!("no recorded answer for the pair ({a}, {b})"),
            })
    }
}
