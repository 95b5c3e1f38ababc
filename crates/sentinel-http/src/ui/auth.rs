//! Sign-in and sign-out pages.

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Layout, UiResult, render, safe_next, see_other};
use crate::access::{MaybePrincipal, Principal};
use crate::audit::{Audit, RequestOrigin};
use crate::client::ClientInfo;
use crate::error::AppError;
use crate::extract::{UiForm, UiQuery};
use crate::ops;
use crate::session::clear_cookie;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    email: String,
    next: String,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    notice: Option<String>,
}

pub async fn login_page(
    MaybePrincipal(principal): MaybePrincipal,
    UiQuery(query): UiQuery<LoginQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref()).to_owned();
    if principal.is_some() {
        return see_other(&next);
    }
    let layout = Layout::anonymous("Sign in").with_notice(query.notice.as_deref());
    render(
        StatusCode::OK,
        &LoginPage {
            layout,
            email: String::new(),
            next,
        },
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    MaybePrincipal(previous): MaybePrincipal,
    client: ClientInfo,
    UiForm(form): UiForm<LoginForm>,
) -> UiResult {
    let next = safe_next(form.next.as_deref()).to_owned();
    match ops::auth::login(
        &state,
        &form.email,
        &form.password,
        &client,
        &origin,
        previous.as_ref(),
    )
    .await
    {
        Ok((_, session)) => {
            Ok(([(header::SET_COOKIE, session.set_cookie)], see_other(&next)).into_response())
        }
        Err(AppError::InvalidCredentials) => {
            let layout = Layout::anonymous("Sign in")
                .with_error(Some(AppError::InvalidCredentials.detail()));
            Ok(render(
                StatusCode::UNAUTHORIZED,
                &LoginPage {
                    layout,
                    email: form.email,
                    next,
                },
            ))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn logout(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
) -> UiResult {
    ops::auth::logout(&state, &principal, &audit).await?;
    Ok((
        [(header::SET_COOKIE, clear_cookie())],
        see_other("/login?notice=logged-out"),
    )
        .into_response())
}
