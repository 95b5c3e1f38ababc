//! CPU utilisation: the share of non-idle time between two samples of `/proc/stat`.

/// The aggregate `cpu` line of `/proc/stat`, in clock ticks since boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CpuTimes {
    /// All time accounted: user, nice, system, idle, iowait, irq, softirq and steal.
    total: u64,
    /// Time spent idle or waiting for I/O.
    idle: u64,
}

/// The aggregate `cpu  user nice system idle [iowait irq softirq steal guest guest_nice]`
/// line of `/proc/stat`. Guest time is already counted in user and nice time.
pub(super) fn parse_stat(text: &str) -> Option<CpuTimes> {
    let line = text
        .lines()
        .find(|line| line.split_ascii_whitespace().next() == Some("cpu"))?;
    let ticks: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    if ticks.len() < 4 {
        return None;
    }
    let field = |index: usize| ticks.get(index).copied().unwrap_or(0);
    Some(CpuTimes {
        total: ticks.iter().fold(0u64, |sum, &t| sum.saturating_add(t)),
        idle: field(3).saturating_add(field(4)),
    })
}

impl CpuTimes {
    /// The percentage of time not idle since `earlier`; `None` if no time was accounted
    /// in between.
    pub(super) fn percent_busy_since(self, earlier: Self) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total).filter(|&t| t > 0)?;
        let idle = self.idle.saturating_sub(earlier.idle).min(total);
        Some((total - idle) as f64 * 100.0 / total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\nintr 1\n";

    #[test]
    fn busy_share_between_samples() {
        let first = parse_stat(STAT).unwrap();
        let second = parse_stat("cpu  160 0 70 900 70 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8\n").unwrap();
        // 200 ticks passed, 120 of them idle or iowait.
        assert_eq!(second.percent_busy_since(first), Some(40.0));
        assert_eq!(first.percent_busy_since(first), None);
        assert_eq!(first.percent_busy_since(second), None);
    }

    #[test]
    fn old_kernels_with_four_fields() {
        let times = parse_stat("cpu 1 2 3 4\n").unwrap();
        assert_eq!(times, CpuTimes { total: 10, idle: 4 });
    }

    #[test]
    fn malformed_stat() {
        assert_eq!(parse_stat("cpu0 1 2 3 4\n"), None);
        assert_eq!(parse_stat("cpu 1 2 3\n"), None);
        assert_eq!(parse_stat("cpu 1 2 x 4\n"), None);
        assert_eq!(parse_stat(""), None);
    }
}
