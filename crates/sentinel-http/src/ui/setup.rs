//! The first-admin setup page, reached through the one-time link.

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Layout, UiResult, error_page, render, see_other};
use crate::audit::RequestOrigin;
use crate::client::ClientInfo;
use crate::error::AppError;
use crate::extract::{UiForm, UiQuery};
use crate::state::AppState;
use crate::{ops, session};

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    layout: Layout,
    token: String,
    name: String,
    email: String,
}

#[derive(Debug, Deserialize)]
pub struct SetupQuery {
    token: Option<String>,
}

const DEAD_LINK: &str = "This setup link is invalid, used or expired. Restart the server to get a new one, \
     or create an account with `sentinel admin create-user`.";

pub async fn page(State(state): State<AppState>, UiQuery(query): UiQuery<SetupQuery>) -> UiResult {
    let token = query.token.unwrap_or_default();
    if !ops::setup::link_usable(&state, &token).await? {
        return Ok(error_page(StatusCode::NOT_FOUND, DEAD_LINK));
    }
    let layout = Layout::anonymous("Set up Sentinel");
    Ok(render(
        StatusCode::OK,
        &SetupPage {
            layout,
            token,
            name: String::new(),
            email: String::new(),
        },
    ))
}

#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    name: String,
    email: String,
    password: String,
    password_confirm: String,
}

/// Creates the first platform admin and signs them in.
pub async fn submit(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    client: ClientInfo,
    UiForm(form): UiForm<SetupForm>,
) -> UiResult {
    let again = |error: String| -> Response {
        let layout = Layout::anonymous("Set up Sentinel").with_error(Some(error));
        let page = SetupPage {
            layout,
            token: form.token.clone(),
            name: form.name.clone(),
            email: form.email.clone(),
        };
        render(StatusCode::UNPROCESSABLE_ENTITY, &page)
    };
    if form.password != form.password_confirm {
        return Ok(again(String::from("The two passwords differ.")));
    }
    match ops::setup::complete(
        &state,
        &form.token,
        &form.name,
        &form.email,
        &form.password,
        &origin,
    )
    .await
    {
        Ok(user) => {
            let started =
                session::start(&state, user.id, user.created_at, &client, None, None).await?;
            Ok((
                [(header::SET_COOKIE, started.set_cookie)],
                see_other("/orgs"),
            )
                .into_response())
        }
        Err(AppError::Invalid(e)) => Ok(again(e.to_string())),
        Err(AppError::Forbidden(_)) => Ok(error_page(StatusCode::FORBIDDEN, DEAD_LINK)),
        Err(e) => Err(e.into()),
    }
}
