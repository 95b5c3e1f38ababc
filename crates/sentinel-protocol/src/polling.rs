//! How an agent schedules its long-poll for commands around its telemetry: over
//! HTTP/1.1 a parked poll holds the device's one connection, so the poll ends just
//! before a report is due, the report goes out on that connection, and the poll
//! follows it. The agent and the load generator both schedule by [`poll_wait`].

use std::time::Duration;

/// How long before telemetry is due a long-poll ends, leaving it the connection.
pub const REPORT_LEAD: Duration = Duration::from_millis(50);
/// The shortest long-poll worth sending; closer to a report, the poll waits for it.
pub const MIN_LONG_POLL: Duration = Duration::from_secs(1);
/// How long a poll waits for a due report to go out before it polls anyway.
pub const REPORT_GRACE: Duration = Duration::from_secs(2);

/// How long a long-poll sent now may wait: `long_poll`, cut short to end just before
/// the next report, due `until_report` from now (none: no report is scheduled).
/// `None` when the report is too close: it should go first, and the poll follow it
/// (`after_report`), which then goes however close the report after is, so that
/// short telemetry intervals never starve the poll. A `long_poll` of 0 is a plain
/// poll, which never waits.
pub fn poll_wait(
    long_poll: Duration,
    until_report: Option<Duration>,
    after_report: bool,
) -> Option<Duration> {
    let Some(until_report) = until_report else {
        return Some(long_poll);
    };
    if long_poll.is_zero() || long_poll + REPORT_LEAD < until_report {
        Some(long_poll)
    } else if after_report || until_report >= MIN_LONG_POLL + REPORT_LEAD {
        Some(until_report.saturating_sub(REPORT_LEAD))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_poll_ends_just_before_the_next_report() {
        let long_poll = Duration::from_secs(25);
        let ms = |ms| Some(Duration::from_millis(ms));
        let wait = |until_report| poll_wait(long_poll, until_report, false);
        // No report scheduled, or one far off: the whole wait.
        assert_eq!(wait(None), Some(long_poll));
        assert_eq!(wait(ms(30_000)), Some(long_poll));
        assert_eq!(wait(ms(25_051)), Some(long_poll));
        // A report inside the wait: the poll ends 50 ms before it.
        assert_eq!(wait(ms(25_050)), ms(25_000));
        assert_eq!(wait(ms(10_000)), ms(9_950));
        assert_eq!(wait(ms(1_050)), ms(1_000));
        // Too close, or due now: the report goes first.
        assert_eq!(wait(ms(1_049)), None);
        assert_eq!(wait(ms(0)), None);
        // Right after a report, the poll goes however close the next one is.
        assert_eq!(poll_wait(long_poll, ms(1_000), true), ms(950));
        assert_eq!(poll_wait(long_poll, ms(30), true), ms(0));
        assert_eq!(poll_wait(long_poll, ms(10_000), true), ms(9_950));
        // Plain polling never waits on the server, so never waits for a report.
        assert_eq!(
            poll_wait(Duration::ZERO, ms(100), false),
            Some(Duration::ZERO)
        );
    }
}
