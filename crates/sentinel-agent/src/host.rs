//! Where the agent reads the host from: its facts, telemetry and inventory sources, all
//! under one root (`/`, or a fake host in tests).

use std::path::Path;

use crate::facts::HostPaths;
use crate::inventory::InventorySource;
use crate::telemetry::SamplerPaths;

/// The host's sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Where host facts are read.
    pub facts: HostPaths,
    /// Where telemetry is sampled.
    pub telemetry: SamplerPaths,
    /// Where the installed packages are listed; `None` when no package manager was found.
    pub inventory: Option<InventorySource>,
}

impl Host {
    /// The host whose files are under `root`, with `inventory` as its package list, or
    /// the package manager detected under `root` when it is `None`.
    pub fn under(root: &Path, inventory: Option<InventorySource>) -> Self {
        Self {
            facts: HostPaths::under(root),
            telemetry: SamplerPaths {
                proc_root: root.join("proc"),
                utmp: root.join("var/run/utmp"),
            },
            inventory: inventory.or_else(|| InventorySource::detect(root)),
        }
    }
}
