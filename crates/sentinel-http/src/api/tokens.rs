//! API tokens and service accounts over the API.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sentinel_core::{OrgId, TenantRole, Timestamp, UserId};
use sentinel_store::{ApiToken, ServiceAccount};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::ApiResult;
use crate::access::{OrgContext, Principal};
use crate::audit::Audit;
use crate::error::Problem;
use crate::extract::{ApiJson, ApiPath};
use crate::ops;
use crate::ops::tokens::TokenRequest;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    pub name: String,
    /// The one organization the token works in.
    pub org_id: OrgId,
    /// Permission names (e.g. `devices.read`); none beyond the creator's own.
    pub permissions: Vec<String>,
    /// 1 to 365.
    pub expires_in_days: u32,
    /// Make the token for this service account of the organization instead of
    /// for the caller (needs `members.manage`).
    pub service_account_id: Option<UserId>,
}

/// The new token: `token` is shown this once and never again.
#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    pub id: Uuid,
    pub token: String,
    pub expires_at: Timestamp,
}

/// An API token, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub id: Uuid,
    pub name: String,
    pub org_id: OrgId,
    pub owner_id: UserId,
    pub owner_name: String,
    pub service_account: bool,
    pub creator_id: UserId,
    pub permissions: Vec<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub last_used_ip: Option<String>,
}

impl From<ApiToken> for TokenView {
    fn from(t: ApiToken) -> Self {
        TokenView {
            id: t.id,
            name: t.name,
            org_id: t.org_id,
            owner_id: t.owner,
            owner_name: t.owner_name.to_string(),
            service_account: t.service_account,
            creator_id: t.creator,
            permissions: t.permissions.iter().map(|p| p.name().to_owned()).collect(),
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
            last_used_at: t.last_used_at,
            last_used_ip: t.last_used_ip,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenView>,
}

/// Creates an API token (`Authorization: Bearer snt_…` on `/api/v1`).
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateTokenRequest,
    responses(
        (status = 201, body = CreatedToken),
        (status = 403, description = "More permissions than the creator holds", body = Problem),
        (status = 404, description = "Not a member of the organization", body = Problem),
        (status = 422, body = Problem),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    ApiJson(body): ApiJson<CreateTokenRequest>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let issued = ops::tokens::create(
        &state,
        &principal,
        &audit,
        TokenRequest {
            name: body.name,
            org_id: body.org_id,
            permissions: body.permissions,
            expires_in_days: body.expires_in_days,
            service_account: body.service_account_id,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            id: issued.token.id,
            token: issued.secret.expose().to_owned(),
            expires_at: issued.token.expires_at,
        }),
    ))
}

/// The tokens the caller owns or made (never their secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = TokenList)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<TokenList>> {
    let tokens = ops::tokens::list(&state, &principal).await?;
    Ok(Json(TokenList {
        tokens: tokens.into_iter().map(Into::into).collect(),
    }))
}

/// Revokes a token at once (its owner, its creator, or whoever manages the
/// members of its organization).
#[utoipa::path(delete, path = "/api/v1/tokens/{token_id}", tag = "tokens",
    params(("token_id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn revoke(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    ops::tokens::revoke(&state, &principal, &audit, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateServiceAccountRequest {
    pub name: String,
    /// Any role but owner, and only one the caller could grant.
    pub role: TenantRole,
}

/// A service account: a non-human member reachable only through API tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceAccountView {
    pub id: UserId,
    pub name: String,
    pub role: TenantRole,
    pub created_at: Timestamp,
    pub tokens: Vec<TokenView>,
}

impl ServiceAccountView {
    fn new(account: ServiceAccount, tokens: &[ApiToken]) -> Self {
        ServiceAccountView {
            tokens: tokens
                .iter()
                .filter(|t| t.owner == account.id)
                .cloned()
                .map(Into::into)
                .collect(),
            id: account.id,
            name: account.name.to_string(),
            role: account.role,
            created_at: account.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceAccountList {
    pub service_accounts: Vec<ServiceAccountView>,
}

/// The organization's service accounts and their tokens (`members.read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/service-accounts", tag = "orgs",
    params(("org_id" = OrgId, Path)),
    responses((status = 200, body = ServiceAccountList), (status = 404, body = Problem)))]
pub async fn service_accounts(
    State(state): State<AppState>,
    ctx: OrgContext,
) -> ApiResult<Json<ServiceAccountList>> {
    let (accounts, tokens) = ops::service_accounts::list(&state, &ctx).await?;
    Ok(Json(ServiceAccountList {
        service_accounts: accounts
            .into_iter()
            .map(|a| ServiceAccountView::new(a, &tokens))
            .collect(),
    }))
}

/// Creates a service account (`members.manage`).
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/service-accounts", tag = "orgs",
    request_body = CreateServiceAccountRequest, params(("org_id" = OrgId, Path)),
    responses(
        (status = 201, body = ServiceAccountView),
        (status = 403, body = Problem),
        (status = 409, description = "Owner asked for", body = Problem),
        (status = 422, body = Problem),
    ))]
pub async fn create_service_account(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    ApiJson(body): ApiJson<CreateServiceAccountRequest>,
) -> ApiResult<(StatusCode, Json<ServiceAccountView>)> {
    let account =
        ops::service_accounts::create(&state, &ctx, &audit, &body.name, body.role).await?;
    Ok((
        StatusCode::CREATED,
        Json(ServiceAccountView::new(account, &[])),
    ))
}

/// Deletes a service account and all its tokens (`members.manage`).
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/service-accounts/{user_id}", tag = "orgs",
    params(("org_id" = OrgId, Path), ("user_id" = UserId, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_service_account(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    ApiPath((_, id)): ApiPath<(OrgId, UserId)>,
) -> ApiResult<StatusCode> {
    ops::service_accounts::delete(&state, &ctx, &audit, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
