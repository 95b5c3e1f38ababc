//! The wall clock, read in exactly one place.
//!
//! The agent needs real Unix time: commands carry Unix expiry times, telemetry samples
//! are stamped with it, and token rotation is due a number of seconds after the last one
//! even across restarts. Everything else measures intervals with tokio's monotonic clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in whole Unix seconds (0 if the clock is set before 1970).
#[allow(clippy::disallowed_methods)] // The agent has no injected clock: this is its one reading of real time.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}
