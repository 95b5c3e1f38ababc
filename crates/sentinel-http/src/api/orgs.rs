//! Organizations over the API.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sentinel_core::OrgId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiResult, OrgView};
use crate::access::{OrgContext, Principal};
use crate::audit::Audit;
use crate::error::Problem;
use crate::extract::{ApiJson, ApiPath};
use crate::ops;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct OrgList {
    pub organizations: Vec<OrgView>,
}

/// The caller's organizations (a platform admin sees all of them).
#[utoipa::path(get, path = "/api/v1/orgs", tag = "orgs",
    responses((status = 200, body = OrgList), (status = 401, body = Problem)))]
pub async fn list(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<OrgList>> {
    let orgs = ops::orgs::list(&state, &principal).await?;
    Ok(Json(OrgList {
        organizations: orgs.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgNameRequest {
    pub name: String,
}

/// Creates an organization with the caller as owner (platform admins, or anyone
/// when `allow_org_self_service` is on).
#[utoipa::path(post, path = "/api/v1/orgs", tag = "orgs", request_body = OrgNameRequest,
    responses(
        (status = 201, body = OrgView),
        (status = 403, body = Problem),
        (status = 422, body = Problem),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    ApiJson(body): ApiJson<OrgNameRequest>,
) -> ApiResult<(StatusCode, Json<OrgView>)> {
    let org = ops::orgs::create(&state, &principal, &audit, &body.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(OrgView::new(org, Some(sentinel_core::TenantRole::Owner))),
    ))
}

/// One organization (`org.read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}", tag = "orgs",
    params(("org_id" = OrgId, Path)),
    responses((status = 200, body = OrgView), (status = 404, body = Problem)))]
pub async fn get(ctx: OrgContext) -> Json<OrgView> {
    Json(OrgView::new(
        ctx.organization().clone(),
        Some(ctx.membership.role()),
    ))
}

/// Renames an organization (`org.manage`); its slug stays.
#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}", tag = "orgs", request_body = OrgNameRequest,
    params(("org_id" = OrgId, Path)),
    responses((status = 200, body = OrgView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn rename(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    ApiJson(body): ApiJson<OrgNameRequest>,
) -> ApiResult<Json<OrgView>> {
    let org = ops::orgs::rename(&state, &ctx, &audit, &body.name).await?;
    Ok(Json(OrgView::new(org, Some(ctx.membership.role()))))
}

/// Deletes an organization and all its data (platform admins). Irreversible.
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}", tag = "orgs",
    params(("org_id" = OrgId, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    ApiPath(org): ApiPath<OrgId>,
) -> ApiResult<StatusCode> {
    ops::orgs::delete(&state, &principal, &audit, org).await?;
    Ok(StatusCode::NO_CONTENT)
}
