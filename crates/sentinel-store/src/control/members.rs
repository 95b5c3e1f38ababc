//! Who belongs to which organization, with which role. Every change keeps at least
//! one owner per organization.

use sentinel_core::audit::{AuditAction, AuditContext, Entity, EntityType};
use sentinel_core::{
    DisplayName, Email, OrgId, Permission, TenantRole, Timestamp, TwoFactorPolicy, UserId,
};

use super::ControlStore;
use super::orgs::{OrgWithRoleRow, Organization};
use crate::audit::outbox;
use crate::backend::{Tx, with_db, with_tx};
use crate::tenant::{PermissionDenied, TenantAccess};
use crate::{StoreError, conflict_on_unique};

/// One user's membership of one organization, as read from the control store.
/// Only the store makes these (the fields are private), which is what makes a
/// [`TenantAccess`] trustworthy: see [`Membership::authorize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    organization: Organization,
    role: TenantRole,
    two_factor_policy: TwoFactorPolicy,
    two_factor_on: bool,
    service_account: bool,
}

impl Membership {
    /// The organization this membership is of.
    pub fn organization(&self) -> &Organization {
        &self.organization
    }

    pub fn role(&self) -> TenantRole {
        self.role
    }

    /// The organization's two-factor policy, as read with the membership.
    pub fn two_factor_policy(&self) -> TwoFactorPolicy {
        self.two_factor_policy
    }

    /// Whether the organization's policy requires this member to have
    /// two-factor authentication on and they have not. Service accounts cannot
    /// have it: the policy applies to the members who make their tokens instead.
    pub fn lacks_required_two_factor(&self) -> bool {
        !self.service_account && self.two_factor_policy.requires(self.role) && !self.two_factor_on
    }

    /// The one way to obtain a [`TenantAccess`]: this member's role must grant
    /// `permission`.
    pub fn authorize(&self, permission: Permission) -> Result<TenantAccess, PermissionDenied> {
        if self.role.grants(permission) {
            Ok(TenantAccess::new(self.organization.id, self.role))
        } else {
            Err(PermissionDenied { permission })
        }
    }
}

#[derive(sqlx::FromRow)]
struct MembershipRow {
    #[sqlx(flatten)]
    org: OrgWithRoleRow,
    two_factor_policy: String,
    two_factor_enabled_at: Option<Timestamp>,
    service_account: bool,
}

/// A member as listed on the members page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: UserId,
    pub email: Email,
    pub name: DisplayName,
    pub role: TenantRole,
    pub since: Timestamp,
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    user_id: UserId,
    email: String,
    display_name: String,
    role: String,
    created_at: Timestamp,
}

pub(super) fn parse_role(s: &str) -> Result<TenantRole, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("unknown role {s:?} in memberships")))
}

/// Key that serializes every change to memberships (and the deletion of users,
/// which removes memberships), so that the owner rules are checked against the
/// state they change. Membership changes are rare; one lock keeps them simple.
pub(crate) const MEMBERSHIPS_LOCK: &str = "memberships";

pub(crate) async fn count_owners(tx: &mut Tx, org: OrgId) -> Result<i64, StoreError> {
    let n = with_tx!(tx, c =>
        sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role = 'owner'")
            .bind(org)
            .fetch_one(c)
            .await
    )?;
    Ok(n)
}

const LAST_OWNER: &str =
    "an organization must keep at least one owner; make someone else owner first";
const OWNERS_ONLY: &str = "only owners can grant, change or remove the owner role";

/// Checks, inside the transaction, that `actor` may move a member from `from` to
/// `to` (see [`TenantRole::may_change_membership`]).
pub(super) async fn check_actor(
    tx: &mut Tx,
    org: OrgId,
    actor: UserId,
    from: Option<TenantRole>,
    to: Option<TenantRole>,
) -> Result<(), StoreError> {
    let actor_role = role_in(tx, org, actor)
        .await?
        .ok_or(StoreError::NotPermitted(OWNERS_ONLY))?;
    if actor_role.may_change_membership(from, to) {
        Ok(())
    } else if actor_role.grants(Permission::MembersManage) {
        Err(StoreError::NotPermitted(OWNERS_ONLY))
    } else {
        Err(StoreError::NotPermitted(
            "your role in this organization does not allow this",
        ))
    }
}

impl ControlStore {
    /// `user`'s membership of `org`, with the organization, its two-factor
    /// policy and whether the user's two-factor authentication is on, in one
    /// query (every organization route asks this).
    pub async fn membership(
        &self,
        org: OrgId,
        user: UserId,
    ) -> Result<Option<Membership>, StoreError> {
        let row: Option<MembershipRow> = with_db!(&self.db, p =>
            sqlx::query_as(
                "SELECT o.id, o.name, o.slug, o.created_at, m.role, o.two_factor_policy,
                        t.enabled_at AS two_factor_enabled_at, u.service_account
                 FROM memberships m JOIN organizations o ON o.id = m.org_id
                 JOIN users u ON u.id = m.user_id
                 LEFT JOIN user_two_factor t ON t.user_id = m.user_id
                 WHERE m.org_id = $1 AND m.user_id = $2",
            )
            .bind(org)
            .bind(user)
            .fetch_optional(p)
            .await
        )?;
        let Some(row) = row else { return Ok(None) };
        let role = row.org.role.as_deref().map(parse_role).transpose()?;
        let role = role.ok_or_else(|| StoreError::Corrupt("a membership without a role".into()))?;
        Ok(Some(Membership {
            organization: row.org.org.into(),
            role,
            two_factor_policy: super::two_factor::parse_policy(&row.two_factor_policy)?,
            two_factor_on: row.two_factor_enabled_at.is_some(),
            service_account: row.service_account,
        }))
    }

    /// The organization's members, by name.
    pub async fn members(&self, org: OrgId) -> Result<Vec<Member>, StoreError> {
        let rows: Vec<MemberRow> = with_db!(&self.db, p =>
            sqlx::query_as(
                "SELECT m.user_id, u.email, u.display_name, m.role, m.created_at
                 FROM memberships m JOIN users u ON u.id = m.user_id
                 WHERE m.org_id = $1 AND u.service_account = FALSE
                 ORDER BY u.display_name, u.email",
            )
            .bind(org)
            .fetch_all(p)
            .await
        )?;
        rows.into_iter()
            .map(|row| {
                Ok(Member {
                    user_id: row.user_id,
                    email: Email::from_trusted(row.email),
                    name: DisplayName::from_trusted(row.display_name),
                    role: parse_role(&row.role)?,
                    since: row.created_at,
                })
            })
            .collect()
    }

    /// `actor` adds an existing user with `role`. `NotPermitted` unless the
    /// actor's current role allows it, `NotFound` if the user or organization does
    /// not exist, `Conflict` if they are already a member. The change is
    /// audited in the organization's log (through the outbox).
    pub async fn add_member(
        &self,
        org: OrgId,
        actor: UserId,
        user: UserId,
        role: TenantRole,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.serialize_on(MEMBERSHIPS_LOCK).await?;
        check_actor(&mut tx, org, actor, None, Some(role)).await?;
        // A service account belongs to the one organization it was made in.
        let result = with_tx!(&mut tx, c =>
            sqlx::query(
                "INSERT INTO memberships (org_id, user_id, role, created_at)
                 SELECT $1, id, $3, $4 FROM users WHERE id = $2 AND service_account = FALSE",
            )
                .bind(org)
                .bind(user)
                .bind(role.as_str())
                .bind(now)
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        );
        match result {
            Ok(0) => Err(StoreError::NotFound),
            Ok(_) => {
                let event = audit.success(
                    now,
                    AuditAction::MemberAdded,
                    Entity::new(EntityType::User, user),
                    serde_json::json!({ "role": role }),
                );
                outbox::enqueue(&mut tx, org, &event).await?;
                tx.commit().await
            }
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                Err(StoreError::NotFound)
            }
            Err(e) => Err(conflict_on_unique("this user is already a member")(e)),
        }
    }

    /// `actor` changes a member's role; returns the previous one. The actor's and
    /// the member's roles are read under the lock, so the owner rules hold against
    /// concurrent changes. Demoting the last owner is refused.
    pub async fn change_role(
        &self,
        org: OrgId,
        actor: UserId,
        user: UserId,
        role: TenantRole,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<TenantRole, StoreError> {
        let mut tx = self.db.begin().await?;
        tx.serialize_on(MEMBERSHIPS_LOCK).await?;
        let previous = role_in(&mut tx, org, user)
            .await?
            .ok_or(StoreError::NotFound)?;
        check_actor(&mut tx, org, actor, Some(previous), Some(role)).await?;
        if role == TenantRole::Owner && is_service_account(&mut tx, user).await? {
            return Err(StoreError::Refused("a service account cannot be an owner"));
        }
        if previous == TenantRole::Owner
            && role != TenantRole::Owner
            && count_owners(&mut tx, org).await? <= 1
        {
            return Err(StoreError::Refused(LAST_OWNER));
        }
        with_tx!(&mut tx, c =>
            sqlx::query("UPDATE memberships SET role = $1 WHERE org_id = $2 AND user_id = $3")
                .bind(role.as_str())
                .bind(org)
                .bind(user)
                .execute(c)
                .await.map(|r| r.rows_affected())
        )?;
        let event = audit.success(
            now,
            AuditAction::MemberRoleChanged,
            Entity::new(EntityType::User, user),
            serde_json::json!({ "from": previous, "to": role }),
        );
        outbox::enqueue(&mut tx, org, &event).await?;
        tx.commit().await?;
        Ok(previous)
    }

    /// `actor` removes a member; returns the role they had. Removing the last
    /// owner is refused.
    pub async fn remove_member(
        &self,
        org: OrgId,
        actor: UserId,
        user: UserId,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<TenantRole, StoreError> {
        let mut tx = self.db.begin().await?;
        tx.serialize_on(MEMBERSHIPS_LOCK).await?;
        let previous = role_in(&mut tx, org, user)
            .await?
            .ok_or(StoreError::NotFound)?;
        check_actor(&mut tx, org, actor, Some(previous), None).await?;
        if previous == TenantRole::Owner && count_owners(&mut tx, org).await? <= 1 {
            return Err(StoreError::Refused(LAST_OWNER));
        }
        with_tx!(&mut tx, c =>
            sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
                .bind(org)
                .bind(user)
                .execute(c)
                .await.map(|r| r.rows_affected())
        )?;
        let event = audit.success(
            now,
            AuditAction::MemberRemoved,
            Entity::new(EntityType::User, user),
            serde_json::json!({ "role": previous }),
        );
        outbox::enqueue(&mut tx, org, &event).await?;
        tx.commit().await?;
        Ok(previous)
    }
}

async fn is_service_account(tx: &mut Tx, user: UserId) -> Result<bool, StoreError> {
    let flag: Option<bool> = with_tx!(tx, c =>
        sqlx::query_scalar("SELECT service_account FROM users WHERE id = $1")
            .bind(user)
            .fetch_optional(c)
            .await
    )?;
    Ok(flag.unwrap_or(false))
}

async fn role_in(tx: &mut Tx, org: OrgId, user: UserId) -> Result<Option<TenantRole>, StoreError> {
    let role: Option<String> = with_tx!(tx, c =>
        sqlx::query_scalar("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(org)
            .bind(user)
            .fetch_optional(c)
            .await
    )?;
    role.as_deref().map(parse_role).transpose()
}
