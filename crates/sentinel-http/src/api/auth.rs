//! Login, logout and the caller's own account.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sentinel_core::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiResult, OrgView, UserView};
use crate::access::{MaybePrincipal, Principal};
use crate::audit::{Audit, RequestOrigin};
use crate::client::ClientInfo;
use crate::error::Problem;
use crate::extract::ApiJson;
use crate::ops;
use crate::ops::auth::LoginOutcome;
use crate::session::{StartedSession, clear_cookie};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    #[schema(value_type = String)]
    pub password: SecretString,
}

/// The answer to a right password when the user has two-factor authentication
/// on: no session yet; send `mfa_token` and a code to `/api/v1/auth/login/mfa`.
#[derive(Serialize, ToSchema)]
pub struct MfaRequiredResponse {
    /// Always true.
    pub mfa_required: bool,
    /// Valid for 5 minutes and 5 codes, for the second step only.
    pub mfa_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Send this as `X-CSRF-Token` with every state-changing request of the session.
    pub csrf_token: String,
    pub user: UserView,
}

/// Logs in with e-mail address and password; sets the session cookie. For a user
/// with two-factor authentication on, answers `MfaRequiredResponse` instead (no
/// cookie): the login continues at `/api/v1/auth/login/mfa`.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", security(()), request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in (`LoginResponse`; `Set-Cookie` carries the session), or `MfaRequiredResponse` when a second factor is needed", body = LoginResponse),
        (status = 401, description = "Unknown e-mail address or wrong password", body = Problem),
    ))]
pub async fn login(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    MaybePrincipal(previous): MaybePrincipal,
    client: ClientInfo,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let outcome = ops::auth::login(
        &state,
        &body.email,
        body.password.expose(),
        &client,
        &origin,
        previous.as_ref(),
    )
    .await?;
    Ok(match outcome {
        LoginOutcome::SignedIn(user, session) => signed_in(user, session),
        LoginOutcome::SecondFactorRequired(token) => Json(MfaRequiredResponse {
            mfa_required: true,
            mfa_token: token.0.expose().to_owned(),
        })
        .into_response(),
    })
}

fn signed_in(user: sentinel_store::User, session: StartedSession) -> Response {
    let body = LoginResponse {
        csrf_token: session.csrf_token,
        user: user.into(),
    };
    ([(header::SET_COOKIE, session.set_cookie)], Json(body)).into_response()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginMfaRequest {
    /// The token `POST /api/v1/auth/login` answered with.
    #[schema(value_type = String)]
    pub mfa_token: SecretString,
    /// The 6-digit code from the authenticator app, or a recovery code.
    #[schema(value_type = String)]
    pub code: SecretString,
}

/// Completes a login that needs a second factor; answers as a login does.
#[utoipa::path(post, path = "/api/v1/auth/login/mfa", tag = "auth", security(()), request_body = LoginMfaRequest,
    responses(
        (status = 200, description = "Logged in; `Set-Cookie` carries the session", body = LoginResponse),
        (status = 401, description = "Wrong code, or the pending login expired, was used up or was ended by a password change", body = Problem),
        (status = 422, description = "The code has the shape of no code", body = Problem),
    ))]
pub async fn login_mfa(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    MaybePrincipal(previous): MaybePrincipal,
    client: ClientInfo,
    ApiJson(body): ApiJson<LoginMfaRequest>,
) -> ApiResult<Response> {
    let (user, session) = ops::two_factor::complete_login(
        &state,
        body.mfa_token.expose(),
        body.code.expose(),
        &client,
        &origin,
        previous.as_ref(),
    )
    .await?;
    Ok(signed_in(user, session))
}

/// Ends the session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "Logged out; the cookie is cleared"), (status = 401, body = Problem)))]
pub async fn logout(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
) -> ApiResult<Response> {
    ops::auth::logout(&state, &principal, &audit).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, clear_cookie())],
    )
        .into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    pub user: UserView,
    /// The session's CSRF token.
    pub csrf_token: String,
    pub organizations: Vec<OrgView>,
}

/// The caller, their session's CSRF token and their organizations.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth",
    responses((status = 200, body = MeResponse), (status = 401, body = Problem)))]
pub async fn me(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<MeResponse>> {
    let organizations = state
        .stores
        .control()
        .organizations_of(principal.user.id)
        .await
        .map_err(crate::AppError::from)?;
    Ok(Json(MeResponse {
        csrf_token: principal.csrf_token().unwrap_or_default().to_owned(),
        user: principal.user.into(),
        organizations: organizations.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schema(value_type = String)]
    pub current_password: SecretString,
    #[schema(value_type = String)]
    pub new_password: SecretString,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangePasswordResponse {
    /// The new session's CSRF token (the session cookie is replaced too).
    pub csrf_token: String,
    /// How many of the caller's other sessions were ended.
    pub other_sessions_ended: u64,
}

/// Changes the caller's password. Every session of theirs ends; the caller gets a
/// new one (`Set-Cookie`, and a new CSRF token in the body).
#[utoipa::path(put, path = "/api/v1/me/password", tag = "auth", request_body = ChangePasswordRequest,
    responses(
        (status = 200, body = ChangePasswordResponse),
        (status = 422, description = "Wrong current password or weak new one", body = Problem),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    client: ClientInfo,
    ApiJson(body): ApiJson<ChangePasswordRequest>,
) -> ApiResult<Response> {
    let (session, ended) = ops::auth::change_password(
        &state,
        &principal,
        &client,
        &audit,
        body.current_password.expose(),
        body.new_password.expose(),
    )
    .await?;
    let body = ChangePasswordResponse {
        csrf_token: session.csrf_token,
        other_sessions_ended: ended,
    };
    Ok(([(header::SET_COOKIE, session.set_cookie)], Json(body)).into_response())
}
