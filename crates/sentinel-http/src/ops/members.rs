//! Adding members, changing their roles and removing them. The route's
//! `members.manage` permission admits the caller; the store then checks, under
//! its lock and against current roles, that this particular change is the
//! caller's to make (only owners touch the owner role) and that the
//! organization keeps an owner.

use sentinel_core::audit::AuditContext;
use sentinel_core::{Email, TenantRole, UserId};
use sentinel_store::Member;

use crate::access::OrgContext;
use crate::error::AppError;
use crate::ops::{flush_audit, not_found_as};
use crate::state::AppState;

/// Who to add: an existing user, by e-mail address or id.
#[derive(Debug, Clone)]
pub enum UserRef {
    Email(String),
    Id(UserId),
}

pub async fn list(state: &AppState, ctx: &OrgContext) -> Result<Vec<Member>, AppError> {
    Ok(state
        .stores
        .control()
        .members(ctx.organization().id)
        .await?)
}

pub async fn add(
    state: &AppState,
    ctx: &OrgContext,
    audit: &AuditContext,
    who: UserRef,
    role: TenantRole,
) -> Result<Member, AppError> {
    let control = state.stores.control();
    let user = match who {
        UserRef::Email(email) => {
            let email = Email::parse(&email)?;
            control.user_by_email(&email).await?.map(|u| u.user)
        }
        UserRef::Id(id) => control.user(id).await?,
    }
    .ok_or(AppError::NotFound("user"))?;
    let (org, actor) = (ctx.organization().id, ctx.principal.user.id);
    control
        .add_member(org, actor, user.id, role, state.clock.now(), audit)
        .await
        .map_err(not_found_as("user"))?;
    flush_audit(state, ctx.organization().id).await;
    tracing::info!(org_id = %org, member = %user.id, %role, "member added");
    find(state, ctx, user.id).await
}

pub async fn change_role(
    state: &AppState,
    ctx: &OrgContext,
    audit: &AuditContext,
    user: UserId,
    role: TenantRole,
) -> Result<Member, AppError> {
    let (org, actor) = (ctx.organization().id, ctx.principal.user.id);
    let previous = state
        .stores
        .control()
        .change_role(org, actor, user, role, state.clock.now(), audit)
        .await
        .map_err(not_found_as("member"))?;
    flush_audit(state, ctx.organization().id).await;
    tracing::info!(org_id = %org, member = %user, from = %previous, to = %role, "member role changed");
    find(state, ctx, user).await
}

pub async fn remove(
    state: &AppState,
    ctx: &OrgContext,
    audit: &AuditContext,
    user: UserId,
) -> Result<(), AppError> {
    let (org, actor) = (ctx.organization().id, ctx.principal.user.id);
    let previous = state
        .stores
        .control()
        .remove_member(org, actor, user, state.clock.now(), audit)
        .await
        .map_err(not_found_as("member"))?;
    flush_audit(state, ctx.organization().id).await;
    tracing::info!(org_id = %org, member = %user, role = %previous, "member removed");
    Ok(())
}

async fn find(state: &AppState, ctx: &OrgContext, user: UserId) -> Result<Member, AppError> {
    state
        .stores
        .control()
        .members(ctx.organization().id)
        .await?
        .into_iter()
        .find(|m| m.user_id == user)
        .ok_or(AppError::NotFound("member"))
}
