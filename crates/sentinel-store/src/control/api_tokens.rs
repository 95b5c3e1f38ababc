//! API tokens: a secret's hash bound to one organization, the authority of its
//! owner (its creator, or a service account) and the permissions it was given.
//! Creation and revocation are audited in the organization's log.

use sentinel_core::audit::{AuditAction, AuditContext, Entity, EntityType};
use sentinel_core::{DisplayName, Email, OrgId, Permission, SecretHash, Timestamp, UserId};
use uuid::Uuid;

use super::{ControlStore, User};
use crate::StoreError;
use crate::audit::outbox;
use crate::backend::{with_db, with_tx};

/// An API token as its owner and the organization's admins see it (never the
/// secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: Uuid,
    pub name: String,
    pub org_id: OrgId,
    /// Whose authority the token carries.
    pub owner: UserId,
    pub owner_name: DisplayName,
    /// Whether the owner is a service account.
    pub service_account: bool,
    /// Who made it; a service account's tokens are bounded by their creator.
    pub creator: UserId,
    pub permissions: Vec<Permission>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub last_used_ip: Option<String>,
}

impl ApiToken {
    /// Whether the token may be used at `now`: not revoked and not expired.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// What is needed to create a token.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub id: Uuid,
    pub secret_hash: SecretHash,
    pub name: String,
    pub org_id: OrgId,
    pub owner: UserId,
    pub creator: UserId,
    pub permissions: Vec<Permission>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A token presented with a request, and the user it speaks for.
#[derive(Debug, Clone)]
pub struct PresentedToken {
    pub token: ApiToken,
    pub owner: User,
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: Uuid,
    name: String,
    org_id: OrgId,
    owner_id: UserId,
    creator_id: UserId,
    permissions: String,
    created_at: Timestamp,
    expires_at: Timestamp,
    revoked_at: Option<Timestamp>,
    last_used_at: Option<Timestamp>,
    last_used_ip: Option<String>,
    owner_email: String,
    owner_name: String,
    owner_platform_admin: bool,
    owner_created_at: Timestamp,
    owner_service_account: bool,
}

impl TokenRow {
    fn split(self) -> Result<PresentedToken, StoreError> {
        let permissions = self
            .permissions
            .split_whitespace()
            .map(|name| {
                name.parse().map_err(|_| {
                    StoreError::Corrupt(format!("unknown permission {name:?} in api_tokens"))
                })
            })
            .collect::<Result<Vec<Permission>, _>>()?;
        let owner_name = DisplayName::from_trusted(self.owner_name);
        Ok(PresentedToken {
            owner: User {
                id: self.owner_id,
                email: Email::from_trusted(self.owner_email),
                name: owner_name.clone(),
                platform_admin: self.owner_platform_admin,
                created_at: self.owner_created_at,
            },
            token: ApiToken {
                id: self.id,
                name: self.name,
                org_id: self.org_id,
                owner: self.owner_id,
                owner_name,
                service_account: self.owner_service_account,
                creator: self.creator_id,
                permissions,
                created_at: self.created_at,
                expires_at: self.expires_at,
                revoked_at: self.revoked_at,
                last_used_at: self.last_used_at,
                last_used_ip: self.last_used_ip,
            },
        })
    }
}

macro_rules! token_select {
    ($where:literal) => {
        concat!(
            "SELECT t.id, t.name, t.org_id, t.owner_id, t.creator_id, t.permissions, t.created_at,
                    t.expires_at, t.revoked_at, t.last_used_at, t.last_used_ip,
                    u.email AS owner_email, u.display_name AS owner_name,
                    u.platform_admin AS owner_platform_admin, u.created_at AS owner_created_at,
                    u.service_account AS owner_service_account
             FROM api_tokens t JOIN users u ON u.id = t.owner_id ",
            $where
        )
    };
}

fn names(permissions: &[Permission]) -> String {
    permissions
        .iter()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(" ")
}

impl ControlStore {
    /// Stores a new token (its owner must be a member of its organization:
    /// the caller checked that the permissions are theirs to give).
    pub async fn create_api_token(
        &self,
        new: &NewApiToken,
        audit: &AuditContext,
    ) -> Result<ApiToken, StoreError> {
        let mut tx = self.db.begin().await?;
        with_tx!(&mut tx, c =>
            sqlx::query(
                "INSERT INTO api_tokens (id, secret_hash, name, org_id, owner_id, creator_id,
                                         permissions, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(new.id)
            .bind(new.secret_hash)
            .bind(&new.name)
            .bind(new.org_id)
            .bind(new.owner)
            .bind(new.creator)
            .bind(names(&new.permissions))
            .bind(new.created_at)
            .bind(new.expires_at)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        )?;
        let event = audit.success(
            new.created_at,
            AuditAction::ApiTokenCreated,
            Entity::new(EntityType::ApiToken, new.id),
            serde_json::json!({
                "name": new.name,
                "owner": new.owner.to_string(),
                "permissions": new.permissions.iter().map(|p| p.name()).collect::<Vec<_>>(),
                "expires_at": new.expires_at.to_string(),
            }),
        );
        outbox::enqueue(&mut tx, new.org_id, &event).await?;
        let token = fetch(&mut tx, new.id).await?.ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(token)
    }

    /// The tokens `user` owns or created, newest first.
    pub async fn api_tokens_of(&self, user: UserId) -> Result<Vec<ApiToken>, StoreError> {
        let rows: Vec<TokenRow> = with_db!(&self.db, p =>
            sqlx::query_as(token_select!("WHERE t.owner_id = $1 OR t.creator_id = $1 ORDER BY t.created_at DESC, t.id"))
                .bind(user)
                .fetch_all(p)
                .await
        )?;
        rows.into_iter()
            .map(|r| r.split().map(|t| t.token))
            .collect()
    }

    /// The tokens of an organization's service accounts, newest first.
    pub async fn service_account_tokens(&self, org: OrgId) -> Result<Vec<ApiToken>, StoreError> {
        let rows: Vec<TokenRow> = with_db!(&self.db, p =>
            sqlx::query_as(token_select!("WHERE t.org_id = $1 AND u.service_account = TRUE ORDER BY t.created_at DESC, t.id"))
                .bind(org)
                .fetch_all(p)
                .await
        )?;
        rows.into_iter()
            .map(|r| r.split().map(|t| t.token))
            .collect()
    }

    pub async fn api_token(&self, id: Uuid) -> Result<Option<ApiToken>, StoreError> {
        let row: Option<TokenRow> = with_db!(&self.db, p =>
            sqlx::query_as(token_select!("WHERE t.id = $1"))
                .bind(id)
                .fetch_optional(p)
                .await
        )?;
        row.map(|r| r.split().map(|t| t.token)).transpose()
    }

    /// The token whose secret hashes to `hash`, with its owner (live or not:
    /// the caller checks).
    pub async fn api_token_by_secret(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<PresentedToken>, StoreError> {
        let row: Option<TokenRow> = with_db!(&self.db, p =>
            sqlx::query_as(token_select!("WHERE t.secret_hash = $1"))
                .bind(hash)
                .fetch_optional(p)
                .await
        )?;
        row.map(TokenRow::split).transpose()
    }

    /// Records a use of the token.
    pub async fn touch_api_token(
        &self,
        id: Uuid,
        now: Timestamp,
        ip: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        with_tx!(&mut tx, c =>
            sqlx::query("UPDATE api_tokens SET last_used_at = $2, last_used_ip = $3 WHERE id = $1")
                .bind(id)
                .bind(now)
                .bind(ip)
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        )?;
        tx.commit().await?;
        Ok(())
    }

    /// Revokes a token at once. NotFound if it does not exist or is already
    /// revoked.
    pub async fn revoke_api_token(
        &self,
        id: Uuid,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<ApiToken, StoreError> {
        let mut tx = self.db.begin().await?;
        let org: Option<OrgId> = with_tx!(&mut tx, c =>
            sqlx::query_scalar(
                "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL
                 RETURNING org_id",
            )
            .bind(id)
            .bind(now)
            .fetch_optional(c)
            .await
        )?;
        let org = org.ok_or(StoreError::NotFound)?;
        let token = fetch(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
        let event = audit.success(
            now,
            AuditAction::ApiTokenRevoked,
            Entity::new(EntityType::ApiToken, id),
            serde_json::json!({ "name": token.name, "owner": token.owner.to_string() }),
        );
        outbox::enqueue(&mut tx, org, &event).await?;
        tx.commit().await?;
        Ok(token)
    }
}

async fn fetch(tx: &mut crate::backend::Tx, id: Uuid) -> Result<Option<ApiToken>, StoreError> {
    let row: Option<TokenRow> = with_tx!(tx, c =>
        sqlx::query_as(token_select!("WHERE t.id = $1"))
            .bind(id)
            .fetch_optional(c)
            .await
    )?;
    row.map(|r| r.split().map(|t| t.token)).transpose()
}
