//! Adding members, changing their roles and removing them. The route's
//! `members.manage` permission admits the caller; the role table then decides
//! whether this particular change is theirs to make (only owners touch the owner
//! role), and the store keeps at least one owner.

use sentinel_core::{Email, TenantRole, UserId};
use sentinel_store::{Member, StoreError};

use crate::access::OrgContext;
use crate::error::AppError;
use crate::state::AppState;

/// Who to add: an existing user, by e-mail address or id.
#[derive(Debug, Clone)]
pub enum UserRef {
    Email(String),
    Id(UserId),
}

const OWNERS_ONLY: &str = "only owners can grant, change or remove the owner role";

pub async fn list(state: &AppState, ctx: &OrgContext) -> Result<Vec<Member>, AppError> {
    Ok(state.stores.control().members(ctx.organization.id).await?)
}

pub async fn add(
    state: &AppState,
    ctx: &OrgContext,
    who: UserRef,
    role: TenantRole,
) -> Result<Member, AppError> {
    if !ctx
        .membership
        .role()
        .may_change_membership(None, Some(role))
    {
        return Err(AppError::Forbidden(OWNERS_ONLY));
    }
    let control = state.stores.control();
    let user = match who {
        UserRef::Email(email) => {
            let email = Email::parse(&email)?;
            control.user_by_email(&email).await?.map(|u| u.user)
        }
        UserRef::Id(id) => control.user(id).await?,
    }
    .ok_or(AppError::NotFound("user"))?;
    let org = ctx.organization.id;
    control
        .add_member(org, user.id, role, state.clock.now())
        .await?;
    tracing::info!(org_id = %org, member = %user.id, %role, "member added");
    find(state, ctx, user.id).await
}

pub async fn change_role(
    state: &AppState,
    ctx: &OrgContext,
    user: UserId,
    role: TenantRole,
) -> Result<Member, AppError> {
    let current = find(state, ctx, user).await?;
    if !ctx
        .membership
        .role()
        .may_change_membership(Some(current.role), Some(role))
    {
        return Err(AppError::Forbidden(OWNERS_ONLY));
    }
    let org = ctx.organization.id;
    let previous = state
        .stores
        .control()
        .change_role(org, user, role)
        .await
        .map_err(not_a_member)?;
    tracing::info!(org_id = %org, member = %user, from = %previous, to = %role, "member role changed");
    find(state, ctx, user).await
}

pub async fn remove(state: &AppState, ctx: &OrgContext, user: UserId) -> Result<(), AppError> {
    let current = find(state, ctx, user).await?;
    if !ctx
        .membership
        .role()
        .may_change_membership(Some(current.role), None)
    {
        return Err(AppError::Forbidden(OWNERS_ONLY));
    }
    let org = ctx.organization.id;
    let previous = state
        .stores
        .control()
        .remove_member(org, user)
        .await
        .map_err(not_a_member)?;
    tracing::info!(org_id = %org, member = %user, role = %previous, "member removed");
    Ok(())
}

async fn find(state: &AppState, ctx: &OrgContext, user: UserId) -> Result<Member, AppError> {
    state
        .stores
        .control()
        .members(ctx.organization.id)
        .await?
        .into_iter()
        .find(|m| m.user_id == user)
        .ok_or(AppError::NotFound("member"))
}

fn not_a_member(e: StoreError) -> AppError {
    match e {
        StoreError::NotFound => AppError::NotFound("member"),
        other => other.into(),
    }
}
