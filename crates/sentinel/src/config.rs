//! Configuration: command-line flags, then `SENTINEL_*` environment variables,
//! then an optional TOML file, then defaults — in that order of precedence.
//!
//! Every setting is validated before anything starts; an invalid one is an error
//! that names it. `sentinel serve --print-config` shows the effective result with
//! secrets redacted.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use sentinel_core::SecretString;
use sentinel_core::audit::LogId;
use sentinel_http::{HttpSettings, RateLimitSettings};
use sentinel_protocol::enroll::AgentSettings;
use serde::{Deserialize, Deserializer, Serialize};

/// A setting that is missing or wrong, by its name in the TOML file (flags and
/// environment variables are the same name in kebab or upper snake case).
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: `{setting}`: {message}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub message: String,
}

fn invalid(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        message: message.into(),
    }
}

/// How the server's own log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable when standard error is a terminal, JSON lines otherwise.
    Auto,
    Json,
    Pretty,
}

/// A duration written as a number and a unit: `90s`, `30m`, `24h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let n: u64 = number
            .parse()
            .map_err(|_| format!("{s:?} is not a duration like 30m or 24h"))?;
        let seconds = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(format!("{s:?} has no unit: use s, m, h or d (e.g. 30m)")),
        };
        Ok(HumanDuration(Duration::from_secs(
            n.saturating_mul(seconds),
        )))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs();
        match s {
            _ if s.is_multiple_of(86_400) && s > 0 => write!(f, "{}d", s / 86_400),
            _ if s.is_multiple_of(3600) && s > 0 => write!(f, "{}h", s / 3600),
            _ if s.is_multiple_of(60) && s > 0 => write!(f, "{}m", s / 60),
            _ => write!(f, "{s}s"),
        }
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// An address (`10.0.0.5`, a single host) or a network (`10.0.0.0/8`).
fn parse_network(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{s:?} is neither an IP address nor a network like 10.0.0.0/8"))
}

fn deserialize_networks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| parse_network(s).map_err(serde::de::Error::custom))
        .collect()
}

/// One log's retention, overriding the default: `LOG=DURATION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRetention {
    pub log: LogId,
    pub retention: Duration,
}

fn parse_log_retention(s: &str) -> Result<LogRetention, String> {
    let (log, duration) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not LOG=DURATION, e.g. platform=3650d"))?;
    Ok(LogRetention {
        log: log.parse()?,
        retention: duration.parse::<HumanDuration>()?.0,
    })
}

fn deserialize_log_retentions<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<LogRetention>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| parse_log_retention(s).map_err(serde::de::Error::custom))
        .collect()
}

/// Where the MQTT device gateway listens: an address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttListen {
    Off,
    At(SocketAddr),
}

impl FromStr for MqttListen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "off" => Ok(MqttListen::Off),
            other => other.parse().map(MqttListen::At).map_err(|_| {
                format!("{other:?} is neither an address like 127.0.0.1:8883 nor off")
            }),
        }
    }
}

impl<'de> Deserialize<'de> for MqttListen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

fn parse_secret(s: &str) -> Result<SecretString, String> {
    Ok(SecretString::new(s))
}

/// Settings as given by flags, environment or file: all optional, so that the
/// three sources can be layered. The same struct is the TOML file's schema.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Directory for databases, keys and certificates [default: ./sentinel-data]
    #[arg(long, env = "SENTINEL_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Address to serve on [default: 127.0.0.1:8443]
    #[arg(long, env = "SENTINEL_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// PostgreSQL URL (postgres://…); without it Sentinel uses SQLite files in the data directory
    #[arg(long, env = "SENTINEL_DATABASE_URL", value_name = "URL", value_parser = parse_secret, hide_env_values = true)]
    pub database_url: Option<SecretString>,

    /// PEM certificate chain to serve instead of the generated one (with --tls-key)
    #[arg(long, env = "SENTINEL_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert
    #[arg(long, env = "SENTINEL_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Extra host names for the generated certificate (repeatable; comma-separated in the environment)
    #[arg(
        long = "hostname",
        env = "SENTINEL_HOSTNAMES",
        value_name = "NAME",
        value_delimiter = ','
    )]
    #[serde(default)]
    pub hostnames: Vec<String>,

    /// The URL browsers use to reach Sentinel, e.g. https://sentinel.example.org
    #[arg(long, env = "SENTINEL_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Serve plain HTTP behind a TLS-terminating reverse proxy (requires --trusted-proxy)
    #[arg(long, env = "SENTINEL_BEHIND_PROXY", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub behind_proxy: Option<bool>,

    /// Proxy addresses or networks whose X-Forwarded-For is believed (repeatable)
    #[arg(
        long = "trusted-proxy",
        env = "SENTINEL_TRUSTED_PROXIES",
        value_name = "IP|CIDR",
        value_delimiter = ',',
        value_parser = parse_network
    )]
    #[serde(default, deserialize_with = "deserialize_networks")]
    pub trusted_proxies: Vec<IpNet>,

    /// Sessions unused for this long end [default: 30m]
    #[arg(long, env = "SENTINEL_SESSION_IDLE_TIMEOUT", value_name = "DURATION")]
    pub session_idle_timeout: Option<HumanDuration>,

    /// Sessions end this long after login [default: 24h]
    #[arg(long, env = "SENTINEL_SESSION_LIFETIME", value_name = "DURATION")]
    pub session_lifetime: Option<HumanDuration>,

    /// Let any user create organizations, not only platform admins [default: false]
    #[arg(long, env = "SENTINEL_ALLOW_ORG_SELF_SERVICE", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub allow_org_self_service: Option<bool>,

    /// Largest accepted request body in bytes [default: 65536]
    #[arg(long, env = "SENTINEL_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,

    /// Most client connections served at once; more are closed on accept [default: 10000]
    #[arg(long, env = "SENTINEL_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,

    /// Longest time a request may take [default: 35s]
    #[arg(long, env = "SENTINEL_REQUEST_TIMEOUT", value_name = "DURATION")]
    pub request_timeout: Option<HumanDuration>,

    /// Audit entries older than this are pruned, up to a signed checkpoint [default: 2557d (7 years)]
    #[arg(long, env = "SENTINEL_AUDIT_RETENTION", value_name = "DURATION")]
    pub audit_retention: Option<HumanDuration>,

    /// Retention of one log, overriding audit_retention: platform=3650d or
    /// org:<organization id>=365d (repeatable)
    #[arg(
        long = "audit-retention-for",
        env = "SENTINEL_AUDIT_RETENTION_FOR",
        value_name = "LOG=DURATION",
        value_delimiter = ',',
        value_parser = parse_log_retention
    )]
    #[serde(default, deserialize_with = "deserialize_log_retentions")]
    pub audit_retention_for: Vec<LogRetention>,

    /// Every log's unsigned entries are signed at least this often [default: 5m]
    #[arg(
        long,
        env = "SENTINEL_AUDIT_CHECKPOINT_INTERVAL",
        value_name = "DURATION"
    )]
    pub audit_checkpoint_interval: Option<HumanDuration>,

    /// How often agents send telemetry (and their heartbeat) [default: 30s]
    #[arg(
        long,
        env = "SENTINEL_AGENT_TELEMETRY_INTERVAL",
        value_name = "DURATION"
    )]
    pub agent_telemetry_interval: Option<HumanDuration>,

    /// How often agents check their software inventory [default: 1h]
    #[arg(
        long,
        env = "SENTINEL_AGENT_INVENTORY_INTERVAL",
        value_name = "DURATION"
    )]
    pub agent_inventory_interval: Option<HumanDuration>,

    /// How long an agent's command poll waits on the server; 0s turns long-polling off [default: 30s]
    #[arg(long, env = "SENTINEL_AGENT_LONG_POLL", value_name = "DURATION")]
    pub agent_long_poll: Option<HumanDuration>,

    /// How often agents poll for commands when long-polling is off [default: 15s]
    #[arg(long, env = "SENTINEL_AGENT_POLL_INTERVAL", value_name = "DURATION")]
    pub agent_poll_interval: Option<HumanDuration>,

    /// How often agents exchange their device token for a new one [default: 7d]
    #[arg(long, env = "SENTINEL_AGENT_TOKEN_ROTATION", value_name = "DURATION")]
    pub agent_token_rotation: Option<HumanDuration>,

    /// Requests per minute per logged-in user or API token, and per client address for anonymous requests [default: 100]
    #[arg(long, env = "SENTINEL_RATE_LIMIT_REQUESTS", value_name = "PER_MINUTE")]
    pub rate_limit_requests: Option<u32>,

    /// Agent requests per minute per device (never per address) [default: 100]
    #[arg(long, env = "SENTINEL_RATE_LIMIT_AGENT", value_name = "PER_MINUTE")]
    pub rate_limit_agent: Option<u32>,

    /// Login attempts per minute per client address and per account [default: 10]
    #[arg(long, env = "SENTINEL_RATE_LIMIT_LOGIN", value_name = "PER_MINUTE")]
    pub rate_limit_login: Option<u32>,

    /// Two-factor code checks per minute per account [default: 5]
    #[arg(
        long,
        env = "SENTINEL_RATE_LIMIT_TWO_FACTOR",
        value_name = "PER_MINUTE"
    )]
    pub rate_limit_two_factor: Option<u32>,

    /// Organizations a user may create per minute [default: 5]
    #[arg(
        long,
        env = "SENTINEL_RATE_LIMIT_ORG_CREATION",
        value_name = "PER_MINUTE"
    )]
    pub rate_limit_org_creation: Option<u32>,

    /// Agent enrollments per minute per client address; raise it for mass enrollment behind one NAT address [default: 10]
    #[arg(
        long,
        env = "SENTINEL_RATE_LIMIT_ENROLLMENT",
        value_name = "PER_MINUTE"
    )]
    pub rate_limit_enrollment: Option<u32>,

    /// Origins allowed to call the API from a browser (CORS), e.g. https://portal.example.org (repeatable) [default: none]
    #[arg(
        long = "cors-allowed-origin",
        env = "SENTINEL_CORS_ALLOWED_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    #[serde(default)]
    pub cors_allowed_origins: Vec<String>,

    /// Address of the MQTT device gateway (MQTTS with the server's certificate), or off [default: 127.0.0.1:8883]
    #[arg(long, env = "SENTINEL_MQTT_LISTEN", value_name = "ADDR|off")]
    pub mqtt_listen: Option<MqttListen>,

    /// Serve plain MQTT without TLS; only on a loopback address (local tests and tools) [default: false]
    #[arg(long, env = "SENTINEL_MQTT_PLAIN", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub mqtt_plain: Option<bool>,

    /// Log format [default: auto]
    #[arg(long, env = "SENTINEL_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Log filter, e.g. info or info,sentinel_http=debug [default: info]
    #[arg(long, env = "SENTINEL_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
}

impl Settings {
    /// Reads a TOML settings file.
    pub fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid("config", format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| invalid("config", format!("{}: {e}", path.display())))
    }

    /// These settings, with the gaps filled from `lower`.
    pub fn or(self, lower: Settings) -> Settings {
        fn vec_or<T>(a: Vec<T>, b: Vec<T>) -> Vec<T> {
            if a.is_empty() { b } else { a }
        }
        Settings {
            data_dir: self.data_dir.or(lower.data_dir),
            listen: self.listen.or(lower.listen),
            database_url: self.database_url.or(lower.database_url),
            tls_cert: self.tls_cert.or(lower.tls_cert),
            tls_key: self.tls_key.or(lower.tls_key),
            hostnames: vec_or(self.hostnames, lower.hostnames),
            public_url: self.public_url.or(lower.public_url),
            behind_proxy: self.behind_proxy.or(lower.behind_proxy),
            trusted_proxies: vec_or(self.trusted_proxies, lower.trusted_proxies),
            session_idle_timeout: self.session_idle_timeout.or(lower.session_idle_timeout),
            session_lifetime: self.session_lifetime.or(lower.session_lifetime),
            allow_org_self_service: self.allow_org_self_service.or(lower.allow_org_self_service),
            max_body_bytes: self.max_body_bytes.or(lower.max_body_bytes),
            max_connections: self.max_connections.or(lower.max_connections),
            request_timeout: self.request_timeout.or(lower.request_timeout),
            audit_retention: self.audit_retention.or(lower.audit_retention),
            audit_retention_for: vec_or(self.audit_retention_for, lower.audit_retention_for),
            audit_checkpoint_interval: self
                .audit_checkpoint_interval
                .or(lower.audit_checkpoint_interval),
            agent_telemetry_interval: self
                .agent_telemetry_interval
                .or(lower.agent_telemetry_interval),
            agent_inventory_interval: self
                .agent_inventory_interval
                .or(lower.agent_inventory_interval),
            agent_long_poll: self.agent_long_poll.or(lower.agent_long_poll),
            agent_poll_interval: self.agent_poll_interval.or(lower.agent_poll_interval),
            agent_token_rotation: self.agent_token_rotation.or(lower.agent_token_rotation),
            rate_limit_requests: self.rate_limit_requests.or(lower.rate_limit_requests),
            rate_limit_agent: self.rate_limit_agent.or(lower.rate_limit_agent),
            rate_limit_login: self.rate_limit_login.or(lower.rate_limit_login),
            rate_limit_two_factor: self.rate_limit_two_factor.or(lower.rate_limit_two_factor),
            rate_limit_org_creation: self
                .rate_limit_org_creation
                .or(lower.rate_limit_org_creation),
            rate_limit_enrollment: self.rate_limit_enrollment.or(lower.rate_limit_enrollment),
            cors_allowed_origins: vec_or(self.cors_allowed_origins, lower.cors_allowed_origins),
            mqtt_listen: self.mqtt_listen.or(lower.mqtt_listen),
            mqtt_plain: self.mqtt_plain.or(lower.mqtt_plain),
            log_format: self.log_format.or(lower.log_format),
            log_level: self.log_level.or(lower.log_level),
        }
    }
}

/// Where the server's TLS certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// A certificate issued by Sentinel's own CA in the data directory, for
    /// `localhost`, the loopback addresses, the listen address and these names.
    Generated { hostnames: Vec<String> },
    /// Certificate chain and key files given by the operator.
    Files { cert: PathBuf, key: PathBuf },
    /// Plain HTTP behind a TLS-terminating proxy.
    BehindProxy,
}

/// The effective, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub database_url: Option<SecretString>,
    pub tls: Tls,
    /// Most client connections served at once (lowered at start to fit the
    /// process's open-file limit).
    pub max_connections: usize,
    pub audit: AuditSettings,
    pub http: HttpSettings,
    /// The MQTT device gateway, unless it is off.
    pub mqtt: Option<MqttSettings>,
    pub log_format: LogFormat,
    pub log_level: String,
}

/// The MQTT device gateway's listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MqttSettings {
    pub listen: SocketAddr,
    /// Plain MQTT instead of MQTTS (loopback only).
    pub plain: bool,
}

/// How the audit logs are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// Entries older than this are pruned (up to a signed checkpoint), in every
    /// log without a retention of its own.
    pub retention: Duration,
    /// Logs with a retention of their own.
    pub retention_for: Vec<LogRetention>,
    /// Unsigned entries of every log are signed at least this often.
    pub checkpoint_interval: Duration,
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
const DEFAULT_MQTT_LISTEN: &str = "127.0.0.1:8883";
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Seven years: what auditors commonly ask for.
const DEFAULT_AUDIT_RETENTION: Duration = Duration::from_secs(2557 * 86_400);
const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(300);

impl AuditSettings {
    /// How long `log` keeps its entries.
    pub fn retention_of(&self, log: LogId) -> Duration {
        self.retention_for
            .iter()
            .rfind(|r| r.log == log)
            .map_or(self.retention, |r| r.retention)
    }
}

impl Config {
    /// Where the stores are: PostgreSQL when a database URL is set, else SQLite
    /// files in the data directory.
    pub fn store_location(
        &self,
        data_dir: &crate::data_dir::DataDir,
    ) -> sentinel_store::StoreLocation {
        match &self.database_url {
            Some(url) => sentinel_store::StoreLocation::Postgres { url: url.clone() },
            None => sentinel_store::StoreLocation::Sqlite {
                data_dir: data_dir.path().to_owned(),
            },
        }
    }

    /// Layers `flags_and_env` over the file `config_file` (if any) over defaults,
    /// and validates the result.
    pub fn load(
        flags_and_env: Settings,
        config_file: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        let file = match config_file {
            Some(path) => Settings::from_file(path)?,
            None => Settings::default(),
        };
        Config::from_settings(flags_and_env.or(file))
    }

    pub fn from_settings(s: Settings) -> Result<Config, ConfigError> {
        let defaults = HttpSettings::default();
        let agent = agent_settings(&s)?;
        let rate_limits = rate_limits(&s)?;
        let listen = match s.listen {
            Some(addr) => addr,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|_| invalid("listen", "bad default"))?,
        };
        let behind_proxy = s.behind_proxy.unwrap_or(false);
        let tls = match (behind_proxy, s.tls_cert, s.tls_key) {
            (true, None, None) => {
                if s.trusted_proxies.is_empty() {
                    return Err(invalid(
                        "trusted_proxies",
                        "is required with behind_proxy: plain HTTP is accepted only from listed proxies",
                    ));
                }
                if s.public_url.is_none() {
                    return Err(invalid(
                        "public_url",
                        "is required with behind_proxy: it is the origin browsers use, which the proxy hides",
                    ));
                }
                Tls::BehindProxy
            }
            (true, _, _) => {
                return Err(invalid(
                    "behind_proxy",
                    "cannot be combined with tls_cert/tls_key",
                ));
            }
            (false, Some(cert), Some(key)) => Tls::Files { cert, key },
            (false, Some(_), None) => return Err(invalid("tls_key", "is required with tls_cert")),
            (false, None, Some(_)) => return Err(invalid("tls_cert", "is required with tls_key")),
            (false, None, None) => {
                for name in &s.hostnames {
                    validate_hostname(name)?;
                }
                Tls::Generated {
                    hostnames: s.hostnames,
                }
            }
        };
        if let Some(url) = &s.database_url {
            let u = url.expose();
            if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                return Err(invalid(
                    "database_url",
                    "must be a postgres:// or postgresql:// URL",
                ));
            }
        }
        let public_origin = s.public_url.as_deref().map(public_origin).transpose()?;
        let session_idle_timeout = s
            .session_idle_timeout
            .map_or(defaults.session_idle_timeout, |d| d.0);
        let session_lifetime = s
            .session_lifetime
            .map_or(defaults.session_lifetime, |d| d.0);
        if session_idle_timeout < Duration::from_secs(60) {
            return Err(invalid("session_idle_timeout", "must be at least 1m"));
        }
        if session_lifetime < session_idle_timeout {
            return Err(invalid(
                "session_lifetime",
                "must not be shorter than session_idle_timeout",
            ));
        }
        if session_lifetime > Duration::from_secs(30 * 86_400) {
            return Err(invalid("session_lifetime", "must be at most 30d"));
        }
        let max_body_bytes = s.max_body_bytes.unwrap_or(defaults.max_body_bytes);
        if !(1024..=64 * 1024 * 1024).contains(&max_body_bytes) {
            return Err(invalid(
                "max_body_bytes",
                "must be between 1024 and 67108864",
            ));
        }
        let max_connections = s.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
        if !(1..=1_000_000).contains(&max_connections) {
            return Err(invalid("max_connections", "must be between 1 and 1000000"));
        }
        let request_timeout = s.request_timeout.map_or(defaults.request_timeout, |d| d.0);
        if !(Duration::from_secs(1)..=Duration::from_secs(600)).contains(&request_timeout) {
            return Err(invalid("request_timeout", "must be between 1s and 10m"));
        }
        let audit = AuditSettings {
            retention: s.audit_retention.map_or(DEFAULT_AUDIT_RETENTION, |d| d.0),
            retention_for: s.audit_retention_for,
            checkpoint_interval: s
                .audit_checkpoint_interval
                .map_or(DEFAULT_CHECKPOINT_INTERVAL, |d| d.0),
        };
        if audit.retention < Duration::from_secs(86_400) {
            return Err(invalid("audit_retention", "must be at least 1d"));
        }
        if let Some(short) = audit
            .retention_for
            .iter()
            .find(|r| r.retention < Duration::from_secs(86_400))
        {
            return Err(invalid(
                "audit_retention_for",
                format!("{}: must be at least 1d", short.log),
            ));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(3600))
            .contains(&audit.checkpoint_interval)
        {
            return Err(invalid(
                "audit_checkpoint_interval",
                "must be between 1s and 1h",
            ));
        }
        let cors_allowed_origins = s
            .cors_allowed_origins
            .iter()
            .map(|origin| cors_origin(origin))
            .collect::<Result<Vec<_>, _>>()?;
        let mqtt = mqtt_settings(s.mqtt_listen, s.mqtt_plain, &tls)?;
        let log_level = s.log_level.unwrap_or_else(|| String::from("info"));
        tracing_subscriber::EnvFilter::try_new(&log_level).map_err(|e| {
            invalid(
                "log_level",
                format!("{log_level:?} is not a log filter: {e}"),
            )
        })?;
        Ok(Config {
            data_dir: s.data_dir.unwrap_or_else(|| PathBuf::from("sentinel-data")),
            listen,
            database_url: s.database_url,
            tls,
            max_connections,
            audit,
            http: HttpSettings {
                session_idle_timeout,
                session_lifetime,
                allow_org_self_service: s.allow_org_self_service.unwrap_or(false),
                trusted_proxies: s.trusted_proxies,
                public_origin,
                max_body_bytes,
                request_timeout,
                password_policy: defaults.password_policy,
                agent,
                rate_limits,
                cors_allowed_origins,
            },
            mqtt,
            log_format: s.log_format.unwrap_or(LogFormat::Auto),
            log_level,
        })
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_toml(&self) -> String {
        #[derive(Serialize)]
        struct Printed<'a> {
            data_dir: String,
            listen: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            database_url: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            tls_cert: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            tls_key: Option<String>,
            hostnames: &'a [String],
            #[serde(skip_serializing_if = "Option::is_none")]
            public_url: Option<&'a str>,
            behind_proxy: bool,
            trusted_proxies: Vec<String>,
            session_idle_timeout: String,
            session_lifetime: String,
            allow_org_self_service: bool,
            max_body_bytes: usize,
            max_connections: usize,
            request_timeout: String,
            audit_retention: String,
            audit_retention_for: Vec<String>,
            audit_checkpoint_interval: String,
            agent_telemetry_interval: String,
            agent_inventory_interval: String,
            agent_long_poll: String,
            agent_poll_interval: String,
            agent_token_rotation: String,
            rate_limit_requests: u32,
            rate_limit_agent: u32,
            rate_limit_login: u32,
            rate_limit_two_factor: u32,
            rate_limit_org_creation: u32,
            rate_limit_enrollment: u32,
            cors_allowed_origins: &'a [String],
            mqtt_listen: String,
            mqtt_plain: bool,
            log_format: LogFormat,
            log_level: &'a str,
        }
        let (tls_cert, tls_key, hostnames) = match &self.tls {
            Tls::Files { cert, key } => (
                Some(cert.display().to_string()),
                Some(key.display().to_string()),
                &[][..],
            ),
            Tls::Generated { hostnames } => (None, None, hostnames.as_slice()),
            Tls::BehindProxy => (None, None, &[][..]),
        };
        let printed = Printed {
            data_dir: self.data_dir.display().to_string(),
            listen: self.listen.to_string(),
            database_url: self.database_url.as_ref().map(|u| redact_url(u.expose())),
            tls_cert,
            tls_key,
            hostnames,
            public_url: self.http.public_origin.as_deref(),
            behind_proxy: self.tls == Tls::BehindProxy,
            trusted_proxies: self
                .http
                .trusted_proxies
                .iter()
                .map(ToString::to_string)
                .collect(),
            session_idle_timeout: HumanDuration(self.http.session_idle_timeout).to_string(),
            session_lifetime: HumanDuration(self.http.session_lifetime).to_string(),
            allow_org_self_service: self.http.allow_org_self_service,
            max_body_bytes: self.http.max_body_bytes,
            max_connections: self.max_connections,
            request_timeout: HumanDuration(self.http.request_timeout).to_string(),
            audit_retention: HumanDuration(self.audit.retention).to_string(),
            audit_retention_for: self
                .audit
                .retention_for
                .iter()
                .map(|r| format!("{}={}", r.log, HumanDuration(r.retention)))
                .collect(),
            audit_checkpoint_interval: HumanDuration(self.audit.checkpoint_interval).to_string(),
            agent_telemetry_interval: seconds(self.http.agent.telemetry_interval_seconds),
            agent_inventory_interval: seconds(self.http.agent.inventory_interval_seconds),
            agent_long_poll: seconds(self.http.agent.long_poll_seconds),
            agent_poll_interval: seconds(self.http.agent.poll_interval_seconds),
            agent_token_rotation: seconds(self.http.agent.token_rotation_seconds),
            rate_limit_requests: self.http.rate_limits.requests.get(),
            rate_limit_agent: self.http.rate_limits.agent.get(),
            rate_limit_login: self.http.rate_limits.login.get(),
            rate_limit_two_factor: self.http.rate_limits.two_factor.get(),
            rate_limit_org_creation: self.http.rate_limits.org_creation.get(),
            rate_limit_enrollment: self.http.rate_limits.enrollment.get(),
            cors_allowed_origins: &self.http.cors_allowed_origins,
            mqtt_listen: self
                .mqtt
                .map_or_else(|| String::from("off"), |m| m.listen.to_string()),
            mqtt_plain: self.mqtt.is_some_and(|m| m.plain),
            log_format: self.log_format,
            log_level: &self.log_level,
        };
        toml::to_string(&printed)
            .unwrap_or_else(|e| format!("# could not print the configuration: {e}\n"))
    }
}

/// The gateway's listener: on by default (MQTTS), off when asked; plain MQTT
/// only on loopback, since it would carry device tokens in the clear; off by
/// default behind a proxy, where the server holds no certificate.
fn mqtt_settings(
    listen: Option<MqttListen>,
    plain: Option<bool>,
    tls: &Tls,
) -> Result<Option<MqttSettings>, ConfigError> {
    let plain = plain.unwrap_or(false);
    let listen = match listen {
        Some(MqttListen::Off) => {
            if plain {
                return Err(invalid("mqtt_plain", "needs mqtt_listen (it is off)"));
            }
            return Ok(None);
        }
        Some(MqttListen::At(addr)) => addr,
        None if *tls == Tls::BehindProxy && !plain => return Ok(None),
        None => DEFAULT_MQTT_LISTEN
            .parse()
            .map_err(|_| invalid("mqtt_listen", "bad default"))?,
    };
    if plain && !listen.ip().is_loopback() {
        return Err(invalid(
            "mqtt_plain",
            "plain MQTT would carry device tokens in the clear: it is allowed only on a loopback address",
        ));
    }
    if !plain && *tls == Tls::BehindProxy {
        return Err(invalid(
            "mqtt_listen",
            "MQTTS needs the server's certificate, which behind_proxy does not have: set it to off",
        ));
    }
    Ok(Some(MqttSettings { listen, plain }))
}

fn seconds(n: u32) -> String {
    HumanDuration(Duration::from_secs(u64::from(n))).to_string()
}

/// The agent settings, each within its bounds.
fn agent_settings(s: &Settings) -> Result<AgentSettings, ConfigError> {
    let defaults = AgentSettings::default();
    let pick = |name: &'static str,
                value: Option<HumanDuration>,
                default: u32,
                range: std::ops::RangeInclusive<u64>|
     -> Result<u32, ConfigError> {
        let secs = value.map_or(u64::from(default), |d| d.0.as_secs());
        if !range.contains(&secs) {
            return Err(invalid(
                name,
                format!(
                    "must be between {} and {}",
                    HumanDuration(Duration::from_secs(*range.start())),
                    HumanDuration(Duration::from_secs(*range.end()))
                ),
            ));
        }
        Ok(secs as u32)
    };
    Ok(AgentSettings {
        telemetry_interval_seconds: pick(
            "agent_telemetry_interval",
            s.agent_telemetry_interval,
            defaults.telemetry_interval_seconds,
            5..=3600,
        )?,
        inventory_interval_seconds: pick(
            "agent_inventory_interval",
            s.agent_inventory_interval,
            defaults.inventory_interval_seconds,
            60..=7 * 86_400,
        )?,
        // As long as the telemetry interval: an agent's poll then ends at its
        // next report, one poll a report (sentinel_protocol::polling).
        long_poll_seconds: pick("agent_long_poll", s.agent_long_poll, 30, 0..=60)?,
        poll_interval_seconds: pick(
            "agent_poll_interval",
            s.agent_poll_interval,
            defaults.poll_interval_seconds,
            1..=3600,
        )?,
        token_rotation_seconds: pick(
            "agent_token_rotation",
            s.agent_token_rotation,
            defaults.token_rotation_seconds,
            3600..=90 * 86_400,
        )?,
    })
}

/// The rate limits, each between 1 and 1,000,000 per minute.
fn rate_limits(s: &Settings) -> Result<RateLimitSettings, ConfigError> {
    let defaults = RateLimitSettings::default();
    let pick = |name: &'static str, value: Option<u32>, default: NonZeroU32| match value {
        None => Ok(default),
        Some(n) => NonZeroU32::new(n)
            .filter(|n| n.get() <= 1_000_000)
            .ok_or_else(|| invalid(name, "must be between 1 and 1000000 per minute")),
    };
    Ok(RateLimitSettings {
        requests: pick(
            "rate_limit_requests",
            s.rate_limit_requests,
            defaults.requests,
        )?,
        agent: pick("rate_limit_agent", s.rate_limit_agent, defaults.agent)?,
        login: pick("rate_limit_login", s.rate_limit_login, defaults.login)?,
        two_factor: pick(
            "rate_limit_two_factor",
            s.rate_limit_two_factor,
            defaults.two_factor,
        )?,
        org_creation: pick(
            "rate_limit_org_creation",
            s.rate_limit_org_creation,
            defaults.org_creation,
        )?,
        enrollment: pick(
            "rate_limit_enrollment",
            s.rate_limit_enrollment,
            defaults.enrollment,
        )?,
        mqtt_refusal_audit: defaults.mqtt_refusal_audit,
    })
}

/// An origin allowed by CORS: `https://host[:port]` (or `http://` for
/// development), lowercased, without a path. `*` is refused: credentials are
/// never shared with any origin.
fn cors_origin(origin: &str) -> Result<String, ConfigError> {
    let refuse = || {
        invalid(
            "cors_allowed_origins",
            format!(
                "{origin:?} must be scheme://host[:port] with scheme https or http, no path and no wildcard"
            ),
        )
    };
    let (scheme, authority) = origin.split_once("://").ok_or_else(refuse)?;
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, port)| {
            if port.parse::<u16>().is_ok() {
                host
            } else {
                authority
            }
        });
    if !matches!(scheme, "https" | "http")
        || authority.is_empty()
        || authority.contains(['/', '?', '#', '@', '*'])
        || validate_hostname(host.trim_matches(['[', ']'])).is_err()
    {
        return Err(refuse());
    }
    Ok(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

/// `https://host[:port]` from a public URL, which must be HTTPS and carry no path.
fn public_origin(url: &str) -> Result<String, ConfigError> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| invalid("public_url", "must start with https://"))?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let host = authority.rsplit_once(':').map_or(authority, |(h, port)| {
        if port.parse::<u16>().is_ok() {
            h
        } else {
            authority
        }
    });
    if authority.is_empty()
        || authority.contains(['/', '?', '#', '@'])
        || validate_hostname(host.trim_matches(['[', ']'])).is_err()
    {
        return Err(invalid(
            "public_url",
            "must be https://host or https://host:port, without a path",
        ));
    }
    // Browsers leave the default port out of `Origin`.
    let authority = authority.to_ascii_lowercase();
    let authority = authority.strip_suffix(":443").unwrap_or(&authority);
    Ok(format!("https://{authority}"))
}

fn validate_hostname(name: &str) -> Result<(), ConfigError> {
    if name.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if valid {
        Ok(())
    } else {
        Err(invalid(
            "hostnames",
            format!("{name:?} is not a valid host name"),
        ))
    }
}

/// A database URL with its password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let redacted_base = match (base.find("://"), base.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &base[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &base[..scheme_end + 3], &base[at..]),
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    match query {
        None => redacted_base,
        Some(q) => {
            let params: Vec<String> = q
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _))
                        if k.eq_ignore_ascii_case("password")
                            || k.eq_ignore_ascii_case("sslpassword") =>
                    {
                        format!("{k}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{redacted_base}?{}", params.join("&"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_units() {
        assert_eq!(
            "30m".parse::<HumanDuration>().unwrap().0,
            Duration::from_secs(1800)
        );
        assert_eq!("24h".parse::<HumanDuration>().unwrap().to_string(), "1d");
        assert!("30".parse::<HumanDuration>().is_err());
        assert!("m".parse::<HumanDuration>().is_err());
        assert!("-5m".parse::<HumanDuration>().is_err());
    }

    #[test]
    fn defaults_are_secure() {
        let c = Config::from_settings(Settings::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8443");
        assert_eq!(c.data_dir, PathBuf::from("sentinel-data"));
        assert_eq!(c.tls, Tls::Generated { hostnames: vec![] });
        assert!(!c.http.allow_org_self_service);
        assert_eq!(c.http.session_idle_timeout, Duration::from_secs(1800));
        assert_eq!(c.http.session_lifetime, Duration::from_secs(86_400));
    }

    #[test]
    fn plain_http_needs_trusted_proxies() {
        let s = Settings {
            behind_proxy: Some(true),
            ..Settings::default()
        };
        assert_eq!(
            Config::from_settings(s).unwrap_err().setting,
            "trusted_proxies"
        );
        let s = Settings {
            behind_proxy: Some(true),
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            ..Settings::default()
        };
        assert_eq!(
            Config::from_settings(s.clone()).unwrap_err().setting,
            "public_url"
        );
        let s = Settings {
            public_url: Some("https://sentinel.example.org".into()),
            ..s
        };
        assert_eq!(Config::from_settings(s).unwrap().tls, Tls::BehindProxy);
    }

    #[test]
    fn errors_name_the_setting() {
        let cases: Vec<(Settings, &str)> = vec![
            (
                Settings {
                    tls_cert: Some("c.pem".into()),
                    ..Default::default()
                },
                "tls_key",
            ),
            (
                Settings {
                    tls_key: Some("k.pem".into()),
                    ..Default::default()
                },
                "tls_cert",
            ),
            (
                Settings {
                    database_url: Some(SecretString::new("mysql://x")),
                    ..Default::default()
                },
                "database_url",
            ),
            (
                Settings {
                    public_url: Some("http://x.example".into()),
                    ..Default::default()
                },
                "public_url",
            ),
            (
                Settings {
                    public_url: Some("https://x.example/app".into()),
                    ..Default::default()
                },
                "public_url",
            ),
            (
                Settings {
                    hostnames: vec!["bad host".into()],
                    ..Default::default()
                },
                "hostnames",
            ),
            (
                Settings {
                    session_idle_timeout: Some(HumanDuration(Duration::from_secs(5))),
                    ..Default::default()
                },
                "session_idle_timeout",
            ),
            (
                Settings {
                    session_idle_timeout: Some(HumanDuration(Duration::from_secs(7200))),
                    session_lifetime: Some(HumanDuration(Duration::from_secs(3600))),
                    ..Default::default()
                },
                "session_lifetime",
            ),
            (
                Settings {
                    max_body_bytes: Some(10),
                    ..Default::default()
                },
                "max_body_bytes",
            ),
            (
                Settings {
                    log_level: Some("info,=[".into()),
                    ..Default::default()
                },
                "log_level",
            ),
        ];
        for (settings, setting) in cases {
            let err = Config::from_settings(settings).unwrap_err();
            assert_eq!(err.setting, setting, "{err}");
            assert!(err.to_string().contains(setting));
        }
    }

    #[test]
    fn flags_beat_the_file() {
        let flags = Settings {
            listen: Some("127.0.0.1:9000".parse().unwrap()),
            ..Default::default()
        };
        let file: Settings = toml::from_str("listen = \"127.0.0.1:7000\"\nallow_org_self_service = true\nsession_idle_timeout = \"10m\"").unwrap();
        let c = Config::from_settings(flags.or(file)).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert!(c.http.allow_org_self_service);
        assert_eq!(c.http.session_idle_timeout, Duration::from_secs(600));
    }

    #[test]
    fn proxies_are_addresses_or_networks() {
        assert_eq!(
            parse_network("10.0.0.5").unwrap().to_string(),
            "10.0.0.5/32"
        );
        assert_eq!(parse_network("fd00::/8").unwrap().to_string(), "fd00::/8");
        assert!(parse_network("proxy.example.org").is_err());
        let file: Settings =
            toml::from_str("trusted_proxies = [\"10.0.0.5\", \"192.168.0.0/16\"]").unwrap();
        assert_eq!(file.trusted_proxies.len(), 2);
        assert!(toml::from_str::<Settings>("trusted_proxies = [\"nope\"]").is_err());
    }

    #[test]
    fn logs_can_keep_entries_for_their_own_time() {
        let org = sentinel_core::OrgId::random();
        let file: Settings = toml::from_str(&format!(
            "audit_retention = \"400d\"\naudit_retention_for = [\"platform=3650d\", \"org:{org}=30d\"]"
        ))
        .unwrap();
        let c = Config::from_settings(file).unwrap();
        let day = Duration::from_secs(86_400);
        assert_eq!(c.audit.retention_of(LogId::Platform), 3650 * day);
        assert_eq!(c.audit.retention_of(LogId::Org(org)), 30 * day);
        assert_eq!(
            c.audit
                .retention_of(LogId::Org(sentinel_core::OrgId::random())),
            400 * day
        );
        assert!(c.to_toml().contains(&format!("org:{org}=30d")));
        for bad in ["platform", "platform=30", "org:nope=30d", "tenant=30d"] {
            assert!(parse_log_retention(bad).is_err(), "{bad}");
        }
        let too_short = Settings {
            audit_retention_for: vec![parse_log_retention("platform=1h").unwrap()],
            ..Default::default()
        };
        let err = Config::from_settings(too_short).unwrap_err().to_string();
        assert!(err.contains("audit_retention_for"), "{err}");
    }

    #[test]
    fn agent_settings_have_defaults_and_bounds() {
        let c = Config::from_settings(Settings::default()).unwrap();
        assert_eq!(c.http.agent.telemetry_interval_seconds, 30);
        assert_eq!(c.http.agent.long_poll_seconds, 30);
        let file: Settings =
            toml::from_str("agent_telemetry_interval = \"10s\"\nagent_long_poll = \"0s\"").unwrap();
        let c = Config::from_settings(file).unwrap();
        assert_eq!(c.http.agent.telemetry_interval_seconds, 10);
        assert_eq!(c.http.agent.long_poll_seconds, 0);
        assert!(c.to_toml().contains("agent_telemetry_interval = \"10s\""));
        for bad in [
            "agent_telemetry_interval = \"1s\"",
            "agent_long_poll = \"2m\"",
            "agent_token_rotation = \"1m\"",
        ] {
            let s: Settings = toml::from_str(bad).unwrap();
            let err = Config::from_settings(s).unwrap_err().to_string();
            assert!(err.contains(bad.split(' ').next().unwrap()), "{bad}: {err}");
        }
    }

    #[test]
    fn the_mqtt_gateway_is_on_by_default_and_plain_only_on_loopback() {
        let c = Config::from_settings(Settings::default()).unwrap();
        assert_eq!(
            c.mqtt,
            Some(MqttSettings {
                listen: "127.0.0.1:8883".parse().unwrap(),
                plain: false
            })
        );
        let off: Settings = toml::from_str("mqtt_listen = \"off\"").unwrap();
        let c = Config::from_settings(off).unwrap();
        assert_eq!(c.mqtt, None);
        assert!(c.to_toml().contains("mqtt_listen = \"off\""));
        let plain: Settings =
            toml::from_str("mqtt_listen = \"127.0.0.1:1884\"\nmqtt_plain = true").unwrap();
        assert!(Config::from_settings(plain).unwrap().mqtt.unwrap().plain);
        for (bad, setting) in [
            (
                "mqtt_listen = \"0.0.0.0:1884\"\nmqtt_plain = true",
                "mqtt_plain",
            ),
            ("mqtt_listen = \"off\"\nmqtt_plain = true", "mqtt_plain"),
            (
                "mqtt_listen = \"0.0.0.0:8883\"\nbehind_proxy = true\ntrusted_proxies = [\"10.0.0.1\"]\npublic_url = \"https://x.example.org\"",
                "mqtt_listen",
            ),
        ] {
            let s: Settings = toml::from_str(bad).unwrap();
            assert_eq!(
                Config::from_settings(s).unwrap_err().setting,
                setting,
                "{bad}"
            );
        }
        assert!(toml::from_str::<Settings>("mqtt_listen = \"nowhere\"").is_err());
        let proxied: Settings = toml::from_str(
            "behind_proxy = true\ntrusted_proxies = [\"10.0.0.1\"]\npublic_url = \"https://x.example.org\"",
        )
        .unwrap();
        assert_eq!(Config::from_settings(proxied).unwrap().mqtt, None);
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        assert!(toml::from_str::<Settings>("lisen = \"127.0.0.1:1\"").is_err());
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://sentinel:s3cret@db:5432/s"),
            "postgres://sentinel:***@db:5432/s"
        );
        assert_eq!(
            redact_url("postgres://db/s?user=x&password=s3cret"),
            "postgres://db/s?user=x&password=***"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        let printed = Config::from_settings(Settings {
            database_url: Some(SecretString::new("postgres://u:hunter2hunter2@h/d")),
            ..Default::default()
        })
        .unwrap()
        .to_toml();
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("postgres://u:***@h/d"));
    }

    #[test]
    fn public_origins_are_normalized() {
        assert_eq!(
            public_origin("https://Sentinel.Example.org/").unwrap(),
            "https://sentinel.example.org"
        );
        assert_eq!(
            public_origin("https://10.0.0.5:8443").unwrap(),
            "https://10.0.0.5:8443"
        );
        assert!(public_origin("https://user@evil.example").is_err());
    }
}
