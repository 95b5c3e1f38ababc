//! The ingestion worker's access to one organization: its broker connections
//! (with the sealed password), devices looked up by DevEUI with their decoder,
//! and storing uplinks. It acts for no member, so it reaches nothing else.

use sentinel_core::{OrgId, Timestamp};
use uuid::Uuid;

use super::Integration;
use super::integrations::integration_in;
use crate::backend::with_tx;
use crate::tenant::TenantStore;
use crate::{StoreError, Stores};

/// The ingestion worker's handle on one organization.
#[derive(Debug, Clone)]
pub struct UplinkStore {
    store: TenantStore,
}

/// A device an uplink is for, and the decoder of its profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UplinkDevice {
    pub device_id: Uuid,
    pub decoder: Option<String>,
}

/// An uplink to store.
#[derive(Debug, Clone)]
pub struct NewUplinkEvent {
    pub device_id: Uuid,
    pub received_at: Timestamp,
    pub f_port: i32,
    pub payload: Vec<u8>,
    pub decoded: Option<serde_json::Value>,
    pub decoder_error: Option<String>,
    pub integration_id: Uuid,
    /// The network server's id for the uplink (ChirpStack `deduplicationId`):
    /// a second copy with the same id from the same integration is not stored.
    pub dedup_id: Option<String>,
}

impl Stores {
    /// `org`'s uplinks, for the ingestion worker.
    pub async fn uplink_store(&self, org: OrgId) -> Result<UplinkStore, StoreError> {
        Ok(UplinkStore {
            store: self.tenants().open_existing(org).await?,
        })
    }

    /// Every enabled broker connection of every organization, for starting the
    /// ingestion workers.
    pub async fn enabled_integrations(&self) -> Result<Vec<(OrgId, Uuid)>, StoreError> {
        let mut found = Vec::new();
        for org in self.control().all_organizations().await? {
            let store = self.tenants().open_existing(org.id).await?;
            let mut tx = store.read().await?;
            let ids: Vec<Uuid> = with_tx!(&mut tx, c =>
                sqlx::query_scalar("SELECT id FROM integrations WHERE enabled ORDER BY id")
                    .fetch_all(c)
                    .await
            )?;
            tx.commit().await?;
            found.extend(ids.into_iter().map(|id| (org.id, id)));
        }
        Ok(found)
    }
}

impl UplinkStore {
    pub fn org_id(&self) -> OrgId {
        self.store.org_id()
    }

    /// A broker connection and its sealed password; `NotFound` once deleted.
    pub async fn integration(
        &self,
        id: Uuid,
    ) -> Result<(Integration, Option<Vec<u8>>), StoreError> {
        let mut tx = self.store.read().await?;
        let integration = integration_in(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let sealed: Option<Vec<u8>> = with_tx!(&mut tx, c =>
            sqlx::query_scalar("SELECT sealed_password FROM integrations WHERE id = $1")
                .bind(id)
                .fetch_one(c)
                .await
        )?;
        tx.commit().await?;
        Ok((integration, sealed))
    }

    /// The device (not revoked) with this DevEUI, and its profile's decoder.
    pub async fn device_by_dev_eui(
        &self,
        dev_eui: &str,
    ) -> Result<Option<UplinkDevice>, StoreError> {
        let mut tx = self.store.read().await?;
        let row: Option<(Uuid, Option<String>)> = with_tx!(&mut tx, c =>
            sqlx::query_as(
                "SELECT l.device_id, p.decoder FROM lorawan_devices l
                 JOIN devices d ON d.id = l.device_id
                 LEFT JOIN device_profiles p ON p.id = l.profile_id
                 WHERE l.dev_eui = $1 AND d.revoked_at IS NULL",
            )
            .bind(dev_eui)
            .fetch_optional(c)
            .await
        )?;
        tx.commit().await?;
        Ok(row.map(|(device_id, decoder)| UplinkDevice { device_id, decoder }))
    }

    /// Stores an uplink; false when a copy with the same deduplication id from
    /// the same integration is already stored (a broker's redelivery).
    pub async fn store_event(&self, event: &NewUplinkEvent) -> Result<bool, StoreError> {
        let decoded = event
            .decoded
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.store.begin().await?;
        let inserted = with_tx!(&mut tx, c =>
            sqlx::query(
                "INSERT INTO device_events (id, device_id, received_at, f_port, payload, decoded,
                 decoder_error, integration_id, dedup_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (integration_id, dedup_id) DO NOTHING",
            )
            .bind(Uuid::now_v7())
            .bind(event.device_id)
            .bind(event.received_at)
            .bind(event.f_port)
            .bind(&event.payload)
            .bind(&decoded)
            .bind(&event.decoder_error)
            .bind(event.integration_id)
            .bind(&event.dedup_id)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        )?;
        tx.commit().await?;
        Ok(inserted == 1)
    }
}
