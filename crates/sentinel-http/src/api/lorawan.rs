//! Device profiles (with payload decoders), a device's LoRaWAN identity and
//! its stored uplinks (events), for an organization's members.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sentinel_core::{OrgId, Timestamp};
use sentinel_store::{DeviceEvent, DeviceProfile, LorawanDevice};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::ApiResult;
use crate::access::OrgContext;
use crate::audit::Audit;
use crate::error::{AppError, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::ops;
use crate::ops::lorawan::SamplePayload;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceProfileList {
    pub profiles: Vec<DeviceProfile>,
}

/// A device profile as created or replaced.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceProfileBody {
    /// 1 to 100 characters, unique in the organization.
    pub name: String,
    /// JavaScript defining `decodeUplink(input)` (at most 64 KiB); checked
    /// before it is saved. Absent or null: uplinks are stored undecoded.
    #[serde(default)]
    pub decoder: Option<String>,
}

/// The organization's device profiles (`devices.read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/device-profiles", tag = "iot",
    params(("org_id" = OrgId, Path)), responses((status = 200, body = DeviceProfileList)))]
pub async fn list_profiles(
    State(state): State<AppState>,
    ctx: OrgContext,
) -> ApiResult<Json<DeviceProfileList>> {
    let profiles = ops::lorawan::profiles(&state, &ctx).await?;
    Ok(Json(DeviceProfileList { profiles }))
}

/// One device profile (`devices.read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/device-profiles/{profile_id}", tag = "iot",
    params(("org_id" = OrgId, Path), ("profile_id" = Uuid, Path)),
    responses((status = 200, body = DeviceProfile), (status = 404, body = Problem)))]
pub async fn get_profile(
    State(state): State<AppState>,
    ctx: OrgContext,
    ApiPath((_, id)): ApiPath<(OrgId, Uuid)>,
) -> ApiResult<Json<DeviceProfile>> {
    Ok(Json(ops::lorawan::profile(&state, &ctx, id).await?))
}

/// Creates a device profile (`devices.write`; audited with the decoder's hash).
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/device-profiles", tag = "iot",
    params(("org_id" = OrgId, Path)), request_body = DeviceProfileBody,
    responses((status = 201, body = DeviceProfile), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_profile(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    ApiJson(body): ApiJson<DeviceProfileBody>,
) -> ApiResult<(StatusCode, Json<DeviceProfile>)> {
    let profile =
        ops::lorawan::create_profile(&state, &ctx, &audit, &body.name, body.decoder.as_deref())
            .await?;
    Ok((StatusCode::CREATED, Json(profile)))
}

/// Replaces a device profile's name and decoder (`devices.write`; audited
/// with the old and new decoder hashes).
#[utoipa::path(put, path = "/api/v1/orgs/{org_id}/device-profiles/{profile_id}", tag = "iot",
    params(("org_id" = OrgId, Path), ("profile_id" = Uuid, Path)), request_body = DeviceProfileBody,
    responses((status = 200, body = DeviceProfile), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update_profile(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    ApiPath((_, id)): ApiPath<(OrgId, Uuid)>,
    ApiJson(body): ApiJson<DeviceProfileBody>,
) -> ApiResult<Json<DeviceProfile>> {
    Ok(Json(
        ops::lorawan::update_profile(
            &state,
            &ctx,
            &audit,
            id,
            &body.name,
            body.decoder.as_deref(),
        )
        .await?,
    ))
}

/// Deletes a device profile no device uses (`devices.write`).
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/device-profiles/{profile_id}", tag = "iot",
    params(("org_id" = OrgId, Path), ("profile_id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete_profile(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    ApiPath((_, id)): ApiPath<(OrgId, Uuid)>,
) -> ApiResult<StatusCode> {
    ops::lorawan::delete_profile(&state, &ctx, &audit, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A decoder and a sample uplink to try it on.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestDecoderBody {
    /// JavaScript defining `decodeUplink(input)` (at most 64 KiB).
    pub code: String,
    /// The payload as hex; give this or `payload_base64`.
    #[serde(default)]
    pub payload_hex: Option<String>,
    #[serde(default)]
    pub payload_base64: Option<String>,
    #[serde(default)]
    pub f_port: u8,
}

/// What the decoder made of the sample: its result, or why it failed.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestDecoderResult {
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Map<String, serde_json::Value>>,
    pub warnings: Vec<String>,
    /// Errors the decoder reported itself.
    pub errors: Vec<String>,
    /// Why the decoder did not finish (syntax, exception, time-out, memory, …).
    pub error: Option<String>,
}

/// Runs a decoder on a sample payload; stores nothing (`devices.write`).
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/device-profiles/test-decoder", tag = "iot",
    params(("org_id" = OrgId, Path)), request_body = TestDecoderBody,
    responses((status = 200, body = TestDecoderResult), (status = 400, body = Problem), (status = 422, body = Problem)))]
pub async fn test_decoder(
    State(state): State<AppState>,
    _ctx: OrgContext,
    ApiJson(body): ApiJson<TestDecoderBody>,
) -> ApiResult<Json<TestDecoderResult>> {
    let payload = match (&body.payload_hex, &body.payload_base64) {
        (Some(hex), None) => SamplePayload::Hex(hex),
        (None, Some(b64)) => SamplePayload::Base64(b64),
        _ => {
            return Err(AppError::BadRequest(
                "give exactly one of payload_hex and payload_base64".into(),
            )
            .into());
        }
    };
    let result = match ops::lorawan::test_decoder(&state, &body.code, payload, body.f_port).await? {
        Ok(decoded) => TestDecoderResult {
            data: Some(decoded.data),
            warnings: decoded.warnings,
            errors: decoded.errors,
            error: None,
        },
        Err(e) => TestDecoderResult {
            data: None,
            warnings: Vec::new(),
            errors: Vec::new(),
            error: Some(e.to_string()),
        },
    };
    Ok(Json(result))
}

/// A device's LoRaWAN identity; both null when it has none.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LorawanBody {
    /// 16 hex digits, unique in the organization; null clears the identity.
    pub dev_eui: Option<String>,
    /// The device profile (its decoder decodes the device's uplinks).
    #[serde(default)]
    pub profile_id: Option<Uuid>,
}

impl From<Option<LorawanDevice>> for LorawanBody {
    fn from(device: Option<LorawanDevice>) -> Self {
        match device {
            Some(d) => LorawanBody {
                dev_eui: Some(d.dev_eui),
                profile_id: d.profile_id,
            },
            None => LorawanBody {
                dev_eui: None,
                profile_id: None,
            },
        }
    }
}

/// A device's DevEUI and profile (`devices.read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/devices/{device_id}/lorawan", tag = "iot",
    params(("org_id" = OrgId, Path), ("device_id" = Uuid, Path)),
    responses((status = 200, body = LorawanBody), (status = 404, body = Problem)))]
pub async fn get_lorawan(
    State(state): State<AppState>,
    ctx: OrgContext,
    ApiPath((_, device_id)): ApiPath<(OrgId, Uuid)>,
) -> ApiResult<Json<LorawanBody>> {
    Ok(Json(
        ops::lorawan::lorawan_device(&state, &ctx, device_id)
            .await?
            .into(),
    ))
}

/// Sets (or clears) a device's DevEUI and profile (`devices.write`).
#[utoipa::path(put, path = "/api/v1/orgs/{org_id}/devices/{device_id}/lorawan", tag = "iot",
    params(("org_id" = OrgId, Path), ("device_id" = Uuid, Path)), request_body = LorawanBody,
    responses((status = 200, body = LorawanBody), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn set_lorawan(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    ApiPath((_, device_id)): ApiPath<(OrgId, Uuid)>,
    ApiJson(body): ApiJson<LorawanBody>,
) -> ApiResult<Json<LorawanBody>> {
    let set = ops::lorawan::set_lorawan_device(
        &state,
        &ctx,
        &audit,
        device_id,
        body.dev_eui.as_deref(),
        body.profile_id,
    )
    .await?;
    Ok(Json(set.into()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Only events older than this one (the `next` of the previous page).
    pub before: Option<Uuid>,
    /// 1 to 1000, default 100.
    pub limit: Option<i64>,
}

/// A stored uplink.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub id: Uuid,
    pub device_id: Uuid,
    #[schema(value_type = String, format = DateTime)]
    pub received_at: Timestamp,
    pub f_port: i32,
    /// The raw payload, base64.
    pub payload_base64: String,
    /// The decoder's result (`{data, warnings, errors}`), if it produced one.
    #[schema(value_type = Option<Object>)]
    pub decoded: Option<serde_json::Value>,
    pub decoder_error: Option<String>,
    pub integration_id: Option<Uuid>,
}

impl From<DeviceEvent> for EventView {
    fn from(e: DeviceEvent) -> Self {
        EventView {
            id: e.id,
            device_id: e.device_id,
            received_at: e.received_at,
            f_port: e.f_port,
            payload_base64: STANDARD.encode(&e.payload),
            decoded: e.decoded,
            decoder_error: e.decoder_error,
            integration_id: e.integration_id,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<EventView>,
    /// `before` for the next (older) page; null on the last page.
    pub next: Option<Uuid>,
}

/// A device's stored uplinks, newest first, a page at a time (`devices.read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/devices/{device_id}/events", tag = "iot",
    params(("org_id" = OrgId, Path), ("device_id" = Uuid, Path), EventQuery),
    responses((status = 200, body = EventPage), (status = 404, body = Problem)))]
pub async fn events(
    State(state): State<AppState>,
    ctx: OrgContext,
    ApiPath((_, device_id)): ApiPath<(OrgId, Uuid)>,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> ApiResult<Json<EventPage>> {
    let limit = query.limit.unwrap_or(ops::lorawan::DEFAULT_EVENTS);
    let events = ops::lorawan::events(&state, &ctx, device_id, query.before, Some(limit)).await?;
    let full = usize::try_from(limit).is_ok_and(|l| events.len() == l);
    let next = if full {
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(EventPage {
        events: events.into_iter().map(EventView::from).collect(),
        next,
    }))
}
