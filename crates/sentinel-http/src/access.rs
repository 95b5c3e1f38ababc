//! Access control: what each route requires, and the guard that enforces it before
//! the handler runs.
//!
//! A route declares one [`Access`] where it is registered (see [`crate::routes`]).
//! The guard resolves the session, enforces CSRF protection on state-changing
//! requests, and checks the platform role or the organization permission. For an
//! organization route it loads the caller's membership and turns it into a
//! [`TenantAccess`] — the only thing that opens a tenant store — and hands both to
//! the handler as an [`OrgContext`]. Handlers never check roles themselves.
//!
//! Handlers of authenticated routes receive the caller's [`audit::Audit`];
//! public routes receive the request's [`audit::RequestOrigin`]. A refusal of a logged-in
//! caller on a mutating route is audited (see [`crate::audit`]).

use axum::body::Body;
use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sentinel_core::BearerSecret;
use sentinel_core::audit::{AuditAction, Entity, EntityType, LogId, Origin};
use sentinel_core::secret::constant_time_eq;
use sentinel_core::{OrgId, Permission, UserId};
use sentinel_protocol::paths::DEVICE_TOKEN_PREFIX;
use sentinel_store::{
    DeviceIdentity, DeviceStore, Membership, Organization, StoreError, TenantAccess,
};

use crate::audit::{self, Denied, Refused};
use crate::client::ClientInfo;
use crate::error::AppError;
use crate::ops;
use crate::rate_limit::RateKey;
use crate::routes::Surface;
pub use crate::session::Principal;
use crate::session::{TokenGrant, resolve};
use crate::state::AppState;

/// What a route requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone. Only health, login, setup, static assets and the API description.
    Public,
    /// Any logged-in user.
    User,
    /// A platform admin.
    PlatformAdmin,
    /// A platform admin, or any user when self-service organization creation is on.
    OrgCreator,
    /// A member of the organization named by the `{org_id}` path parameter whose
    /// role grants this permission.
    Org(Permission),
    /// An enrolled device, by its bearer token (`Authorization: Bearer sdt_…`):
    /// the agent routes. Sessions are not looked at, and device tokens mean
    /// nothing anywhere else.
    Device,
}

/// The device an [`Access::Device`] route was called by, and the only data it
/// can reach: its own.
#[derive(Debug, Clone)]
pub struct DeviceContext {
    pub store: DeviceStore,
    pub device: DeviceIdentity,
}

/// The caller's standing in the organization of an [`Access::Org`] route.
#[derive(Debug, Clone)]
pub struct OrgContext {
    pub principal: Principal,
    pub membership: Membership,
    pub access: TenantAccess,
}

impl OrgContext {
    /// The organization in the route's path.
    pub fn organization(&self) -> &Organization {
        self.membership.organization()
    }
}

/// The principal on a public route, if the caller happens to be logged in.
#[derive(Debug, Clone)]
pub struct MaybePrincipal(pub Option<Principal>);

/// The state the guard of one route needs.
#[derive(Clone, Debug)]
pub struct Guard {
    pub state: AppState,
    pub access: Access,
    pub surface: Surface,
    /// The action a mutating route performs: what a refusal is audited as.
    pub action: Option<AuditAction>,
    /// The largest body the route accepts (a form is read here for its CSRF
    /// token).
    pub body_limit: usize,
}

/// Middleware: enforces the route's [`Access`], and audits refusals of
/// authenticated callers on mutating routes.
pub async fn enforce(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    // A body announced larger than the route takes is refused before anything
    // else is done for it, and unread: reading megabytes only to refuse them
    // let misbehaving clients take the server's memory and CPU from everyone
    // else (docs/benchmarks.md, the faults scenario).
    if announced_length(&request).is_some_and(|length| length > guard.body_limit as u64) {
        return guard.surface.error_response(AppError::PayloadTooLarge);
    }
    let wants_page = guard.surface == Surface::Ui && request.method() == Method::GET;
    let method = request.method().clone();
    let target = request.uri().path().to_owned();
    let origin = audit::origin_of(&request);
    // Boxed (and the denial's audit below): this future stays alive while
    // the handler runs — a whole long-poll — and would otherwise carry the
    // largest store future authentication may await (docs/benchmarks.md).
    let (result, refused) = Box::pin(admit(&guard, request, &origin)).await;
    let denial = match result {
        Ok(request) => {
            let response = next.run(request).await;
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                count_rate_limited(&guard.state);
            }
            let denied = response.extensions().get::<Denied>().copied();
            if let (Some(Denied(reason)), Some(refused)) = (denied, &refused) {
                Box::pin(audit_denial(&guard, refused, &method, &target, reason)).await;
            }
            return response;
        }
        Err(error) => error,
    };
    match (&denial, &refused) {
        (AppError::Forbidden(_) | AppError::TwoFactorRequired, Some(refused)) => {
            let reason = denial.denial_reason().unwrap_or("refused");
            Box::pin(audit_denial(&guard, refused, &method, &target, reason)).await;
        }
        (AppError::NotFound(_), Some(refused)) => {
            Box::pin(audit_denial(
                &guard,
                refused,
                &method,
                &target,
                "not a member",
            ))
            .await;
        }
        (AppError::Unauthenticated | AppError::Forbidden(_), None) if guard.action.is_some() => {
            guard
                .state
                .metrics
                .unauthenticated_refusals
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        (AppError::TooManyRequests(_), _) => count_rate_limited(&guard.state),
        _ => {}
    }
    match denial {
        AppError::Unauthenticated if wants_page => {
            Redirect::to(&format!("/login?next={}", urlencode(&target))).into_response()
        }
        // The organization's policy wants a second factor: the enrolment page
        // (the profile routes are not organization routes, so stay open).
        AppError::TwoFactorRequired if guard.surface == Surface::Ui => {
            Redirect::to("/profile/two-factor?notice=two-factor-required").into_response()
        }
        e => guard.surface.error_response(e),
    }
}

fn count_rate_limited(state: &AppState) {
    state
        .metrics
        .rate_limited
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

async fn audit_denial(guard: &Guard, refused: &Refused, method: &Method, path: &str, reason: &str) {
    if let Some(action) = guard.action {
        audit::record_denial(&guard.state, refused, action, method, path, reason).await;
    }
}

/// The body length the request announces (`Content-Length`), if any.
fn announced_length(request: &Request) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Whether a request with `method` may change state (anything but GET, HEAD
/// and OPTIONS): such requests need CSRF protection and are audited.
pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Admits the request or says why not; either way, once the caller is known,
/// who they are for the audit log.
async fn admit(
    guard: &Guard,
    request: Request,
    origin: &Origin,
) -> (Result<Request, AppError>, Option<Refused>) {
    let state = &guard.state;
    let address = request
        .extensions()
        .get::<ClientInfo>()
        .map(|client| RateKey::address(client.ip));
    if guard.access == Access::Device {
        let mut request = request;
        request
            .extensions_mut()
            .insert(audit::RequestOrigin(origin.clone()));
        return (authenticate_device(state, request, address).await, None);
    }
    let client = request.extensions().get::<ClientInfo>();
    let principal = match resolve(state, request.headers(), guard.surface, client).await {
        Ok(principal) => principal,
        // A credential that does not authenticate counts against the address.
        Err(e) => {
            let limited = address.and_then(|a| state.limits.requests.check(a).err());
            return (Err(limited.unwrap_or(e)), None);
        }
    };
    // Every request counts against its principal, or its address when anonymous.
    let key = match (&principal, address) {
        (Some(principal), _) => Some(match principal.token() {
            Some(token) => RateKey::Token(token.id),
            None => RateKey::User(principal.user.id.as_uuid()),
        }),
        (None, address) => address,
    };
    if let Some(Err(e)) = key.map(|key| state.limits.requests.check(key)) {
        return (Err(e), None);
    }
    let changes_state = changes_state(request.method());

    if guard.access == Access::Public {
        if changes_state && !same_origin(state, &request, false) {
            return (Err(AppError::Forbidden("cross-site request refused")), None);
        }
        let mut request = request;
        request
            .extensions_mut()
            .insert(audit::RequestOrigin(origin.clone()));
        request.extensions_mut().insert(MaybePrincipal(principal));
        return (Ok(request), None);
    }

    let Some(principal) = principal else {
        return (Err(AppError::Unauthenticated), None);
    };
    tracing::Span::current().record("user_id", tracing::field::display(principal.user.id));
    let context = audit::context_of(&principal, origin);
    let mut refused = Refused {
        context: context.clone(),
        log: LogId::Platform,
        entity: Entity::new(EntityType::User, principal.user.id),
    };
    let result = authorize(guard, request, principal, &mut refused).await;
    let result = result.map(|mut request| {
        request.extensions_mut().insert(audit::Audit(context));
        request
    });
    (result, Some(refused))
}

/// The checks for a logged-in principal: CSRF protection, then the route's
/// access. Narrows `refused` to the organization once it is known.
async fn authorize(
    guard: &Guard,
    request: Request,
    principal: Principal,
    refused: &mut Refused,
) -> Result<Request, AppError> {
    let state = &guard.state;
    let changes_state = changes_state(request.method());
    let mut request = request;
    // A bearer token is not sent by browsers on their own: no CSRF to fear.
    // A WebSocket is not bound by CORS: one opened with the session cookie
    // must come from our own pages too (no cross-site WebSocket hijacking).
    if principal.csrf_token().is_some()
        && opens_websocket(&request)
        && !same_origin(state, &request, true)
    {
        return Err(AppError::Forbidden("cross-site WebSocket refused"));
    }
    if let (true, Some(csrf_token)) = (changes_state, principal.csrf_token()) {
        if !same_origin(state, &request, true) {
            return Err(AppError::Forbidden("cross-site request refused"));
        }
        let (checked, token_ok) = csrf_token_matches(request, csrf_token, guard.body_limit).await?;
        if !token_ok {
            return Err(AppError::Forbidden("missing or invalid CSRF token"));
        }
        request = checked;
    }
    if principal.token().is_some() && !matches!(guard.access, Access::Org(_)) {
        return Err(AppError::Forbidden(
            "API tokens work only on their organization's routes",
        ));
    }

    match guard.access {
        Access::Public | Access::User | Access::Device => {}
        Access::PlatformAdmin => {
            if !principal.user.platform_admin {
                return Err(AppError::Forbidden("this needs a platform admin"));
            }
        }
        Access::OrgCreator => {
            if !principal.user.platform_admin && !state.settings.allow_org_self_service {
                return Err(AppError::Forbidden(
                    "only platform admins may create organizations",
                ));
            }
        }
        Access::Org(permission) => {
            let (mut parts, body) = request.into_parts();
            let context =
                org_context(state, &mut parts, principal.clone(), permission, refused).await?;
            parts.extensions.insert(context);
            request = Request::from_parts(parts, body);
        }
    }
    request.extensions_mut().insert(principal);
    Ok(request)
}

async fn org_context(
    state: &AppState,
    parts: &mut Parts,
    principal: Principal,
    permission: Permission,
    refused: &mut Refused,
) -> Result<OrgContext, AppError> {
    let params = RawPathParams::from_request_parts(parts, &())
        .await
        .map_err(|_| AppError::BadRequest("the URL contains an invalid id".into()))?;
    let raw = params
        .iter()
        .find(|(name, _)| *name == "org_id")
        .map(|(_, value)| value.to_owned())
        .ok_or_else(|| AppError::Internal("organization route without {org_id}".into()))?;
    let org_id: OrgId = raw
        .parse()
        .map_err(|_| AppError::BadRequest("the URL contains an invalid organization id".into()))?;
    refused.entity = Entity::new(EntityType::Organization, org_id);
    // A non-member learns nothing, not even whether the organization exists.
    let membership = state
        .stores
        .control()
        .membership(org_id, principal.user.id)
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    refused.log = LogId::Org(org_id);
    let access = member_may(&membership, permission)?;
    if let Some(token) = principal.token() {
        check_token(state, token, principal.user.id, org_id, permission).await?;
    }
    Ok(OrgContext {
        principal,
        membership,
        access,
    })
}

/// Whether a member may do what `permission` allows: their role grants it,
/// and the organization's two-factor policy (enforced here so that no
/// handler can forget it) is met. Also what keeps an open live feed open.
pub(crate) fn member_may(
    membership: &Membership,
    permission: Permission,
) -> Result<TenantAccess, AppError> {
    if membership.lacks_required_two_factor() {
        return Err(AppError::TwoFactorRequired);
    }
    membership
        .authorize(permission)
        .map_err(|_| AppError::Forbidden("your role in this organization does not allow this"))
}

/// What an API token adds to the owner's own membership check: the right
/// organization, the permission among the token's, and a creator who still
/// holds it there (a demoted creator's tokens shrink with them). A personal
/// token's creator is its owner, whose membership was just checked.
async fn check_token(
    state: &AppState,
    token: &TokenGrant,
    owner: UserId,
    org_id: OrgId,
    permission: Permission,
) -> Result<(), AppError> {
    if token.org_id != org_id {
        return Err(AppError::Forbidden(
            "this API token belongs to another organization",
        ));
    }
    if !token.permissions.contains(&permission) {
        return Err(AppError::Forbidden("this API token does not grant this"));
    }
    if token.creator == owner {
        return Ok(());
    }
    let creator = state
        .stores
        .control()
        .membership(org_id, token.creator)
        .await?;
    let Some(creator) = creator.filter(|m| m.role().grants(permission)) else {
        return Err(AppError::Forbidden(
            "the creator of this API token no longer holds this permission",
        ));
    };
    if creator.lacks_required_two_factor() {
        return Err(AppError::Forbidden(
            "the creator of this API token must use two-factor authentication in this organization",
        ));
    }
    Ok(())
}

/// Admits a request carrying the bearer token of a live device, within the
/// device's rate limit. A request that fails to authenticate counts against
/// its client address instead, like any anonymous request.
async fn authenticate_device(
    state: &AppState,
    request: Request,
    address: Option<RateKey>,
) -> Result<Request, AppError> {
    match device_request(state, request).await {
        Ok((request, device)) => {
            state.limits.agent.check(RateKey::Device(device))?;
            Ok(request)
        }
        Err(e) => {
            if let Some(address) = address {
                state.limits.requests.check(address)?;
            }
            Err(e)
        }
    }
}

async fn device_request(
    state: &AppState,
    mut request: Request,
) -> Result<(Request, uuid::Uuid), AppError> {
    let secret = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|token| token.strip_prefix(DEVICE_TOKEN_PREFIX))
        .and_then(BearerSecret::parse)
        .ok_or(AppError::Unauthenticated)?;
    let access = ops::agent::authenticate(state, secret.hash())
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let store = state.stores.device_store(&access).await?;
    // A device is online while heard from within three telemetry intervals
    // (ops::devices::online), and every telemetry report writes last-seen: a
    // long-poll or other request refreshes it only when two intervals passed
    // without one. (Refreshing it every 15 s made nearly every long-poll of a
    // large fleet a disk flush — docs/benchmarks.md, the connected fleet.)
    let device = match store.seen(state.clock.now(), seen_every(state)).await {
        Ok(device) => device,
        Err(StoreError::NotFound) => return Err(AppError::Unauthenticated),
        Err(e) => return Err(e.into()),
    };
    tracing::Span::current().record("device_id", tracing::field::display(device.id));
    let id = device.id;
    request
        .extensions_mut()
        .insert(DeviceContext { store, device });
    Ok((request, id))
}

/// Whether the request asks to become a WebSocket.
fn opens_websocket(request: &Request) -> bool {
    request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Whether a state-changing request comes from our own pages. A present `Origin`
/// must be ours and a present `Sec-Fetch-Site` must say `same-origin`. With
/// `require_evidence`, at least one of them must be present (cookie-authenticated
/// requests); without, their absence is accepted (non-browser API clients).
fn same_origin(state: &AppState, request: &Request, require_evidence: bool) -> bool {
    let headers = request.headers();
    let fetch_site = headers.get("sec-fetch-site").map(|v| v.as_bytes());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if fetch_site.is_none() && origin.is_none() {
        return !require_evidence;
    }
    if fetch_site.is_some_and(|site| site != b"same-origin") {
        return false;
    }
    match origin {
        None => true,
        Some(origin) => {
            expected_origin(state, request).is_some_and(|ours| ours.eq_ignore_ascii_case(origin))
        }
    }
}

/// Our origin: the configured public one, else `https://` and the authority the
/// request was sent to (the `:authority` of HTTP/2, the `Host` of HTTP/1.1).
fn expected_origin(state: &AppState, request: &Request) -> Option<String> {
    if let Some(origin) = &state.settings.public_origin {
        return Some(origin.clone());
    }
    let host = match request.uri().authority() {
        Some(authority) => authority.as_str(),
        None => request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())?,
    };
    Some(format!("https://{host}"))
}

/// Checks the CSRF token from the `X-CSRF-Token` header, or else from the
/// `csrf_token` field of a form body (which is read and put back).
async fn csrf_token_matches(
    request: Request,
    expected: &str,
    body_limit: usize,
) -> Result<(Request, bool), AppError> {
    if let Some(token) = request.headers().get("x-csrf-token") {
        let ok = token.to_str().is_ok_and(|t| constant_time_eq(t, expected));
        return Ok((request, ok));
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let is_form = content_type.starts_with("application/x-www-form-urlencoded");
    let is_upload = content_type.starts_with("multipart/form-data");
    if !is_form && !is_upload {
        return Ok((request, false));
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, body_limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|cause| cause.is::<http_body_util::LengthLimitError>());
        if too_large {
            AppError::PayloadTooLarge
        } else {
            AppError::BadRequest(String::from("the request body could not be read"))
        }
    })?;
    let ok = if is_upload {
        let copy = Request::from_parts(parts.clone(), Body::from(bytes.clone()));
        upload_csrf_token(copy)
            .await
            .is_some_and(|token| constant_time_eq(&token, expected))
    } else {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
            .ok()
            .and_then(|fields| fields.into_iter().find(|(k, _)| k == "csrf_token"))
            .is_some_and(|(_, token)| constant_time_eq(&token, expected))
    };
    Ok((Request::from_parts(parts, Body::from(bytes)), ok))
}

/// The `csrf_token` field of a multipart upload form, read before its file.
async fn upload_csrf_token(request: Request) -> Option<String> {
    use axum::extract::FromRequest;
    let mut multipart = axum::extract::Multipart::from_request(request, &())
        .await
        .ok()?;
    while let Some(field) = multipart.next_field().await.ok()? {
        if field.name() == Some("csrf_token") {
            return field.text().await.ok();
        }
    }
    None
}

fn urlencode(path: &str) -> String {
    serde_urlencoded::to_string([("", path)])
        .map(|s| s.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

/// Extractors for what the guard (and the client middleware) put into the
/// request. Missing means a route lacks its guard: a bug, answered with a 500
/// (the route-table tests would catch it first).
macro_rules! from_extensions {
    ($($type:ty),+) => {$(
        impl<S: Send + Sync> FromRequestParts<S> for $type {
            type Rejection = Response;

            async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
                parts.extensions.get::<$type>().cloned().ok_or_else(|| {
                    tracing::error!("a handler expected an access guard that its route does not have");
                    (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
                })
            }
        }
    )+};
}

from_extensions!(
    Principal,
    OrgContext,
    DeviceContext,
    MaybePrincipal,
    crate::audit::Audit,
    crate::audit::RequestOrigin,
    crate::client::ClientInfo
);

/// How stale a device's last-seen time may get before a request of it
/// refreshes it: two telemetry intervals (online means heard from within
/// three, and every telemetry report writes it anyway).
pub(crate) fn seen_every(state: &AppState) -> std::time::Duration {
    std::time::Duration::from_secs(2 * u64::from(state.settings.agent.telemetry_interval_seconds))
}
