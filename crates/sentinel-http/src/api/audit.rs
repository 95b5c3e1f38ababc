//! The audit logs over the API: an organization's log (`audit.read`) and the
//! platform log (platform admins), one page at a time or exported whole.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use sentinel_core::OrgId;
use sentinel_core::audit::{LogId, StoredEntry};
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiResult;
use crate::access::OrgContext;
use crate::audit::Audit;
use crate::error::Problem;
use crate::extract::ApiQuery;
use crate::ops;
use crate::ops::audit::AuditQuery;
use crate::state::AppState;

/// A page of entries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<StoredEntry>,
    /// Pass as `after` for the next (older) page; null on the last page.
    pub next: Option<String>,
}

async fn page(log: sentinel_store::AuditLog, query: &AuditQuery) -> ApiResult<Json<AuditPage>> {
    let page = ops::audit::page(&log, query).await?;
    Ok(Json(AuditPage {
        entries: page.entries,
        next: page.next.map(|n| n.to_string()),
    }))
}

async fn export(
    state: &AppState,
    log: sentinel_store::AuditLog,
    audit: &sentinel_core::audit::AuditContext,
    query: &AuditQuery,
) -> ApiResult<Response> {
    let name = match log.id() {
        LogId::Platform => String::from("platform"),
        LogId::Org(org) => org.to_string(),
    };
    let (format, body) = ops::audit::export(state, log, audit, query).await?;
    Ok(super::attachment(
        StatusCode::OK,
        format.content_type(),
        &format!("audit-{name}.{}", format.extension()),
        body,
    ))
}

/// The organization's audit log (`audit.read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/audit", tag = "audit",
    params(("org_id" = OrgId, Path), AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn org_entries(
    State(state): State<AppState>,
    ctx: OrgContext,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    page(state.stores.org_audit_log(&ctx.access).await?, &query).await
}

/// Exports the organization's matching entries as NDJSON or CSV (`audit.read`;
/// the export is itself audited).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/audit/export", tag = "audit",
    params(("org_id" = OrgId, Path), AuditQuery),
    responses((status = 200, description = "NDJSON or CSV, newest first"), (status = 400, body = Problem)))]
pub async fn org_export(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Response> {
    let log = state.stores.org_audit_log(&ctx.access).await?;
    export(&state, log, &audit, &query).await
}

/// The platform audit log (platform admins).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn platform_entries(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    page(state.stores.audit_log(LogId::Platform).await?, &query).await
}

/// Exports the platform log's matching entries as NDJSON or CSV (platform
/// admins; the export is itself audited).
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "NDJSON or CSV, newest first"), (status = 400, body = Problem)))]
pub async fn platform_export(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Response> {
    let log = state.stores.audit_log(LogId::Platform).await?;
    export(&state, log, &audit, &query).await
}
