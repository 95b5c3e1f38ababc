//! Memory and swap usage, from `/proc/meminfo`.

use std::collections::HashMap;

use sentinel_protocol::telemetry::MemoryUsage;

/// `total_bytes` of memory of which `available_bytes` can still be used (at most all of it).
fn usage(total_bytes: u64, available_bytes: u64) -> MemoryUsage {
    let available_bytes = available_bytes.min(total_bytes);
    MemoryUsage {
        total_bytes,
        available_bytes,
        used_bytes: total_bytes - available_bytes,
    }
}

/// Memory and swap usage from the text of `/proc/meminfo`, which needs at least `MemTotal`.
/// Kernels before 3.14 have no `MemAvailable`: free, buffers and page cache stand in for it.
pub(super) fn parse_meminfo(text: &str) -> Option<(MemoryUsage, MemoryUsage)> {
    let fields: HashMap<&str, u64> = text
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            let mut value = value.split_ascii_whitespace();
            let amount: u64 = value.next()?.parse().ok()?;
            let bytes = match value.next() {
                None => amount,
                Some("kB") => amount.checked_mul(1024)?,
                Some(_) => return None,
            };
            Some((name.trim(), bytes))
        })
        .collect();
    let field = |name: &str| fields.get(name).copied();
    let total = field("MemTotal")?;
    let available = field("MemAvailable").unwrap_or_else(|| {
        ["MemFree", "Buffers", "Cached"]
            .iter()
            .filter_map(|name| field(name))
            .fold(0, u64::saturating_add)
    });
    let swap_total = field("SwapTotal").unwrap_or(0);
    let swap_free = field("SwapFree").unwrap_or(0);
    Some((usage(total, available), usage(swap_total, swap_free)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_and_swap_in_bytes() {
        let text = concat!(
            "MemTotal:       16318680 kB\n",
            "MemFree:         1034236 kB\n",
            "MemAvailable:    9876543 kB\n",
            "Buffers:          412340 kB\n",
            "Cached:          7539112 kB\n",
            "SwapTotal:       2097148 kB\n",
            "SwapFree:        2000000 kB\n",
            "HugePages_Total:       0\n",
            "Weird:          12 MB\n",
        );
        let (memory, swap) = parse_meminfo(text).unwrap();
        assert_eq!(memory, usage(16318680 * 1024, 9876543 * 1024));
        assert_eq!(memory.used_bytes, (16318680 - 9876543) * 1024);
        assert_eq!(swap.used_bytes, 97148 * 1024);
    }

    #[test]
    fn old_kernel_without_mem_available_and_no_swap() {
        let text = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n";
        let (memory, swap) = parse_meminfo(text).unwrap();
        assert_eq!(memory.available_bytes, 400 * 1024);
        assert_eq!(swap, MemoryUsage::default());
    }

    #[test]
    fn available_never_exceeds_total() {
        let (memory, _) = parse_meminfo("MemTotal: 10 kB\nMemAvailable: 20 kB\n").unwrap();
        assert_eq!((memory.available_bytes, memory.used_bytes), (10 * 1024, 0));
    }

    #[test]
    fn mem_total_is_required() {
        assert_eq!(parse_meminfo("MemFree: 100 kB\n"), None);
        assert_eq!(parse_meminfo("MemTotal: lots\n"), None);
    }
}
