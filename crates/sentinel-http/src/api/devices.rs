//! Devices, enrollment tokens and commands of an organization, for its members.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sentinel_core::OrgId;
use sentinel_protocol::inventory::Package;
use sentinel_store::{CommandRecord, Device, DeviceFilter, EnrollmentToken, TelemetryRecord};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::ApiResult;
use crate::access::OrgContext;
use crate::audit::Audit;
use crate::error::Problem;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::ops;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnrollmentToken {
    /// Hours until it expires: 1 to 720 (30 days), default 24.
    pub expires_in_hours: Option<u32>,
    /// Devices it may enroll: 1 to 100,000, default 1.
    pub max_uses: Option<i64>,
    /// Tags given to every device it enrolls.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A new enrollment token; `token` is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedEnrollmentToken {
    pub token: String,
    #[serde(flatten)]
    pub details: EnrollmentToken,
}

/// Creates an enrollment token (`devices.write`).
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/enrollment-tokens", tag = "devices",
    params(("org_id" = OrgId, Path)), request_body = CreateEnrollmentToken,
    responses((status = 201, body = CreatedEnrollmentToken), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn create_token(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    ApiJson(body): ApiJson<CreateEnrollmentToken>,
) -> ApiResult<(StatusCode, Json<CreatedEnrollmentToken>)> {
    let created = ops::devices::create_enrollment_token(
        &state,
        &ctx,
        &audit,
        body.expires_in_hours,
        body.max_uses,
        body.tags,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedEnrollmentToken {
            token: created.secret,
            details: created.token,
        }),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollmentTokenList {
    pub tokens: Vec<EnrollmentToken>,
}

/// The organization's enrollment tokens, without their secrets (`devices.read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/enrollment-tokens", tag = "devices",
    params(("org_id" = OrgId, Path)), responses((status = 200, body = EnrollmentTokenList)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    ctx: OrgContext,
) -> ApiResult<Json<EnrollmentTokenList>> {
    let tokens = ops::devices::enrollment_tokens(&state, &ctx).await?;
    Ok(Json(EnrollmentTokenList { tokens }))
}

/// Revokes an enrollment token (`devices.write`).
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/enrollment-tokens/{token_id}", tag = "devices",
    params(("org_id" = OrgId, Path), ("token_id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    ApiPath((_, token_id)): ApiPath<(OrgId, Uuid)>,
) -> ApiResult<StatusCode> {
    ops::devices::revoke_enrollment_token(&state, &ctx, &audit, token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeviceQuery {
    /// Text in the hostname, OS or kernel.
    pub q: Option<String>,
    /// Only devices with this tag.
    pub tag: Option<String>,
    /// Include revoked devices.
    pub revoked: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    pub devices: Vec<Device>,
}

/// The organization's devices (`devices.read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/devices", tag = "devices",
    params(("org_id" = OrgId, Path), DeviceQuery), responses((status = 200, body = DeviceList)))]
pub async fn list(
    State(state): State<AppState>,
    ctx: OrgContext,
    ApiQuery(query): ApiQuery<DeviceQuery>,
) -> ApiResult<Json<DeviceList>> {
    let filter = DeviceFilter {
        text: query.q,
        tag: query.tag,
        include_revoked: query.revoked.unwrap_or(false),
    };
    let devices = ops::devices::devices(&state, &ctx, &filter).await?;
    Ok(Json(DeviceList { devices }))
}

/// One device (`devices.read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/devices/{device_id}", tag = "devices",
    params(("org_id" = OrgId, Path), ("device_id" = Uuid, Path)),
    responses((status = 200, body = Device), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    ctx: OrgContext,
    ApiPath((_, device_id)): ApiPath<(OrgId, Uuid)>,
) -> ApiResult<Json<Device>> {
    Ok(Json(ops::devices::device(&state, &ctx, device_id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InventoryQuery {
    /// Text in the package name.
    pub q: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InventoryList {
    #[schema(value_type = Vec<Object>)]
    pub packages: Vec<Package>,
}

/// A device's installed packages (`devices.read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/devices/{device_id}/inventory", tag = "devices",
    params(("org_id" = OrgId, Path), ("device_id" = Uuid, Path), InventoryQuery),
    responses((status = 200, body = InventoryList), (status = 404, body = Problem)))]
pub async fn inventory(
    State(state): State<AppState>,
    ctx: OrgContext,
    ApiPath((_, device_id)): ApiPath<(OrgId, Uuid)>,
    ApiQuery(query): ApiQuery<InventoryQuery>,
) -> ApiResult<Json<InventoryList>> {
    let packages = ops::devices::inventory(&state, &ctx, device_id, query.q.as_deref()).await?;
    Ok(Json(InventoryList { packages }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TelemetryList {
    pub samples: Vec<TelemetryRecord>,
}

/// A device's newest telemetry, newest first (`devices.read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/devices/{device_id}/telemetry", tag = "devices",
    params(("org_id" = OrgId, Path), ("device_id" = Uuid, Path)),
    responses((status = 200, body = TelemetryList), (status = 404, body = Problem)))]
pub async fn telemetry(
    State(state): State<AppState>,
    ctx: OrgContext,
    ApiPath((_, device_id)): ApiPath<(OrgId, Uuid)>,
) -> ApiResult<Json<TelemetryList>> {
    let samples = ops::devices::telemetry(&state, &ctx, device_id, 120).await?;
    Ok(Json(TelemetryList { samples }))
}

/// Revokes a device: its next request is refused (`devices.write`).
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/devices/{device_id}", tag = "devices",
    params(("org_id" = OrgId, Path), ("device_id" = Uuid, Path)),
    responses((status = 200, body = Device), (status = 404, body = Problem)))]
pub async fn revoke(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    ApiPath((_, device_id)): ApiPath<(OrgId, Uuid)>,
) -> ApiResult<Json<Device>> {
    Ok(Json(
        ops::devices::revoke_device(&state, &ctx, &audit, device_id).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueCommand {
    /// `run_script`, `install_package`, `remove_package`, `refresh_inventory`,
    /// `reboot`, `lock_sessions` or `collect_diagnostics`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The action's parameters (see the README).
    #[schema(value_type = Object)]
    pub params: Option<serde_json::Value>,
    /// Seconds the command waits for its device: 1 to 2,592,000 (30 days), default 86,400.
    pub expires_in_seconds: Option<u32>,
}

/// Queues a signed command for one device (`commands.run`).
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/devices/{device_id}/commands", tag = "devices",
    params(("org_id" = OrgId, Path), ("device_id" = Uuid, Path)), request_body = QueueCommand,
    responses((status = 201, body = CommandRecord), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn queue_command(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    ApiPath((_, device_id)): ApiPath<(OrgId, Uuid)>,
    ApiJson(body): ApiJson<QueueCommand>,
) -> ApiResult<(StatusCode, Json<CommandRecord>)> {
    let record = ops::devices::queue_command(
        &state,
        &ctx,
        &audit,
        device_id,
        &body.kind,
        body.params,
        body.expires_in_seconds,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(record)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommandList {
    pub commands: Vec<CommandRecord>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueTaggedCommand {
    /// Every live device with this tag gets the command.
    pub tag: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(value_type = Object)]
    pub params: Option<serde_json::Value>,
    pub expires_in_seconds: Option<u32>,
}

/// Queues a command for every device with a tag, each signed for its device
/// (`commands.run`).
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/commands", tag = "devices",
    params(("org_id" = OrgId, Path)), request_body = QueueTaggedCommand,
    responses((status = 201, body = CommandList), (status = 400, body = Problem), (status = 404, description = "No device has the tag", body = Problem)))]
pub async fn queue_tagged_command(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    ApiJson(body): ApiJson<QueueTaggedCommand>,
) -> ApiResult<(StatusCode, Json<CommandList>)> {
    let commands = ops::devices::queue_command_for_tag(
        &state,
        &ctx,
        &audit,
        &body.tag,
        &body.kind,
        body.params,
        body.expires_in_seconds,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(CommandList { commands })))
}

/// A device's commands, newest first (`devices.read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/devices/{device_id}/commands", tag = "devices",
    params(("org_id" = OrgId, Path), ("device_id" = Uuid, Path)),
    responses((status = 200, body = CommandList), (status = 404, body = Problem)))]
pub async fn device_commands(
    State(state): State<AppState>,
    ctx: OrgContext,
    ApiPath((_, device_id)): ApiPath<(OrgId, Uuid)>,
) -> ApiResult<Json<CommandList>> {
    let commands = ops::devices::device_commands(&state, &ctx, device_id).await?;
    Ok(Json(CommandList { commands }))
}

/// One command and its result (`devices.read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/commands/{command_id}", tag = "devices",
    params(("org_id" = OrgId, Path), ("command_id" = Uuid, Path)),
    responses((status = 200, body = CommandRecord), (status = 404, body = Problem)))]
pub async fn command(
    State(state): State<AppState>,
    ctx: OrgContext,
    ApiPath((_, command_id)): ApiPath<(OrgId, Uuid)>,
) -> ApiResult<Json<CommandRecord>> {
    Ok(Json(ops::devices::command(&state, &ctx, command_id).await?))
}

/// Cancels a command its device has not received (`commands.run`).
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/commands/{command_id}", tag = "devices",
    params(("org_id" = OrgId, Path), ("command_id" = Uuid, Path)),
    responses((status = 200, body = CommandRecord), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel_command(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    ApiPath((_, command_id)): ApiPath<(OrgId, Uuid)>,
) -> ApiResult<Json<CommandRecord>> {
    Ok(Json(
        ops::devices::cancel_command(&state, &ctx, &audit, command_id).await?,
    ))
}
