//! The agent routes, `/api/v1/agent/*`: enrollment with a one-time token, then
//! device-token calls that reach only the calling device's data. The bodies are
//! the `sentinel_protocol` types both ends share.

use crate::client::ClientInfo;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sentinel_protocol::command::{CommandBatch, CommandReport};
use sentinel_protocol::enroll::{EnrollRequest, EnrollResponse, TokenRotation};
use sentinel_protocol::inventory::{InventoryAck, InventoryReport};
use sentinel_protocol::telemetry::{TelemetryAck, TelemetryBatch};
use serde::Deserialize;
use uuid::Uuid;

use super::ApiResult;
use crate::access::DeviceContext;
use crate::audit::RequestOrigin;
use crate::error::Problem;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::ops;
use crate::state::AppState;

/// Exchanges an enrollment token and the host's facts for a device identity.
#[utoipa::path(post, path = "/api/v1/agent/enroll", tag = "agent", security(()),
    request_body(content = Object, description = "sentinel_protocol::enroll::EnrollRequest"),
    responses(
        (status = 201, description = "sentinel_protocol::enroll::EnrollResponse"),
        (status = 400, body = Problem),
        (status = 403, description = "The token is unknown, revoked, expired or used up", body = Problem),
    ))]
pub async fn enroll(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    client: ClientInfo,
    ApiJson(body): ApiJson<EnrollRequest>,
) -> ApiResult<(StatusCode, Json<EnrollResponse>)> {
    let response = ops::agent::enroll(&state, &client, &origin, &body).await?;
    Ok((StatusCode::CREATED, Json(response)))
}

/// Stores a batch of telemetry samples (an empty batch is a heartbeat).
#[utoipa::path(post, path = "/api/v1/agent/telemetry", tag = "agent", security(("device" = [])),
    request_body(content = Object, description = "sentinel_protocol::telemetry::TelemetryBatch"),
    responses((status = 200, description = "sentinel_protocol::telemetry::TelemetryAck"), (status = 401, body = Problem)))]
pub async fn telemetry(
    State(state): State<AppState>,
    ctx: DeviceContext,
    ApiJson(body): ApiJson<TelemetryBatch>,
) -> ApiResult<Json<TelemetryAck>> {
    let accepted = ops::agent::telemetry(&state, &ctx, &body).await?;
    Ok(Json(TelemetryAck {
        accepted,
        settings: ops::agent::settings(&state),
    }))
}

/// Reports the inventory digest, or the full inventory when asked for it.
#[utoipa::path(post, path = "/api/v1/agent/inventory", tag = "agent", security(("device" = [])),
    request_body(content = Object, description = "sentinel_protocol::inventory::InventoryReport"),
    responses((status = 200, description = "sentinel_protocol::inventory::InventoryAck"), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub async fn inventory(
    State(state): State<AppState>,
    ctx: DeviceContext,
    ApiJson(body): ApiJson<InventoryReport>,
) -> ApiResult<Json<InventoryAck>> {
    let status = ops::agent::inventory(&state, &ctx, &body).await?;
    Ok(Json(InventoryAck { status }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CommandsQuery {
    /// Seconds to wait for a command (long-poll), at most 60; none: answer at once.
    pub wait: Option<u64>,
}

/// The signed commands waiting for this device.
#[utoipa::path(get, path = "/api/v1/agent/commands", tag = "agent", security(("device" = [])),
    params(CommandsQuery),
    responses((status = 200, description = "sentinel_protocol::command::CommandBatch"), (status = 401, body = Problem)))]
pub async fn commands(
    State(state): State<AppState>,
    ctx: DeviceContext,
    ApiQuery(query): ApiQuery<CommandsQuery>,
) -> ApiResult<Json<CommandBatch>> {
    let commands = ops::agent::commands(&state, &ctx, query.wait.unwrap_or(0)).await?;
    Ok(Json(CommandBatch { commands }))
}

/// Reports on one of this device's commands.
#[utoipa::path(post, path = "/api/v1/agent/commands/{command_id}/result", tag = "agent", security(("device" = [])),
    params(("command_id" = Uuid, Path)),
    request_body(content = Object, description = "sentinel_protocol::command::CommandReport"),
    responses(
        (status = 204, description = "Recorded"),
        (status = 404, description = "Not one of this device's commands", body = Problem),
        (status = 409, description = "The command is already over", body = Problem),
    ))]
pub async fn result(
    State(state): State<AppState>,
    ctx: DeviceContext,
    RequestOrigin(origin): RequestOrigin,
    ApiPath(command_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CommandReport>,
) -> ApiResult<StatusCode> {
    ops::agent::report(&state, &ctx, &origin, command_id, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Issues this device a new token.
#[utoipa::path(post, path = "/api/v1/agent/token", tag = "agent", security(("device" = [])),
    responses((status = 200, description = "sentinel_protocol::enroll::TokenRotation"), (status = 401, body = Problem)))]
pub async fn token(
    State(state): State<AppState>,
    ctx: DeviceContext,
    RequestOrigin(origin): RequestOrigin,
) -> ApiResult<Json<TokenRotation>> {
    let device_token = ops::agent::rotate_token(&state, &ctx, &origin).await?;
    Ok(Json(TokenRotation { device_token }))
}
