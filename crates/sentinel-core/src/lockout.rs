//! Account lockout: after [`THRESHOLD`] consecutive failed logins an account
//! is locked for a time that doubles with every further failure, up to
//! [`LONGEST_LOCK`] — a soft lock, lifted by time, by a successful login once
//! it has passed, or by a platform admin.
//!
//! Failures while an account is locked are refused without being counted, so
//! an attacker cannot lengthen a lock by hammering it; the per-address and
//! per-account rate limits bound how fast they can re-lock it once it lifts.

use std::time::Duration;

/// Consecutive failures that lock an account.
pub const THRESHOLD: u32 = 5;

/// The lock after the [`THRESHOLD`]th failure.
pub const FIRST_LOCK: Duration = Duration::from_secs(60);

/// The longest lock, however many failures.
pub const LONGEST_LOCK: Duration = Duration::from_secs(3600);

/// How long an account is locked after its `failures`th consecutive failure,
/// if at all.
pub fn lock_after(failures: u32) -> Option<Duration> {
    let beyond = failures.checked_sub(THRESHOLD)?;
    let factor = 1u32.checked_shl(beyond).unwrap_or(u32::MAX);
    Some(FIRST_LOCK.saturating_mul(factor).min(LONGEST_LOCK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fifth_failure_locks_and_each_further_one_doubles_the_lock() {
        for failures in 0..THRESHOLD {
            assert_eq!(lock_after(failures), None, "{failures}");
        }
        assert_eq!(lock_after(5), Some(Duration::from_secs(60)));
        assert_eq!(lock_after(6), Some(Duration::from_secs(120)));
        assert_eq!(lock_after(7), Some(Duration::from_secs(240)));
        assert_eq!(lock_after(11), Some(LONGEST_LOCK));
        assert_eq!(lock_after(40), Some(LONGEST_LOCK));
        assert_eq!(lock_after(u32::MAX), Some(LONGEST_LOCK));
    }
}
