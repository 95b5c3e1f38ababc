//! A device's own view of its data, reached only with its authenticated token:
//! it refreshes its facts and last-seen time, appends telemetry to its chain,
//! replaces its inventory, and (see `commands`) fetches and reports commands.

use std::sync::Arc;

use rusqlite::OptionalExtension;
use sentinel_core::Timestamp;
use sentinel_core::audit::hex;
use sentinel_protocol::facts::HostFacts;
use sentinel_protocol::inventory::Package;
use sentinel_protocol::telemetry::TimedSample;
use uuid::Uuid;

use super::telemetry::{EncodedSample, Report, TelemetryWriter};
use super::{Device, OrgKeys, device_row};
use crate::backend::{Db, Tx, with_tx};
use crate::tenant::TenantStore;
use crate::{DeviceAccess, StoreError, Stores};

/// One enrolled device's data, for that device alone.
#[derive(Debug, Clone)]
pub struct DeviceStore {
    store: TenantStore,
    access: DeviceAccess,
    telemetry: Arc<TelemetryWriter>,
}

/// One link of a device's telemetry chain.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct TelemetryRecord {
    pub seq: i64,
    /// When the device took the sample (its clock).
    #[schema(value_type = String, format = DateTime)]
    pub sampled_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub received_at: Timestamp,
    /// The sample as stored (its JSON text is what the chain hashes).
    #[serde(skip)]
    pub sample_text: String,
    #[schema(value_type = Object)]
    pub sample: serde_json::Value,
    /// SHA-256 of the previous link, hex.
    pub prev_hash: String,
    /// SHA-256 of this link, hex.
    pub hash: String,
}

impl Stores {
    /// A device's record, for the operator's own use (`sentinel evidence
    /// export`), like [`Stores::audit_log`].
    pub async fn device_for_evidence(
        &self,
        org: sentinel_core::OrgId,
        device: Uuid,
    ) -> Result<Device, StoreError> {
        let store = self.tenants().open_existing(org).await?;
        let mut tx = store.read().await?;
        let row = device_row(&mut tx, device).await?;
        tx.commit().await?;
        row.map(super::DeviceRow::into_device)
            .ok_or(StoreError::NotFound)
    }

    /// Up to `limit` links of a device's telemetry chain after `after_seq`,
    /// oldest first, for the operator's own use.
    pub async fn telemetry_for_evidence(
        &self,
        org: sentinel_core::OrgId,
        device: Uuid,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<TelemetryRecord>, StoreError> {
        let store = self.tenants().open_existing(org).await?;
        let mut tx = store.read().await?;
        let rows = telemetry_rows(&mut tx, device, Some(after_seq), limit).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// The data of the device `access` authenticated.
    pub async fn device_store(&self, access: &DeviceAccess) -> Result<DeviceStore, StoreError> {
        Ok(DeviceStore {
            store: self.tenants().open_existing(access.org_id()).await?,
            access: access.clone(),
            telemetry: Arc::clone(&self.telemetry_writer),
        })
    }
}

/// A device as its own requests need it: who it is, and when it was last
/// heard from. Kept for as long as a device's connection or long-poll lasts,
/// so it holds nothing more (not the facts, which a device page reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    pub id: Uuid,
    pub hostname: String,
    pub last_seen_at: Timestamp,
}

impl DeviceStore {
    pub fn device_id(&self) -> Uuid {
        self.access.device_id()
    }

    pub fn org_id(&self) -> sentinel_core::OrgId {
        self.store.org_id()
    }

    /// The proof this store was opened with.
    pub fn access(&self) -> &DeviceAccess {
        &self.access
    }

    /// The organization's keys (a device may learn its public keys).
    pub fn keys(&self) -> OrgKeys {
        OrgKeys(self.store.clone())
    }

    pub(crate) fn tenant(&self) -> &TenantStore {
        &self.store
    }

    /// Who the device is, recording that it was heard from; `NotFound` if it
    /// was revoked. Last-seen is written only once it is `every` old, so that
    /// a busy agent's requests are reads, not disk flushes (telemetry reports
    /// write it in their own transaction anyway).
    ///
    /// Every agent request asks this, so on SQLite the read is one statement on
    /// the organization's file, with no BEGIN and COMMIT: two fewer round trips
    /// to the connection's thread. PostgreSQL finds the tables through the
    /// schema a transaction sets.
    pub async fn seen(
        &self,
        now: Timestamp,
        every: std::time::Duration,
    ) -> Result<DeviceIdentity, StoreError> {
        let row: Option<SeenRow> = match self.store.db() {
            // Every agent request comes here: read on this thread.
            Db::Sqlite(pools) => match pools.inline().read(|c| seen_inline(c, self.device_id())) {
                Some(row) => row,
                None => {
                    sqlx::query_as(SEEN)
                        .bind(self.device_id())
                        .fetch_optional(pools.reads())
                        .await?
                }
            },
            Db::Postgres(_) => {
                let mut tx = self.store.read().await?;
                let row = with_tx!(&mut tx, c =>
                    sqlx::query_as(SEEN).bind(self.device_id()).fetch_optional(c).await
                )?;
                tx.commit().await?;
                row
            }
        };
        let (id, hostname, last_seen_at, revoked_at) = row.ok_or(StoreError::NotFound)?;
        if revoked_at.is_some() {
            return Err(StoreError::NotFound);
        }
        let mut device = DeviceIdentity {
            id,
            hostname,
            last_seen_at,
        };
        if now.since(device.last_seen_at) >= every {
            let mut tx = self.store.begin().await?;
            with_tx!(&mut tx, c =>
                sqlx::query("UPDATE devices SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $1")
                    .bind(now)
                    .bind(self.device_id())
                    .execute(c)
                    .await
                    .map(|r| r.rows_affected())
            )?;
            tx.commit().await?;
            device.last_seen_at = now;
        }
        Ok(device)
    }

    /// Appends `samples` to the device's telemetry chain (and replaces its facts
    /// when given), in one transaction, shared with other devices' reports
    /// arriving at the same time. Returns how many were stored, once they are
    /// durable.
    pub async fn record_telemetry<'s>(
        &self,
        samples: impl IntoIterator<Item = &'s TimedSample>,
        facts: Option<HostFacts>,
        now: Timestamp,
    ) -> Result<u32, StoreError> {
        let samples = samples
            .into_iter()
            .map(EncodedSample::new)
            .collect::<Result<_, _>>()?;
        let report = Report {
            device: self.device_id(),
            samples,
            facts,
            received_at: now,
        };
        self.telemetry.append(&self.store, report).await
    }

    /// The digest of the inventory the server holds for this device.
    pub async fn inventory_digest(&self) -> Result<Option<String>, StoreError> {
        let mut tx = self.store.read().await?;
        let digest: Option<Option<String>> = with_tx!(&mut tx, c =>
            sqlx::query_scalar("SELECT inventory_digest FROM devices WHERE id = $1")
                .bind(self.device_id())
                .fetch_optional(c)
                .await
        )?;
        tx.commit().await?;
        digest.ok_or(StoreError::NotFound)
    }

    /// Replaces the device's inventory with `packages`, whose digest is `digest`.
    pub async fn replace_inventory(
        &self,
        digest: &str,
        packages: &[Package],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.store.begin().await?;
        with_tx!(&mut tx, c =>
            sqlx::query("DELETE FROM inventory_packages WHERE device_id = $1")
                .bind(self.device_id())
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        )?;
        for chunk in packages.chunks(500) {
            with_tx!(&mut tx, c => {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO inventory_packages (device_id, manager, name, version, arch, source_name, source_version) ",
                );
                insert.push_values(chunk, |mut row, p| {
                    row.push_bind(self.device_id())
                        .push_bind(p.manager.as_str())
                        .push_bind(p.name.as_str())
                        .push_bind(p.version.as_str())
                        .push_bind(p.arch.as_deref())
                        .push_bind(p.source_name.as_deref())
                        .push_bind(p.source_version.as_deref());
                });
                insert.build().execute(c).await.map(|r| r.rows_affected())
            })?;
        }
        with_tx!(&mut tx, c =>
            sqlx::query("UPDATE devices SET inventory_digest = $1, inventory_updated_at = $2 WHERE id = $3")
                .bind(digest)
                .bind(now)
                .bind(self.device_id())
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        )?;
        tx.commit().await
    }
}

/// Up to `limit` links of `device`'s chain, newest first; from `after_seq` on,
/// oldest first, when given.
pub(crate) async fn telemetry_rows(
    tx: &mut Tx,
    device: Uuid,
    after_seq: Option<i64>,
    limit: i64,
) -> Result<Vec<TelemetryRecord>, StoreError> {
    let rows: Vec<TelemetryRow> = match after_seq {
        None => with_tx!(tx, c =>
            sqlx::query_as(
                "SELECT seq, sampled_at, received_at, sample, prev_hash, hash FROM telemetry
                 WHERE device_id = $1 ORDER BY seq DESC LIMIT $2",
            )
            .bind(device)
            .bind(limit)
            .fetch_all(c)
            .await
        )?,
        Some(after) => with_tx!(tx, c =>
            sqlx::query_as(
                "SELECT seq, sampled_at, received_at, sample, prev_hash, hash FROM telemetry
                 WHERE device_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(device)
            .bind(after)
            .bind(limit)
            .fetch_all(c)
            .await
        )?,
    };
    Ok(rows
        .into_iter()
        .map(|row| TelemetryRecord {
            seq: row.seq,
            sampled_at: row.sampled_at,
            received_at: row.received_at,
            sample: serde_json::from_str(&row.sample).unwrap_or_default(),
            sample_text: row.sample,
            prev_hash: hex(&row.prev_hash),
            hash: hex(&row.hash),
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct TelemetryRow {
    seq: i64,
    sampled_at: Timestamp,
    received_at: Timestamp,
    sample: String,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

/// A device as [`DeviceStore::seen`] reads it: id, hostname, last seen, revoked.
type SeenRow = (Uuid, String, Timestamp, Option<Timestamp>);

const SEEN: &str = "SELECT id, hostname, last_seen_at, revoked_at FROM devices WHERE id = $1";

/// [`SEEN`] on an inline SQLite connection.
pub(crate) fn seen_inline(
    c: &rusqlite::Connection,
    device_id: Uuid,
) -> rusqlite::Result<Option<SeenRow>> {
    c.prepare_cached(SEEN)?
        .query_row([device_id], |row| {
            let revoked: Option<i64> = row.get(3)?;
            Ok((
                row.get(0)?,
                row.get(1)?,
                Timestamp::from_unix_micros(row.get(2)?),
                revoked.map(Timestamp::from_unix_micros),
            ))
        })
        .optional()
}
