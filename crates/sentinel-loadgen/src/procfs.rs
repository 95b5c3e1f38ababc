//! The server's CPU time and memory, read from `/proc/<pid>` while a run goes on;
//! open-file limits, and starting a program with its soft limit raised.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`; 100 on every Linux
/// architecture the project builds for).
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    pub at: Instant,
    /// User plus system CPU time, in ticks.
    pub cpu_ticks: u64,
    /// Resident memory now, KiB.
    pub rss_kib: u64,
    /// The most resident memory so far (`VmHWM`), KiB.
    pub peak_kib: u64,
    /// Open file descriptors.
    pub open_files: u64,
}

/// Reads `/proc/<pid>`; `None` when the process is gone or the files are unreadable.
pub fn read(pid: u32) -> Option<Reading> {
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields are counted after its ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, utime 14 and stime 15 (1-based in proc(5)).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let open_files = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    Some(Reading {
        at,
        cpu_ticks: utime + stime,
        rss_kib: kib("VmRSS:")?,
        peak_kib: kib("VmHWM:")?,
        open_files,
    })
}

/// CPU used between two readings, in cores (1.0 = one core busy).
pub fn cores_between(from: &Reading, to: &Reading) -> f64 {
    let seconds = to.at.duration_since(from.at).as_secs_f64();
    if seconds <= 0.0 {
        return 0.0;
    }
    to.cpu_ticks.saturating_sub(from.cpu_ticks) as f64 / TICKS_PER_SECOND / seconds
}

/// The process's soft and hard open-file limits, from `/proc/<pid>/limits`.
pub fn open_file_limits(pid: &str) -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut numbers = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .map(str::parse::<u64>);
    Some((numbers.next()?.ok()?, numbers.next()?.ok()?))
}

/// A command that runs `program` with its open-file soft limit raised to the
/// hard one (all an unprivileged process may do), through `bash`.
pub fn with_raised_file_limit(program: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new("bash");
    command
        .arg("-c")
        .arg(r#"ulimit -n "$(ulimit -Hn)"; exec "$0" "$@""#)
        .arg(program);
    command
}

/// Samples a process every half second until dropped, keeping the highest RSS.
pub struct Sampler {
    state: Arc<Mutex<SamplerState>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct SamplerState {
    max_rss_kib: u64,
    last: Option<Reading>,
}

impl Sampler {
    pub fn start(pid: u32) -> Self {
        let state = Arc::new(Mutex::new(SamplerState::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Some(reading) = read(pid)
                    && let Ok(mut s) = shared.lock()
                {
                    s.max_rss_kib = s.max_rss_kib.max(reading.rss_kib);
                    s.last = Some(reading);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        Self { state, task }
    }

    /// The highest RSS seen since the last reset, KiB.
    pub fn max_rss_kib(&self) -> u64 {
        self.state.lock().map(|s| s.max_rss_kib).unwrap_or(0)
    }

    /// Starts a new window for [`Sampler::max_rss_kib`].
    pub fn reset_max(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.max_rss_kib = s.last.map_or(0, |r| r.rss_kib);
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Server resource use over one measured window.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ServerUse {
    /// Average CPU over the window, in cores.
    pub cpu_cores: f64,
    /// Resident memory when the window began, MiB.
    pub rss_start_mib: f64,
    /// The highest resident memory seen in the window, MiB.
    pub rss_max_mib: f64,
    /// The process's peak resident memory since it started (`VmHWM`), MiB.
    pub peak_rss_mib: f64,
    /// Resident memory at the end, MiB.
    pub rss_end_mib: f64,
    /// Open file descriptors at the end.
    pub open_files: u64,
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = read(std::process::id()).expect("/proc/self");
        assert!(me.rss_kib > 0);
        assert!(me.peak_kib >= me.rss_kib);
        assert!(me.open_files > 0);
        let (soft, hard) = open_file_limits("self").expect("limits");
        assert!(soft <= hard);
    }
}
