//! Device credentials, kept in the control store because they arrive before
//! anyone knows their organization: enrollment tokens (one-time-ish secrets that
//! agents exchange for a device identity) and device tokens (what an enrolled
//! agent presents on every request). Only SHA-256 hashes of the secrets are kept.
//!
//! Authenticating a device token yields a [`DeviceAccess`]: the only key to a
//! device's own data in its tenant store (see [`crate::DeviceStore`]).

use rusqlite::OptionalExtension;
use sentinel_core::audit::{AuditAction, AuditContext, Entity, EntityType};
use sentinel_core::{OrgId, SecretHash, Timestamp, UserId};
use uuid::Uuid;

use super::ControlStore;
use crate::StoreError;
use crate::audit::outbox;
use crate::backend::{Db, with_db, with_tx};

/// An enrollment token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct EnrollmentToken {
    pub id: Uuid,
    pub tags: Vec<String>,
    pub max_uses: i64,
    pub uses: i64,
    pub created_by_name: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Timestamp>,
}

impl EnrollmentToken {
    /// Whether an agent could still enroll with it at `now`.
    pub fn usable(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && now < self.expires_at && self.uses < self.max_uses
    }
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: Uuid,
    tags: String,
    max_uses: i64,
    uses: i64,
    created_by_name: String,
    created_at: Timestamp,
    expires_at: Timestamp,
    revoked_at: Option<Timestamp>,
}

impl TokenRow {
    fn into_token(self) -> EnrollmentToken {
        EnrollmentToken {
            id: self.id,
            tags: serde_json::from_str(&self.tags).unwrap_or_default(),
            max_uses: self.max_uses,
            uses: self.uses,
            created_by_name: self.created_by_name,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
        }
    }
}

/// A token to create.
#[derive(Debug, Clone)]
pub struct NewEnrollmentToken {
    pub secret_hash: SecretHash,
    pub tags: Vec<String>,
    pub max_uses: i64,
    pub expires_at: Timestamp,
    pub created_by: UserId,
}

/// What a redeemed enrollment token grants: a new device in its organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    pub org_id: OrgId,
    pub token_id: Uuid,
    pub tags: Vec<String>,
    pub device_id: Uuid,
}

/// Proof that a request carried a live device token: which device, in which
/// organization. Private fields, crate-private constructor: only
/// [`ControlStore::authenticate_device`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAccess {
    org_id: OrgId,
    device_id: Uuid,
}

/// A device token that authenticated: whose it is, and whether this use, the
/// new token's first after a rotation, retired the device's older tokens.
#[derive(Debug, Clone)]
pub struct DeviceLogin {
    pub access: DeviceAccess,
    pub retired_older: bool,
}

impl DeviceAccess {
    pub(crate) fn new(org_id: OrgId, device_id: Uuid) -> Self {
        Self { org_id, device_id }
    }

    pub fn org_id(&self) -> OrgId {
        self.org_id
    }

    pub fn device_id(&self) -> Uuid {
        self.device_id
    }
}

impl ControlStore {
    /// Creates an enrollment token for `org`, audited in its log (through the outbox).
    pub async fn create_enrollment_token(
        &self,
        org: OrgId,
        new: &NewEnrollmentToken,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<EnrollmentToken, StoreError> {
        let id = Uuid::new_v4();
        let tags =
            serde_json::to_string(&new.tags).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.db.begin().await?;
        with_tx!(&mut tx, c =>
            sqlx::query(
                "INSERT INTO enrollment_tokens (id, org_id, secret_hash, tags, max_uses, created_by, created_by_name, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(id)
            .bind(org)
            .bind(new.secret_hash)
            .bind(&tags)
            .bind(new.max_uses)
            .bind(new.created_by)
            .bind(&audit.actor.name)
            .bind(now)
            .bind(new.expires_at)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        )?;
        let event = audit.success(
            now,
            AuditAction::EnrollmentTokenCreated,
            Entity::new(EntityType::EnrollmentToken, id),
            serde_json::json!({ "tags": new.tags, "max_uses": new.max_uses, "expires_at": new.expires_at }),
        );
        outbox::enqueue(&mut tx, org, &event).await?;
        tx.commit().await?;
        Ok(EnrollmentToken {
            id,
            tags: new.tags.clone(),
            max_uses: new.max_uses,
            uses: 0,
            created_by_name: audit.actor.name.clone(),
            created_at: now,
            expires_at: new.expires_at,
            revoked_at: None,
        })
    }

    /// The organization's enrollment tokens, newest first.
    pub async fn enrollment_tokens(&self, org: OrgId) -> Result<Vec<EnrollmentToken>, StoreError> {
        let rows: Vec<TokenRow> = with_db!(&self.db, p =>
            sqlx::query_as(
                "SELECT id, tags, max_uses, uses, created_by_name, created_at, expires_at, revoked_at
                 FROM enrollment_tokens WHERE org_id = $1 ORDER BY created_at DESC",
            )
            .bind(org)
            .fetch_all(p)
            .await
        )?;
        Ok(rows.into_iter().map(TokenRow::into_token).collect())
    }

    /// Revokes one of `org`'s tokens; `NotFound` for another organization's.
    pub async fn revoke_enrollment_token(
        &self,
        org: OrgId,
        id: Uuid,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        let changed = with_tx!(&mut tx, c =>
            sqlx::query(
                "UPDATE enrollment_tokens SET revoked_at = $1
                 WHERE id = $2 AND org_id = $3 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(id)
            .bind(org)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        let event = audit.success(
            now,
            AuditAction::EnrollmentTokenRevoked,
            Entity::new(EntityType::EnrollmentToken, id),
            serde_json::json!({}),
        );
        outbox::enqueue(&mut tx, org, &event).await?;
        tx.commit().await
    }

    /// Spends one use of the enrollment token with `secret_hash` and records the
    /// new device's first token, in one transaction. `None` when the token is
    /// unknown, revoked, expired or used up — the caller cannot tell which.
    pub async fn redeem_enrollment_token(
        &self,
        secret_hash: SecretHash,
        device_secret_hash: SecretHash,
        now: Timestamp,
    ) -> Result<Option<Enrollment>, StoreError> {
        let mut tx = self.db.begin().await?;
        let row: Option<(Uuid, OrgId, String)> = with_tx!(&mut tx, c =>
            sqlx::query_as(
                "UPDATE enrollment_tokens SET uses = uses + 1
                 WHERE secret_hash = $1 AND revoked_at IS NULL AND expires_at > $2 AND uses < max_uses
                 RETURNING id, org_id, tags",
            )
            .bind(secret_hash)
            .bind(now)
            .fetch_optional(c)
            .await
        )?;
        let Some((token_id, org_id, tags)) = row else {
            return Ok(None);
        };
        let device_id = Uuid::new_v4();
        insert_credential(&mut tx, device_secret_hash, org_id, device_id, 1, now).await?;
        tx.commit().await?;
        Ok(Some(Enrollment {
            org_id,
            token_id,
            tags: serde_json::from_str(&tags).unwrap_or_default(),
            device_id,
        }))
    }

    /// Undoes a redemption whose device could not be created: the device's
    /// credential goes and the token's use is given back.
    pub async fn undo_enrollment(&self, enrollment: &Enrollment) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        with_tx!(&mut tx, c =>
            sqlx::query("DELETE FROM device_credentials WHERE device_id = $1")
                .bind(enrollment.device_id)
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        )?;
        with_tx!(&mut tx, c =>
            sqlx::query("UPDATE enrollment_tokens SET uses = uses - 1 WHERE id = $1 AND uses > 0")
                .bind(enrollment.token_id)
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        )?;
        tx.commit().await
    }

    /// The device whose token has `secret_hash`. A token newer than the device's
    /// others (a rotation) retires them at its first use.
    pub async fn authenticate_device(
        &self,
        secret_hash: SecretHash,
    ) -> Result<Option<DeviceLogin>, StoreError> {
        // Every agent request comes here: on SQLite, read on this thread.
        let inline = match &self.db {
            Db::Sqlite(pools) => pools.inline().read(|c| credential_inline(c, &secret_hash)),
            Db::Postgres(_) => None,
        };
        let row: Option<Credential> = match inline {
            Some(row) => row,
            None => with_db!(&self.db, p =>
                sqlx::query_as(CREDENTIAL).bind(secret_hash).fetch_optional(p).await
            )?,
        };
        let Some((org_id, device_id, generation, oldest)) = row else {
            return Ok(None);
        };
        let access = DeviceAccess::new(org_id, device_id);
        // Only the first request with a new token writes; the rest are reads.
        if oldest == generation {
            return Ok(Some(DeviceLogin {
                access,
                retired_older: false,
            }));
        }
        let retired = with_db!(write &self.db, p =>
            sqlx::query("DELETE FROM device_credentials WHERE device_id = $1 AND generation < $2")
                .bind(device_id)
                .bind(generation)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        )?;
        Ok(Some(DeviceLogin {
            access,
            retired_older: retired > 0,
        }))
    }

    /// Issues `device` a new token (the next generation); the current one keeps
    /// working until the new one is first used. Older pending tokens are dropped.
    pub async fn rotate_device_token(
        &self,
        device: &DeviceAccess,
        new_secret_hash: SecretHash,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        let newest: Option<i64> = with_tx!(&mut tx, c =>
            sqlx::query_scalar("SELECT MAX(generation) FROM device_credentials WHERE device_id = $1")
                .bind(device.device_id)
                .fetch_one(c)
                .await
        )?;
        // A device whose credentials were revoked meanwhile gets nothing.
        let Some(newest) = newest else {
            return Err(StoreError::NotFound);
        };
        insert_credential(
            &mut tx,
            new_secret_hash,
            device.org_id,
            device.device_id,
            newest + 1,
            now,
        )
        .await?;
        tx.commit().await
    }

    /// Deletes every token of `device` in `org`: its next request is refused.
    pub async fn revoke_device_credentials(
        &self,
        org: OrgId,
        device: Uuid,
    ) -> Result<u64, StoreError> {
        with_db!(write &self.db, p =>
            sqlx::query("DELETE FROM device_credentials WHERE org_id = $1 AND device_id = $2")
                .bind(org)
                .bind(device)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        )
        .map_err(Into::into)
    }
}

async fn insert_credential(
    tx: &mut crate::backend::Tx,
    secret_hash: SecretHash,
    org: OrgId,
    device: Uuid,
    generation: i64,
    now: Timestamp,
) -> Result<(), StoreError> {
    with_tx!(tx, c =>
        sqlx::query(
            "INSERT INTO device_credentials (secret_hash, org_id, device_id, generation, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(secret_hash)
        .bind(org)
        .bind(device)
        .bind(generation)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    )?;
    Ok(())
}

/// A device credential: organization, device, its generation and the oldest
/// generation the device still holds.
type Credential = (OrgId, Uuid, i64, i64);

/// The credential with a token's hash.
const CREDENTIAL: &str = "SELECT c.org_id, c.device_id, c.generation,
        (SELECT MIN(o.generation) FROM device_credentials o WHERE o.device_id = c.device_id)
     FROM device_credentials c WHERE c.secret_hash = $1";

/// [`CREDENTIAL`] on an inline SQLite connection.
pub(crate) fn credential_inline(
    c: &rusqlite::Connection,
    secret_hash: &SecretHash,
) -> rusqlite::Result<Option<Credential>> {
    c.prepare_cached(CREDENTIAL)?
        .query_row([&secret_hash.as_bytes()[..]], |row| {
            Ok((
                OrgId::from_uuid(row.get(0)?),
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
            ))
        })
        .optional()
}
