//! Service accounts of an organization: created and deleted by members who
//! manage members, with a role they could grant (never owner).

use sentinel_core::audit::AuditContext;
use sentinel_core::{DisplayName, TenantRole, UserId};
use sentinel_store::{ApiToken, ServiceAccount};

use crate::access::OrgContext;
use crate::error::AppError;
use crate::ops::flush_audit;
use crate::ops::not_found_as;
use crate::state::AppState;

/// The organization's service accounts, and their tokens.
pub async fn list(
    state: &AppState,
    ctx: &OrgContext,
) -> Result<(Vec<ServiceAccount>, Vec<ApiToken>), AppError> {
    let control = state.stores.control();
    let org = ctx.organization().id;
    Ok((
        control.service_accounts(org).await?,
        control.service_account_tokens(org).await?,
    ))
}

pub async fn create(
    state: &AppState,
    ctx: &OrgContext,
    audit: &AuditContext,
    name: &str,
    role: TenantRole,
) -> Result<ServiceAccount, AppError> {
    let name = DisplayName::parse(name)?;
    let org = ctx.organization().id;
    let account = state
        .stores
        .control()
        .create_service_account(
            org,
            ctx.principal.user.id,
            &name,
            role,
            state.clock.now(),
            audit,
        )
        .await?;
    flush_audit(state, ctx.organization().id).await;
    tracing::info!(org_id = %org, service_account = %account.id, %role, "service account created");
    Ok(account)
}

/// Deletes a service account with all its tokens.
pub async fn delete(
    state: &AppState,
    ctx: &OrgContext,
    audit: &AuditContext,
    id: UserId,
) -> Result<(), AppError> {
    let org = ctx.organization().id;
    state
        .stores
        .control()
        .delete_service_account(org, ctx.principal.user.id, id, state.clock.now(), audit)
        .await
        .map_err(not_found_as("service account"))?;
    flush_audit(state, ctx.organization().id).await;
    tracing::info!(org_id = %org, service_account = %id, "service account deleted");
    Ok(())
}
