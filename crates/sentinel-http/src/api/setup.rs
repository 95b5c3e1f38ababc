//! First-admin setup over the API.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sentinel_core::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{ApiResult, UserView};
use crate::audit::RequestOrigin;
use crate::error::Problem;
use crate::extract::ApiJson;
use crate::ops;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    /// The token from the setup link.
    #[schema(value_type = String)]
    pub token: SecretString,
    pub name: String,
    pub email: String,
    #[schema(value_type = String)]
    pub password: SecretString,
}

/// Creates the first platform admin with the one-time setup token.
#[utoipa::path(post, path = "/api/v1/setup", tag = "auth", security(()), request_body = SetupRequest,
    responses(
        (status = 201, body = UserView),
        (status = 403, description = "Invalid, used or expired token", body = Problem),
        (status = 409, description = "Setup already complete", body = Problem),
        (status = 422, description = "Invalid name, e-mail address or password", body = Problem),
    ))]
pub async fn complete(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    ApiJson(body): ApiJson<SetupRequest>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let user = ops::setup::complete(
        &state,
        body.token.expose(),
        &body.name,
        &body.email,
        body.password.expose(),
        &origin,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}
