//! What travels between `sentinel-agent` and the server, defined once for both ends.
//!
//! - [`facts`], [`telemetry`], [`inventory`]: what a device reports about itself.
//! - [`enroll`]: the one-time exchange of an enrollment token for a device identity, and
//!   the settings the server hands the agent.
//! - [`command`]: what an administrator can ask a device to do, with the limits both
//!   ends enforce, and what the device reports back.
//! - [`signing`]: commands travel signed by their organization's Ed25519 key; the agent
//!   runs nothing that does not verify.
//! - [`paths`]: the agent routes and token formats.
//!
//! Times on the wire are whole Unix seconds (`i64`).

pub mod command;
pub mod enroll;
pub mod facts;
pub mod inventory;
pub mod polling;
pub mod signing;
pub mod telemetry;

/// The agent's routes on the server, and how its credentials look.
pub mod paths {
    pub const ENROLL: &str = "/api/v1/agent/enroll";
    pub const TELEMETRY: &str = "/api/v1/agent/telemetry";
    pub const INVENTORY: &str = "/api/v1/agent/inventory";
    /// `GET`, with `?wait=SECONDS` to long-poll ([`commands_waiting`]).
    pub const COMMANDS: &str = "/api/v1/agent/commands";
    /// `COMMANDS?wait=…`: a long-poll the server ends after `wait` (to the
    /// millisecond) if no command comes first.
    pub fn commands_waiting(wait: std::time::Duration) -> String {
        format!(
            "{COMMANDS}?wait={}.{:03}",
            wait.as_secs(),
            wait.subsec_millis()
        )
    }
    /// `POST` a [`crate::command::CommandReport`] to `COMMANDS/{id}/result`.
    pub fn command_result(id: uuid::Uuid) -> String {
        format!("{COMMANDS}/{id}/result")
    }
    /// `POST` to exchange the current device token for a new one.
    pub const TOKEN: &str = "/api/v1/agent/token";

    /// The namespace of one device on the MQTT gateway; a device publishes to
    /// `{namespace}/telemetry`, `/inventory`, `/results` and `/events`, and
    /// subscribes to `{namespace}/commands`.
    pub fn mqtt_namespace(org_id: uuid::Uuid, device_id: uuid::Uuid) -> String {
        format!(
            "sentinel/{}/devices/{}",
            org_id.hyphenated(),
            device_id.hyphenated()
        )
    }

    /// Every device token starts with this.
    pub const DEVICE_TOKEN_PREFIX: &str = "sdt_";
    /// Every enrollment token starts with this.
    pub const ENROLLMENT_TOKEN_PREFIX: &str = "set_";
}
