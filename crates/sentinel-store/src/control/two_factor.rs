//! Two-factor authentication at rest: each user's TOTP enrolment (its secret
//! sealed by the caller, the last accepted time step), their recovery codes (as
//! hashes), the pending second step of a login, and each organization's policy.
//!
//! Every "use once" rule is decided by the database, in the statement that
//! records the use: a time step is accepted only if it is later than the stored
//! one, a recovery code only while it is unspent, a login challenge only while it
//! has attempts left — so two concurrent uses of one code cannot both win.

use sentinel_core::audit::{AuditAction, AuditContext, Entity, EntityType};
use sentinel_core::{OrgId, SecretHash, SessionId, Timestamp, TwoFactorPolicy, UserId};
use uuid::Uuid;

use super::ControlStore;
use super::members::{MEMBERSHIPS_LOCK, parse_role};
use crate::StoreError;
use crate::audit::outbox;
use crate::backend::{Tx, with_db, with_tx};

/// A user's TOTP enrolment as stored. The secret stays sealed here; only the
/// HTTP layer, which holds the sealing key, opens it.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TwoFactorRecord {
    /// Changes with every new secret, so that a code checked against one secret
    /// is never recorded against another.
    pub enrolment_id: Uuid,
    pub sealed_secret: Vec<u8>,
    /// The newest time step a code was accepted for.
    pub last_step: i64,
    pub created_at: Timestamp,
    /// When it was confirmed; `None` while the enrolment is pending.
    pub enabled_at: Option<Timestamp>,
}

impl std::fmt::Debug for TwoFactorRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwoFactorRecord")
            .field("enrolment_id", &self.enrolment_id)
            .field("last_step", &self.last_step)
            .field("enabled_at", &self.enabled_at)
            .finish_non_exhaustive()
    }
}

/// The second step of a login, awaiting its code.
#[derive(Debug, Clone)]
pub struct NewLoginChallenge {
    pub token_hash: SecretHash,
    pub user_id: UserId,
    /// The user's `password_changed_at` when the password was checked: the
    /// session the challenge leads to is only recorded if it is still the same.
    pub password_checked_at: Timestamp,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A live login challenge, with one attempt taken.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LoginChallenge {
    pub user_id: UserId,
    pub password_checked_at: Timestamp,
    /// Attempts made so far, this one included.
    pub attempts: i64,
}

const ALREADY_ON: &str = "two-factor authentication is already on; turn it off first";
const NOT_PENDING: &str = "this enrolment has changed or is already confirmed; start again";
const WOULD_LOCK_OUT: &str = "this policy would apply to you, and you have no two-factor \
     authentication: turn it on for your own account first";

impl ControlStore {
    /// The user's enrolment, pending or on.
    pub async fn two_factor(&self, user: UserId) -> Result<Option<TwoFactorRecord>, StoreError> {
        let row = with_db!(&self.db, p =>
            sqlx::query_as(
                "SELECT enrolment_id, sealed_secret, last_step, created_at, enabled_at
                 FROM user_two_factor WHERE user_id = $1",
            )
            .bind(user)
            .fetch_optional(p)
            .await
        )?;
        Ok(row)
    }

    /// The users whose two-factor authentication is on.
    pub async fn users_with_two_factor(
        &self,
    ) -> Result<std::collections::HashSet<UserId>, StoreError> {
        let ids: Vec<UserId> = with_db!(&self.db, p =>
            sqlx::query_scalar("SELECT user_id FROM user_two_factor WHERE enabled_at IS NOT NULL")
                .fetch_all(p)
                .await
        )?;
        Ok(ids.into_iter().collect())
    }

    /// How many unspent recovery codes the user has.
    pub async fn recovery_codes_left(&self, user: UserId) -> Result<i64, StoreError> {
        let n = with_db!(&self.db, p =>
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
            )
            .bind(user)
            .fetch_one(p)
            .await
        )?;
        Ok(n)
    }

    /// Records a new, unconfirmed TOTP secret for `user`, replacing a pending
    /// one. `Conflict` if two-factor authentication is already on.
    pub async fn start_two_factor_enrolment(
        &self,
        user: UserId,
        enrolment_id: Uuid,
        sealed_secret: &[u8],
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.serialize_on(&two_factor_lock(user)).await?;
        let enabled: Option<Option<Timestamp>> = with_tx!(&mut tx, c =>
            sqlx::query_scalar("SELECT enabled_at FROM user_two_factor WHERE user_id = $1")
                .bind(user)
                .fetch_optional(c)
                .await
        )?;
        if matches!(enabled, Some(Some(_))) {
            return Err(StoreError::Conflict(ALREADY_ON));
        }
        with_tx!(&mut tx, c =>
            sqlx::query("DELETE FROM user_two_factor WHERE user_id = $1 AND enabled_at IS NULL")
                .bind(user)
                .execute(c)
                .await.map(|r| r.rows_affected())
        )?;
        let inserted = with_tx!(&mut tx, c =>
            sqlx::query(
                "INSERT INTO user_two_factor (user_id, enrolment_id, sealed_secret, last_step, created_at)
                 VALUES ($1, $2, $3, -1, $4)",
            )
            .bind(user)
            .bind(enrolment_id)
            .bind(sealed_secret)
            .bind(now)
            .execute(c)
            .await.map(|r| r.rows_affected())
        );
        match inserted {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                return Err(StoreError::NotFound);
            }
            Err(e) => return Err(e.into()),
        }
        let event = audit.success(
            now,
            AuditAction::TwoFactorEnrolmentStarted,
            Entity::new(EntityType::User, user),
            serde_json::json!({}),
        );
        self.audit(&mut tx, event).await?;
        tx.commit().await
    }

    /// Records that a code for time `step` of enrolment `enrolment_id` was
    /// accepted. False — accept nothing — if that enrolment is gone, is not in
    /// the expected state (`enabled`: on, else pending), or already accepted this
    /// step or a later one (a replayed code).
    pub async fn accept_totp_step(
        &self,
        user: UserId,
        enrolment_id: Uuid,
        step: i64,
        enabled: bool,
    ) -> Result<bool, StoreError> {
        let sql = if enabled {
            "UPDATE user_two_factor SET last_step = $1
             WHERE user_id = $2 AND enrolment_id = $3 AND last_step < $1 AND enabled_at IS NOT NULL"
        } else {
            "UPDATE user_two_factor SET last_step = $1
             WHERE user_id = $2 AND enrolment_id = $3 AND last_step < $1 AND enabled_at IS NULL"
        };
        let done = with_db!(&self.db, p =>
            sqlx::query(sql)
                .bind(step)
                .bind(user)
                .bind(enrolment_id)
                .execute(p)
                .await.map(|r| r.rows_affected())
        )?;
        Ok(done == 1)
    }

    /// Turns on the pending enrolment `enrolment_id` (its code was accepted) and
    /// stores the hashes of the user's first recovery codes. `Conflict` if the
    /// enrolment was replaced or confirmed meanwhile.
    pub async fn enable_two_factor(
        &self,
        user: UserId,
        enrolment_id: Uuid,
        recovery_codes: &[SecretHash],
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.serialize_on(&two_factor_lock(user)).await?;
        let done = with_tx!(&mut tx, c =>
            sqlx::query(
                "UPDATE user_two_factor SET enabled_at = $1
                 WHERE user_id = $2 AND enrolment_id = $3 AND enabled_at IS NULL",
            )
            .bind(now)
            .bind(user)
            .bind(enrolment_id)
            .execute(c)
            .await.map(|r| r.rows_affected())
        )?;
        if done != 1 {
            return Err(StoreError::Conflict(NOT_PENDING));
        }
        insert_recovery_codes(&mut tx, user, recovery_codes, now).await?;
        let event = audit.success(
            now,
            AuditAction::TwoFactorEnabled,
            Entity::new(EntityType::User, user),
            serde_json::json!({ "recovery_codes": recovery_codes.len() }),
        );
        self.audit(&mut tx, event).await?;
        tx.commit().await
    }

    /// Spends the recovery code whose hash is `code` (audited as
    /// `auth.recovery_code_used`). False if no such unspent code exists for a
    /// user whose two-factor authentication is on.
    pub async fn spend_recovery_code(
        &self,
        user: UserId,
        code: &SecretHash,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        let done = with_tx!(&mut tx, c =>
            sqlx::query(
                "UPDATE recovery_codes SET used_at = $1
                 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL
                   AND EXISTS (SELECT 1 FROM user_two_factor t
                               WHERE t.user_id = $2 AND t.enabled_at IS NOT NULL)",
            )
            .bind(now)
            .bind(user)
            .bind(*code)
            .execute(c)
            .await.map(|r| r.rows_affected())
        )?;
        if done != 1 {
            return Ok(false);
        }
        let left: i64 = with_tx!(&mut tx, c =>
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
            )
            .bind(user)
            .fetch_one(c)
            .await
        )?;
        let event = audit.success(
            now,
            AuditAction::RecoveryCodeUsed,
            Entity::new(EntityType::User, user),
            serde_json::json!({ "codes_left": left }),
        );
        self.audit(&mut tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Replaces all of the user's recovery codes. `NotFound` unless their
    /// two-factor authentication is on.
    pub async fn replace_recovery_codes(
        &self,
        user: UserId,
        recovery_codes: &[SecretHash],
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.serialize_on(&two_factor_lock(user)).await?;
        if !is_enabled(&mut tx, user).await? {
            return Err(StoreError::NotFound);
        }
        with_tx!(&mut tx, c =>
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(user)
                .execute(c)
                .await.map(|r| r.rows_affected())
        )?;
        insert_recovery_codes(&mut tx, user, recovery_codes, now).await?;
        let event = audit.success(
            now,
            AuditAction::RecoveryCodesRegenerated,
            Entity::new(EntityType::User, user),
            serde_json::json!({ "recovery_codes": recovery_codes.len() }),
        );
        self.audit(&mut tx, event).await?;
        tx.commit().await
    }

    /// Removes the user's two-factor authentication (secret, recovery codes,
    /// pending logins) and ends every session of theirs except `keep`, in one
    /// transaction audited as `action` (`auth.2fa_disabled` by the user,
    /// `auth.2fa_reset` by an admin). Returns how many sessions ended; `NotFound`
    /// unless it was on.
    pub async fn remove_two_factor(
        &self,
        user: UserId,
        keep: Option<SessionId>,
        action: AuditAction,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<u64, StoreError> {
        let mut tx = self.db.begin().await?;
        tx.serialize_on(&two_factor_lock(user)).await?;
        if !is_enabled(&mut tx, user).await? {
            return Err(StoreError::NotFound);
        }
        for sql in [
            "DELETE FROM user_two_factor WHERE user_id = $1",
            "DELETE FROM recovery_codes WHERE user_id = $1",
            "DELETE FROM login_challenges WHERE user_id = $1",
        ] {
            with_tx!(&mut tx, c =>
                sqlx::query(sql).bind(user).execute(c).await.map(|r| r.rows_affected())
            )?;
        }
        let ended = super::sessions::end_sessions(&mut tx, user, keep).await?;
        let event = audit.success(
            now,
            action,
            Entity::new(EntityType::User, user),
            serde_json::json!({ "sessions_ended": ended }),
        );
        self.audit(&mut tx, event).await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// Records a login awaiting its second factor (and forgets expired ones).
    pub async fn create_login_challenge(&self, new: &NewLoginChallenge) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        with_tx!(&mut tx, c =>
            sqlx::query("DELETE FROM login_challenges WHERE expires_at <= $1")
                .bind(new.created_at)
                .execute(c)
                .await.map(|r| r.rows_affected())
        )?;
        with_tx!(&mut tx, c =>
            sqlx::query(
                "INSERT INTO login_challenges (token_hash, user_id, password_checked_at, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(new.token_hash)
            .bind(new.user_id)
            .bind(new.password_checked_at)
            .bind(new.created_at)
            .bind(new.expires_at)
            .execute(c)
            .await.map(|r| r.rows_affected())
        )?;
        tx.commit().await
    }

    /// Takes one attempt of the live challenge whose token hashes to `token`:
    /// `None` if it does not exist, has expired, or has had `max_attempts`
    /// already. The attempt is counted before the code is checked, so parallel
    /// guesses cannot exceed the limit.
    pub async fn attempt_login_challenge(
        &self,
        token: &SecretHash,
        now: Timestamp,
        max_attempts: i64,
    ) -> Result<Option<LoginChallenge>, StoreError> {
        let row = with_db!(write &self.db, p =>
            sqlx::query_as(
                "UPDATE login_challenges SET attempts = attempts + 1
                 WHERE token_hash = $1 AND expires_at > $2 AND attempts < $3
                 RETURNING user_id, password_checked_at, attempts",
            )
            .bind(*token)
            .bind(now)
            .bind(max_attempts)
            .fetch_optional(p)
            .await
        )?;
        Ok(row)
    }

    /// Ends a challenge: spent by a right code, or dead after its last wrong one.
    /// True if this call ended it (a challenge completes a login once).
    pub async fn end_login_challenge(&self, token: &SecretHash) -> Result<bool, StoreError> {
        let done = with_db!(write &self.db, p =>
            sqlx::query("DELETE FROM login_challenges WHERE token_hash = $1")
                .bind(*token)
                .execute(p)
                .await.map(|r| r.rows_affected())
        )?;
        Ok(done == 1)
    }

    /// Sets which members of `org` must use two-factor authentication; returns
    /// the previous policy. Refused (`Refused`) if the policy would cover `actor`
    /// while their own two-factor authentication is off, so that nobody locks
    /// themselves out. Audited in the organization's log (through the outbox).
    pub async fn set_two_factor_policy(
        &self,
        org: OrgId,
        actor: UserId,
        policy: TwoFactorPolicy,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<TwoFactorPolicy, StoreError> {
        let mut tx = self.db.begin().await?;
        // Roles are read under the memberships lock, as every membership change is.
        tx.serialize_on(MEMBERSHIPS_LOCK).await?;
        tx.serialize_on(&two_factor_lock(actor)).await?;
        let row: Option<(String, String)> = with_tx!(&mut tx, c =>
            sqlx::query_as(
                "SELECT o.two_factor_policy, m.role
                 FROM organizations o JOIN memberships m ON m.org_id = o.id
                 WHERE o.id = $1 AND m.user_id = $2",
            )
            .bind(org)
            .bind(actor)
            .fetch_optional(c)
            .await
        )?;
        let (previous, role) = row.ok_or(StoreError::NotFound)?;
        let previous = parse_policy(&previous)?;
        let role = parse_role(&role)?;
        if policy.requires(role) && !is_enabled(&mut tx, actor).await? {
            return Err(StoreError::Refused(WOULD_LOCK_OUT));
        }
        with_tx!(&mut tx, c =>
            sqlx::query("UPDATE organizations SET two_factor_policy = $1, updated_at = $2 WHERE id = $3")
                .bind(policy.as_str())
                .bind(now)
                .bind(org)
                .execute(c)
                .await.map(|r| r.rows_affected())
        )?;
        let event = audit.success(
            now,
            AuditAction::OrgTwoFactorPolicyChanged,
            Entity::new(EntityType::Organization, org),
            serde_json::json!({ "from": previous, "to": policy }),
        );
        outbox::enqueue(&mut tx, org, &event).await?;
        tx.commit().await?;
        Ok(previous)
    }
}

/// Serializes changes to one user's two-factor state (PostgreSQL; SQLite's write
/// lock already does).
fn two_factor_lock(user: UserId) -> String {
    format!("two-factor:{user}")
}

pub(super) fn parse_policy(s: &str) -> Result<TwoFactorPolicy, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("unknown two-factor policy {s:?}")))
}

async fn is_enabled(tx: &mut Tx, user: UserId) -> Result<bool, StoreError> {
    let enabled: Option<Option<Timestamp>> = with_tx!(tx, c =>
        sqlx::query_scalar("SELECT enabled_at FROM user_two_factor WHERE user_id = $1")
            .bind(user)
            .fetch_optional(c)
            .await
    )?;
    Ok(matches!(enabled, Some(Some(_))))
}

async fn insert_recovery_codes(
    tx: &mut Tx,
    user: UserId,
    codes: &[SecretHash],
    now: Timestamp,
) -> Result<(), StoreError> {
    for code in codes {
        with_tx!(tx, c =>
            sqlx::query("INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)")
                .bind(user)
                .bind(*code)
                .bind(now)
                .execute(c)
                .await.map(|r| r.rows_affected())
        )?;
    }
    Ok(())
}
