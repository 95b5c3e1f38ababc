//! User accounts over the API (platform admins).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sentinel_core::{SecretString, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiResult, UserView};
use crate::access::Principal;
use crate::audit::Audit;
use crate::error::Problem;
use crate::extract::{ApiJson, ApiPath};
use crate::ops;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<AdminUserView>,
}

/// A user as platform admins see one.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUserView {
    #[serde(flatten)]
    pub user: UserView,
    /// Set while failed logins keep the account locked.
    pub locked_until: Option<Timestamp>,
}

/// Every user account.
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = UserList), (status = 403, body = Problem)))]
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<UserList>> {
    let users = ops::users::list(&state).await?;
    Ok(Json(UserList {
        users: users
            .into_iter()
            .map(|(user, locked_until)| AdminUserView {
                user: user.into(),
                locked_until,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub email: String,
    pub name: String,
    /// The initial password; it must meet the password policy.
    #[schema(value_type = String)]
    pub password: SecretString,
    #[serde(default)]
    pub platform_admin: bool,
}

/// Creates a user account.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUserRequest,
    responses(
        (status = 201, body = UserView),
        (status = 409, description = "The e-mail address is taken", body = Problem),
        (status = 422, body = Problem),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    ApiJson(body): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let user = ops::users::create(
        &state,
        &principal,
        &audit,
        &body.email,
        &body.name,
        body.password.expose(),
        body.platform_admin,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    pub platform_admin: bool,
}

/// Grants or revokes the platform-admin role (the last platform admin stays).
#[utoipa::path(patch, path = "/api/v1/users/{user_id}", tag = "users", request_body = UpdateUserRequest,
    params(("user_id" = UserId, Path)),
    responses((status = 200, body = UserView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    ApiPath(user): ApiPath<UserId>,
    ApiJson(body): ApiJson<UpdateUserRequest>,
) -> ApiResult<Json<UserView>> {
    let user =
        ops::users::set_platform_admin(&state, &principal, &audit, user, body.platform_admin)
            .await?;
    Ok(Json(user.into()))
}

/// Deletes a user account with its sessions and memberships (not one's own, not
/// the last owner of an organization, not the last platform admin).
#[utoipa::path(delete, path = "/api/v1/users/{user_id}", tag = "users",
    params(("user_id" = UserId, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    ApiPath(user): ApiPath<UserId>,
) -> ApiResult<StatusCode> {
    ops::users::delete(&state, &principal, &audit, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts the login lock that failed logins put on an account.
#[utoipa::path(post, path = "/api/v1/users/{user_id}/unlock", tag = "users",
    params(("user_id" = UserId, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn unlock(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    ApiPath(user): ApiPath<UserId>,
) -> ApiResult<StatusCode> {
    ops::users::unlock(&state, &principal, &audit, user).await?;
    Ok(StatusCode::NO_CONTENT)
}
