//! Who a request is from: login sessions over HTTP (the
//! `__Host-sentinel_session` cookie, finding the session behind it, starting
//! and ending sessions, and the CSRF token), or an API token on the API.
//!
//! The cookie carries a 256-bit random secret; the store keeps its SHA-256. The
//! session's CSRF token is derived from the secret (so it needs no storage and
//! changes with every login), and is handed to the page or API client that logged
//! in; a cross-site attacker can neither read the cookie nor compute the token.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use sentinel_core::api_token::ApiTokenSecret;
use sentinel_core::audit::{AuditAction, AuditContext, Entity, EntityType};
use sentinel_core::{BearerSecret, OrgId, Permission, SessionId, Timestamp, UserId};
use sentinel_store::{NewSession, PresentedToken, User};
use uuid::Uuid;

use crate::client::ClientInfo;
use crate::error::AppError;
use crate::routes::Surface;
use crate::state::AppState;

/// The session cookie. The `__Host-` prefix makes browsers insist on `Secure`,
/// `Path=/` and no `Domain`, so no sibling domain can set or shadow it.
pub const SESSION_COOKIE: &str = "__Host-sentinel_session";

/// How recent a login must be for [`Principal::require_recent_sign_in`].
pub const RECENT_SIGN_IN: Duration = Duration::from_secs(15 * 60);

/// Sessions (and API tokens) are written back as "seen" at most this often.
const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// The authenticated user of a request, and how they proved it.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub credential: Credential,
}

/// What authenticated a request.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A login session (the cookie), with its CSRF token and when its login
    /// happened.
    Session {
        id: SessionId,
        csrf_token: String,
        signed_in_at: Timestamp,
    },
    /// An API token (`Authorization: Bearer snt_…`), good only on its
    /// organization's routes and only for what it grants.
    ApiToken(TokenGrant),
}

/// What an API token allows: never more than its permissions, and never more
/// than the current roles of its owner and its creator (checked at each use).
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub id: Uuid,
    pub org_id: OrgId,
    pub permissions: Vec<Permission>,
    pub creator: UserId,
}

impl Principal {
    /// The login session, unless an API token authenticated the request.
    pub fn session_id(&self) -> Option<SessionId> {
        match &self.credential {
            Credential::Session { id, .. } => Some(*id),
            Credential::ApiToken(_) => None,
        }
    }

    /// The session's CSRF token (API tokens need none).
    pub fn csrf_token(&self) -> Option<&str> {
        match &self.credential {
            Credential::Session { csrf_token, .. } => Some(csrf_token),
            Credential::ApiToken(_) => None,
        }
    }

    /// Refuses unless the caller signed in (password, and code if on) within
    /// [`RECENT_SIGN_IN`]: actions that would let a stolen session outlive its
    /// theft (a long-lived API token, a new second factor) need a fresh login.
    pub fn require_recent_sign_in(&self, now: Timestamp) -> Result<(), AppError> {
        match &self.credential {
            Credential::Session { signed_in_at, .. }
                if now.since(*signed_in_at) <= RECENT_SIGN_IN =>
            {
                Ok(())
            }
            _ => Err(AppError::Forbidden(
                "sign in again to do this: it needs a login from the last 15 minutes",
            )),
        }
    }

    /// The API token that authenticated the request, if one did.
    pub fn token(&self) -> Option<&TokenGrant> {
        match &self.credential {
            Credential::ApiToken(grant) => Some(grant),
            Credential::Session { .. } => None,
        }
    }
}

/// The value of the session cookie, if the request carries a well-formed one.
pub(crate) fn session_secret(headers: &HeaderMap) -> Option<BearerSecret> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .and_then(|(_, value)| BearerSecret::parse(value.trim()))
}

/// Who the request is from. On the API, an `Authorization` header decides
/// alone (cookies are then ignored): it must carry a live API token. Otherwise
/// the live session behind the cookie, if any; expired sessions are deleted on
/// sight, live ones marked as seen.
pub async fn resolve(
    state: &AppState,
    headers: &HeaderMap,
    surface: Surface,
    client: Option<&ClientInfo>,
) -> Result<Option<Principal>, AppError> {
    if let (Surface::Api, Some(authorization)) = (surface, headers.get(header::AUTHORIZATION)) {
        return api_token(state, authorization, client).await.map(Some);
    }
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
        credential: Credential::Session {
            id: session.id,
            csrf_token: secret.derive("csrf"),
            signed_in_at: session.created_at,
        },
    }))
}

/// The principal of a live API token; anything else in the header is a 401.
async fn api_token(
    state: &AppState,
    authorization: &HeaderValue,
    client: Option<&ClientInfo>,
) -> Result<Principal, AppError> {
    let secret = authorization
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(ApiTokenSecret::parse)
        .ok_or(AppError::Unauthenticated)?;
    let control = state.stores.control();
    let PresentedToken { token, owner } = control
        .api_token_by_secret(&secret.hash())
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let now = state.clock.now();
    if !token.is_live(now) {
        return Err(AppError::Unauthenticated);
    }
    let ip = client.map(|c| c.ip.to_string());
    let stale = token
        .last_used_at
        .is_none_or(|at| now.since(at) >= TOUCH_INTERVAL);
    if let Some(ip) = ip.filter(|ip| stale || token.last_used_ip.as_deref() != Some(ip)) {
        control.touch_api_token(token.id, now, &ip).await?;
    }
    Ok(Principal {
        user: owner,
        credential: Credential::ApiToken(TokenGrant {
            id: token.id,
            org_id: token.org_id,
            permissions: token.permissions,
            creator: token.creator,
        }),
    })
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
