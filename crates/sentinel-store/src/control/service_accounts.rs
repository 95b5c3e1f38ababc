//! Service accounts: non-human users with a role in exactly one organization,
//! reachable only through API tokens (their password can never verify, and
//! login refuses them). Membership rules apply as for people: an actor may
//! only create or delete one whose role they could grant.

use sentinel_core::audit::{AuditAction, AuditContext, Entity, EntityType};
use sentinel_core::{DisplayName, Email, OrgId, TenantRole, Timestamp, UserId};

use super::ControlStore;
use super::members::{MEMBERSHIPS_LOCK, check_actor, parse_role};
use crate::StoreError;
use crate::audit::outbox;
use crate::backend::{with_db, with_tx};

/// A service account of one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub id: UserId,
    pub name: DisplayName,
    pub role: TenantRole,
    pub created_at: Timestamp,
}

/// Not a PHC string: no password verifies against it.
const NO_PASSWORD: &str = "!service-account";

#[derive(sqlx::FromRow)]
struct ServiceAccountRow {
    id: UserId,
    display_name: String,
    role: String,
    created_at: Timestamp,
}

impl ControlStore {
    /// Creates a service account in `org` with `role` (never owner).
    pub async fn create_service_account(
        &self,
        org: OrgId,
        actor: UserId,
        name: &DisplayName,
        role: TenantRole,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<ServiceAccount, StoreError> {
        if role == TenantRole::Owner {
            return Err(StoreError::Refused("a service account cannot be an owner"));
        }
        let mut tx = self.db.begin().await?;
        tx.serialize_on(MEMBERSHIPS_LOCK).await?;
        check_actor(&mut tx, org, actor, None, Some(role)).await?;
        let id = UserId::random();
        let email = Email::from_trusted(format!("{id}@service-accounts.invalid"));
        with_tx!(&mut tx, c =>
            sqlx::query(
                "INSERT INTO users (id, email, display_name, password_hash, platform_admin,
                                    created_at, password_changed_at, service_account)
                 VALUES ($1, $2, $3, $4, FALSE, $5, $5, TRUE)",
            )
            .bind(id)
            .bind(&email)
            .bind(name)
            .bind(NO_PASSWORD)
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        )?;
        with_tx!(&mut tx, c =>
            sqlx::query("INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
                .bind(org)
                .bind(id)
                .bind(role.as_str())
                .bind(now)
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        )?;
        let event = audit.success(
            now,
            AuditAction::ServiceAccountCreated,
            Entity::new(EntityType::User, id),
            serde_json::json!({ "name": name.as_str(), "role": role }),
        );
        outbox::enqueue(&mut tx, org, &event).await?;
        tx.commit().await?;
        Ok(ServiceAccount {
            id,
            name: name.clone(),
            role,
            created_at: now,
        })
    }

    /// The organization's service accounts, by name.
    pub async fn service_accounts(&self, org: OrgId) -> Result<Vec<ServiceAccount>, StoreError> {
        let rows: Vec<ServiceAccountRow> = with_db!(&self.db, p =>
            sqlx::query_as(
                "SELECT u.id, u.display_name, m.role, u.created_at
                 FROM memberships m JOIN users u ON u.id = m.user_id
                 WHERE m.org_id = $1 AND u.service_account = TRUE
                 ORDER BY u.display_name, u.id",
            )
            .bind(org)
            .fetch_all(p)
            .await
        )?;
        rows.into_iter()
            .map(|row| {
                Ok(ServiceAccount {
                    id: row.id,
                    name: DisplayName::from_trusted(row.display_name),
                    role: parse_role(&row.role)?,
                    created_at: row.created_at,
                })
            })
            .collect()
    }

    /// The service account `id` of `org`, if it is one.
    pub async fn service_account(
        &self,
        org: OrgId,
        id: UserId,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        Ok(self
            .service_accounts(org)
            .await?
            .into_iter()
            .find(|account| account.id == id))
    }

    /// Deletes a service account of `org` with all its tokens.
    pub async fn delete_service_account(
        &self,
        org: OrgId,
        actor: UserId,
        id: UserId,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.serialize_on(MEMBERSHIPS_LOCK).await?;
        let role: Option<String> = with_tx!(&mut tx, c =>
            sqlx::query_scalar(
                "SELECT m.role FROM memberships m JOIN users u ON u.id = m.user_id
                 WHERE m.org_id = $1 AND m.user_id = $2 AND u.service_account = TRUE",
            )
            .bind(org)
            .bind(id)
            .fetch_optional(c)
            .await
        )?;
        let role = parse_role(&role.ok_or(StoreError::NotFound)?)?;
        check_actor(&mut tx, org, actor, Some(role), None).await?;
        let name: Option<String> = with_tx!(&mut tx, c =>
            sqlx::query_scalar("DELETE FROM users WHERE id = $1 AND service_account = TRUE RETURNING display_name")
                .bind(id)
                .fetch_optional(c)
                .await
        )?;
        let name = name.ok_or(StoreError::NotFound)?;
        let event = audit.success(
            now,
            AuditAction::ServiceAccountDeleted,
            Entity::new(EntityType::User, id),
            serde_json::json!({ "name": name }),
        );
        outbox::enqueue(&mut tx, org, &event).await?;
        tx.commit().await?;
        Ok(())
    }
}
