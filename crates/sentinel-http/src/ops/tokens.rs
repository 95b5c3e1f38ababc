//! API tokens: made by a logged-in user for one organization, with at most the
//! permissions their creator holds there (and, for a service account's token,
//! at most the account's role); listed without their secrets; revoked at once.

use sentinel_core::api_token::{self, ApiTokenSecret};
use sentinel_core::audit::AuditContext;
use sentinel_core::{DisplayName, OrgId, Permission, SecretString, UserId, ValidationError};
use sentinel_store::{ApiToken, NewApiToken};
use uuid::Uuid;

use crate::access::Principal;
use crate::error::AppError;
use crate::ops::flush_audit;
use crate::state::AppState;

/// What a token is asked for.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub name: String,
    pub org_id: OrgId,
    pub permissions: Vec<String>,
    pub expires_in_days: u32,
    /// Whose token: a service account of the organization, or else the caller's.
    pub service_account: Option<UserId>,
}

/// A new token and its secret, shown once.
#[derive(Debug)]
pub struct IssuedToken {
    pub token: ApiToken,
    pub secret: SecretString,
}

pub async fn create(
    state: &AppState,
    principal: &Principal,
    audit: &AuditContext,
    request: TokenRequest,
) -> Result<IssuedToken, AppError> {
    principal.require_recent_sign_in(state.clock.now())?;
    let name = DisplayName::parse(&request.name)?;
    let lifetime = api_token::lifetime(request.expires_in_days).ok_or_else(|| {
        ValidationError::new(
            "expires_in_days",
            format!("must be between 1 and {}", api_token::MAX_LIFETIME_DAYS),
        )
    })?;
    let permissions = parse_permissions(&request.permissions)?;
    let control = state.stores.control();
    let org = request.org_id;
    let creator = control
        .membership(org, principal.user.id)
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    if creator.lacks_required_two_factor() {
        return Err(AppError::TwoFactorRequired);
    }
    if permissions.iter().any(|p| !creator.role().grants(*p)) {
        return Err(AppError::Forbidden(
            "a token cannot have permissions that you do not hold in its organization",
        ));
    }
    let owner = match request.service_account {
        None => principal.user.id,
        Some(id) => {
            if !creator.role().grants(Permission::MembersManage) {
                return Err(AppError::Forbidden(
                    "only members who manage members can make service account tokens",
                ));
            }
            let account = control
                .service_account(org, id)
                .await?
                .ok_or(AppError::NotFound("service account"))?;
            if permissions.iter().any(|p| !account.role.grants(*p)) {
                return Err(ValidationError::new(
                    "permissions",
                    format!(
                        "the service account's role ({}) does not grant them all",
                        account.role
                    ),
                )
                .into());
            }
            account.id
        }
    };
    let secret = ApiTokenSecret::generate()?;
    let now = state.clock.now();
    let token = control
        .create_api_token(
            &NewApiToken {
                id: Uuid::now_v7(),
                secret_hash: secret.hash(),
                name: name.as_str().to_owned(),
                org_id: org,
                owner,
                creator: principal.user.id,
                permissions,
                created_at: now,
                expires_at: now.plus(lifetime),
            },
            audit,
        )
        .await?;
    flush_audit(state, org).await;
    tracing::info!(token_id = %token.id, org_id = %org, owner = %owner, "API token created");
    Ok(IssuedToken {
        token,
        secret: SecretString::new(secret.text()),
    })
}

/// Permission names, each known, at least one; duplicates collapse.
fn parse_permissions(names: &[String]) -> Result<Vec<Permission>, AppError> {
    let mut permissions = Vec::new();
    for name in names {
        let permission: Permission =
            name.parse()
                .map_err(|e: sentinel_core::role::UnknownPermission| {
                    ValidationError::new("permissions", e.to_string())
                })?;
        if !permissions.contains(&permission) {
            permissions.push(permission);
        }
    }
    if permissions.is_empty() {
        return Err(ValidationError::new("permissions", "name at least one permission").into());
    }
    permissions.sort_by_key(|p| Permission::ALL.iter().position(|q| q == p));
    Ok(permissions)
}

/// The tokens the caller owns, and those they made for service accounts of
/// organizations whose members they still manage.
pub async fn list(state: &AppState, principal: &Principal) -> Result<Vec<ApiToken>, AppError> {
    let control = state.stores.control();
    let me = principal.user.id;
    let managed: Vec<OrgId> = control
        .organizations_of(me)
        .await?
        .into_iter()
        .filter(|o| o.role.is_some_and(|r| r.grants(Permission::MembersManage)))
        .map(|o| o.organization.id)
        .collect();
    let tokens = control.api_tokens_of(me).await?;
    Ok(tokens
        .into_iter()
        .filter(|t| t.owner == me || managed.contains(&t.org_id))
        .collect())
}

/// Revokes a token the caller owns or made, or any token of an organization
/// whose members the caller manages (a leaked token is everyone's problem).
/// Revoking a revoked token changes nothing.
pub async fn revoke(
    state: &AppState,
    principal: &Principal,
    audit: &AuditContext,
    id: Uuid,
) -> Result<(), AppError> {
    let control = state.stores.control();
    let token = control
        .api_token(id)
        .await?
        .ok_or(AppError::NotFound("token"))?;
    let me = principal.user.id;
    let allowed = token.owner == me
        || token.creator == me
        || control
            .membership(token.org_id, me)
            .await?
            .is_some_and(|m| m.role().grants(Permission::MembersManage));
    if !allowed {
        return Err(AppError::NotFound("token"));
    }
    if token.revoked_at.is_some() {
        return Ok(());
    }
    control
        .revoke_api_token(id, state.clock.now(), audit)
        .await
        .map_err(crate::ops::not_found_as("token"))?;
    flush_audit(state, token.org_id).await;
    tracing::info!(token_id = %id, by = %me, "API token revoked");
    Ok(())
}
