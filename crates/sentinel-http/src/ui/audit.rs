//! The audit log pages: an organization's log (`audit.read`) and the platform
//! log (platform admins), filtered with a GET form, newest first, with links to
//! the older page and to NDJSON and CSV exports.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use sentinel_core::audit::{AuditAction, LogId, Outcome, StoredEntry};

use super::{Layout, UiResult, render};
use crate::access::{OrgContext, Principal};
use crate::error::AppError;
use crate::extract::UiQuery;
use crate::ops;
use crate::ops::audit::AuditQuery;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    heading: String,
    base_path: String,
    export_path: String,
    query: AuditQuery,
    export_query: String,
    /// Every action name, and whether it is the one filtered on.
    actions: Vec<(&'static str, bool)>,
    outcomes: Vec<(&'static str, bool)>,
    entries: Vec<StoredEntry>,
    next_query: Option<String>,
}

fn encode(query: &AuditQuery) -> String {
    serde_urlencoded::to_string(query).unwrap_or_default()
}

async fn audit_page(
    state: &AppState,
    log: LogId,
    layout: Layout,
    heading: String,
    base_path: String,
    export_path: String,
    query: AuditQuery,
) -> UiResult {
    let audit_log = state.stores.audit_log(log).await?;
    let (status, layout, entries, next) = match ops::audit::page(&audit_log, &query).await {
        Ok(page) => (StatusCode::OK, layout, page.entries, page.next),
        Err(AppError::BadRequest(message)) => (
            StatusCode::BAD_REQUEST,
            layout.with_error(Some(message)),
            Vec::new(),
            None,
        ),
        Err(e) => return Err(e.into()),
    };
    let filters = AuditQuery {
        after: None,
        format: None,
        ..query.clone()
    };
    let page = AuditPage {
        layout,
        heading,
        base_path,
        export_path,
        export_query: encode(&AuditQuery {
            limit: None,
            ..filters.clone()
        }),
        next_query: next.map(|n| {
            encode(&AuditQuery {
                after: Some(n.to_string()),
                ..filters
            })
        }),
        actions: AuditAction::ALL
            .iter()
            .map(|a| (a.as_str(), query.action.as_deref() == Some(a.as_str())))
            .collect(),
        outcomes: Outcome::ALL
            .iter()
            .map(|o| (o.as_str(), query.outcome.as_deref() == Some(o.as_str())))
            .collect(),
        query,
        entries,
    };
    Ok(render(status, &page))
}

pub async fn org_page(
    State(state): State<AppState>,
    ctx: OrgContext,
    UiQuery(query): UiQuery<AuditQuery>,
) -> UiResult {
    let org = ctx.organization();
    let org_id = org.id;
    let title = format!("Audit log of {}", org.name);
    let layout = Layout::signed_in(&state, &ctx.principal, &title, Some(org.id)).await?;
    audit_page(
        &state,
        LogId::Org(ctx.access.org_id()),
        layout,
        title,
        format!("/orgs/{org_id}/audit"),
        format!("/api/v1/orgs/{org_id}/audit/export"),
        query,
    )
    .await
}

pub async fn platform_page(
    State(state): State<AppState>,
    principal: Principal,
    UiQuery(query): UiQuery<AuditQuery>,
) -> UiResult {
    let title = String::from("Platform audit log");
    let layout = Layout::signed_in(&state, &principal, &title, None).await?;
    audit_page(
        &state,
        LogId::Platform,
        layout,
        title,
        String::from("/admin/audit"),
        String::from("/api/v1/audit/export"),
        query,
    )
    .await
}
