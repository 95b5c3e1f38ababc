//! Platform administration pages: user accounts.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use sentinel_core::UserId;
use serde::Deserialize;

use super::orgs::NoticeQuery;
use super::{Layout, UiResult, render, see_other};
use crate::access::Principal;
use crate::audit::Audit;
use crate::error::AppError;
use crate::extract::{UiForm, UiPath, UiQuery};
use crate::ops;
use crate::state::AppState;

pub struct UserRow {
    pub id: UserId,
    pub name: String,
    pub email: String,
    pub platform_admin: bool,
    pub created: String,
    pub is_you: bool,
    /// When the login lock ends, while the account is locked.
    pub locked_until: Option<String>,
    pub two_factor: bool,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    layout: Layout,
    rows: Vec<UserRow>,
    email: String,
    name: String,
}

async fn users_page(
    state: &AppState,
    principal: &Principal,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<String>,
    (email, name): (String, String),
) -> UiResult {
    let layout = Layout::signed_in(state, principal, "Users", None)
        .await?
        .with_notice(notice)
        .with_error(error);
    let with_two_factor = state.stores.control().users_with_two_factor().await?;
    let rows = ops::users::list(state)
        .await?
        .into_iter()
        .map(|(u, locked_until)| UserRow {
            locked_until: locked_until.map(|t| t.to_rfc3339()),
            two_factor: with_two_factor.contains(&u.id),
            is_you: u.id == principal.user.id,
            id: u.id,
            name: u.name.to_string(),
            email: u.email.to_string(),
            platform_admin: u.platform_admin,
            created: u.created_at.to_rfc3339(),
        })
        .collect();
    Ok(render(
        status,
        &UsersPage {
            layout,
            rows,
            email,
            name,
        },
    ))
}

/// Re-renders the page with the error when the admin can fix it.
pub(super) async fn or_show(
    state: &AppState,
    principal: &Principal,
    e: AppError,
    entered: (String, String),
) -> UiResult {
    match e {
        AppError::Invalid(_) | AppError::Conflict(_) | AppError::NotFound(_) => {
            users_page(
                state,
                principal,
                e.status(),
                None,
                Some(e.detail()),
                entered,
            )
            .await
        }
        other => Err(other.into()),
    }
}

pub async fn users(
    State(state): State<AppState>,
    principal: Principal,
    UiQuery(query): UiQuery<NoticeQuery>,
) -> UiResult {
    users_page(
        &state,
        &principal,
        StatusCode::OK,
        query.notice.as_deref(),
        None,
        Default::default(),
    )
    .await
}

#[derive(Deserialize)]
pub struct CreateUserForm {
    email: String,
    name: String,
    password: String,
    platform_admin: Option<String>,
}

pub async fn create_user(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    UiForm(form): UiForm<CreateUserForm>,
) -> UiResult {
    let admin = form.platform_admin.is_some();
    match ops::users::create(
        &state,
        &principal,
        &audit,
        &form.email,
        &form.name,
        &form.password,
        admin,
    )
    .await
    {
        Ok(_) => Ok(see_other("/admin/users?notice=user-created")),
        Err(e) => or_show(&state, &principal, e, (form.email, form.name)).await,
    }
}

#[derive(Deserialize)]
pub struct PlatformAdminForm {
    platform_admin: bool,
}

pub async fn set_platform_admin(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    UiPath(user): UiPath<UserId>,
    UiForm(form): UiForm<PlatformAdminForm>,
) -> UiResult {
    match ops::users::set_platform_admin(&state, &principal, &audit, user, form.platform_admin)
        .await
    {
        Ok(_) => Ok(see_other("/admin/users?notice=user-updated")),
        Err(e) => or_show(&state, &principal, e, Default::default()).await,
    }
}

pub async fn delete_user(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    UiPath(user): UiPath<UserId>,
) -> UiResult {
    match ops::users::delete(&state, &principal, &audit, user).await {
        Ok(()) => Ok(see_other("/admin/users?notice=user-deleted")),
        Err(e) => or_show(&state, &principal, e, Default::default()).await,
    }
}

pub async fn unlock_user(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    UiPath(user): UiPath<UserId>,
) -> UiResult {
    match ops::users::unlock(&state, &principal, &audit, user).await {
        Ok(()) => Ok(see_other("/admin/users?notice=user-unlocked")),
        Err(e) => or_show(&state, &principal, e, Default::default()).await,
    }
}
