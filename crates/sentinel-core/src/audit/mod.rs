//! The audit trail's vocabulary: who did what to which entity, from where, with
//! what outcome. An [`AuditEvent`] is what the rest of Sentinel records; the
//! stores chain events into [`StoredEntry`] rows ([`chain`]) and the server signs
//! chain heads ([`checkpoint`]).
//!
//! Every name here (actions, entity types, actor kinds, outcomes) is a stable
//! dotted or lowercase string: it is hashed into the chain, shown in the API and
//! filtered on, so renaming one is a breaking change.

pub mod chain;
pub mod checkpoint;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{DisplayName, OrgId, Timestamp, UserId};

/// Declares a closed set of names: an enum, its stable strings, `ALL`, and parsing.
macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownName(s.chars().take(64).collect())),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A name that is not one of the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown name {0:?}")]
pub struct UnknownName(pub String);

named_enum!(
    /// What happened.
    AuditAction {
        SetupCompleted => "setup.completed",
        Login => "auth.login",
        LoginFailed => "auth.login_failed",
        /// Consecutive failed logins locked an account for a while.
        AccountLocked => "auth.account_locked",
        Logout => "auth.logout",
        UserCreated => "user.created",
        UserDeleted => "user.deleted",
        PlatformAdminChanged => "user.platform_admin_changed",
        PasswordChanged => "user.password_changed",
        /// A platform admin lifted a user's login lock.
        UserUnlocked => "user.unlocked",
        /// A session was ended by its user or a platform admin.
        SessionRevoked => "session.revoked",
        /// A platform admin ended every session of a user.
        UserSessionsEnded => "user.sessions_ended",
        ApiTokenCreated => "api_token.created",
        ApiTokenRevoked => "api_token.revoked",
        ServiceAccountCreated => "service_account.created",
        ServiceAccountDeleted => "service_account.deleted",
        /// A user was issued a new TOTP secret, not yet confirmed.
        TwoFactorEnrolmentStarted => "auth.2fa_enrolment_started",
        /// A user confirmed their TOTP secret with a code: two-factor is on.
        TwoFactorEnabled => "auth.2fa_enabled",
        /// A user turned their own two-factor authentication off.
        TwoFactorDisabled => "auth.2fa_disabled",
        /// A platform admin removed a user's two-factor authentication.
        TwoFactorReset => "auth.2fa_reset",
        /// A recovery code was spent in place of a TOTP code.
        RecoveryCodeUsed => "auth.recovery_code_used",
        /// A user replaced their recovery codes with a new set.
        RecoveryCodesRegenerated => "auth.recovery_codes_regenerated",
        OrgCreated => "org.created",
        OrgRenamed => "org.renamed",
        OrgDeleted => "org.deleted",
        /// Which members must use two-factor authentication changed.
        OrgTwoFactorPolicyChanged => "org.2fa_policy_changed",
        MemberAdded => "member.added",
        MemberRoleChanged => "member.role_changed",
        MemberRemoved => "member.removed",
        /// Entries were exported from this log.
        AuditExported => "audit.exported",
        /// Every secret sealed at rest was re-sealed under a new master key.
        MasterKeyRotated => "platform.master_key_rotated",
        /// Entries older than the retention period were removed up to a checkpoint.
        AuditPruned => "audit.pruned",
        EnrollmentTokenCreated => "enrollment_token.created",
        EnrollmentTokenRevoked => "enrollment_token.revoked",
        DeviceEnrolled => "device.enrolled",
        DeviceRevoked => "device.revoked",
        /// A device exchanged its token for a new one.
        DeviceTokenRotated => "device.token_rotated",
        CommandQueued => "command.queued",
        CommandCancelled => "command.cancelled",
        /// A device reported how a command ended (or that it refused it).
        CommandResultReceived => "command.result_received",
        /// A vulnerability feed file (OSV records or the CISA KEV catalog) was imported.
        FeedImported => "feed.imported",
        /// An organization's findings were exported (CSV or NDJSON).
        FindingsExported => "findings.exported",
        /// A signed report was made for an organization.
        ReportCreated => "report.created",
        /// A device published over MQTT; recorded only when refused (a topic
        /// outside its own namespace, or one it may not publish to).
        DeviceMqttPublish => "device.mqtt_publish",
        /// A device subscribed over MQTT; recorded only when refused.
        DeviceMqttSubscribe => "device.mqtt_subscribe",
        /// A device profile (and its payload decoder) was created.
        DeviceProfileCreated => "device_profile.created",
        /// A device profile was renamed or its decoder changed.
        DeviceProfileUpdated => "device_profile.updated",
        DeviceProfileDeleted => "device_profile.deleted",
        /// A device's LoRaWAN DevEUI and profile were set or cleared.
        DeviceLorawanSet => "device.lorawan_set",
        /// An external MQTT broker connection (IoT network server) was added.
        IntegrationCreated => "integration.created",
        IntegrationUpdated => "integration.updated",
        IntegrationDeleted => "integration.deleted",
    }
);

named_enum!(
    /// What kind of thing an action was done to.
    EntityType {
        User => "user",
        Organization => "organization",
        Session => "session",
        ApiToken => "api_token",
        AuditLog => "audit_log",
        Platform => "platform",
        EnrollmentToken => "enrollment_token",
        Device => "device",
        Command => "command",
        Feed => "feed",
        Report => "report",
        DeviceProfile => "device_profile",
        Integration => "integration",
    }
);

named_enum!(
    /// Whether the action happened.
    Outcome {
        /// It happened.
        Success => "success",
        /// An authenticated principal was not allowed to do it.
        Denied => "denied",
        /// It was attempted and failed (a wrong password, a broken rule).
        Failure => "failure",
    }
);

named_enum!(
    /// Who acted.
    ActorKind {
        User => "user",
        /// Sentinel itself (retention, maintenance).
        System => "system",
        /// Someone not (yet) authenticated, such as a failed login.
        Anonymous => "anonymous",
        /// An enrolled device, through its agent.
        Device => "device",
    }
);

/// Which log an entry belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum LogId {
    /// Platform events: logins, setup, users, organizations.
    Platform,
    /// Everything that happens inside one organization.
    Org(OrgId),
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogId::Platform => f.write_str("platform"),
            LogId::Org(org) => write!(f, "org:{org}"),
        }
    }
}

impl std::str::FromStr for LogId {
    type Err = String;

    /// `platform` or `org:<organization id>`, as [`LogId`] displays.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "platform" => Ok(LogId::Platform),
            other => other
                .strip_prefix("org:")
                .and_then(|id| id.parse().ok())
                .map(LogId::Org)
                .ok_or_else(|| {
                    format!("{other:?} names no log: use platform or org:<organization id>")
                }),
        }
    }
}

/// The actor of an entry: a kind, a stable id and the name it had at the time.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: String,
    pub name: String,
}

impl Actor {
    pub fn user(id: UserId, name: &DisplayName) -> Actor {
        Actor {
            kind: ActorKind::User,
            id: id.to_string(),
            name: name.as_str().to_owned(),
        }
    }

    /// An enrolled device, named by its hostname at the time.
    pub fn device(id: impl fmt::Display, hostname: &str) -> Actor {
        Actor {
            kind: ActorKind::Device,
            id: id.to_string(),
            name: clean(hostname, 256),
        }
    }

    pub fn system() -> Actor {
        Actor {
            kind: ActorKind::System,
            id: String::new(),
            name: String::from("Sentinel"),
        }
    }

    /// Someone unauthenticated; `claimed` is what they claimed to be (the e-mail
    /// address of a failed login), kept as evidence.
    pub fn anonymous(claimed: &str) -> Actor {
        Actor {
            kind: ActorKind::Anonymous,
            id: String::new(),
            name: clean(claimed, 254),
        }
    }
}

/// The thing an action was done to.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Entity {
    #[serde(rename = "type")]
    pub kind: EntityType,
    pub id: String,
}

impl Entity {
    pub fn new(kind: EntityType, id: impl fmt::Display) -> Entity {
        Entity {
            kind,
            id: id.to_string(),
        }
    }
}

/// Where a request came from. Empty strings mean "not known" (system actions).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Origin {
    pub client_ip: String,
    pub user_agent: String,
    pub request_id: String,
}

impl Origin {
    /// An origin from request facts; the user agent is attacker-chosen text, so it
    /// is cut to 512 characters and stripped of control characters.
    pub fn new(
        client_ip: impl fmt::Display,
        user_agent: &str,
        request_id: impl fmt::Display,
    ) -> Self {
        Origin {
            client_ip: client_ip.to_string(),
            user_agent: clean(user_agent, 512),
            request_id: request_id.to_string(),
        }
    }
}

/// The actor and origin of the request being served: everything an event needs
/// that the code recording it does not decide itself.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AuditContext {
    pub actor: Actor,
    pub origin: Origin,
}

impl AuditContext {
    /// Sentinel itself, outside any request.
    pub fn system() -> AuditContext {
        AuditContext {
            actor: Actor::system(),
            origin: Origin::default(),
        }
    }

    /// An event by this actor, from this origin.
    pub fn event(
        &self,
        at: Timestamp,
        action: AuditAction,
        entity: Entity,
        detail: serde_json::Value,
        outcome: Outcome,
    ) -> AuditEvent {
        AuditEvent {
            // Time-ordered, so that the log's index of event ids grows at one
            // end instead of dirtying a random page per entry.
            id: Uuid::now_v7(),
            at,
            actor: self.actor.clone(),
            action,
            entity,
            detail,
            origin: self.origin.clone(),
            outcome,
        }
    }

    /// A successful event by this actor.
    pub fn success(
        &self,
        at: Timestamp,
        action: AuditAction,
        entity: Entity,
        detail: serde_json::Value,
    ) -> AuditEvent {
        self.event(at, action, entity, detail, Outcome::Success)
    }
}

/// One thing that happened, before it is chained into a log.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Unique per event: appending the same event twice stores it once.
    pub id: Uuid,
    pub at: Timestamp,
    pub actor: Actor,
    pub action: AuditAction,
    pub entity: Entity,
    /// A JSON object (e.g. old and new role). Serialized with sorted keys.
    pub detail: serde_json::Value,
    pub origin: Origin,
    pub outcome: Outcome,
}

/// A stored entry of a log, as its columns hold it. Fields are plain text so that
/// an entry written by a newer Sentinel, or tampered with, can still be shown and
/// checked. This is also what the API and exports show: the detail as a JSON
/// object, the hashes in hex.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StoredEntry {
    pub seq: i64,
    pub event_id: Uuid,
    pub at: Timestamp,
    pub actor_kind: String,
    pub actor_id: String,
    pub actor_name: String,
    pub action: String,
    pub entity_type: String,
    pub entity_id: String,
    /// What changed, e.g. `{"from":"analyst","to":"admin"}`. Stored as canonical
    /// JSON text (keys sorted, no whitespace).
    #[serde(serialize_with = "as_json")]
    #[schema(value_type = Object)]
    pub detail: String,
    pub client_ip: String,
    pub user_agent: String,
    pub request_id: String,
    pub outcome: String,
    /// SHA-256 of the previous entry, hex.
    #[serde(serialize_with = "as_hex")]
    #[schema(value_type = String)]
    pub prev_hash: Vec<u8>,
    /// SHA-256 of this entry, hex.
    #[serde(serialize_with = "as_hex")]
    #[schema(value_type = String)]
    pub hash: Vec<u8>,
}

impl StoredEntry {
    /// Chains `event` after the entry whose hash is `prev_hash`, as number `seq`.
    pub fn chain(seq: i64, prev_hash: &[u8], event: &AuditEvent) -> StoredEntry {
        let mut entry = StoredEntry {
            seq,
            event_id: event.id,
            at: event.at,
            actor_kind: event.actor.kind.as_str().to_owned(),
            actor_id: event.actor.id.clone(),
            actor_name: event.actor.name.clone(),
            action: event.action.as_str().to_owned(),
            entity_type: event.entity.kind.as_str().to_owned(),
            entity_id: event.entity.id.clone(),
            detail: canonical_json(&event.detail),
            client_ip: event.origin.client_ip.clone(),
            user_agent: event.origin.user_agent.clone(),
            request_id: event.origin.request_id.clone(),
            outcome: event.outcome.as_str().to_owned(),
            prev_hash: prev_hash.to_vec(),
            hash: Vec::new(),
        };
        entry.hash = chain::entry_hash(&entry).to_vec();
        entry
    }
}

/// JSON with object keys sorted and no insignificant whitespace. (serde_json's map
/// is ordered by key unless its `preserve_order` feature is on; a test below
/// guards that.)
pub fn canonical_json(value: &serde_json::Value) -> String {
    value.to_string()
}

/// Lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The bytes of hexadecimal text (either case); `None` unless it is hex
/// digits only (`from_str_radix` alone would also take a sign: `+1`).
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

fn as_hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(bytes))
}

/// Stored JSON text as the JSON it holds (as a string if it is not JSON: a
/// tampered row is still shown, as it is).
fn as_json<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value) => value.serialize(s),
        Err(_) => s.serialize_str(text),
    }
}

/// At most `max` characters of `text`, without control characters.
fn clean(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_reads_back_and_nothing_else_reads() {
        assert_eq!(
            unhex(&hex(&[0x09, 0xc4, 0x64])),
            Some(vec![0x09, 0xc4, 0x64])
        );
        assert_eq!(unhex("09C464"), Some(vec![0x09, 0xc4, 0x64]));
        assert_eq!(unhex(""), Some(vec![]));
        for bad in ["0g", "123", "09 c4", "+1+2", "-1", "éé"] {
            assert_eq!(unhex(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for action in AuditAction::ALL {
            assert_eq!(action.as_str().parse::<AuditAction>(), Ok(*action));
            assert!(seen.insert(action.as_str()), "{action} twice");
            assert!(action.as_str().contains('.'), "{action} is not dotted");
        }
        assert!("member.promoted".parse::<AuditAction>().is_err());
        assert_eq!("denied".parse::<Outcome>(), Ok(Outcome::Denied));
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let value = serde_json::json!({"b": 1, "a": {"z": true, "m": [3, {"y": 1, "x": 2}]}});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":{"m":[3,{"x":2,"y":1}],"z":true},"b":1}"#
        );
    }

    #[test]
    fn hostile_user_agents_are_cut_and_cleaned() {
        let origin = Origin::new(
            "203.0.113.9",
            &format!("evil\r\nX-Injected: 1{}", "a".repeat(2000)),
            "r",
        );
        assert!(!origin.user_agent.contains('\n'));
        assert_eq!(origin.user_agent.chars().count(), 512);
    }

    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
