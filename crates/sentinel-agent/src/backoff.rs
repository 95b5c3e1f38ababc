//! How long to wait before retrying: exponential back-off with jitter, as pure arithmetic.
//!
//! The random number is passed in, so the schedule is testable: production passes
//! [`random`], tests pass fixed values.

use std::time::Duration;

/// How a [`Backoff`] grows and is randomized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The ceiling after the first failure; it doubles with each further failure.
    pub base: Duration,
    /// The ceiling never grows past this.
    pub cap: Duration,
    /// Where between zero and the ceiling the delay falls.
    pub jitter: Jitter,
}

/// Where a delay falls below its ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Anywhere from zero to the ceiling: spreads out a fleet reconnecting at once.
    Full,
    /// Between half the ceiling and the ceiling: spread out, but never short.
    Half,
}

/// Network errors and server errors: 1 s doubling to 5 minutes, full jitter.
pub const UNAVAILABLE: Policy = Policy {
    base: Duration::from_secs(1),
    cap: Duration::from_secs(5 * 60),
    jitter: Jitter::Full,
};

/// A refused device token (revoked device, or a wrong token): 1 minute doubling to an
/// hour, never less than half the ceiling, so a revoked fleet does not hammer the server.
pub const UNAUTHORIZED: Policy = Policy {
    base: Duration::from_secs(60),
    cap: Duration::from_secs(3600),
    jitter: Jitter::Half,
};

/// The state of one retry schedule: how many failures in a row it has seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    policy: Policy,
    failures: u32,
}

impl Backoff {
    /// A schedule that has seen no failure.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            failures: 0,
        }
    }

    /// The ceiling for the next delay: `base × 2^failures`, at most `cap`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures).unwrap_or(u32::MAX);
        self.policy
            .base
            .checked_mul(factor)
            .map_or(self.policy.cap, |ceiling| ceiling.min(self.policy.cap))
    }

    /// Records a failure and returns how long to wait before the next try, chosen by
    /// `random` (any `u64`, uniformly distributed) under the ceiling.
    pub fn next_delay(&mut self, random: u64) -> Duration {
        let ceiling = self.ceiling().as_millis();
        let ceiling = u64::try_from(ceiling).unwrap_or(u64::MAX);
        let (floor, span) = match self.policy.jitter {
            Jitter::Full => (0, ceiling),
            Jitter::Half => (ceiling - ceiling / 2, ceiling / 2),
        };
        let offset = random % span.saturating_add(1);
        self.failures = self.failures.saturating_add(1);
        Duration::from_millis(floor.saturating_add(offset))
    }

    /// Forgets the failures: the next delay starts from `base` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A random `u64` from the operating system; the largest (so, the longest wait) in the
/// unlikely case it has none to give.
pub fn random() -> u64 {
    getrandom::u64().unwrap_or(u64::MAX)
}
