//! Members of an organization over the API.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sentinel_core::{OrgId, TenantRole, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiResult, MemberView};
use crate::access::OrgContext;
use crate::audit::Audit;
use crate::error::{AppError, Problem};
use crate::extract::{ApiJson, ApiPath};
use crate::ops;
use crate::ops::members::UserRef;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberList {
    pub members: Vec<MemberView>,
}

/// The organization's members (`members.read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/members", tag = "orgs",
    params(("org_id" = OrgId, Path)),
    responses((status = 200, body = MemberList), (status = 404, body = Problem)))]
pub async fn list(State(state): State<AppState>, ctx: OrgContext) -> ApiResult<Json<MemberList>> {
    let members = ops::members::list(&state, &ctx).await?;
    Ok(Json(MemberList {
        members: members.into_iter().map(Into::into).collect(),
    }))
}

/// An existing user to add: exactly one of `email` and `user_id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMemberRequest {
    pub email: Option<String>,
    pub user_id: Option<UserId>,
    pub role: TenantRole,
}

/// Adds an existing user (`members.manage`; only owners may grant `owner`).
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/members", tag = "orgs", request_body = AddMemberRequest,
    params(("org_id" = OrgId, Path)),
    responses(
        (status = 201, body = MemberView),
        (status = 403, body = Problem),
        (status = 404, description = "No such user or organization", body = Problem),
        (status = 409, description = "Already a member", body = Problem),
    ))]
pub async fn add(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    ApiJson(body): ApiJson<AddMemberRequest>,
) -> ApiResult<(StatusCode, Json<MemberView>)> {
    let who = match (body.email, body.user_id) {
        (Some(email), None) => UserRef::Email(email),
        (None, Some(id)) => UserRef::Id(id),
        _ => {
            return Err(
                AppError::BadRequest("give exactly one of `email` and `user_id`".into()).into(),
            );
        }
    };
    let member = ops::members::add(&state, &ctx, &audit, who, body.role).await?;
    Ok((StatusCode::CREATED, Json(member.into())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRoleRequest {
    pub role: TenantRole,
}

/// Changes a member's role (`members.manage`; the owner role needs an owner; the
/// last owner cannot be demoted).
#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}/members/{user_id}", tag = "orgs", request_body = ChangeRoleRequest,
    params(("org_id" = OrgId, Path), ("user_id" = UserId, Path)),
    responses(
        (status = 200, body = MemberView),
        (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "Would leave the organization without an owner", body = Problem),
    ))]
pub async fn change_role(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    ApiPath((_, user)): ApiPath<(OrgId, UserId)>,
    ApiJson(body): ApiJson<ChangeRoleRequest>,
) -> ApiResult<Json<MemberView>> {
    let member = ops::members::change_role(&state, &ctx, &audit, user, body.role).await?;
    Ok(Json(member.into()))
}

/// Removes a member (`members.manage`; the last owner cannot be removed).
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/members/{user_id}", tag = "orgs",
    params(("org_id" = OrgId, Path), ("user_id" = UserId, Path)),
    responses(
        (status = 204),
        (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "Would leave the organization without an owner", body = Problem),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    ApiPath((_, user)): ApiPath<(OrgId, UserId)>,
) -> ApiResult<StatusCode> {
    ops::members::remove(&state, &ctx, &audit, user).await?;
    Ok(StatusCode::NO_CONTENT)
}
