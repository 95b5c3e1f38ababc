//! Server-side login sessions. The browser holds a 256-bit secret; the store keeps
//! its SHA-256, a public id, and the times that decide expiry.

use sentinel_core::audit::AuditEvent;
use sentinel_core::{DisplayName, Email, SecretHash, SessionId, Timestamp, UserId};
use uuid::Uuid;

use super::ControlStore;
use super::users::User;
use crate::StoreError;
use crate::backend::{Tx, with_db, with_tx};

/// A new session to record.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: SessionId,
    pub secret_hash: SecretHash,
    pub user_id: UserId,
    pub created_at: Timestamp,
    /// The absolute end of the session, whatever its activity.
    pub expires_at: Timestamp,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// The user's `password_changed_at` when their password was checked: the
    /// session is only recorded if the password has not changed since, so a login
    /// racing a password change cannot outlive it.
    pub password_checked_at: Timestamp,
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRecord {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(sqlx::FromRow)]
struct SessionUserRow {
    #[sqlx(flatten)]
    session: SessionRecord,
    email: String,
    display_name: String,
    platform_admin: bool,
    user_created_at: Timestamp,
}

impl SessionRecord {
    /// A session is live until its absolute expiry and while it has been used
    /// within `idle_timeout`.
    pub fn is_live(&self, now: Timestamp, idle_timeout: std::time::Duration) -> bool {
        now < self.expires_at && now < self.last_seen_at.plus(idle_timeout)
    }
}

impl ControlStore {
    /// Records a new session, and `login` (its audit event) in the platform log in
    /// the same transaction. `NotFound` if the user is gone or their password
    /// changed after it was checked.
    pub async fn create_session(
        &self,
        new: &NewSession,
        login: Option<AuditEvent>,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        let inserted = with_tx!(&mut tx, p =>
            sqlx::query(
                "INSERT INTO sessions (id, secret_hash, user_id, created_at, last_seen_at, expires_at, client_ip, user_agent)
                 SELECT $1, $2, $3, $4, $4, $5, $6, $7
                 WHERE EXISTS (SELECT 1 FROM users WHERE id = $3 AND password_changed_at = $8)",
            )
            .bind(new.id)
            .bind(new.secret_hash)
            .bind(new.user_id)
            .bind(new.created_at)
            .bind(new.expires_at)
            .bind(new.client_ip.as_deref())
            .bind(new.user_agent.as_deref())
            .bind(new.password_checked_at)
            .execute(p)
            .await.map(|r| r.rows_affected())
        )?;
        if inserted == 0 {
            return Err(StoreError::NotFound);
        }
        if let Some(event) = login {
            self.audit(&mut tx, event).await?;
        }
        tx.commit().await
    }

    /// The session whose secret hashes to `hash`, with its user.
    pub async fn session_by_secret(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<(SessionRecord, User)>, StoreError> {
        // One query on the path of every authenticated request.
        let row: Option<SessionUserRow> = with_db!(&self.db, p =>
            sqlx::query_as(
                "SELECT s.id, s.user_id, s.created_at, s.last_seen_at, s.expires_at, s.client_ip,
                        s.user_agent, u.email, u.display_name, u.platform_admin,
                        u.created_at AS user_created_at
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.secret_hash = $1",
            )
            .bind(*hash)
            .fetch_optional(p)
            .await
        )?;
        Ok(row.map(|row| {
            let user = User {
                id: row.session.user_id,
                email: Email::from_trusted(row.email),
                name: DisplayName::from_trusted(row.display_name),
                platform_admin: row.platform_admin,
                created_at: row.user_created_at,
            };
            (row.session, user)
        }))
    }

    /// Records activity on a session (for the idle timeout).
    pub async fn touch_session(&self, id: SessionId, now: Timestamp) -> Result<(), StoreError> {
        with_db!(write &self.db, p =>
            sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $1")
                .bind(now)
                .bind(id)
                .execute(p)
                .await.map(|r| r.rows_affected())
        )?;
        Ok(())
    }

    /// Ends one session, recording `logout` (its audit event) in the platform log
    /// in the same transaction. Ending a session that does not exist is not an
    /// error.
    pub async fn delete_session(
        &self,
        id: SessionId,
        logout: Option<AuditEvent>,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        with_tx!(&mut tx, c =>
            sqlx::query("DELETE FROM sessions WHERE id = $1").bind(id).execute(c).await.map(|r| r.rows_affected())
        )?;
        if let Some(event) = logout {
            self.audit(&mut tx, event).await?;
        }
        tx.commit().await
    }

    /// The sessions of `user`, most recently seen first (live or not: the
    /// caller filters with [`SessionRecord::is_live`]).
    pub async fn sessions_of(&self, user: UserId) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = with_db!(&self.db, p =>
            sqlx::query_as(
                "SELECT id, user_id, created_at, last_seen_at, expires_at, client_ip, user_agent
                 FROM sessions WHERE user_id = $1 ORDER BY last_seen_at DESC, id",
            )
            .bind(user)
            .fetch_all(p)
            .await
        )?;
        Ok(rows)
    }

    /// Ends session `id` of `user`, audited as `revoked` in the same
    /// transaction. NotFound unless that user has that session.
    pub async fn revoke_session(
        &self,
        user: UserId,
        id: SessionId,
        revoked: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        let done = with_tx!(&mut tx, c =>
            sqlx::query("DELETE FROM sessions WHERE id = $1 AND user_id = $2")
                .bind(id)
                .bind(user)
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        )?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        self.audit(&mut tx, revoked).await?;
        tx.commit().await
    }

    /// Ends every session of `user`; returns how many, after recording
    /// `ended(count)` in the same transaction. NotFound for an unknown user.
    pub async fn end_sessions_of(
        &self,
        user: UserId,
        ended: impl FnOnce(u64) -> AuditEvent,
    ) -> Result<u64, StoreError> {
        let mut tx = self.db.begin().await?;
        let exists: Option<i32> = with_tx!(&mut tx, c =>
            sqlx::query_scalar("SELECT 1 FROM users WHERE id = $1")
                .bind(user)
                .fetch_optional(c)
                .await
        )?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        let count = end_sessions(&mut tx, user, None).await?;
        self.audit(&mut tx, ended(count)).await?;
        tx.commit().await?;
        Ok(count)
    }

    /// Deletes sessions past their absolute expiry or idle for longer than
    /// `idle_timeout`; returns how many.
    pub async fn purge_sessions(
        &self,
        now: Timestamp,
        idle_timeout: std::time::Duration,
    ) -> Result<u64, StoreError> {
        let idle_cutoff = now.minus(idle_timeout);
        let done = with_db!(write &self.db, p =>
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
                .bind(now)
                .bind(idle_cutoff)
                .execute(p)
                .await.map(|r| r.rows_affected())
        )?;
        Ok(done)
    }
}

/// Ends every session of `user` but `keep`, inside `tx`; returns how many.
pub(super) async fn end_sessions(
    tx: &mut Tx,
    user: UserId,
    keep: Option<SessionId>,
) -> Result<u64, StoreError> {
    // A nil id matches no session: with none to keep, all end.
    let keep = keep.map_or(Uuid::nil(), |s| s.as_uuid());
    let ended = with_tx!(tx, c =>
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
            .bind(user)
            .bind(keep)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
    )?;
    Ok(ended)
}
