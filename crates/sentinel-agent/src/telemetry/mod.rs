//! Telemetry: periodic samples of a host's uptime, load, CPU, memory, disks, network and
//! logged-in users, read from procfs, `statvfs(3)`, `getifaddrs(3)` and utmp.
//!
//! A [`Sampler`] keeps the previous `/proc/stat` reading, since CPU utilisation is the
//! share of busy time between two readings. A source that cannot be read does not fail
//! the sample: its fields stay at zero (or empty) and the sample's `warnings` say why.
//! The sample itself is the protocol's [`TelemetrySample`].

mod cpu;
mod disks;
mod memory;
mod network;
mod system;
mod users;

use std::path::{Path, PathBuf};

use sentinel_protocol::telemetry::TelemetrySample;

use crate::files::{read_capped, read_text};
use cpu::CpuTimes;

/// Where the sampler reads from. Interface addresses come from `getifaddrs(3)`, so from the
/// network namespace the agent runs in whatever the procfs root, and disk usage from the
/// mount points the mount table names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamplerPaths {
    /// The procfs mount, `/proc` on a host.
    pub proc_root: PathBuf,
    /// The utmp login records, `/var/run/utmp` on a host.
    pub utmp: PathBuf,
}

impl Default for SamplerPaths {
    fn default() -> Self {
        Self {
            proc_root: PathBuf::from("/proc"),
            utmp: PathBuf::from("/var/run/utmp"),
        }
    }
}

/// Takes [`TelemetrySample`]s, remembering what CPU utilisation is measured from.
#[derive(Debug, Clone)]
pub struct Sampler {
    paths: SamplerPaths,
    previous_cpu: Option<CpuTimes>,
}

impl Sampler {
    /// A sampler that has not sampled yet.
    pub fn new(paths: SamplerPaths) -> Self {
        Self {
            paths,
            previous_cpu: None,
        }
    }

    /// Reads every source once. CPU utilisation is measured since the previous call.
    pub fn sample(&mut self) -> TelemetrySample {
        let mut warnings = Vec::new();
        let proc_root = &self.paths.proc_root;
        let uptime_seconds = read_proc(proc_root, "uptime", system::parse_uptime, &mut warnings);
        let load = read_proc(proc_root, "loadavg", system::parse_loadavg, &mut warnings);
        let cpu = read_proc(proc_root, "stat", cpu::parse_stat, &mut warnings);
        let memory = read_proc(proc_root, "meminfo", memory::parse_meminfo, &mut warnings);
        let mounts = read_proc(
            proc_root,
            "self/mounts",
            |t| Some(disks::parse_mounts(t)),
            &mut warnings,
        );
        let mut interfaces = read_proc(
            proc_root,
            "net/dev",
            |t| Some(network::parse_net_dev(t)),
            &mut warnings,
        )
        .unwrap_or_default();

        let cpu_percent = cpu
            .zip(self.previous_cpu)
            .and_then(|(now, then)| now.percent_busy_since(then));
        self.previous_cpu = cpu.or(self.previous_cpu);
        let disks = mounts
            .unwrap_or_default()
            .into_iter()
            .filter_map(|mount| disks::measure(mount).map_err(|e| warnings.push(e)).ok())
            .collect();
        match network::host_addresses() {
            Ok(addresses) => network::attach_addresses(&mut interfaces, &addresses),
            Err(errno) => warnings.push(format!("getifaddrs: {errno}")),
        }
        let logged_in_users = count_logins(&self.paths.utmp, &mut warnings);
        let (memory, swap) = memory.unwrap_or_default();
        TelemetrySample {
            uptime_seconds: uptime_seconds.unwrap_or(0),
            load: load.unwrap_or([0.0; 3]),
            cpu_percent,
            memory,
            swap,
            disks,
            interfaces,
            logged_in_users,
            warnings,
        }
    }
}

/// Parses `file` under the procfs root, or says in `warnings` why it could not.
fn read_proc<T>(
    proc_root: &Path,
    file: &str,
    parse: impl FnOnce(&str) -> Option<T>,
    warnings: &mut Vec<String>,
) -> Option<T> {
    let path = proc_root.join(file);
    let parsed = read_text(&path).map(|text| parse(&text));
    match parsed {
        Ok(Some(parsed)) => return Some(parsed),
        Ok(None) => warnings.push(format!("{}: unrecognized contents", path.display())),
        Err(error) => warnings.push(format!("{}: {error}", path.display())),
    }
    None
}

/// The login sessions in the utmp file at `path`, 0 if it cannot be read.
fn count_logins(path: &Path, warnings: &mut Vec<String>) -> u32 {
    match read_capped(path) {
        Ok(utmp) => {
            let logins = users::count_logins(&utmp);
            if logins.trailing_bytes > 0 {
                warnings.push(format!(
                    "{}: {} bytes after the last whole record ignored",
                    path.display(),
                    logins.trailing_bytes
                ));
            }
            logins.sessions
        }
        Err(error) => {
            warnings.push(format!("{}: {error}", path.display()));
            0
        }
    }
}

#[cfg(test)]
mod hostile_input {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn procfs_and_utmp_parsers_never_panic(
            bytes in prop::collection::vec(
                prop_oneof![any::<u8>(), prop::sample::select(b"\n \t:.\\0123456789cpukB".to_vec())],
                0..1024,
            )
        ) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = system::parse_uptime(&text);
            if let Some(load) = system::parse_loadavg(&text) {
                prop_assert!(load.iter().all(|l| l.is_finite() && *l >= 0.0));
            }
            if let Some(times) = cpu::parse_stat(&text) {
                let busy = times.percent_busy_since(times);
                prop_assert_eq!(busy, None);
            }
            if let Some((memory, swap)) = memory::parse_meminfo(&text) {
                prop_assert!(memory.used_bytes <= memory.total_bytes);
                prop_assert!(swap.used_bytes <= swap.total_bytes);
            }
            let _ = disks::parse_mounts(&text);
            let _ = network::parse_net_dev(&text);
            prop_assert!(users::count_logins(&bytes).trailing_bytes < 384);
        }
    }
}
