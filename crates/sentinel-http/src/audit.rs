//! Auditing at the HTTP edge: where a request came from, who is acting, and the
//! record of every refusal of an authenticated caller.
//!
//! Changes record their own entries, in the transaction that makes them (see
//! `sentinel_store::audit`). What happens at the edge is recorded here: the
//! access guard calls [`record_denial`] when it refuses an authenticated
//! principal on a mutating route, or when the handler refuses them (an error
//! response marked [`Denied`]). Refusals of unauthenticated callers are counted in
//! [`Metrics`] instead, so that nobody can flood a log without logging in.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::http::{Method, header};
use sentinel_core::audit::{Actor, AuditAction, AuditContext, Entity, LogId, Origin, Outcome};
use uuid::Uuid;

use crate::client::ClientInfo;
use crate::session::Principal;
use crate::state::AppState;

/// The id of a request (the `X-Request-Id` it is answered with).
#[derive(Debug, Clone, Copy)]
pub struct RequestId(pub Uuid);

/// The caller's [`AuditContext`], for handlers of authenticated routes.
#[derive(Debug, Clone)]
pub struct Audit(pub AuditContext);

/// The request's [`Origin`], for handlers of public routes.
#[derive(Debug, Clone)]
pub struct RequestOrigin(pub Origin);

/// Marks an error response as a refusal of the caller, for the guard to audit.
#[derive(Debug, Clone, Copy)]
pub struct Denied(pub &'static str);

/// The origin of `request`, from what the middleware recorded.
pub fn origin_of(request: &Request) -> Origin {
    let ip = request
        .extensions()
        .get::<ClientInfo>()
        .map(|c| c.ip.to_string())
        .unwrap_or_default();
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.to_string())
        .unwrap_or_default();
    Origin::new(ip, user_agent, request_id)
}

/// The audit context of a logged-in user's request.
pub fn context_of(principal: &Principal, origin: &Origin) -> AuditContext {
    let mut actor = Actor::user(principal.user.id, &principal.user.name);
    if let Some(token) = principal.token() {
        actor.name = format!("{} (API token {})", actor.name, token.id);
    }
    AuditContext {
        actor,
        origin: origin.clone(),
    }
}

/// Who was refused, and where the refusal belongs.
#[derive(Debug, Clone)]
pub struct Refused {
    pub context: AuditContext,
    /// The organization's log when the caller is a member; else the platform log.
    pub log: LogId,
    pub entity: Entity,
}

/// Records that `refused` was denied `action` on `method path`. A failure to
/// record is logged; the caller is refused either way.
pub async fn record_denial(
    state: &AppState,
    refused: &Refused,
    action: AuditAction,
    method: &Method,
    path: &str,
    reason: &str,
) {
    let event = refused.context.event(
        state.clock.now(),
        action,
        refused.entity.clone(),
        serde_json::json!({ "method": method.as_str(), "path": path, "reason": reason }),
        Outcome::Denied,
    );
    if let Err(e) = state.stores.record(refused.log, event).await {
        state.metrics.audit_failures.fetch_add(1, Ordering::Relaxed);
        tracing::error!(error = %e, %action, "could not record a denial in the audit log");
    }
}

/// Counters of what is not worth an audit entry each, and of audit failures.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Mutating requests refused before authentication (no session, cross-site).
    pub unauthenticated_refusals: AtomicU64,
    /// Audit entries that could not be written.
    pub audit_failures: AtomicU64,
    /// Requests refused with 429 by a rate limit.
    pub rate_limited: AtomicU64,
    /// MQTT connections open now (a gauge).
    pub mqtt_connections: AtomicU64,
    /// MQTT connections refused at CONNECT (bad credentials, revoked device,
    /// limits, malformed or unsupported CONNECT).
    pub mqtt_connect_refusals: AtomicU64,
    /// Publishes and subscriptions refused by topic authorization.
    pub mqtt_topic_refusals: AtomicU64,
    /// Of those, the ones not audited because the device's audit allowance
    /// for refusals was used up.
    pub mqtt_refusals_unaudited: AtomicU64,
    /// Messages accepted over MQTT and stored.
    pub mqtt_messages_stored: AtomicU64,
}

impl Metrics {
    /// The counters in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for (name, help, value) in [
            (
                "sentinel_unauthenticated_refusals_total",
                "Mutating requests refused before authentication.",
                &self.unauthenticated_refusals,
            ),
            (
                "sentinel_audit_failures_total",
                "Audit entries that could not be written.",
                &self.audit_failures,
            ),
            (
                "sentinel_rate_limited_total",
                "Requests refused by a rate limit.",
                &self.rate_limited,
            ),
            (
                "sentinel_mqtt_connect_refusals_total",
                "MQTT connections refused at CONNECT.",
                &self.mqtt_connect_refusals,
            ),
            (
                "sentinel_mqtt_topic_refusals_total",
                "MQTT publishes and subscriptions refused by topic authorization.",
                &self.mqtt_topic_refusals,
            ),
            (
                "sentinel_mqtt_refusals_unaudited_total",
                "MQTT topic refusals beyond a device's audit allowance (counted only).",
                &self.mqtt_refusals_unaudited,
            ),
            (
                "sentinel_mqtt_messages_stored_total",
                "MQTT messages accepted and stored.",
                &self.mqtt_messages_stored,
            ),
        ] {
            text.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                value.load(Ordering::Relaxed)
            ));
        }
        text.push_str(&format!(
            "# HELP sentinel_mqtt_connections MQTT device connections open now.\n# TYPE sentinel_mqtt_connections gauge\nsentinel_mqtt_connections {}\n",
            self.mqtt_connections.load(Ordering::Relaxed)
        ));
        text
    }
}
