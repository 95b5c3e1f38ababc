//! Device profiles (a name and an optional payload decoder) and the LoRaWAN
//! identity of devices (DevEUI and profile), as members manage them; every
//! change is audited in its transaction, decoders by their code hashes.

use sentinel_core::Timestamp;
use sentinel_core::audit::{AuditAction, AuditContext, Entity, EntityType};
use serde_json::json;
use uuid::Uuid;

use super::code_hash;
use crate::backend::{Tx, with_tx};
use crate::devices::device_row;
use crate::tenant::TenantStore;
use crate::{StoreError, conflict_on_unique};

/// A device profile: what kind of device it is and how its uplinks decode.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct DeviceProfile {
    pub id: Uuid,
    pub name: String,
    /// JavaScript defining `decodeUplink(input)`; none stores uplinks raw.
    pub decoder: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// A device's LoRaWAN identity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct LorawanDevice {
    pub device_id: Uuid,
    /// 16 lower-case hex digits.
    pub dev_eui: String,
    pub profile_id: Option<Uuid>,
}

const PROFILE_COLUMNS: &str = "id, name, decoder, created_at, updated_at";

async fn profile_in(tx: &mut Tx, id: Uuid) -> Result<Option<DeviceProfile>, StoreError> {
    let sql = format!("SELECT {PROFILE_COLUMNS} FROM device_profiles WHERE id = $1");
    Ok(with_tx!(tx, c =>
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(c).await
    )?)
}

fn hash_of(decoder: Option<&str>) -> Option<String> {
    decoder.map(code_hash)
}

impl TenantStore {
    /// The organization's device profiles, by name.
    pub async fn device_profiles(&self) -> Result<Vec<DeviceProfile>, StoreError> {
        let mut tx = self.read().await?;
        let sql = format!("SELECT {PROFILE_COLUMNS} FROM device_profiles ORDER BY name, id");
        let rows = with_tx!(&mut tx, c =>
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(c).await
        )?;
        tx.commit().await?;
        Ok(rows)
    }

    /// One device profile; `NotFound` for any other organization's id.
    pub async fn device_profile(&self, id: Uuid) -> Result<DeviceProfile, StoreError> {
        let mut tx = self.read().await?;
        let profile = profile_in(&mut tx, id).await?;
        tx.commit().await?;
        profile.ok_or(StoreError::NotFound)
    }

    /// Creates a profile (audited with the decoder's code hash).
    pub async fn create_device_profile(
        &self,
        name: &str,
        decoder: Option<&str>,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<DeviceProfile, StoreError> {
        let id = Uuid::now_v7();
        let mut tx = self.begin().await?;
        with_tx!(&mut tx, c =>
            sqlx::query(
                "INSERT INTO device_profiles (id, name, decoder, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(id)
            .bind(name)
            .bind(decoder)
            .bind(now)
            .execute(c)
            .await.map(|r| r.rows_affected())
        )
        .map_err(conflict_on_unique("a device profile with this name exists"))?;
        let event = audit.success(
            now,
            AuditAction::DeviceProfileCreated,
            Entity::new(EntityType::DeviceProfile, id),
            json!({ "name": name, "decoder_hash": hash_of(decoder) }),
        );
        self.audit(&mut tx, &[event]).await?;
        let profile = profile_in(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(profile)
    }

    /// Replaces a profile's name and decoder (audited with the old and new
    /// code hashes).
    pub async fn update_device_profile(
        &self,
        id: Uuid,
        name: &str,
        decoder: Option<&str>,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<DeviceProfile, StoreError> {
        let mut tx = self.begin().await?;
        let old = profile_in(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
        with_tx!(&mut tx, c =>
            sqlx::query("UPDATE device_profiles SET name = $1, decoder = $2, updated_at = $3 WHERE id = $4")
                .bind(name)
                .bind(decoder)
                .bind(now)
                .bind(id)
                .execute(c)
                .await.map(|r| r.rows_affected())
        )
        .map_err(conflict_on_unique("a device profile with this name exists"))?;
        let event = audit.success(
            now,
            AuditAction::DeviceProfileUpdated,
            Entity::new(EntityType::DeviceProfile, id),
            json!({
                "old_name": old.name,
                "name": name,
                "old_decoder_hash": hash_of(old.decoder.as_deref()),
                "decoder_hash": hash_of(decoder),
            }),
        );
        self.audit(&mut tx, &[event]).await?;
        let profile = profile_in(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(profile)
    }

    /// Deletes a profile no device uses (`Conflict` while one does).
    pub async fn delete_device_profile(
        &self,
        id: Uuid,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let old = profile_in(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
        let users: i64 = with_tx!(&mut tx, c =>
            sqlx::query_scalar("SELECT COUNT(*) FROM lorawan_devices WHERE profile_id = $1")
                .bind(id)
                .fetch_one(c)
                .await
        )?;
        if users > 0 {
            return Err(StoreError::Conflict(
                "the device profile is in use by devices",
            ));
        }
        with_tx!(&mut tx, c =>
            sqlx::query("DELETE FROM device_profiles WHERE id = $1").bind(id).execute(c).await.map(|r| r.rows_affected())
        )?;
        let event = audit.success(
            now,
            AuditAction::DeviceProfileDeleted,
            Entity::new(EntityType::DeviceProfile, id),
            json!({ "name": old.name, "decoder_hash": hash_of(old.decoder.as_deref()) }),
        );
        self.audit(&mut tx, &[event]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A device's LoRaWAN identity, if it has one; `NotFound` for an unknown device.
    pub async fn lorawan_device(&self, device: Uuid) -> Result<Option<LorawanDevice>, StoreError> {
        let mut tx = self.read().await?;
        if device_row(&mut tx, device).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        let row = with_tx!(&mut tx, c =>
            sqlx::query_as("SELECT device_id, dev_eui, profile_id FROM lorawan_devices WHERE device_id = $1")
                .bind(device)
                .fetch_optional(c)
                .await
        )?;
        tx.commit().await?;
        Ok(row)
    }

    /// Sets (or, with `None`, clears) a device's DevEUI and profile (audited).
    /// `NotFound` for an unknown device or profile; `Conflict` for a DevEUI
    /// another device of the organization has.
    pub async fn set_lorawan_device(
        &self,
        device: Uuid,
        identity: Option<(&str, Option<Uuid>)>,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<Option<LorawanDevice>, StoreError> {
        let mut tx = self.begin().await?;
        if device_row(&mut tx, device).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        with_tx!(&mut tx, c =>
            sqlx::query("DELETE FROM lorawan_devices WHERE device_id = $1").bind(device).execute(c).await.map(|r| r.rows_affected())
        )?;
        if let Some((dev_eui, profile)) = identity {
            if let Some(profile) = profile
                && profile_in(&mut tx, profile).await?.is_none()
            {
                return Err(StoreError::NotFound);
            }
            with_tx!(&mut tx, c =>
                sqlx::query("INSERT INTO lorawan_devices (device_id, dev_eui, profile_id) VALUES ($1, $2, $3)")
                    .bind(device)
                    .bind(dev_eui)
                    .bind(profile)
                    .execute(c)
                    .await.map(|r| r.rows_affected())
            )
            .map_err(conflict_on_unique("another device has this DevEUI"))?;
        }
        let event = audit.success(
            now,
            AuditAction::DeviceLorawanSet,
            Entity::new(EntityType::Device, device),
            json!({
                "dev_eui": identity.map(|(eui, _)| eui),
                "profile_id": identity.and_then(|(_, p)| p).map(|p| p.to_string()),
            }),
        );
        self.audit(&mut tx, &[event]).await?;
        tx.commit().await?;
        Ok(identity.map(|(dev_eui, profile_id)| LorawanDevice {
            device_id: device,
            dev_eui: dev_eui.to_owned(),
            profile_id,
        }))
    }
}
