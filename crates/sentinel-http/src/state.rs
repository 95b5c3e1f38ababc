//! What every handler can reach: the stores, the clock, the HTTP settings, the
//! key that seals secrets at rest, the bus that wakes waiting agents, the
//! live feeds, the rate limits, and vulnerability detection.

use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use sentinel_core::sealing::SealingKey;
use sentinel_core::{Clock, PasswordPolicy};
use sentinel_decoders::DecoderPool;
use sentinel_protocol::enroll::AgentSettings;
use sentinel_store::Stores;
use sentinel_vulns::Vulns;

use crate::audit::Metrics;
use crate::bus::{CommandBus, LocalBus};
use crate::ingest::Ingest;
use crate::live::LiveFeed;
use crate::password_work::PasswordWork;
use crate::rate_limit::{RateLimitSettings, RateLimits};

/// Settings of the HTTP layer (the `sentinel` binary fills them from configuration).
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// A session unused for this long ends.
    pub session_idle_timeout: Duration,
    /// A session ends this long after login, however active.
    pub session_lifetime: Duration,
    /// Whether any user may create organizations (otherwise platform admins only).
    pub allow_org_self_service: bool,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The origin browsers use to reach Sentinel (`https://host[:port]`), when it
    /// is not simply `https://` plus the request's Host.
    pub public_origin: Option<String>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Longest time a request may take.
    pub request_timeout: Duration,
    pub password_policy: PasswordPolicy,
    /// What agents are told to do (intervals), sent with every telemetry answer.
    pub agent: AgentSettings,
    pub rate_limits: RateLimitSettings,
    /// Origins whose pages may call the API from a browser (CORS); none by default.
    pub cors_allowed_origins: Vec<String>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            session_idle_timeout: Duration::from_secs(30 * 60),
            session_lifetime: Duration::from_secs(24 * 3600),
            allow_org_self_service: false,
            trusted_proxies: Vec::new(),
            public_origin: None,
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(35),
            password_policy: PasswordPolicy::default(),
            agent: AgentSettings::default(),
            rate_limits: RateLimitSettings::default(),
            cors_allowed_origins: Vec::new(),
        }
    }
}

/// Shared application state; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub stores: Arc<Stores>,
    pub clock: Arc<dyn Clock>,
    pub settings: HttpSettings,
    /// Where password hashing and verification run (off the async workers).
    pub password_work: PasswordWork,
    pub metrics: Metrics,
    /// Seals secrets kept in the stores (organizations' command-signing keys).
    pub sealing: SealingKey,
    pub bus: Arc<dyn CommandBus>,
    pub limits: RateLimits,
    /// Vulnerability feeds, the matcher that keeps findings current, and the
    /// key that signs reports.
    pub vulns: Arc<Vulns>,
    /// Where IoT payload decoders run (dedicated threads, sandboxed).
    pub decoders: DecoderPool,
    /// The workers ingesting uplinks from external MQTT brokers.
    pub ingest: Arc<Ingest>,
    /// The organizations' live feeds (dashboards watching over WebSockets).
    pub live: Arc<LiveFeed>,
}

impl AppState {
    pub fn new(
        stores: Arc<Stores>,
        clock: Arc<dyn Clock>,
        settings: HttpSettings,
        sealing: SealingKey,
        vulns: Arc<Vulns>,
        decoders: DecoderPool,
    ) -> Self {
        let limits = RateLimits::new(&settings.rate_limits);
        Self(Arc::new(Inner {
            limits,
            stores,
            clock,
            settings,
            password_work: PasswordWork::per_core(),
            metrics: Metrics::default(),
            sealing,
            bus: Arc::new(LocalBus::default()),
            vulns,
            decoders,
            ingest: Arc::default(),
            live: Arc::default(),
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
