//! The organization's live feed: a WebSocket that a logged-in dashboard opens
//! to receive the organization's events as they happen (`crate::live`).

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::HeaderMap;
use axum::response::Response;
use sentinel_core::OrgId;

use super::ApiResult;
use crate::access::OrgContext;
use crate::error::{AppError, Problem};
use crate::live::socket::{self, Viewer};
use crate::session::{Credential, session_secret};
use crate::state::AppState;

/// The largest message a client may send; it has nothing to say but pongs
/// and close frames.
const MAX_CLIENT_MESSAGE: usize = 1024;

/// Opens the organization's live feed (`devices.read`): a WebSocket carrying
/// one JSON text message per event (`type`: `device_enrolled`,
/// `device_revoked`, `telemetry`, `inventory`, `command`, `uplink`, or
/// `lagged` with how many events a slow reader missed). Only a login session
/// opens it, from our own origin; it closes (1008) when the session ends or
/// the member loses access.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/live", tag = "devices",
    params(("org_id" = OrgId, Path)), security(("session" = [])),
    responses((status = 101, description = "switched to the WebSocket protocol"),
        (status = 400, body = Problem), (status = 403, body = Problem), (status = 429, body = Problem)))]
pub async fn open(
    State(state): State<AppState>,
    ctx: OrgContext,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let upgrade = upgrade.map_err(|rejection| {
        AppError::BadRequest(format!("the live feed is a WebSocket: {rejection}"))
    })?;
    let Credential::Session { .. } = ctx.principal.credential else {
        return Err(AppError::Forbidden(
            "the live feed is opened by a login session, not an API token",
        )
        .into());
    };
    let session = session_secret(&headers)
        .ok_or(AppError::Unauthenticated)?
        .hash();
    let user = ctx.principal.user.id;
    let org = ctx.organization().id;
    let watch = state.live.watch(org, user)?;
    let viewer = Viewer { session, user, org };
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| socket::serve(state, socket, watch, viewer)))
}
