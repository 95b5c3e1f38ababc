//! What carries the device's reports to its server: the loops send telemetry, inventory
//! and command reports through [`Transport`] and never know which protocol took them.
//!
//! Over HTTPS ([`crate::api`]) everything goes to the agent routes. Over MQTT
//! (`--transport mqtt`, [`mqtt`]) reports are published to the device gateway and
//! commands arrive pushed on the device's `commands` topic; HTTPS is then used only to
//! rotate the device token (the gateway has no way to), after which the MQTT link logs
//! in again with the new one. A gateway acknowledgement carries no settings, so over
//! MQTT the agent keeps those it was last given.

mod answers;
pub mod mqtt;

use sentinel_protocol::command::{CommandReport, ResultMessage};
use sentinel_protocol::enroll::AgentSettings;
use sentinel_protocol::inventory::{InventoryReport, InventoryStatus};
use sentinel_protocol::telemetry::TelemetryBatch;
use serde::Serialize;
use uuid::Uuid;

use crate::api::{ApiClient, ApiError, REQUEST_TIMEOUT, UPLOAD_TIMEOUT};
use crate::secret::Secret;
pub use answers::Taken;
use mqtt::{Channel, MqttLink};

/// Which protocol `sentinel-agent run` was told to report over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// The agent routes over HTTPS.
    Https,
    /// The device gateway over MQTT; at the server's host on port 8883 when no address
    /// is given.
    Mqtt(Option<mqtt::Address>),
}

/// The way to the server.
#[derive(Debug)]
pub struct Transport {
    /// The agent routes over HTTPS: everything, or token rotation alone.
    https: ApiClient,
    /// With `--transport mqtt`: what carries the reports instead.
    mqtt: Option<MqttLink>,
}

impl Transport {
    /// Everything over HTTPS, through `https`.
    pub fn https(https: ApiClient) -> Self {
        Self { https, mqtt: None }
    }

    /// Reports over `link`; `https` for what only HTTPS does.
    pub fn mqtt(https: ApiClient, link: MqttLink) -> Self {
        Self {
            https,
            mqtt: Some(link),
        }
    }

    /// The HTTPS client, for what only HTTPS does (polling for commands, rotating the
    /// token).
    pub fn api(&self) -> &ApiClient {
        &self.https
    }

    /// Sends a telemetry batch; the settings the server answered with, when its answer
    /// carries them.
    pub async fn send_telemetry(
        &self,
        batch: &TelemetryBatch,
    ) -> Result<Option<AgentSettings>, ApiError> {
        match &self.mqtt {
            None => Ok(Some(self.https.send_telemetry(batch).await?.settings)),
            Some(link) => {
                link.publish(Channel::Telemetry, encode(batch)?, REQUEST_TIMEOUT)
                    .await?;
                Ok(None)
            }
        }
    }

    /// Sends an inventory report; what the server did with it.
    pub async fn send_inventory(
        &self,
        report: &InventoryReport,
    ) -> Result<InventoryStatus, ApiError> {
        let Some(link) = &self.mqtt else {
            return Ok(self.https.send_inventory(report).await?.status);
        };
        let full = report.packages.is_some();
        let timeout = if full {
            UPLOAD_TIMEOUT
        } else {
            REQUEST_TIMEOUT
        };
        let taken = link
            .publish(Channel::Inventory, encode(report)?, timeout)
            .await?;
        Ok(match (taken, full) {
            (Taken::Stored, false) => InventoryStatus::Unchanged,
            (Taken::Stored, true) => InventoryStatus::Stored,
            (Taken::Unmatched, _) => InventoryStatus::SendFull,
        })
    }

    /// Delivers a report on the command `id`.
    pub async fn report(&self, id: Uuid, report: &CommandReport) -> Result<(), ApiError> {
        let Some(link) = &self.mqtt else {
            return self.https.report(id, report).await;
        };
        let message = ResultMessage {
            command_id: id,
            report: report.clone(),
        };
        link.publish(Channel::Results, encode(&message)?, REQUEST_TIMEOUT)
            .await
            .map(drop)
    }

    /// Authenticates with `token` from now on.
    pub fn set_token(&self, token: Secret) {
        self.https.set_token(token.clone());
        if let Some(link) = &self.mqtt {
            link.set_token(token);
        }
    }
}

/// A message as JSON, as the gateway parses it.
fn encode(message: &impl Serialize) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(message).map_err(|e| ApiError::Refused {
        answer: "not sent".into(),
        detail: format!("the message cannot be encoded: {e}"),
    })
}
