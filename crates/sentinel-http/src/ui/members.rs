//! The members page of an organization: list, add, change role, remove.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use sentinel_core::{OrgId, Permission, TenantRole, UserId};
use serde::Deserialize;

use super::orgs::NoticeQuery;
use super::{Layout, UiResult, render, see_other};
use crate::access::OrgContext;
use crate::audit::Audit;
use crate::error::AppError;
use crate::extract::{UiForm, UiPath, UiQuery};
use crate::ops;
use crate::ops::members::UserRef;
use crate::state::AppState;

pub struct MemberRow {
    pub user_id: UserId,
    pub name: String,
    pub email: String,
    pub role: TenantRole,
    pub since: String,
    pub is_you: bool,
}

#[derive(Template)]
#[template(path = "members.html")]
struct MembersPage {
    layout: Layout,
    org_id: OrgId,
    org_name: String,
    rows: Vec<MemberRow>,
    can_manage: bool,
    roles: Vec<TenantRole>,
    email: String,
}

async fn members_page(
    state: &AppState,
    ctx: &OrgContext,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<String>,
    email: String,
) -> UiResult {
    let org = ctx.organization();
    let layout = Layout::signed_in(
        state,
        &ctx.principal,
        &format!("Members of {}", org.name),
        Some(org.id),
    )
    .await?
    .with_notice(notice)
    .with_error(error);
    let rows = ops::members::list(state, ctx)
        .await?
        .into_iter()
        .map(|m| MemberRow {
            is_you: m.user_id == ctx.principal.user.id,
            user_id: m.user_id,
            name: m.name.to_string(),
            email: m.email.to_string(),
            role: m.role,
            since: m.since.to_rfc3339(),
        })
        .collect();
    let my_role = ctx.membership.role();
    let page = MembersPage {
        layout,
        org_id: org.id,
        org_name: org.name.to_string(),
        rows,
        can_manage: my_role.grants(Permission::MembersManage),
        roles: TenantRole::ALL
            .into_iter()
            .filter(|r| my_role.may_change_membership(None, Some(*r)))
            .collect(),
        email,
    };
    Ok(render(status, &page))
}

pub async fn list(
    State(state): State<AppState>,
    ctx: OrgContext,
    UiQuery(query): UiQuery<NoticeQuery>,
) -> UiResult {
    members_page(
        &state,
        &ctx,
        StatusCode::OK,
        query.notice.as_deref(),
        None,
        String::new(),
    )
    .await
}

/// Re-renders the page with the error when the client can fix it; otherwise
/// hands the error on to the error page.
async fn or_show(state: &AppState, ctx: &OrgContext, e: AppError, email: String) -> UiResult {
    match e {
        AppError::Invalid(_)
        | AppError::Conflict(_)
        | AppError::NotFound(_)
        | AppError::Forbidden(_) => {
            members_page(state, ctx, e.status(), None, Some(e.detail()), email).await
        }
        other => Err(other.into()),
    }
}

#[derive(Deserialize)]
pub struct AddForm {
    email: String,
    role: TenantRole,
}

pub async fn add(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    UiForm(form): UiForm<AddForm>,
) -> UiResult {
    match ops::members::add(
        &state,
        &ctx,
        &audit,
        UserRef::Email(form.email.clone()),
        form.role,
    )
    .await
    {
        Ok(_) => Ok(see_other(&format!(
            "/orgs/{}/members?notice=member-added",
            ctx.organization().id
        ))),
        Err(e) => or_show(&state, &ctx, e, form.email).await,
    }
}

#[derive(Deserialize)]
pub struct RoleForm {
    role: TenantRole,
}

pub async fn change_role(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    UiPath((_, user)): UiPath<(OrgId, UserId)>,
    UiForm(form): UiForm<RoleForm>,
) -> UiResult {
    match ops::members::change_role(&state, &ctx, &audit, user, form.role).await {
        Ok(_) => Ok(see_other(&format!(
            "/orgs/{}/members?notice=role-changed",
            ctx.organization().id
        ))),
        Err(e) => or_show(&state, &ctx, e, String::new()).await,
    }
}

pub async fn remove(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    UiPath((_, user)): UiPath<(OrgId, UserId)>,
) -> UiResult {
    match ops::members::remove(&state, &ctx, &audit, user).await {
        Ok(()) if user == ctx.principal.user.id => Ok(see_other("/orgs?notice=member-removed")),
        Ok(()) => Ok(see_other(&format!(
            "/orgs/{}/members?notice=member-removed",
            ctx.organization().id
        ))),
        Err(e) => or_show(&state, &ctx, e, String::new()).await,
    }
}
