//! Login sessions over the API: the caller's own, and a platform admin ending
//! all of a user's.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sentinel_core::{SessionId, Timestamp, UserId};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiResult, SessionsEnded};
use crate::access::Principal;
use crate::audit::Audit;
use crate::error::Problem;
use crate::extract::ApiPath;
use crate::ops;
use crate::ops::sessions::LiveSession;
use crate::state::AppState;

/// A live login session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: SessionId,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// The session making this request.
    pub current: bool,
}

impl From<LiveSession> for SessionView {
    fn from(s: LiveSession) -> Self {
        SessionView {
            id: s.record.id,
            created_at: s.record.created_at,
            last_seen_at: s.record.last_seen_at,
            expires_at: s.record.expires_at,
            client_ip: s.record.client_ip,
            user_agent: s.record.user_agent,
            current: s.current,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

/// The caller's live sessions.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "auth",
    responses((status = 200, body = SessionList), (status = 401, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<SessionList>> {
    let sessions = ops::sessions::list(&state, &principal).await?;
    Ok(Json(SessionList {
        sessions: sessions.into_iter().map(Into::into).collect(),
    }))
}

/// Ends one of the caller's sessions at once.
#[utoipa::path(delete, path = "/api/v1/me/sessions/{session_id}", tag = "auth",
    params(("session_id" = SessionId, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn revoke(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    ApiPath(id): ApiPath<SessionId>,
) -> ApiResult<StatusCode> {
    ops::sessions::revoke(&state, &principal, &audit, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of a user (platform admins).
#[utoipa::path(delete, path = "/api/v1/users/{user_id}/sessions", tag = "users",
    params(("user_id" = UserId, Path)),
    responses((status = 200, body = SessionsEnded), (status = 404, body = Problem)))]
pub async fn end_all(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    ApiPath(user): ApiPath<UserId>,
) -> ApiResult<Json<SessionsEnded>> {
    let sessions_ended = ops::sessions::end_all(&state, &principal, &audit, user).await?;
    Ok(Json(SessionsEnded { sessions_ended }))
}
