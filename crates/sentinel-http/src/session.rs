//! Login sessions over HTTP: the `__Host-sentinel_session` cookie, finding the
//! session behind it, starting and ending sessions, and the CSRF token.
//!
//! The cookie carries a 256-bit random secret; the store keeps its SHA-256. The
//! session's CSRF token is derived from the secret (so it needs no storage and
//! changes with every login), and is handed to the page or API client that logged
//! in; a cross-site attacker can neither read the cookie nor compute the token.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use sentinel_core::audit::{AuditAction, AuditContext, Entity, EntityType};
use sentinel_core::{BearerSecret, SessionId, Timestamp, UserId};
use sentinel_store::{NewSession, User};

use crate::client::ClientInfo;
use crate::error::AppError;
use crate::state::AppState;

/// The session cookie. The `__Host-` prefix makes browsers insist on `Secure`,
/// `Path=/` and no `Domain`, so no sibling domain can set or shadow it.
pub const SESSION_COOKIE: &str = "__Host-sentinel_session";

/// Sessions are written back as "seen" at most this often.
const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// The authenticated user of a request, and their session.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub session_id: SessionId,
    pub csrf_token: String,
}

/// The value of the session cookie, if the request carries a well-formed one.
fn session_secret(headers: &HeaderMap) -> Option<BearerSecret> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .and_then(|(_, value)| BearerSecret::parse(value.trim()))
}

/// The live session behind the request's cookie, if any. Expired sessions are
/// deleted on sight; live ones are marked as seen.
pub async fn resolve(state: &AppState, headers: &HeaderMap) -> Result<Option<Principal>, AppError> {
    let Some(secret) = session_secret(headers) else {
        return Ok(None);
    };
    let control = state.stores.control();
    let Some((session, user)) = control.session_by_secret(&secret.hash()).await? else {
        return Ok(None);
    };
    let now = state.clock.now();
    if !session.is_live(now, state.settings.session_idle_timeout) {
        control.delete_session(session.id, None).await?;
        return Ok(None);
    }
    if now.since(session.last_seen_at) >= TOUCH_INTERVAL {
        control.touch_session(session.id, now).await?;
    }
    Ok(Some(Principal {
        user,
        session_id: session.id,
        csrf_token: secret.derive("csrf"),
    }))
}

/// A session that has just been started: the cookie to set and the CSRF token.
#[derive(Debug)]
pub struct StartedSession {
    pub set_cookie: HeaderValue,
    pub csrf_token: String,
}

/// Starts a new session for `user` (always a new id: a session id that existed
/// before login is never promoted). `replaces` is ended first.
/// `password_checked_at` is the user's `password_changed_at` as seen when the
/// password was checked; if it has changed since, no session is made (NotFound).
/// With `login`, the login is audited in the same transaction.
pub async fn start(
    state: &AppState,
    user: UserId,
    password_checked_at: Timestamp,
    client: &ClientInfo,
    replaces: Option<SessionId>,
    login: Option<&AuditContext>,
) -> Result<StartedSession, AppError> {
    let control = state.stores.control();
    if let Some(old) = replaces {
        control.delete_session(old, None).await?;
    }
    let secret = BearerSecret::generate()?;
    let now = state.clock.now();
    let lifetime = state.settings.session_lifetime;
    let id = SessionId::random();
    let event = login.map(|audit| {
        audit.success(
            now,
            AuditAction::Login,
            Entity::new(EntityType::Session, id),
            serde_json::json!({}),
        )
    });
    control
        .create_session(
            &NewSession {
                id,
                secret_hash: secret.hash(),
                user_id: user,
                created_at: now,
                expires_at: now.plus(lifetime),
                client_ip: Some(client.ip.to_string()),
                user_agent: client.user_agent.clone(),
                password_checked_at,
            },
            event,
        )
        .await
        .map_err(|e| match e {
            sentinel_store::StoreError::NotFound => AppError::NotFound("user"),
            other => other.into(),
        })?;
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
        secret.expose(),
        lifetime.as_secs()
    );
    let set_cookie =
        HeaderValue::from_str(&cookie).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(StartedSession {
        set_cookie,
        csrf_token: secret.derive("csrf"),
    })
}

/// The `Set-Cookie` value that makes the browser forget the session.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-sentinel_session=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let secret = BearerSecret::generate().unwrap();
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "theme=dark; other=1".parse().unwrap());
        h.append(
            header::COOKIE,
            format!("x=y; {SESSION_COOKIE}={}", secret.expose())
                .parse()
                .unwrap(),
        );
        assert_eq!(session_secret(&h).unwrap().hash(), secret.hash());
    }

    #[test]
    fn malformed_cookies_are_ignored() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            format!("{SESSION_COOKIE}=' OR 1=1 --").parse().unwrap(),
        );
        assert!(session_secret(&h).is_none());
        h.insert(header::COOKIE, "sentinel_session=abc".parse().unwrap());
        assert!(session_secret(&h).is_none());
    }
}
