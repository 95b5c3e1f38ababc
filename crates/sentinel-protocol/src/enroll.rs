//! Enrollment: a one-time token and the host's facts in, a device identity out; and the
//! settings the server gives the agent.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::facts::HostFacts;

/// `POST /api/v1/agent/enroll`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The enrollment token, `set_…`.
    pub token: String,
    pub facts: HostFacts,
    /// The agent's version, as `sentinel-agent --version` prints it.
    pub agent_version: String,
}

/// The answer to an [`EnrollRequest`]: who the device now is and how it authenticates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollResponse {
    pub device_id: Uuid,
    pub org_id: Uuid,
    /// The device token, `sdt_…`: sent as `Authorization: Bearer` on agent routes.
    pub device_token: String,
    /// The organization's command-signing public key (Ed25519, lowercase hex); the
    /// agent runs only commands it signed.
    pub command_key: String,
    pub settings: AgentSettings,
}

/// How often the agent reports and polls; the server decides and may change them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSettings {
    /// Seconds between telemetry samples (and heartbeats).
    pub telemetry_interval_seconds: u32,
    /// Seconds between inventory checks (digest only unless it changed).
    pub inventory_interval_seconds: u32,
    /// How long a command poll may wait on the server; 0 turns long-polling off.
    pub long_poll_seconds: u32,
    /// Seconds between plain polls when long-polling is off.
    pub poll_interval_seconds: u32,
    /// Seconds after which the agent exchanges its device token for a new one.
    pub token_rotation_seconds: u32,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            telemetry_interval_seconds: 30,
            inventory_interval_seconds: 3600,
            long_poll_seconds: 30,
            poll_interval_seconds: 15,
            token_rotation_seconds: 7 * 24 * 3600,
        }
    }
}

/// The answer to `POST /api/v1/agent/token`: the device's new token. The old one keeps
/// working until the new one is first used, so a lost answer locks nobody out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRotation {
    pub device_token: String,
}
