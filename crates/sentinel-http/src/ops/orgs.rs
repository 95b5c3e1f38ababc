//! Listing, creating, renaming and deleting organizations.

use crate::rate_limit::RateKey;
use sentinel_core::audit::AuditContext;
use sentinel_core::{OrgId, OrgName};
use sentinel_store::{Organization, OrganizationWithRole};

use crate::access::{OrgContext, Principal};
use crate::error::AppError;
use crate::state::AppState;

/// The caller's organizations; for a platform admin, every organization (with a
/// role only where they are a member).
pub async fn list(
    state: &AppState,
    principal: &Principal,
) -> Result<Vec<OrganizationWithRole>, AppError> {
    let control = state.stores.control();
    Ok(if principal.user.platform_admin {
        control.all_organizations_for(principal.user.id).await?
    } else {
        control.organizations_of(principal.user.id).await?
    })
}

/// Creates an organization with the caller as its owner.
pub async fn create(
    state: &AppState,
    principal: &Principal,
    audit: &AuditContext,
    name: &str,
) -> Result<Organization, AppError> {
    state
        .limits
        .org_creation
        .check(RateKey::User(principal.user.id.as_uuid()))?;
    let name = OrgName::parse(name)?;
    let org = state
        .stores
        .create_organization(&name, principal.user.id, state.clock.as_ref(), audit)
        .await?;
    tracing::info!(org_id = %org.id, user_id = %principal.user.id, "organization created");
    Ok(org)
}

pub async fn rename(
    state: &AppState,
    ctx: &OrgContext,
    audit: &AuditContext,
    name: &str,
) -> Result<Organization, AppError> {
    let name = OrgName::parse(name)?;
    let org = state
        .stores
        .control()
        .rename_organization(ctx.organization().id, &name, state.clock.now(), audit)
        .await?;
    super::flush_audit(state, ctx.organization().id).await;
    tracing::info!(org_id = %org.id, "organization renamed");
    Ok(org)
}

/// Deletes an organization and its tenant store (platform admins only).
pub async fn delete(
    state: &AppState,
    principal: &Principal,
    audit: &AuditContext,
    org: OrgId,
) -> Result<(), AppError> {
    state
        .stores
        .delete_organization(org, state.clock.as_ref(), audit)
        .await
        .map_err(|e| match e {
            sentinel_store::StoreError::NotFound => AppError::NotFound("organization"),
            other => other.into(),
        })?;
    state.ingest.stop_org(org).await;
    tracing::info!(org_id = %org, user_id = %principal.user.id, "organization deleted");
    Ok(())
}
