//! People who can log in, with their password hashes and the platform-admin flag.

use sentinel_core::audit::{AuditAction, AuditContext, Entity, EntityType};
use sentinel_core::password::HashError;
use sentinel_core::{DisplayName, Email, NewAccount, OrgId, PasswordHash, Timestamp, UserId};

use super::ControlStore;
use crate::backend::{with_db, with_tx};
use crate::{StoreError, conflict_on_unique};

/// A user as the rest of Sentinel sees one (no password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub name: DisplayName,
    pub platform_admin: bool,
    pub created_at: Timestamp,
}

/// A user with the password hash, for the few places that verify passwords.
#[derive(Debug, Clone)]
pub struct UserWithPassword {
    pub user: User,
    pub password_hash: PasswordHash,
    pub password_changed_at: Timestamp,
    /// Consecutive failed logins since the last success.
    pub failed_logins: u32,
    /// Until when logins are refused (see `sentinel_core::lockout`).
    pub locked_until: Option<Timestamp>,
    /// A non-human account that can never log in (API tokens only).
    pub service_account: bool,
}

/// What is needed to create a user.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub name: DisplayName,
    pub password_hash: PasswordHash,
    pub platform_admin: bool,
}

impl NewUser {
    /// A user from a validated account request, its password hashed. Slow
    /// (Argon2id): callers on an async executor run it off the worker threads.
    pub fn hashed(account: NewAccount, platform_admin: bool) -> Result<NewUser, HashError> {
        Ok(NewUser {
            password_hash: PasswordHash::new(&account.password)?,
            email: account.email,
            name: account.name,
            platform_admin,
        })
    }
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: UserId,
    email: String,
    display_name: String,
    password_hash: String,
    platform_admin: bool,
    created_at: Timestamp,
    password_changed_at: Timestamp,
    failed_logins: i32,
    locked_until: Option<Timestamp>,
    service_account: bool,
}

impl From<UserRow> for UserWithPassword {
    fn from(row: UserRow) -> Self {
        UserWithPassword {
            user: User {
                id: row.id,
                email: Email::from_trusted(row.email),
                name: DisplayName::from_trusted(row.display_name),
                platform_admin: row.platform_admin,
                created_at: row.created_at,
            },
            password_hash: PasswordHash::from_trusted(row.password_hash),
            password_changed_at: row.password_changed_at,
            failed_logins: u32::try_from(row.failed_logins).unwrap_or(0),
            locked_until: row.locked_until,
            service_account: row.service_account,
        }
    }
}

/// The columns of [`UserRow`], as a literal for `concat!`.
macro_rules! user_columns {
    () => {
        "id, email, display_name, password_hash, platform_admin, created_at, password_changed_at, \
         failed_logins, locked_until, service_account"
    };
}

/// Key that serializes changes which must keep at least one platform admin.
pub(crate) const PLATFORM_ADMINS_LOCK: &str = "platform-admins";

impl ControlStore {
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        let n = with_db!(&self.db, p => sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(p).await)?;
        Ok(n)
    }

    pub async fn create_user(
        &self,
        new: &NewUser,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<User, StoreError> {
        let mut tx = self.db.begin().await?;
        let user = insert_user(&mut tx, new, now).await?;
        let event = audit.success(
            now,
            AuditAction::UserCreated,
            Entity::new(EntityType::User, user.id),
            serde_json::json!({
                "email": user.email.as_str(),
                "name": user.name.as_str(),
                "platform_admin": user.platform_admin,
            }),
        );
        self.audit(&mut tx, event).await?;
        tx.commit().await?;
        Ok(user)
    }

    pub async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(self.user_with_password(id).await?.map(|u| u.user))
    }

    pub async fn user_with_password(
        &self,
        id: UserId,
    ) -> Result<Option<UserWithPassword>, StoreError> {
        let row: Option<UserRow> = with_db!(&self.db, p =>
            sqlx::query_as(concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1"))
                .bind(id)
                .fetch_optional(p)
                .await
        )?;
        Ok(row.map(Into::into))
    }

    pub async fn user_by_email(
        &self,
        email: &Email,
    ) -> Result<Option<UserWithPassword>, StoreError> {
        let row: Option<UserRow> = with_db!(&self.db, p =>
            sqlx::query_as(concat!("SELECT ", user_columns!(), " FROM users WHERE email = $1"))
                .bind(email)
                .fetch_optional(p)
                .await
        )?;
        Ok(row.map(Into::into))
    }

    /// Every user (not service accounts), ordered by e-mail address, with the
    /// time their login lock ends (if one was ever set and not lifted).
    pub async fn users(&self) -> Result<Vec<(User, Option<Timestamp>)>, StoreError> {
        let rows: Vec<UserRow> = with_db!(&self.db, p =>
            sqlx::query_as(concat!("SELECT ", user_columns!(), " FROM users WHERE service_account = FALSE ORDER BY email"))
                .fetch_all(p)
                .await
        )?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let account = UserWithPassword::from(r);
                (account.user, account.locked_until)
            })
            .collect())
    }

    /// Replaces a user's password and ends all their sessions, in one
    /// transaction; returns how many sessions ended. (Sessions whose login checked
    /// the old password cannot be recorded afterwards: see
    /// [`NewSession::password_checked_at`](super::NewSession).)
    pub async fn change_password(
        &self,
        id: UserId,
        hash: &PasswordHash,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<u64, StoreError> {
        let mut tx = self.db.begin().await?;
        let done = with_tx!(&mut tx, c =>
            sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3")
                .bind(hash)
                .bind(now)
                .bind(id)
                .execute(c)
                .await.map(|r| r.rows_affected())
        )?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        let ended = super::sessions::end_sessions(&mut tx, id, None).await?;
        let event = audit.success(
            now,
            AuditAction::PasswordChanged,
            Entity::new(EntityType::User, id),
            serde_json::json!({ "sessions_ended": ended }),
        );
        self.audit(&mut tx, event).await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// Grants or revokes the platform-admin role. The last platform admin cannot
    /// lose it.
    pub async fn set_platform_admin(
        &self,
        id: UserId,
        platform_admin: bool,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<User, StoreError> {
        let mut tx = self.db.begin().await?;
        tx.serialize_on(PLATFORM_ADMINS_LOCK).await?;
        let was: Option<bool> = with_tx!(&mut tx, c =>
            sqlx::query_scalar("SELECT platform_admin FROM users WHERE id = $1 AND service_account = FALSE")
                .bind(id)
                .fetch_optional(c)
                .await
        )?;
        let was = was.ok_or(StoreError::NotFound)?;
        if !platform_admin {
            refuse_if_last_platform_admin(&mut tx, id).await?;
        }
        let done = with_tx!(&mut tx, c =>
            sqlx::query("UPDATE users SET platform_admin = $1 WHERE id = $2")
                .bind(platform_admin)
                .bind(id)
                .execute(c)
                .await.map(|r| r.rows_affected())
        )?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        let event = audit.success(
            now,
            AuditAction::PlatformAdminChanged,
            Entity::new(EntityType::User, id),
            serde_json::json!({ "from": was, "to": platform_admin }),
        );
        self.audit(&mut tx, event).await?;
        tx.commit().await?;
        self.user(id).await?.ok_or(StoreError::NotFound)
    }

    /// Deletes a user and their sessions and memberships. Refused while they are
    /// the last owner of an organization or the last platform admin.
    pub async fn delete_user(
        &self,
        id: UserId,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.serialize_on(PLATFORM_ADMINS_LOCK).await?;
        tx.serialize_on(super::members::MEMBERSHIPS_LOCK).await?;
        let owned: Vec<OrgId> = with_tx!(&mut tx, c =>
            sqlx::query_scalar("SELECT org_id FROM memberships WHERE user_id = $1 AND role = 'owner'")
                .bind(id)
                .fetch_all(c)
                .await
        )?;
        for org in owned {
            if super::members::count_owners(&mut tx, org).await? <= 1 {
                return Err(StoreError::Refused(
                    "this user is the last owner of an organization; make someone else owner first",
                ));
            }
        }
        refuse_if_last_platform_admin(&mut tx, id).await?;
        let email: Option<String> = with_tx!(&mut tx, c =>
            sqlx::query_scalar("DELETE FROM users WHERE id = $1 RETURNING email")
                .bind(id)
                .fetch_optional(c)
                .await
        )?;
        let email = email.ok_or(StoreError::NotFound)?;
        let event = audit.success(
            now,
            AuditAction::UserDeleted,
            Entity::new(EntityType::User, id),
            serde_json::json!({ "email": email }),
        );
        self.audit(&mut tx, event).await?;
        tx.commit().await
    }
}

pub(crate) async fn insert_user(
    tx: &mut crate::backend::Tx,
    new: &NewUser,
    now: Timestamp,
) -> Result<User, StoreError> {
    let id = UserId::random();
    with_tx!(tx, c =>
        sqlx::query(
            "INSERT INTO users (id, email, display_name, password_hash, platform_admin, created_at, password_changed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(id)
        .bind(&new.email)
        .bind(&new.name)
        .bind(&new.password_hash)
        .bind(new.platform_admin)
        .bind(now)
        .execute(c)
        .await.map(|r| r.rows_affected())
    )
    .map_err(conflict_on_unique("a user with this e-mail address already exists"))?;
    Ok(User {
        id,
        email: new.email.clone(),
        name: new.name.clone(),
        platform_admin: new.platform_admin,
        created_at: now,
    })
}

async fn refuse_if_last_platform_admin(
    tx: &mut crate::backend::Tx,
    id: UserId,
) -> Result<(), StoreError> {
    let others: i64 = with_tx!(tx, c =>
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE platform_admin = TRUE AND id <> $1")
            .bind(id)
            .fetch_one(c)
            .await
    )?;
    let is_admin: Option<bool> = with_tx!(tx, c =>
        sqlx::query_scalar("SELECT platform_admin FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await
    )?;
    if is_admin == Some(true) && others == 0 {
        return Err(StoreError::Refused(
            "the last platform admin cannot be removed or demoted",
        ));
    }
    Ok(())
}
