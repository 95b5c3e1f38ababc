//! Organization pages: the list with the create form, an organization's overview
//! with its settings (name, two-factor policy), and deletion by platform admins.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use sentinel_core::{OrgId, TenantRole, TwoFactorPolicy};
use serde::Deserialize;

use super::{Layout, UiResult, render, see_other};
use crate::access::{OrgContext, Principal};
use crate::audit::Audit;
use crate::error::AppError;
use crate::extract::{UiForm, UiPath, UiQuery};
use crate::ops;
use crate::state::AppState;

/// One row of the organizations page.
pub struct OrgRow {
    pub id: OrgId,
    pub name: String,
    pub slug: String,
    pub role: Option<TenantRole>,
}

#[derive(Template)]
#[template(path = "orgs.html")]
struct OrgsPage {
    layout: Layout,
    rows: Vec<OrgRow>,
    can_create: bool,
    name: String,
}

#[derive(Debug, Deserialize)]
pub struct NoticeQuery {
    pub notice: Option<String>,
}

async fn orgs_page(
    state: &AppState,
    principal: &Principal,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<String>,
    name: String,
) -> UiResult {
    let layout = Layout::signed_in(state, principal, "Organizations", None)
        .await?
        .with_notice(notice)
        .with_error(error);
    let rows = ops::orgs::list(state, principal)
        .await?
        .into_iter()
        .map(|o| OrgRow {
            id: o.organization.id,
            name: o.organization.name.to_string(),
            slug: o.organization.slug.to_string(),
            role: o.role,
        })
        .collect();
    let can_create = principal.user.platform_admin || state.settings.allow_org_self_service;
    Ok(render(
        status,
        &OrgsPage {
            layout,
            rows,
            can_create,
            name,
        },
    ))
}

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    UiQuery(query): UiQuery<NoticeQuery>,
) -> UiResult {
    orgs_page(
        &state,
        &principal,
        StatusCode::OK,
        query.notice.as_deref(),
        None,
        String::new(),
    )
    .await
}

#[derive(Deserialize)]
pub struct NameForm {
    name: String,
}

pub async fn create(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    UiForm(form): UiForm<NameForm>,
) -> UiResult {
    match ops::orgs::create(&state, &principal, &audit, &form.name).await {
        Ok(org) => Ok(see_other(&format!("/orgs/{}?notice=org-created", org.id))),
        Err(e @ (AppError::Invalid(_) | AppError::Conflict(_))) => {
            orgs_page(
                &state,
                &principal,
                e.status(),
                None,
                Some(e.detail()),
                form.name,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "org.html")]
struct OrgPage {
    layout: Layout,
    id: OrgId,
    name: String,
    slug: String,
    created: String,
    role: TenantRole,
    can_rename: bool,
    can_read_audit: bool,
    two_factor_policy: TwoFactorPolicy,
}

pub(super) async fn org_page(
    state: &AppState,
    ctx: &OrgContext,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<String>,
) -> UiResult {
    let org = ctx.organization();
    let layout = Layout::signed_in(state, &ctx.principal, org.name.as_str(), Some(org.id))
        .await?
        .with_notice(notice)
        .with_error(error);
    let page = OrgPage {
        layout,
        id: org.id,
        name: org.name.to_string(),
        slug: org.slug.to_string(),
        created: org.created_at.to_rfc3339(),
        role: ctx.membership.role(),
        can_rename: ctx
            .membership
            .role()
            .grants(sentinel_core::Permission::OrgManage),
        can_read_audit: ctx
            .membership
            .role()
            .grants(sentinel_core::Permission::AuditRead),
        two_factor_policy: ctx.membership.two_factor_policy(),
    };
    Ok(render(status, &page))
}

pub async fn overview(
    State(state): State<AppState>,
    ctx: OrgContext,
    UiQuery(query): UiQuery<NoticeQuery>,
) -> UiResult {
    org_page(&state, &ctx, StatusCode::OK, query.notice.as_deref(), None).await
}

pub async fn rename(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    UiForm(form): UiForm<NameForm>,
) -> UiResult {
    match ops::orgs::rename(&state, &ctx, &audit, &form.name).await {
        Ok(org) => Ok(see_other(&format!("/orgs/{}?notice=org-renamed", org.id))),
        Err(e @ AppError::Invalid(_)) => {
            org_page(&state, &ctx, e.status(), None, Some(e.detail())).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct DeleteForm {
    /// The organization's slug, typed again to confirm.
    confirm: String,
}

pub async fn delete(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    UiPath(org_id): UiPath<OrgId>,
    UiForm(form): UiForm<DeleteForm>,
) -> UiResult {
    let org = state
        .stores
        .control()
        .organization(org_id)
        .await
        .map_err(AppError::from)?;
    let org = org.ok_or(AppError::NotFound("organization"))?;
    if form.confirm.trim() != org.slug.as_str() {
        let error = format!(
            "To delete {}, type its short name {} exactly.",
            org.name, org.slug
        );
        return orgs_page(
            &state,
            &principal,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some(error),
            String::new(),
        )
        .await;
    }
    ops::orgs::delete(&state, &principal, &audit, org_id).await?;
    Ok(see_other("/orgs?notice=org-deleted"))
}
