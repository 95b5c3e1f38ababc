//! External MQTT brokers (IoT network servers) an organization's uplinks come
//! from, as members manage them. The password is stored sealed and never read
//! back through this API: [`Integration`] only says whether there is one.

use sentinel_core::Timestamp;
use sentinel_core::audit::{AuditAction, AuditContext, Entity, EntityType};
use serde_json::json;
use uuid::Uuid;

use crate::StoreError;
use crate::backend::{Tx, with_tx};
use crate::tenant::TenantStore;

/// A broker connection as members see it (never its password).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct Integration {
    pub id: Uuid,
    pub name: String,
    pub host: String,
    pub port: i32,
    pub tls: bool,
    /// PEM certificates trusted for the broker instead of the public roots.
    pub ca_pem: Option<String>,
    pub username: Option<String>,
    /// Whether a password is stored (it is never shown).
    pub has_password: bool,
    /// MQTT topic filter subscribed to, e.g. `application/+/device/+/event/up`.
    pub topic: String,
    /// Payload format of the events; `chirpstack_v4` is the only one.
    pub format: String,
    pub enabled: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// A broker connection's settings: everything but its id and password.
#[derive(Debug, Clone)]
pub struct IntegrationSettings {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub ca_pem: Option<String>,
    pub username: Option<String>,
    pub topic: String,
    pub format: String,
    pub enabled: bool,
}

/// A new broker connection; the password already sealed for
/// [`crate::SealedSite::BrokerPassword`] of the id given.
#[derive(Debug, Clone)]
pub struct NewIntegration {
    pub id: Uuid,
    pub settings: IntegrationSettings,
    pub sealed_password: Option<Vec<u8>>,
}

/// What happens to a stored password on update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordChange {
    Keep,
    Clear,
    /// Sealed for this integration's site.
    Set(Vec<u8>),
}

/// A replacement of everything but the id and the password, plus what to do
/// with the password.
#[derive(Debug, Clone)]
pub struct IntegrationChange {
    pub settings: IntegrationSettings,
    pub password: PasswordChange,
}

const COLUMNS: &str = "id, name, host, port, tls, ca_pem, username, \
     sealed_password IS NOT NULL AS has_password, topic, format, enabled, created_at, updated_at";

pub(crate) async fn integration_in(
    tx: &mut Tx,
    id: Uuid,
) -> Result<Option<Integration>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM integrations WHERE id = $1");
    Ok(with_tx!(tx, c =>
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(c).await
    )?)
}

/// What an audit entry says of a connection: never the password, only whether
/// there is one.
fn described(i: &Integration) -> serde_json::Value {
    json!({
        "name": i.name, "host": i.host, "port": i.port, "tls": i.tls,
        "username": i.username, "has_password": i.has_password, "topic": i.topic,
        "format": i.format, "enabled": i.enabled,
    })
}

impl TenantStore {
    /// The organization's broker connections, by name.
    pub async fn integrations(&self) -> Result<Vec<Integration>, StoreError> {
        let mut tx = self.read().await?;
        let sql = format!("SELECT {COLUMNS} FROM integrations ORDER BY name, id");
        let rows = with_tx!(&mut tx, c =>
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(c).await
        )?;
        tx.commit().await?;
        Ok(rows)
    }

    /// One broker connection; `NotFound` for any other organization's id.
    pub async fn integration(&self, id: Uuid) -> Result<Integration, StoreError> {
        let mut tx = self.read().await?;
        let row = integration_in(&mut tx, id).await?;
        tx.commit().await?;
        row.ok_or(StoreError::NotFound)
    }

    /// Adds a broker connection (audited, without its password).
    pub async fn create_integration(
        &self,
        new: &NewIntegration,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<Integration, StoreError> {
        let mut tx = self.begin().await?;
        with_tx!(&mut tx, c =>
            sqlx::query(
                "INSERT INTO integrations (id, name, host, port, tls, ca_pem, username, sealed_password,
                 topic, format, enabled, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
            )
            .bind(new.id)
            .bind(&new.settings.name)
            .bind(&new.settings.host)
            .bind(i32::from(new.settings.port))
            .bind(new.settings.tls)
            .bind(&new.settings.ca_pem)
            .bind(&new.settings.username)
            .bind(&new.sealed_password)
            .bind(&new.settings.topic)
            .bind(&new.settings.format)
            .bind(new.settings.enabled)
            .bind(now)
            .execute(c)
            .await.map(|r| r.rows_affected())
        )?;
        let created = integration_in(&mut tx, new.id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let event = audit.success(
            now,
            AuditAction::IntegrationCreated,
            Entity::new(EntityType::Integration, new.id),
            described(&created),
        );
        self.audit(&mut tx, &[event]).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Replaces a broker connection's settings (audited, without its password).
    pub async fn update_integration(
        &self,
        id: Uuid,
        change: &IntegrationChange,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<Integration, StoreError> {
        let mut tx = self.begin().await?;
        let old = integration_in(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        with_tx!(&mut tx, c =>
            sqlx::query(
                "UPDATE integrations SET name = $1, host = $2, port = $3, tls = $4, ca_pem = $5,
                 username = $6, topic = $7, format = $8, enabled = $9, updated_at = $10 WHERE id = $11",
            )
            .bind(&change.settings.name)
            .bind(&change.settings.host)
            .bind(i32::from(change.settings.port))
            .bind(change.settings.tls)
            .bind(&change.settings.ca_pem)
            .bind(&change.settings.username)
            .bind(&change.settings.topic)
            .bind(&change.settings.format)
            .bind(change.settings.enabled)
            .bind(now)
            .bind(id)
            .execute(c)
            .await.map(|r| r.rows_affected())
        )?;
        let sealed = match &change.password {
            PasswordChange::Keep => None,
            PasswordChange::Clear => Some(None),
            PasswordChange::Set(sealed) => Some(Some(sealed.clone())),
        };
        if let Some(sealed) = sealed {
            with_tx!(&mut tx, c =>
                sqlx::query("UPDATE integrations SET sealed_password = $1 WHERE id = $2")
                    .bind(sealed)
                    .bind(id)
                    .execute(c)
                    .await.map(|r| r.rows_affected())
            )?;
        }
        let new = integration_in(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let event = audit.success(
            now,
            AuditAction::IntegrationUpdated,
            Entity::new(EntityType::Integration, id),
            json!({
                "old": described(&old),
                "new": described(&new),
                "password_changed": change.password != PasswordChange::Keep,
            }),
        );
        self.audit(&mut tx, &[event]).await?;
        tx.commit().await?;
        Ok(new)
    }

    /// Removes a broker connection (audited); its stored events stay.
    pub async fn delete_integration(
        &self,
        id: Uuid,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let old = integration_in(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        with_tx!(&mut tx, c =>
            sqlx::query("DELETE FROM integrations WHERE id = $1").bind(id).execute(c).await.map(|r| r.rows_affected())
        )?;
        let event = audit.success(
            now,
            AuditAction::IntegrationDeleted,
            Entity::new(EntityType::Integration, id),
            described(&old),
        );
        self.audit(&mut tx, &[event]).await?;
        tx.commit().await?;
        Ok(())
    }
}
