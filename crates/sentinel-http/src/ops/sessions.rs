//! A user's own login sessions (listing them, ending any), and a platform
//! admin ending every session of a user.

use sentinel_core::audit::{AuditAction, AuditContext, Entity, EntityType};
use sentinel_core::{SessionId, UserId};
use sentinel_store::SessionRecord;

use crate::access::Principal;
use crate::error::AppError;
use crate::ops::not_found_as;
use crate::state::AppState;

/// A live session, and whether it is the one making the request.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub record: SessionRecord,
    pub current: bool,
}

/// The caller's live sessions, most recently seen first.
pub async fn list(state: &AppState, principal: &Principal) -> Result<Vec<LiveSession>, AppError> {
    let now = state.clock.now();
    let sessions = state
        .stores
        .control()
        .sessions_of(principal.user.id)
        .await?;
    Ok(sessions
        .into_iter()
        .filter(|s| s.is_live(now, state.settings.session_idle_timeout))
        .map(|record| LiveSession {
            current: Some(record.id) == principal.session_id(),
            record,
        })
        .collect())
}

/// Ends one of the caller's sessions (their current one too, if they ask).
/// Returns whether it was the current one.
pub async fn revoke(
    state: &AppState,
    principal: &Principal,
    audit: &AuditContext,
    id: SessionId,
) -> Result<bool, AppError> {
    let current = Some(id) == principal.session_id();
    let event = audit.success(
        state.clock.now(),
        AuditAction::SessionRevoked,
        Entity::new(EntityType::Session, id),
        serde_json::json!({ "current": current }),
    );
    state
        .stores
        .control()
        .revoke_session(principal.user.id, id, event)
        .await
        .map_err(not_found_as("session"))?;
    tracing::info!(user_id = %principal.user.id, session = %id, "session revoked");
    Ok(current)
}

/// Ends every session of `user` (a platform admin's action); returns how many.
pub async fn end_all(
    state: &AppState,
    principal: &Principal,
    audit: &AuditContext,
    user: UserId,
) -> Result<u64, AppError> {
    let now = state.clock.now();
    let ended = state
        .stores
        .control()
        .end_sessions_of(user, |count| {
            audit.success(
                now,
                AuditAction::UserSessionsEnded,
                Entity::new(EntityType::User, user),
                serde_json::json!({ "sessions_ended": count }),
            )
        })
        .await
        .map_err(not_found_as("user"))?;
    tracing::info!(user_id = %user, by = %principal.user.id, sessions_ended = ended, "sessions ended");
    Ok(ended)
}
