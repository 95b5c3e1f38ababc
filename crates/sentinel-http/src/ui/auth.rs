//! Sign-in (password, then a code when two-factor authentication is on) and
//! sign-out pages.

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Layout, UiResult, render, safe_next, see_other, signed_out};
use crate::access::{MaybePrincipal, Principal};
use crate::audit::{Audit, RequestOrigin};
use crate::client::ClientInfo;
use crate::error::AppError;
use crate::extract::{UiForm, UiQuery};
use crate::ops;
use crate::ops::auth::LoginOutcome;
use crate::ops::two_factor::WRONG_CODE as WRONG_CODE_TEXT;
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
        Ok(LoginOutcome::SignedIn(_, session)) => {
            Ok(([(header::SET_COOKIE, session.set_cookie)], see_other(&next)).into_response())
        }
        Ok(LoginOutcome::SecondFactorRequired(token)) => Ok(render(
            StatusCode::OK,
            &MfaPage {
                layout: Layout::anonymous("Two-factor authentication"),
                mfa_token: token.0.expose().to_owned(),
                next,
            },
        )),
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

#[derive(Template)]
#[template(path = "login_mfa.html")]
struct MfaPage {
    layout: Layout,
    mfa_token: String,
    next: String,
}

#[derive(Deserialize)]
pub struct MfaForm {
    mfa_token: String,
    code: String,
    next: Option<String>,
}

/// The second page of a login with two-factor authentication on.
pub async fn login_mfa(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    MaybePrincipal(previous): MaybePrincipal,
    client: ClientInfo,
    UiForm(form): UiForm<MfaForm>,
) -> UiResult {
    let next = safe_next(form.next.as_deref()).to_owned();
    let result = ops::two_factor::complete_login(
        &state,
        &form.mfa_token,
        &form.code,
        &client,
        &origin,
        previous.as_ref(),
    )
    .await;
    let error = match result {
        Ok((_, session)) => {
            return Ok(
                ([(header::SET_COOKIE, session.set_cookie)], see_other(&next)).into_response(),
            );
        }
        // The pending login is still alive: let them try again.
        Err(e @ (AppError::Invalid(_) | AppError::SecondFactorFailed(WRONG_CODE_TEXT))) => e,
        Err(AppError::SecondFactorFailed(_)) => {
            return Ok(see_other("/login?notice=sign-in-expired"));
        }
        Err(e) => return Err(e.into()),
    };
    let layout = Layout::anonymous("Two-factor authentication").with_error(Some(error.detail()));
    Ok(render(
        error.status(),
        &MfaPage {
            layout,
            mfa_token: form.mfa_token,
            next,
        },
    ))
}

pub async fn logout(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
) -> UiResult {
    ops::auth::logout(&state, &principal, &audit).await?;
    Ok(signed_out())
}
