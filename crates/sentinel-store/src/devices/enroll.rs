//! Enrollment: an enrollment token is spent and a new device appears in its
//! organization, with its first device token.

use sentinel_core::audit::{Actor, AuditAction, AuditContext, Entity, EntityType, Origin};
use sentinel_core::{SecretHash, Timestamp};
use sentinel_protocol::facts::HostFacts;

use super::DeviceStore;
use crate::backend::with_tx;
use crate::{DeviceAccess, StoreError, Stores};

/// A device that just enrolled: its data (and so its id and organization).
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub store: DeviceStore,
}

impl Stores {
    /// Spends one use of the enrollment token with `token_hash` and creates a
    /// device with `facts` in its organization, holding the token with
    /// `device_token_hash`; audited as the device, from `origin`. `None` when
    /// the token is unknown, revoked, expired or used up — the caller cannot
    /// tell which. Every enrollment makes a new device: a machine enrolled
    /// again (or a cloned one) is another device, never a silent overwrite.
    pub async fn enroll(
        &self,
        token_hash: SecretHash,
        device_token_hash: SecretHash,
        facts: &HostFacts,
        agent_version: &str,
        origin: &Origin,
        now: Timestamp,
    ) -> Result<Option<Enrolled>, StoreError> {
        let Some(enrollment) = self
            .control()
            .redeem_enrollment_token(token_hash, device_token_hash, now)
            .await?
        else {
            return Ok(None);
        };
        let created = self
            .create_device(&enrollment, facts, agent_version, origin, now)
            .await;
        if let Err(e) = created {
            if let Err(undo) = self.control().undo_enrollment(&enrollment).await {
                tracing::error!(error = %undo, "could not undo a failed enrollment");
            }
            return Err(e);
        }
        let access = DeviceAccess::new(enrollment.org_id, enrollment.device_id);
        Ok(Some(Enrolled {
            store: self.device_store(&access).await?,
        }))
    }

    async fn create_device(
        &self,
        enrollment: &crate::control::Enrollment,
        facts: &HostFacts,
        agent_version: &str,
        origin: &Origin,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let store = self.tenants().open_existing(enrollment.org_id).await?;
        let facts_json =
            serde_json::to_string(facts).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let tags = serde_json::to_string(&enrollment.tags)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let device = enrollment.device_id;
        let mut tx = store.begin().await?;
        with_tx!(&mut tx, c =>
            sqlx::query(
                "INSERT INTO devices (id, hostname, os_id, os_pretty_name, kernel, architecture, machine_id,
                     agent_version, facts, tags, enrolled_at, enrollment_token_id, last_seen_at, telemetry_head)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(device)
            .bind(&facts.hostname)
            .bind(&facts.os_id)
            .bind(&facts.os_pretty_name)
            .bind(&facts.kernel)
            .bind(&facts.architecture)
            .bind(facts.machine_id.as_deref())
            .bind(agent_version)
            .bind(&facts_json)
            .bind(&tags)
            .bind(now)
            .bind(enrollment.token_id)
            .bind(now)
            .bind(sentinel_core::custody::genesis(device).as_slice())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        )?;
        let context = AuditContext {
            actor: Actor::device(device, &facts.hostname),
            origin: origin.clone(),
        };
        let event = context.success(
            now,
            AuditAction::DeviceEnrolled,
            Entity::new(EntityType::Device, device),
            serde_json::json!({
                "hostname": facts.hostname,
                "os": facts.os_pretty_name,
                "machine_id": facts.machine_id,
                "agent_version": agent_version,
                "enrollment_token": enrollment.token_id,
                "tags": enrollment.tags,
            }),
        );
        store.audit(&mut tx, &[event]).await?;
        tx.commit().await
    }
}
