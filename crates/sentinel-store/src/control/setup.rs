//! The one-time token that lets the first platform admin set up a fresh server.
//! At most one unused token exists; it is useful only while there are no users.

use sentinel_core::audit::{AuditAction, AuditContext, Entity, EntityType};
use sentinel_core::{SecretHash, Timestamp};

use super::ControlStore;
use super::users::{NewUser, User, insert_user};
use crate::StoreError;
use crate::backend::{with_db, with_tx};

/// What became of a setup attempt.
#[derive(Debug)]
pub enum SetupOutcome {
    /// The first platform admin exists.
    Completed(User),
    /// The token is unknown, used or expired.
    InvalidToken,
    /// Someone already completed setup.
    AlreadyDone,
}

impl ControlStore {
    /// Replaces any unused setup token with a new one.
    pub async fn replace_setup_token(
        &self,
        hash: &SecretHash,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        with_tx!(&mut tx, c =>
            sqlx::query("DELETE FROM setup_tokens WHERE used_at IS NULL").execute(c).await.map(|r| r.rows_affected())
        )?;
        with_tx!(&mut tx, c =>
            sqlx::query("INSERT INTO setup_tokens (id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                .bind(uuid::Uuid::new_v4())
                .bind(*hash)
                .bind(now)
                .bind(expires_at)
                .execute(c)
                .await.map(|r| r.rows_affected())
        )?;
        tx.commit().await
    }

    /// True while `hash` names an unused, unexpired token and no user exists.
    pub async fn setup_token_usable(
        &self,
        hash: &SecretHash,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let usable: Option<i32> = with_db!(&self.db, p =>
            sqlx::query_scalar(
                "SELECT 1 FROM setup_tokens
                 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
                   AND NOT EXISTS (SELECT 1 FROM users)",
            )
            .bind(*hash)
            .bind(now)
            .fetch_optional(p)
            .await
        )?;
        Ok(usable.is_some())
    }

    /// Spends the token and creates the first platform admin, atomically: two
    /// concurrent attempts cannot both succeed.
    pub async fn complete_setup(
        &self,
        hash: &SecretHash,
        admin: &NewUser,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<SetupOutcome, StoreError> {
        let mut tx = self.db.begin().await?;
        let spent = with_tx!(&mut tx, c =>
            sqlx::query(
                "UPDATE setup_tokens SET used_at = $1
                 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1",
            )
            .bind(now)
            .bind(*hash)
            .execute(c)
            .await.map(|r| r.rows_affected())
        )?;
        if spent != 1 {
            return Ok(SetupOutcome::InvalidToken);
        }
        let users: i64 = with_tx!(&mut tx, c =>
            sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(c).await
        )?;
        if users > 0 {
            return Ok(SetupOutcome::AlreadyDone);
        }
        let admin = NewUser {
            platform_admin: true,
            ..admin.clone()
        };
        let user = insert_user(&mut tx, &admin, now).await?;
        let event = audit.success(
            now,
            AuditAction::SetupCompleted,
            Entity::new(EntityType::User, user.id),
            serde_json::json!({ "email": user.email.as_str(), "name": user.name.as_str() }),
        );
        self.audit(&mut tx, event).await?;
        tx.commit().await?;
        Ok(SetupOutcome::Completed(user))
    }
}
