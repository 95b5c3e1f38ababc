//! Two-factor authentication over the API: the caller's own enrolment, recovery
//! codes and switching off; an organization's policy; an admin's reset.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sentinel_core::{RecoveryCode, SecretString, Timestamp, TwoFactorPolicy, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiResult, SessionsEnded};
use crate::access::{OrgContext, Principal};
use crate::audit::Audit;
use crate::error::Problem;
use crate::extract::{ApiJson, ApiPath};
use crate::ops;
use crate::state::AppState;

/// The caller's two-factor standing.
#[derive(Debug, Serialize, ToSchema)]
pub struct TwoFactorStatus {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled_at: Option<Timestamp>,
    /// An enrolment was started and awaits its confirming code.
    pub pending: bool,
    pub recovery_codes_left: i64,
}

/// Whether the caller has two-factor authentication on.
#[utoipa::path(get, path = "/api/v1/me/two-factor", tag = "auth",
    responses((status = 200, body = TwoFactorStatus), (status = 401, body = Problem)))]
pub async fn status(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<TwoFactorStatus>> {
    let status = ops::two_factor::status(&state, principal.user.id).await?;
    Ok(Json(TwoFactorStatus {
        enabled: status.enabled_at.is_some(),
        enabled_at: status.enabled_at,
        pending: status.pending,
        recovery_codes_left: status.recovery_codes_left,
    }))
}

/// A new TOTP secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct EnrolmentResponse {
    /// The secret in base32, for typing into an app.
    pub secret: String,
    /// The `otpauth://` URI (what the QR code holds).
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
}

/// Starts enrolment: a fresh secret, pending until confirmed with a code.
#[utoipa::path(post, path = "/api/v1/me/two-factor/enrolment", tag = "auth",
    responses(
        (status = 201, body = EnrolmentResponse),
        (status = 409, description = "Two-factor authentication is already on", body = Problem),
    ))]
pub async fn start_enrolment(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
) -> ApiResult<(StatusCode, Json<EnrolmentResponse>)> {
    let enrolment = ops::two_factor::start_enrolment(&state, &principal, &audit).await?;
    Ok((
        StatusCode::CREATED,
        Json(EnrolmentResponse {
            secret: enrolment.secret.expose().to_owned(),
            otpauth_uri: enrolment.otpauth_uri.expose().to_owned(),
            qr_svg: enrolment.qr_svg,
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The 6-digit code from the authenticator app.
    #[schema(value_type = String)]
    pub code: SecretString,
}

/// Recovery codes, shown this once; each works once, in place of a code.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodesResponse {
    pub recovery_codes: Vec<String>,
}

fn shown(codes: Vec<RecoveryCode>) -> Json<RecoveryCodesResponse> {
    Json(RecoveryCodesResponse {
        recovery_codes: codes.iter().map(RecoveryCode::display).collect(),
    })
}

/// Confirms the pending enrolment with a current code: two-factor
/// authentication is on from now, and the answer holds the recovery codes.
#[utoipa::path(post, path = "/api/v1/me/two-factor/enrolment/confirm", tag = "auth", request_body = CodeRequest,
    responses(
        (status = 200, body = RecoveryCodesResponse),
        (status = 422, description = "Not a current code of the pending secret", body = Problem),
    ))]
pub async fn confirm_enrolment(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    ApiJson(body): ApiJson<CodeRequest>,
) -> ApiResult<Json<RecoveryCodesResponse>> {
    let codes =
        ops::two_factor::confirm_enrolment(&state, &principal, &audit, body.code.expose()).await?;
    Ok(shown(codes))
}

/// Replaces the recovery codes (the old ones stop working); needs a current code.
#[utoipa::path(post, path = "/api/v1/me/two-factor/recovery-codes", tag = "auth", request_body = CodeRequest,
    responses(
        (status = 200, body = RecoveryCodesResponse),
        (status = 403, description = "Wrong code", body = Problem),
    ))]
pub async fn new_recovery_codes(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    ApiJson(body): ApiJson<CodeRequest>,
) -> ApiResult<Json<RecoveryCodesResponse>> {
    let codes =
        ops::two_factor::new_recovery_codes(&state, &principal, &audit, body.code.expose()).await?;
    Ok(shown(codes))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableRequest {
    #[schema(value_type = String)]
    pub password: SecretString,
    /// A current code, or a recovery code.
    #[schema(value_type = String)]
    pub code: SecretString,
}

/// Turns the caller's two-factor authentication off; every other session of
/// theirs ends.
#[utoipa::path(post, path = "/api/v1/me/two-factor/disable", tag = "auth", request_body = DisableRequest,
    responses(
        (status = 200, body = SessionsEnded),
        (status = 403, description = "Wrong password or code", body = Problem),
    ))]
pub async fn disable(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    ApiJson(body): ApiJson<DisableRequest>,
) -> ApiResult<Json<SessionsEnded>> {
    let sessions_ended = ops::two_factor::disable(
        &state,
        &principal,
        &audit,
        body.password.expose(),
        body.code.expose(),
    )
    .await?;
    Ok(Json(SessionsEnded { sessions_ended }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyRequest {
    pub policy: TwoFactorPolicy,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyResponse {
    pub policy: TwoFactorPolicy,
    pub previous: TwoFactorPolicy,
}

/// Sets which members must use two-factor authentication: `none`, `admins`
/// (owners and admins) or `all`.
#[utoipa::path(put, path = "/api/v1/orgs/{org_id}/two-factor-policy", tag = "orgs", request_body = PolicyRequest,
    params(("org_id" = String, Path, format = Uuid)),
    responses(
        (status = 200, body = PolicyResponse),
        (status = 403, body = Problem),
        (status = 409, description = "The policy would cover the caller, whose two-factor authentication is off", body = Problem),
    ))]
pub async fn set_policy(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    ApiJson(body): ApiJson<PolicyRequest>,
) -> ApiResult<Json<PolicyResponse>> {
    let previous = ops::two_factor::set_policy(&state, &ctx, &audit, body.policy).await?;
    Ok(Json(PolicyResponse {
        policy: body.policy,
        previous,
    }))
}

/// Removes a user's two-factor authentication (a lost device) and ends all their
/// sessions (platform admins; not for one's own account).
#[utoipa::path(delete, path = "/api/v1/users/{user_id}/two-factor", tag = "users",
    params(("user_id" = String, Path, format = Uuid)),
    responses(
        (status = 200, body = SessionsEnded),
        (status = 404, description = "No such user, or two-factor authentication is off", body = Problem),
        (status = 409, body = Problem),
    ))]
pub async fn reset(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    ApiPath(user_id): ApiPath<UserId>,
) -> ApiResult<Json<SessionsEnded>> {
    let sessions_ended = ops::two_factor::reset(&state, &principal, &audit, user_id).await?;
    Ok(Json(SessionsEnded { sessions_ended }))
}
