//! What carries the device's reports to its server: the loops send telemetry, inventory
//! and command reports through [`Transport`] and never know which protocol took them.

use sentinel_protocol::command::CommandReport;
use sentinel_protocol::enroll::AgentSettings;
use sentinel_protocol::inventory::{InventoryReport, InventoryStatus};
use sentinel_protocol::telemetry::TelemetryBatch;
use uuid::Uuid;

use crate::api::{ApiClient, ApiError};
use crate::secret::Secret;

/// The way to the server.
#[derive(Debug)]
pub struct Transport {
    /// The agent routes over HTTPS.
    https: ApiClient,
}

impl Transport {
    /// Everything over HTTPS, through `https`.
    pub fn https(https: ApiClient) -> Self {
        Self { https }
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
        let ack = self.https.send_telemetry(batch).await?;
        Ok(Some(ack.settings))
    }

    /// Sends an inventory report; what the server did with it.
    pub async fn send_inventory(
        &self,
        report: &InventoryReport,
    ) -> Result<InventoryStatus, ApiError> {
        Ok(self.https.send_inventory(report).await?.status)
    }

    /// Delivers a report on the command `id`.
    pub async fn report(&self, id: Uuid, report: &CommandReport) -> Result<(), ApiError> {
        self.https.report(id, report).await
    }

    /// Authenticates with `token` from now on.
    pub fn set_token(&self, token: Secret) {
        self.https.set_token(token);
    }
}
