//! A device's vital signs, as the agent samples them and sends them in batches.

use serde::{Deserialize, Serialize};

use crate::enroll::AgentSettings;
use crate::facts::HostFacts;

/// The most samples one batch may carry; an agent that was offline longer sends
/// several batches, oldest first.
pub const MAX_BATCH_SAMPLES: usize = 500;
/// The most disks, interfaces or warnings one sample may list.
pub const MAX_SAMPLE_ITEMS: usize = 256;

/// One reading of a host's vital signs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySample {
    /// Whole seconds since boot.
    pub uptime_seconds: u64,
    /// Load averages over 1, 5 and 15 minutes.
    pub load: [f64; 3],
    /// Percentage of CPU time not idle since the previous sample; `None` on the first.
    pub cpu_percent: Option<f64>,
    /// Physical memory.
    pub memory: MemoryUsage,
    /// Swap space.
    pub swap: MemoryUsage,
    /// Real mounted filesystems, in mount order.
    pub disks: Vec<DiskUsage>,
    /// Network interfaces, by name.
    pub interfaces: Vec<InterfaceStats>,
    /// Logged-in sessions (a user logged in twice counts twice, as `who` lists them).
    pub logged_in_users: u32,
    /// Sources that could not be read or understood.
    pub warnings: Vec<String>,
}

impl TelemetrySample {
    /// Why this sample cannot be stored, if it cannot: non-finite or negative numbers,
    /// a CPU percentage above 100, or more than [`MAX_SAMPLE_ITEMS`] of anything.
    pub fn problem(&self) -> Option<String> {
        if self.load.iter().any(|l| !l.is_finite() || *l < 0.0) {
            return Some("load must be finite and not negative".into());
        }
        if let Some(cpu) = self.cpu_percent
            && !(0.0..=100.0).contains(&cpu)
        {
            return Some("cpu_percent must be between 0 and 100".into());
        }
        if self.disks.len() > MAX_SAMPLE_ITEMS
            || self.interfaces.len() > MAX_SAMPLE_ITEMS
            || self.warnings.len() > MAX_SAMPLE_ITEMS
            || self
                .interfaces
                .iter()
                .any(|i| i.addresses.len() > MAX_SAMPLE_ITEMS)
        {
            return Some(format!(
                "more than {MAX_SAMPLE_ITEMS} disks, interfaces, addresses or warnings"
            ));
        }
        None
    }
}

/// How much of a kind of memory there is and how much is in use, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryUsage {
    /// All of it.
    pub total_bytes: u64,
    /// What can still be used: for memory, the kernel's estimate of what new programs can
    /// get without swapping (caches it can drop included); for swap, what is free.
    pub available_bytes: u64,
    /// `total_bytes - available_bytes`.
    pub used_bytes: u64,
}

/// How full one mounted filesystem is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskUsage {
    /// Where it is mounted.
    pub mount: String,
    /// The filesystem type: `ext4`, `xfs`, `btrfs`, `vfat`, …
    pub filesystem: String,
    /// What is mounted: a block device such as `/dev/nvme0n1p2`, a ZFS dataset, …
    pub device: String,
    /// The filesystem's size.
    pub total_bytes: u64,
    /// Space in use, as `df` counts it (blocks not free).
    pub used_bytes: u64,
    /// Space unprivileged users can still write (less than free space when blocks are
    /// reserved for root).
    pub available_bytes: u64,
}

/// One network interface's addresses and traffic since it came up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceStats {
    /// The interface name: `lo`, `eth0`, `wlp2s0`, …
    pub name: String,
    /// Its IPv4 then IPv6 addresses, without prefix length.
    pub addresses: Vec<String>,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
}

/// A sample and when the agent took it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimedSample {
    /// Unix seconds, by the device's clock.
    pub at: i64,
    pub sample: TelemetrySample,
}

/// `POST /api/v1/agent/telemetry`: samples oldest first (the heartbeat is a batch,
/// even an empty one), and the host's facts when they changed or the agent started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryBatch {
    pub samples: Vec<TimedSample>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<HostFacts>,
}

/// The answer to a [`TelemetryBatch`]: how many samples were stored, and the settings
/// the agent should now follow (they may have changed on the server).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetryAck {
    pub accepted: u32,
    pub settings: AgentSettings,
}
