//! The profile page: who you are, your two-factor standing, and changing your
//! password.

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;

use super::orgs::NoticeQuery;
use super::{Layout, UiResult, render, see_other};
use crate::access::Principal;
use crate::audit::Audit;
use crate::client::ClientInfo;
use crate::error::AppError;
use crate::extract::{UiForm, UiQuery};
use crate::ops;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage {
    layout: Layout,
    name: String,
    email: String,
    platform_admin: bool,
    two_factor_on: bool,
}

async fn profile_page(
    state: &AppState,
    principal: &Principal,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<String>,
) -> UiResult {
    let layout = Layout::signed_in(state, principal, "Profile", None)
        .await?
        .with_notice(notice)
        .with_error(error);
    let user = &principal.user;
    let two_factor_on = ops::two_factor::status(state, user.id)
        .await?
        .enabled_at
        .is_some();
    let page = ProfilePage {
        two_factor_on,
        layout,
        name: user.name.to_string(),
        email: user.email.to_string(),
        platform_admin: user.platform_admin,
    };
    Ok(render(status, &page))
}

pub async fn page(
    State(state): State<AppState>,
    principal: Principal,
    UiQuery(query): UiQuery<NoticeQuery>,
) -> UiResult {
    profile_page(
        &state,
        &principal,
        StatusCode::OK,
        query.notice.as_deref(),
        None,
    )
    .await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
    new_password_confirm: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    client: ClientInfo,
    UiForm(form): UiForm<PasswordForm>,
) -> UiResult {
    if form.new_password != form.new_password_confirm {
        let error = Some(String::from("The two new passwords differ."));
        return profile_page(
            &state,
            &principal,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            error,
        )
        .await;
    }
    match ops::auth::change_password(
        &state,
        &principal,
        &client,
        &audit,
        &form.current_password,
        &form.new_password,
    )
    .await
    {
        Ok((session, _)) => Ok((
            [(header::SET_COOKIE, session.set_cookie)],
            see_other("/profile?notice=password-changed"),
        )
            .into_response()),
        Err(e @ AppError::Invalid(_)) => {
            profile_page(&state, &principal, e.status(), None, Some(e.detail())).await
        }
        Err(e) => Err(e.into()),
    }
}
