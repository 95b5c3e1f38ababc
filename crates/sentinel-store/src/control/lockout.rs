//! Counting failed logins and locking accounts (the rules are
//! `sentinel_core::lockout`); lifting a lock.

use sentinel_core::audit::{AuditAction, AuditContext, Entity, EntityType};
use sentinel_core::{Timestamp, UserId, lockout};

use super::ControlStore;
use crate::StoreError;
use crate::backend::with_tx;

impl ControlStore {
    /// Counts a failed login of `user`. Returns the time the account is now
    /// locked until if this failure locked it. A failure while the account is
    /// locked is not counted: hammering a locked account does not lengthen it.
    pub async fn record_login_failure(
        &self,
        user: UserId,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        let mut tx = self.db.begin().await?;
        let failures: Option<i32> = with_tx!(&mut tx, c =>
            sqlx::query_scalar(
                "UPDATE users SET failed_logins = failed_logins + 1
                 WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $2)
                 RETURNING failed_logins",
            )
            .bind(user)
            .bind(now)
            .fetch_optional(c)
            .await
        )?;
        let lock = failures
            .and_then(|n| u32::try_from(n).ok())
            .and_then(lockout::lock_after)
            .map(|duration| now.plus(duration));
        if let Some(until) = lock {
            with_tx!(&mut tx, c =>
                sqlx::query("UPDATE users SET locked_until = $2 WHERE id = $1")
                    .bind(user)
                    .bind(until)
                    .execute(c)
                    .await
                    .map(|r| r.rows_affected())
            )?;
        }
        tx.commit().await?;
        Ok(lock)
    }

    /// Forgets the failures of `user` after a successful login.
    pub async fn clear_login_failures(&self, user: UserId) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        with_tx!(&mut tx, c =>
            sqlx::query(
                "UPDATE users SET failed_logins = 0, locked_until = NULL
                 WHERE id = $1 AND (failed_logins > 0 OR locked_until IS NOT NULL)",
            )
            .bind(user)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        )?;
        tx.commit().await?;
        Ok(())
    }

    /// Lifts the lock of `user` and forgets their failures (a platform admin's
    /// action, audited). NotFound for an unknown user.
    pub async fn unlock_user(
        &self,
        user: UserId,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        let was: Option<(i32, Option<Timestamp>)> = with_tx!(&mut tx, c =>
            sqlx::query_as(
                "UPDATE users SET failed_logins = 0, locked_until = NULL
                 WHERE id = $1 AND service_account = FALSE
                 RETURNING failed_logins, locked_until",
            )
            .bind(user)
            .fetch_optional(c)
            .await
        )?;
        if was.is_none() {
            return Err(StoreError::NotFound);
        }
        let event = audit.success(
            now,
            AuditAction::UserUnlocked,
            Entity::new(EntityType::User, user),
            serde_json::json!({}),
        );
        self.audit(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }
}
