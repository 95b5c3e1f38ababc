//! Uptime and load averages, from `/proc/uptime` and `/proc/loadavg`.

/// Whole seconds since boot, from the first field of `/proc/uptime` (`350735.47 …`).
pub(super) fn parse_uptime(text: &str) -> Option<u64> {
    let seconds = text.split_ascii_whitespace().next()?;
    let whole = seconds.split_once('.').map_or(seconds, |(whole, _)| whole);
    whole.parse().ok()
}

/// The 1, 5 and 15 minute load averages, the first fields of `/proc/loadavg`.
pub(super) fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut fields = text.split_ascii_whitespace().map(|field| {
        field
            .parse::<f64>()
            .ok()
            .filter(|load| load.is_finite() && *load >= 0.0)
    });
    Some([fields.next()??, fields.next()??, fields.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime() {
        assert_eq!(parse_uptime("350735.47 234388.90\n"), Some(350735));
        assert_eq!(parse_uptime("12 5"), Some(12));
        assert_eq!(parse_uptime(""), None);
        assert_eq!(parse_uptime("-1.5 0"), None);
        assert_eq!(parse_uptime("abc.5 0"), None);
    }

    #[test]
    fn loadavg() {
        assert_eq!(
            parse_loadavg("0.52 0.58 1.59 1/467 12345\n"),
            Some([0.52, 0.58, 1.59])
        );
        assert_eq!(parse_loadavg("0.52 0.58"), None);
        assert_eq!(parse_loadavg("0.52 NaN 1"), None);
        assert_eq!(parse_loadavg("0.52 inf 1"), None);
        assert_eq!(parse_loadavg("-1 0 0"), None);
    }
}
