//! Two-factor authentication pages: the caller's enrolment (QR code drawn on the
//! server), recovery codes shown once, switching off; the organization policy
//! form and the admin's reset post here too.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use sentinel_core::{RecoveryCode, TwoFactorPolicy, UserId};
use serde::Deserialize;

use super::orgs::NoticeQuery;
use super::{Layout, UiResult, render_with_error, see_other, shown_on_page};
use crate::access::{OrgContext, Principal};
use crate::audit::Audit;
use crate::error::AppError;
use crate::extract::{UiForm, UiPath, UiQuery};
use crate::ops;
use crate::ops::two_factor::Enrolment;
use crate::state::AppState;

/// A pending secret as the page shows it.
pub struct EnrolmentView {
    pub secret: String,
    pub qr_svg: String,
}

impl From<Enrolment> for EnrolmentView {
    fn from(e: Enrolment) -> Self {
        EnrolmentView {
            secret: e.secret.expose().to_owned(),
            qr_svg: e.qr_svg,
        }
    }
}

#[derive(Template)]
#[template(path = "two_factor.html")]
struct TwoFactorPage {
    layout: Layout,
    enabled_at: Option<String>,
    recovery_codes_left: i64,
    enrolment: Option<EnrolmentView>,
    recovery_codes: Vec<String>,
}

/// What the page shows besides the standing: a pending enrolment or new codes.
#[derive(Default)]
struct Showing {
    enrolment: Option<EnrolmentView>,
    recovery_codes: Vec<RecoveryCode>,
}

async fn two_factor_page(
    state: &AppState,
    principal: &Principal,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&AppError>,
    showing: Showing,
) -> UiResult {
    let layout = Layout::signed_in(state, principal, "Two-factor authentication", None)
        .await?
        .with_notice(notice)
        .with_error(error.map(AppError::detail));
    let standing = ops::two_factor::status(state, principal.user.id).await?;
    let page = TwoFactorPage {
        layout,
        enabled_at: standing.enabled_at.map(|t| t.to_rfc3339()),
        recovery_codes_left: standing.recovery_codes_left,
        enrolment: showing.enrolment,
        recovery_codes: showing
            .recovery_codes
            .iter()
            .map(RecoveryCode::display)
            .collect(),
    };
    Ok(render_with_error(status, &page, error))
}

pub async fn page(
    State(state): State<AppState>,
    principal: Principal,
    UiQuery(query): UiQuery<NoticeQuery>,
) -> UiResult {
    two_factor_page(
        &state,
        &principal,
        StatusCode::OK,
        query.notice.as_deref(),
        None,
        Showing::default(),
    )
    .await
}

pub async fn start_enrolment(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
) -> UiResult {
    match ops::two_factor::start_enrolment(&state, &principal, &audit).await {
        Ok(enrolment) => {
            let showing = Showing {
                enrolment: Some(enrolment.into()),
                ..Showing::default()
            };
            two_factor_page(&state, &principal, StatusCode::OK, None, None, showing).await
        }
        Err(e) if shown_on_page(&e) => {
            two_factor_page(
                &state,
                &principal,
                e.status(),
                None,
                Some(&e),
                Showing::default(),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

pub async fn confirm_enrolment(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    UiForm(form): UiForm<CodeForm>,
) -> UiResult {
    match ops::two_factor::confirm_enrolment(&state, &principal, &audit, &form.code).await {
        Ok(codes) => {
            let showing = Showing {
                recovery_codes: codes,
                ..Showing::default()
            };
            two_factor_page(&state, &principal, StatusCode::OK, None, None, showing).await
        }
        Err(e) if shown_on_page(&e) => {
            // A mistyped code: show the same pending secret again.
            let enrolment = ops::two_factor::pending_enrolment(&state, &principal).await?;
            let showing = Showing {
                enrolment: enrolment.map(Into::into),
                ..Showing::default()
            };
            two_factor_page(&state, &principal, e.status(), None, Some(&e), showing).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn new_recovery_codes(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    UiForm(form): UiForm<CodeForm>,
) -> UiResult {
    let (status, error, showing) =
        match ops::two_factor::new_recovery_codes(&state, &principal, &audit, &form.code).await {
            Ok(codes) => (
                StatusCode::OK,
                None,
                Showing {
                    recovery_codes: codes,
                    ..Showing::default()
                },
            ),
            Err(e) if shown_on_page(&e) => (e.status(), Some(e), Showing::default()),
            Err(e) => return Err(e.into()),
        };
    two_factor_page(&state, &principal, status, None, error.as_ref(), showing).await
}

#[derive(Deserialize)]
pub struct DisableForm {
    password: String,
    code: String,
}

pub async fn disable(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    UiForm(form): UiForm<DisableForm>,
) -> UiResult {
    match ops::two_factor::disable(&state, &principal, &audit, &form.password, &form.code).await {
        Ok(_) => Ok(see_other("/profile/two-factor?notice=two-factor-disabled")),
        Err(e) if shown_on_page(&e) => {
            two_factor_page(
                &state,
                &principal,
                e.status(),
                None,
                Some(&e),
                Showing::default(),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct PolicyForm {
    policy: String,
}

pub async fn set_policy(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    UiForm(form): UiForm<PolicyForm>,
) -> UiResult {
    let Ok(policy) = form.policy.parse::<TwoFactorPolicy>() else {
        let e = AppError::BadRequest(String::from("unknown two-factor policy"));
        return Err(e.into());
    };
    match ops::two_factor::set_policy(&state, &ctx, &audit, policy).await {
        Ok(_) => Ok(see_other(&format!(
            "/orgs/{}?notice=two-factor-policy-changed",
            ctx.organization().id
        ))),
        Err(e @ AppError::Conflict(_)) => {
            super::orgs::org_page(&state, &ctx, e.status(), None, Some(e.detail())).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn reset(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    UiPath(user): UiPath<UserId>,
) -> UiResult {
    match ops::two_factor::reset(&state, &principal, &audit, user).await {
        Ok(_) => Ok(see_other("/admin/users?notice=two-factor-reset")),
        Err(e) => super::admin::or_show(&state, &principal, e, Default::default()).await,
    }
}
