//! Rate limits: keyed GCRA limiters (`governor`) for requests, logins,
//! two-factor codes, organization creation and enrollment, each holding a
//! bounded number of keys.
//!
//! Keys are who is asking: an authenticated principal (user, API token,
//! device), or for anonymous requests the client address — IPv6 clients by
//! their /56 prefix, since one subscriber commonly holds a whole /56 or /48.
//! E-mail addresses are keyed by their SHA-256, so a key's size never depends
//! on the request. Each limiter keeps at most [`MAX_KEYS`] keys: states that
//! are as good as fresh are swept every [`SWEEP_INTERVAL`], and a full shard
//! evicts an arbitrary key (which then starts over with one fresh burst).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::{Quota, RateLimiter};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::AppError;

/// The most keys one limiter holds.
pub const MAX_KEYS: usize = 65_536;

/// How often stale keys are dropped.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

const SHARDS: usize = 16;

/// Requests per minute allowed by each limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// Any request: per authenticated user or API token, and per client
    /// address for anonymous ones.
    pub requests: NonZeroU32,
    /// Agent requests, per device (never per address: a whole school may sit
    /// behind one NAT address).
    pub agent: NonZeroU32,
    /// Login attempts, per client address and per account.
    pub login: NonZeroU32,
    /// Two-factor code checks, per account.
    pub two_factor: NonZeroU32,
    /// Organizations created, per user.
    pub org_creation: NonZeroU32,
    /// Enrollments, per client address.
    pub enrollment: NonZeroU32,
    /// Audited MQTT topic refusals, per device (more are counted only, so a
    /// misbehaving device cannot flood its organization's log).
    pub mqtt_refusal_audit: NonZeroU32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        let n = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        Self {
            requests: n(100),
            agent: n(100),
            login: n(10),
            two_factor: n(5),
            org_creation: n(5),
            enrollment: n(10),
            mqtt_refusal_audit: n(10),
        }
    }
}

/// Who a limit counts requests against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// An anonymous client: its IPv4 address, or its IPv6 /56 prefix.
    Address([u8; 16]),
    /// A logged-in user (or the user behind a personal API token).
    User(Uuid),
    /// An API token.
    Token(Uuid),
    /// An enrolled device.
    Device(Uuid),
    /// An account named at login, by the SHA-256 of its normalized address.
    Account([u8; 32]),
}

impl RateKey {
    pub fn address(ip: IpAddr) -> RateKey {
        match ip {
            IpAddr::V4(v4) => RateKey::Address(v4.to_ipv6_mapped().octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => RateKey::Address(v4.to_ipv6_mapped().octets()),
                None => {
                    let mut octets = v6.octets();
                    octets[7..].fill(0);
                    RateKey::Address(octets)
                }
            },
        }
    }

    /// An account as typed at login: trimmed and lowercased, so that variants
    /// of one address share a limit whether or not the account exists.
    pub fn account(email: &str) -> RateKey {
        let normalized = email.trim().to_lowercase();
        RateKey::Account(Sha256::digest(normalized.as_bytes()).into())
    }
}

/// Theoretical arrival times per key, in shards of bounded size.
#[derive(Debug)]
struct BoundedStore {
    shards: Box<[Mutex<HashMap<RateKey, Nanos>>]>,
    hasher: RandomState,
    per_shard: usize,
}

impl BoundedStore {
    fn new(max_keys: usize) -> BoundedStore {
        BoundedStore {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            per_shard: max_keys.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, key: &RateKey) -> &Mutex<HashMap<RateKey, Nanos>> {
        let index = self.hasher.hash_one(key) as usize % SHARDS;
        &self.shards[index]
    }

    fn each_shard(&self, mut f: impl FnMut(&mut HashMap<RateKey, Nanos>)) {
        for shard in &self.shards {
            f(&mut shard.lock().unwrap_or_else(PoisonError::into_inner));
        }
    }
}

impl StateStore for BoundedStore {
    type Key = RateKey;

    fn measure_and_replace<T, F, E>(&self, key: &RateKey, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut shard = self
            .shard(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (outcome, arrival) = f(shard.get(key).copied())?;
        if !shard.contains_key(key) && shard.len() >= self.per_shard {
            let victim = shard.keys().next().copied();
            if let Some(victim) = victim {
                shard.remove(&victim);
            }
        }
        shard.insert(*key, arrival);
        Ok(outcome)
    }
}

impl ShrinkableKeyedStateStore<RateKey> for BoundedStore {
    fn retain_recent(&self, drop_below: Nanos) {
        self.each_shard(|shard| shard.retain(|_, arrival| *arrival >= drop_below));
    }

    fn shrink_to_fit(&self) {
        self.each_shard(|shard| shard.shrink_to_fit());
    }

    fn len(&self) -> usize {
        let mut len = 0;
        self.each_shard(|shard| len += shard.len());
        len
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One limit: so many requests per minute per key.
#[derive(Debug)]
pub struct Limit {
    limiter: RateLimiter<RateKey, BoundedStore, DefaultClock, NoOpMiddleware>,
}

impl Limit {
    pub fn per_minute(requests: NonZeroU32) -> Limit {
        Limit::with_capacity(requests, MAX_KEYS)
    }

    fn with_capacity(requests: NonZeroU32, max_keys: usize) -> Limit {
        Limit {
            limiter: RateLimiter::new(
                Quota::per_minute(requests),
                BoundedStore::new(max_keys),
                DefaultClock::default(),
            ),
        }
    }

    /// Counts one request against `key`; over the limit, says when to retry.
    pub fn check(&self, key: RateKey) -> Result<(), AppError> {
        self.limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.limiter.clock().now());
            AppError::TooManyRequests(wait.max(Duration::from_secs(1)))
        })
    }

    fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    fn keys(&self) -> usize {
        self.limiter.len()
    }
}

/// Every limit of the server.
#[derive(Debug)]
pub struct RateLimits {
    pub requests: Limit,
    pub agent: Limit,
    pub login_address: Limit,
    pub login_account: Limit,
    pub two_factor: Limit,
    pub org_creation: Limit,
    pub enrollment: Limit,
    pub mqtt_refusal_audit: Limit,
}

impl RateLimits {
    pub fn new(settings: &RateLimitSettings) -> RateLimits {
        RateLimits {
            requests: Limit::per_minute(settings.requests),
            agent: Limit::per_minute(settings.agent),
            login_address: Limit::per_minute(settings.login),
            login_account: Limit::per_minute(settings.login),
            two_factor: Limit::per_minute(settings.two_factor),
            org_creation: Limit::per_minute(settings.org_creation),
            enrollment: Limit::per_minute(settings.enrollment),
            mqtt_refusal_audit: Limit::per_minute(settings.mqtt_refusal_audit),
        }
    }

    fn all(&self) -> [&Limit; 8] {
        [
            &self.requests,
            &self.agent,
            &self.login_address,
            &self.login_account,
            &self.two_factor,
            &self.org_creation,
            &self.enrollment,
            &self.mqtt_refusal_audit,
        ]
    }

    /// Drops the keys whose state is as good as fresh.
    pub fn sweep(&self) {
        for limit in self.all() {
            limit.sweep();
        }
    }

    /// How many keys all limits hold together.
    pub fn keys(&self) -> usize {
        self.all().iter().map(|limit| limit.keys()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn a_key_gets_its_burst_then_a_retry_time() {
        let limit = Limit::per_minute(n(3));
        let key = RateKey::User(Uuid::new_v4());
        for _ in 0..3 {
            limit.check(key).unwrap();
        }
        let Err(AppError::TooManyRequests(wait)) = limit.check(key) else {
            panic!("the fourth request passed");
        };
        assert!(wait >= Duration::from_secs(1) && wait <= Duration::from_secs(20));
        // Another key is not affected.
        limit.check(RateKey::User(Uuid::new_v4())).unwrap();
    }

    #[test]
    fn ipv6_clients_share_their_prefix_and_ipv4_is_exact() {
        let a: IpAddr = "2001:db8:1:2ff::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:200:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:300::1".parse().unwrap();
        assert_eq!(RateKey::address(a), RateKey::address(b));
        assert_ne!(RateKey::address(a), RateKey::address(c));
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(RateKey::address(v4), RateKey::address(mapped));
        assert_ne!(
            RateKey::address(v4),
            RateKey::address("192.0.2.2".parse().unwrap())
        );
    }

    #[test]
    fn account_keys_ignore_case_and_spaces_and_have_a_fixed_size() {
        assert_eq!(
            RateKey::account(" Alice@Example.org "),
            RateKey::account("alice@example.org")
        );
        let huge = "x".repeat(100_000);
        assert!(matches!(RateKey::account(&huge), RateKey::Account(_)));
    }

    #[test]
    fn memory_stays_bounded_under_many_distinct_keys() {
        let limit = Limit::with_capacity(n(5), 1024);
        for i in 0..50_000u32 {
            let mut octets = [0u8; 16];
            octets[..4].copy_from_slice(&i.to_be_bytes());
            limit.check(RateKey::Address(octets)).unwrap();
        }
        assert!(limit.keys() <= 1024, "{} keys held", limit.keys());
        // A key that is over its limit stays limited while the store is not
        // flooded.
        let key = RateKey::Device(Uuid::new_v4());
        for _ in 0..5 {
            limit.check(key).unwrap();
        }
        assert!(limit.check(key).is_err());
    }

    #[test]
    fn a_sweep_drops_only_fresh_states() {
        let limits = RateLimits::new(&RateLimitSettings::default());
        let busy = RateKey::User(Uuid::new_v4());
        for _ in 0..100 {
            limits.requests.check(busy).unwrap();
        }
        assert!(limits.requests.check(busy).is_err());
        limits.sweep();
        assert_eq!(limits.keys(), 1);
        assert!(
            limits.requests.check(busy).is_err(),
            "the sweep forgot a limited key"
        );
    }
}
