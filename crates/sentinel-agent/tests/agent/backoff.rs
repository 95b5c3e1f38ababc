//! Back-off arithmetic: ceilings double to their cap, jitter stays under the ceiling,
//! and a success starts over.

use std::time::Duration;

use sentinel_agent::api::ApiError;
use sentinel_agent::backoff::{Backoff, Jitter, Policy, UNAUTHORIZED, UNAVAILABLE};
use sentinel_agent::retry::Retry;

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn unavailable_ceilings_double_from_one_second_to_five_minutes() {
    let mut backoff = Backoff::new(UNAVAILABLE);
    let mut ceilings = Vec::new();
    for _ in 0..12 {
        ceilings.push(backoff.ceiling().as_secs());
        backoff.next_delay(0);
    }
    assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    // Far past the cap, nothing overflows.
    for _ in 0..100 {
        backoff.next_delay(u64::MAX);
    }
    assert_eq!(backoff.ceiling(), 300 * SECOND);
}

#[test]
fn full_jitter_spans_zero_to_the_ceiling() {
    let mut low = Backoff::new(UNAVAILABLE);
    let mut high = Backoff::new(UNAVAILABLE);
    for _ in 0..3 {
        low.next_delay(0);
        high.next_delay(0);
    }
    assert_eq!(low.ceiling(), 8 * SECOND);
    assert_eq!(low.next_delay(0), Duration::ZERO);
    assert_eq!(
        high.next_delay(8_000),
        8 * SECOND,
        "the ceiling is reachable"
    );
    let mut any = Backoff::new(UNAVAILABLE);
    for random in [1, 999, 1_000, 1_001, 123_456_789, u64::MAX] {
        let ceiling = any.ceiling();
        assert!(any.next_delay(random) <= ceiling);
    }
}

#[test]
fn refused_tokens_back_off_to_an_hour_and_never_briefly() {
    let mut backoff = Backoff::new(UNAUTHORIZED);
    let mut delays = Vec::new();
    for _ in 0..10 {
        let ceiling = backoff.ceiling();
        let delay = backoff.next_delay(0);
        assert!(delay >= ceiling / 2, "{delay:?} under half of {ceiling:?}");
        delays.push(delay.as_secs());
    }
    assert_eq!(delays, [30, 60, 120, 240, 480, 960, 1800, 1800, 1800, 1800]);
    assert_eq!(backoff.ceiling(), 3600 * SECOND);
    let delay = backoff.next_delay(u64::MAX - 1);
    assert!(
        (1800 * SECOND..=3600 * SECOND).contains(&delay),
        "{delay:?}"
    );
}

#[test]
fn success_starts_over() {
    let mut backoff = Backoff::new(UNAVAILABLE);
    for _ in 0..5 {
        backoff.next_delay(7);
    }
    backoff.reset();
    assert_eq!(backoff.ceiling(), SECOND);
}

#[test]
fn delays_are_spread_by_the_random_source() {
    let policy = Policy {
        base: Duration::from_millis(100),
        cap: Duration::from_secs(10),
        jitter: Jitter::Full,
    };
    let delays: std::collections::BTreeSet<Duration> = (0..50u64)
        .map(|random| Backoff::new(policy).next_delay(random * 2))
        .collect();
    assert_eq!(delays.len(), 50, "each random value gives its own delay");
    assert!(
        delays
            .iter()
            .all(|delay| *delay <= Duration::from_millis(100))
    );
    // The production source gives different values.
    let randoms: std::collections::BTreeSet<u64> =
        (0..8).map(|_| sentinel_agent::backoff::random()).collect();
    assert!(randoms.len() > 1);
}

#[test]
fn each_kind_of_failure_has_its_schedule() {
    let mut retry = Retry::default();
    let limited = ApiError::RateLimited {
        retry_after: Some(7 * SECOND),
    };
    assert_eq!(
        retry.delay_after(&limited, "test"),
        7 * SECOND,
        "Retry-After is honoured"
    );
    let unavailable = ApiError::Unavailable("connection refused".into());
    assert!(retry.delay_after(&unavailable, "test") <= SECOND);
    assert!(retry.delay_after(&unavailable, "test") <= 2 * SECOND);
    let revoked = ApiError::Unauthorized;
    assert!(retry.delay_after(&revoked, "test") >= 30 * SECOND);
    assert!(retry.delay_after(&revoked, "test") >= 60 * SECOND);
    retry.succeeded();
    assert!(
        retry.delay_after(&unavailable, "test") <= SECOND,
        "reset on success"
    );
    let without_header = ApiError::RateLimited { retry_after: None };
    assert!(retry.delay_after(&without_header, "test") <= 2 * SECOND);
}
