//! Devices in an organization's tenant store: the enrolled machines, what they
//! report (facts, a hash-chained telemetry history, software inventory) and the
//! commands queued for them.
//!
//! Members reach this through [`TenantStore`] (a [`crate::TenantAccess`] was
//! granted); a device reaches only its own data, through [`DeviceStore`] (its
//! token was authenticated: [`crate::DeviceAccess`]). Enrollment, which has
//! neither, is [`crate::Stores::enroll`].

mod commands;
mod enroll;
mod findings;
mod reports;
#[cfg(test)]
pub(crate) use reports::seen_inline;
mod telemetry;

use sentinel_core::Timestamp;
use sentinel_core::audit::{AuditAction, AuditContext, Entity, EntityType};
use sentinel_protocol::inventory::{Package, PackageManager};
use uuid::Uuid;

use crate::StoreError;
use crate::audit::like_pattern;
use crate::backend::with_tx;
use crate::tenant::TenantStore;

pub use commands::{CommandRecord, NewCommand};
pub use enroll::Enrolled;
pub use findings::{
    AdvisoryGroup, DeviceToMatch, Finding, FindingChanges, FindingCursor, FindingFilter,
    FindingTotals, FindingsWriter, MatchedDevice, NewFinding, PackageGroup,
};
pub use reports::{DeviceIdentity, DeviceStore, TelemetryRecord};
pub(crate) use telemetry::TelemetryWriter;

/// A device as members see it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Device {
    pub id: Uuid,
    pub hostname: String,
    pub os_id: String,
    pub os_pretty_name: String,
    pub kernel: String,
    pub architecture: String,
    pub machine_id: Option<String>,
    pub agent_version: String,
    pub tags: Vec<String>,
    #[schema(value_type = String, format = DateTime)]
    pub enrolled_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub last_seen_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Timestamp>,
    pub inventory_digest: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub inventory_updated_at: Option<Timestamp>,
    /// Telemetry samples received.
    pub telemetry_count: i64,
    /// Heard from within three telemetry intervals (decided by the caller,
    /// which knows the interval and the time; false as read).
    pub online: bool,
    /// Everything the agent reported about the host.
    #[schema(value_type = Object)]
    pub facts: serde_json::Value,
}

pub(crate) const DEVICE_COLUMNS: &str = "id, hostname, os_id, os_pretty_name, kernel, architecture, \
     machine_id, agent_version, tags, enrolled_at, last_seen_at, revoked_at, inventory_digest, \
     inventory_updated_at, telemetry_seq, facts";

#[derive(sqlx::FromRow)]
pub(crate) struct DeviceRow {
    id: Uuid,
    hostname: String,
    os_id: String,
    os_pretty_name: String,
    kernel: String,
    architecture: String,
    machine_id: Option<String>,
    agent_version: String,
    tags: String,
    enrolled_at: Timestamp,
    last_seen_at: Timestamp,
    revoked_at: Option<Timestamp>,
    inventory_digest: Option<String>,
    inventory_updated_at: Option<Timestamp>,
    telemetry_seq: i64,
    facts: String,
}

impl DeviceRow {
    pub(crate) fn into_device(self) -> Device {
        Device {
            id: self.id,
            hostname: self.hostname,
            os_id: self.os_id,
            os_pretty_name: self.os_pretty_name,
            kernel: self.kernel,
            architecture: self.architecture,
            machine_id: self.machine_id,
            agent_version: self.agent_version,
            tags: serde_json::from_str(&self.tags).unwrap_or_default(),
            enrolled_at: self.enrolled_at,
            last_seen_at: self.last_seen_at,
            revoked_at: self.revoked_at,
            inventory_digest: self.inventory_digest,
            inventory_updated_at: self.inventory_updated_at,
            telemetry_count: self.telemetry_seq,
            online: false,
            facts: serde_json::from_str(&self.facts).unwrap_or_default(),
        }
    }
}

/// An organization's keys, sealed at rest; reachable by its members and by
/// its devices, and nothing else of the organization through it.
#[derive(Debug, Clone)]
pub struct OrgKeys(TenantStore);

#[derive(sqlx::FromRow)]
struct PackageRow {
    manager: String,
    name: String,
    version: String,
    arch: Option<String>,
    source_name: Option<String>,
    source_version: Option<String>,
}

/// Which devices to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFilter {
    /// Text in the hostname, OS or kernel (case-insensitive).
    pub text: Option<String>,
    /// Devices carrying this tag.
    pub tag: Option<String>,
    /// Include revoked devices.
    pub include_revoked: bool,
}

impl TenantStore {
    /// The organization's devices, by hostname.
    pub async fn devices(&self, filter: &DeviceFilter) -> Result<Vec<Device>, StoreError> {
        // Tags are a JSON array of strings: the quoted tag is one element.
        let tag_pattern = filter
            .tag
            .as_deref()
            .map(|tag| serde_json::to_string(tag).map(|quoted| like_pattern(&quoted)))
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.read().await?;
        let rows: Vec<DeviceRow> = with_tx!(&mut tx, c => {
            let mut q = sqlx::QueryBuilder::new(format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE 1 = 1"));
            if !filter.include_revoked {
                q.push(" AND revoked_at IS NULL");
            }
            if let Some(text) = filter.text.as_deref().filter(|t| !t.is_empty()) {
                let pattern = like_pattern(text);
                q.push(" AND (LOWER(hostname) LIKE ").push_bind(pattern.clone()).push(" ESCAPE '\\'");
                q.push(" OR LOWER(os_pretty_name) LIKE ").push_bind(pattern.clone()).push(" ESCAPE '\\'");
                q.push(" OR LOWER(kernel) LIKE ").push_bind(pattern).push(" ESCAPE '\\')");
            }
            if let Some(pattern) = tag_pattern {
                q.push(" AND tags LIKE ").push_bind(pattern).push(" ESCAPE '\\'");
            }
            q.push(" ORDER BY hostname, id LIMIT 10000");
            q.build_query_as().fetch_all(c).await
        })?;
        tx.commit().await?;
        let mut devices: Vec<Device> = rows.into_iter().map(DeviceRow::into_device).collect();
        // LIKE narrows in the database (before the limit); equality decides.
        if let Some(tag) = &filter.tag {
            devices.retain(|d| d.tags.iter().any(|t| t == tag));
        }
        Ok(devices)
    }

    /// One device of this organization; `NotFound` for any other id.
    pub async fn device(&self, id: Uuid) -> Result<Device, StoreError> {
        let mut tx = self.read().await?;
        let row = device_row(&mut tx, id).await?;
        tx.commit().await?;
        row.map(DeviceRow::into_device).ok_or(StoreError::NotFound)
    }

    /// A device's installed packages, by name, optionally only those whose name
    /// contains `text`.
    pub async fn inventory(
        &self,
        device: Uuid,
        text: Option<&str>,
    ) -> Result<Vec<Package>, StoreError> {
        let mut tx = self.read().await?;
        if device_row(&mut tx, device).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        let pattern = like_pattern(text.unwrap_or(""));
        let rows: Vec<PackageRow> = with_tx!(&mut tx, c =>
            sqlx::query_as(
                "SELECT manager, name, version, arch, source_name, source_version FROM inventory_packages
                 WHERE device_id = $1 AND LOWER(name) LIKE $2 ESCAPE '\\' ORDER BY name, version",
            )
            .bind(device)
            .bind(pattern)
            .fetch_all(c)
            .await
        )?;
        tx.commit().await?;
        rows.into_iter()
            .map(|row| {
                Ok(Package {
                    manager: PackageManager::parse(&row.manager).ok_or_else(|| {
                        StoreError::Corrupt(format!("unknown package manager {:?}", row.manager))
                    })?,
                    name: row.name,
                    version: row.version,
                    arch: row.arch,
                    source_name: row.source_name,
                    source_version: row.source_version,
                })
            })
            .collect()
    }

    /// A device's newest telemetry, newest first.
    pub async fn telemetry(
        &self,
        device: Uuid,
        limit: i64,
    ) -> Result<Vec<TelemetryRecord>, StoreError> {
        let mut tx = self.read().await?;
        if device_row(&mut tx, device).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        let rows = reports::telemetry_rows(&mut tx, device, None, limit).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Marks a device revoked (audited); the caller also deletes its
    /// credentials. `NotFound` for another organization's device or one
    /// already revoked.
    pub async fn revoke_device(
        &self,
        id: Uuid,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<Device, StoreError> {
        let mut tx = self.begin().await?;
        let changed = with_tx!(&mut tx, c =>
            sqlx::query("UPDATE devices SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        // Whatever waited for it will never run.
        with_tx!(&mut tx, c =>
            sqlx::query(
                "UPDATE commands SET status = 'cancelled', finished_at = $1, reason = 'device revoked'
                 WHERE device_id = $2 AND status IN ('queued', 'delivered')",
            )
            .bind(now)
            .bind(id)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        )?;
        let device = device_row(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?
            .into_device();
        let event = audit.success(
            now,
            AuditAction::DeviceRevoked,
            Entity::new(EntityType::Device, id),
            serde_json::json!({ "hostname": device.hostname }),
        );
        self.audit(&mut tx, &[event]).await?;
        tx.commit().await?;
        Ok(device)
    }
}

pub(crate) async fn device_row(
    tx: &mut crate::backend::Tx,
    id: Uuid,
) -> Result<Option<DeviceRow>, StoreError> {
    let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1");
    let row = with_tx!(tx, c =>
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(c).await
    )?;
    Ok(row)
}
