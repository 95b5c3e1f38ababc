//! Organizations as the platform knows them: id, name and slug. What an
//! organization owns lives in its tenant store.

use sentinel_core::audit::{AuditAction, AuditContext, Entity, EntityType};
use sentinel_core::{OrgId, OrgName, Slug, TenantRole, Timestamp, UserId};

use super::ControlStore;
use crate::audit::outbox;
use crate::backend::{with_db, with_tx};
use crate::{StoreError, conflict_on_unique};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: OrgId,
    pub name: OrgName,
    pub slug: Slug,
    pub created_at: Timestamp,
}

/// An organization together with one user's role in it (None: not a member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationWithRole {
    pub organization: Organization,
    pub role: Option<TenantRole>,
}

#[derive(sqlx::FromRow)]
pub(super) struct OrgRow {
    id: OrgId,
    name: String,
    slug: String,
    created_at: Timestamp,
}

impl From<OrgRow> for Organization {
    fn from(row: OrgRow) -> Self {
        Organization {
            id: row.id,
            name: OrgName::from_trusted(row.name),
            slug: Slug::from_trusted(row.slug),
            created_at: row.created_at,
        }
    }
}

/// An organization row with one user's role in it (None: not a member).
#[derive(sqlx::FromRow)]
pub(super) struct OrgWithRoleRow {
    #[sqlx(flatten)]
    pub org: OrgRow,
    pub role: Option<String>,
}

/// How many `-2`, `-3`, … alternatives are tried when a slug is taken.
const SLUG_ATTEMPTS: u32 = 50;

impl ControlStore {
    /// Writes a new organization and its first owner. The slug is derived from the
    /// name, with a numeric suffix when taken. Called by
    /// [`crate::Stores::create_organization`] once the tenant store exists.
    pub(crate) async fn insert_organization(
        &self,
        id: OrgId,
        name: &OrgName,
        owner: UserId,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<Organization, StoreError> {
        let mut tx = self.db.begin().await?;
        let base = Slug::from_name(name);
        let mut slug = base.clone();
        for n in 2..=SLUG_ATTEMPTS + 1 {
            let taken: Option<i32> = with_tx!(&mut tx, c =>
                sqlx::query_scalar("SELECT 1 FROM organizations WHERE slug = $1")
                    .bind(&slug)
                    .fetch_optional(c)
                    .await
            )?;
            if taken.is_none() {
                break;
            }
            slug = base.with_suffix(n);
        }
        with_tx!(&mut tx, c =>
            sqlx::query(
                "INSERT INTO organizations (id, name, slug, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(id)
            .bind(name)
            .bind(&slug)
            .bind(now)
            .execute(c)
            .await.map(|r| r.rows_affected())
        )
        .map_err(conflict_on_unique(
            "an organization with this name already exists",
        ))?;
        let inserted = with_tx!(&mut tx, c =>
            sqlx::query(
                "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)",
            )
            .bind(id)
            .bind(owner)
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
            AuditAction::OrgCreated,
            Entity::new(EntityType::Organization, id),
            serde_json::json!({ "name": name.as_str(), "slug": slug.as_str(), "owner": owner }),
        );
        self.audit(&mut tx, event).await?;
        tx.commit().await?;
        Ok(Organization {
            id,
            name: name.clone(),
            slug,
            created_at: now,
        })
    }

    pub async fn organization(&self, id: OrgId) -> Result<Option<Organization>, StoreError> {
        let row: Option<OrgRow> = with_db!(&self.db, p =>
            sqlx::query_as("SELECT id, name, slug, created_at FROM organizations WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await
        )?;
        Ok(row.map(Into::into))
    }

    /// Every organization, by name.
    pub async fn all_organizations(&self) -> Result<Vec<Organization>, StoreError> {
        let rows: Vec<OrgRow> = with_db!(&self.db, p =>
            sqlx::query_as("SELECT id, name, slug, created_at FROM organizations ORDER BY name, id")
                .fetch_all(p)
                .await
        )?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The organizations `user` is a member of, by name, with their role.
    pub async fn organizations_of(
        &self,
        user: UserId,
    ) -> Result<Vec<OrganizationWithRole>, StoreError> {
        self.organizations_with_role(user, false).await
    }

    /// Every organization, by name, with `user`'s role where they are a member
    /// (the platform admin's view).
    pub async fn all_organizations_for(
        &self,
        user: UserId,
    ) -> Result<Vec<OrganizationWithRole>, StoreError> {
        self.organizations_with_role(user, true).await
    }

    async fn organizations_with_role(
        &self,
        user: UserId,
        include_non_member: bool,
    ) -> Result<Vec<OrganizationWithRole>, StoreError> {
        let rows: Vec<OrgWithRoleRow> = with_db!(&self.db, p =>
            sqlx::query_as(
                "SELECT o.id, o.name, o.slug, o.created_at, m.role
                 FROM organizations o
                 LEFT JOIN memberships m ON m.org_id = o.id AND m.user_id = $1
                 WHERE m.role IS NOT NULL OR $2
                 ORDER BY o.name, o.id",
            )
            .bind(user)
            .bind(include_non_member)
            .fetch_all(p)
            .await
        )?;
        rows.into_iter()
            .map(|row| {
                let role = row
                    .role
                    .map(|r| {
                        r.parse::<TenantRole>()
                            .map_err(|e| StoreError::Corrupt(e.to_string()))
                    })
                    .transpose()?;
                Ok(OrganizationWithRole {
                    organization: row.org.into(),
                    role,
                })
            })
            .collect()
    }

    /// Renames an organization, audited in its own log (through the outbox).
    pub async fn rename_organization(
        &self,
        id: OrgId,
        name: &OrgName,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<Organization, StoreError> {
        let mut tx = self.db.begin().await?;
        let previous: Option<String> = with_tx!(&mut tx, c =>
            sqlx::query_scalar("SELECT name FROM organizations WHERE id = $1")
                .bind(id)
                .fetch_optional(c)
                .await
        )?;
        let previous = previous.ok_or(StoreError::NotFound)?;
        with_tx!(&mut tx, c =>
            sqlx::query("UPDATE organizations SET name = $1, updated_at = $2 WHERE id = $3")
                .bind(name)
                .bind(now)
                .bind(id)
                .execute(c)
                .await.map(|r| r.rows_affected())
        )?;
        let event = audit.success(
            now,
            AuditAction::OrgRenamed,
            Entity::new(EntityType::Organization, id),
            serde_json::json!({ "from": previous, "to": name.as_str() }),
        );
        outbox::enqueue(&mut tx, id, &event).await?;
        tx.commit().await?;
        self.organization(id).await?.ok_or(StoreError::NotFound)
    }

    /// Removes the organization's control rows (memberships and API tokens
    /// cascade) and its service accounts. The caller,
    /// [`crate::Stores::delete_organization`], removes its tenant store.
    pub(crate) async fn delete_organization(
        &self,
        id: OrgId,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        with_tx!(&mut tx, c =>
            sqlx::query(
                "DELETE FROM users WHERE service_account = TRUE
                 AND id IN (SELECT user_id FROM memberships WHERE org_id = $1)",
            )
            .bind(id)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        )?;
        let deleted: Option<(String, String)> = with_tx!(&mut tx, c =>
            sqlx::query_as("DELETE FROM organizations WHERE id = $1 RETURNING name, slug")
                .bind(id)
                .fetch_optional(c)
                .await
        )?;
        let (name, slug) = deleted.ok_or(StoreError::NotFound)?;
        let event = audit.success(
            now,
            AuditAction::OrgDeleted,
            Entity::new(EntityType::Organization, id),
            serde_json::json!({ "name": name, "slug": slug }),
        );
        self.audit(&mut tx, event).await?;
        tx.commit().await
    }
}
