//! The agent routes, `/api/v1/agent/*`: enrollment with a one-time token, then
//! device-token calls that reach only the calling device's data. The bodies are
//! the `sentinel_protocol` types both ends share.

use std::time::Duration;

use crate::client::ClientInfo;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sentinel_protocol::command::{CommandBatch, CommandReport};
use sentinel_protocol::enroll::{EnrollRequest, EnrollResponse, TokenRotation};
use sentinel_protocol::inventory::{InventoryAck, InventoryReport};
use sentinel_protocol::telemetry::{TelemetryAck, TelemetryBatch};
use serde::Deserialize;
use uuid::Uuid;

use super::ApiResult;
use crate::access::DeviceContext;
use crate::audit::RequestOrigin;
use crate::error::{AppError, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::ops;
use crate::ops::agent::Queue;
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
    /// Seconds to wait for a command (long-poll), to the millisecond (`24.95`), at
    /// most 60; none or 0: answer at once.
    pub wait: Option<f64>,
}

impl CommandsQuery {
    /// The wait asked for, or a 400 for one that is negative or not a number.
    fn wait(&self) -> Result<Duration, AppError> {
        match self.wait {
            None => Ok(Duration::ZERO),
            Some(seconds) if seconds.is_finite() && seconds >= 0.0 => {
                // Anything over the limit waits as long as the limit allows.
                Ok(Duration::from_secs_f64(seconds.min(3600.0)))
            }
            Some(_) => Err(AppError::BadRequest(
                "wait must be a number of seconds, 0 or more".into(),
            )),
        }
    }
}

/// The signed commands waiting for this device.
#[utoipa::path(get, path = "/api/v1/agent/commands", tag = "agent", security(("device" = [])),
    params(CommandsQuery),
    responses((status = 200, description = "sentinel_protocol::command::CommandBatch"), (status = 401, body = Problem)))]
pub async fn commands(
    State(state): State<AppState>,
    ctx: DeviceContext,
    ApiQuery(query): ApiQuery<CommandsQuery>,
) -> ApiResult<Response> {
    let wait = query.wait()?;
    let waiter = match ops::agent::take_commands(&state, &ctx).await? {
        Queue::Taken(commands) => return Ok(Json(CommandBatch { commands }).into_response()),
        Queue::Empty(waiter) => waiter,
    };
    if wait.is_zero() {
        let commands = Vec::new();
        return Ok(Json(CommandBatch { commands }).into_response());
    }
    // Nothing yet: the answer's head goes now and its body when a command is
    // queued or the wait is over. A parked poll then holds only this body, not
    // the futures of every middleware layer it came through (12 KiB a device:
    // docs/benchmarks.md, the connected fleet). A failure while waiting can no
    // longer change the status: it breaks the body off, and the agent polls
    // again.
    let body = Body::from_stream(futures_util::stream::once(async move {
        let commands = ops::agent::await_commands(&state, &ctx, waiter, wait)
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "a parked command poll failed"))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        serde_json::to_vec(&CommandBatch { commands }).map_err(std::io::Error::other)
    }));
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
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
