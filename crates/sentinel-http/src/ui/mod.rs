//! The web UI: server-rendered pages (askama templates, compile-checked), one
//! stylesheet, no script at all. Every form posts back with the session's CSRF
//! token; every page works without JavaScript.

pub mod admin;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod device_profiles;
pub mod devices;
pub mod findings;
pub mod integrations;
pub mod lorawan;
pub mod members;
pub mod orgs;
pub mod profile;
pub mod service_accounts;
pub mod sessions;
pub mod setup;
pub mod tokens;
pub mod two_factor;

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use sentinel_core::OrgId;

use crate::access::{MaybePrincipal, Principal};
use crate::error::{AppError, UiError};
use crate::state::AppState;

pub type UiResult = Result<Response, UiError>;

/// An organization as a link in the switcher.
#[derive(Debug, Clone)]
pub struct OrgLink {
    pub id: OrgId,
    pub name: String,
}

/// What the shared page frame shows: the title, the signed-in user's menu and
/// organization switcher, and any notice or error for this page.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub title: String,
    pub user_name: Option<String>,
    pub platform_admin: bool,
    pub csrf_token: String,
    pub orgs: Vec<OrgLink>,
    pub current_org: Option<OrgLink>,
    pub notice: Option<&'static str>,
    pub error: Option<String>,
}

impl Layout {
    /// The frame for an anonymous page (login, setup).
    pub fn anonymous(title: &str) -> Layout {
        Layout {
            title: title.to_owned(),
            ..Layout::default()
        }
    }

    /// The frame for a signed-in page, with the organization switcher filled in.
    pub async fn signed_in(
        state: &AppState,
        principal: &Principal,
        title: &str,
        current: Option<OrgId>,
    ) -> Result<Layout, AppError> {
        let orgs: Vec<OrgLink> = state
            .stores
            .control()
            .organizations_of(principal.user.id)
            .await?
            .into_iter()
            .map(|o| OrgLink {
                id: o.organization.id,
                name: o.organization.name.to_string(),
            })
            .collect();
        let current_org = current.and_then(|id| orgs.iter().find(|o| o.id == id).cloned());
        Ok(Layout {
            title: title.to_owned(),
            user_name: Some(principal.user.name.to_string()),
            platform_admin: principal.user.platform_admin,
            csrf_token: principal.csrf_token().unwrap_or_default().to_owned(),
            orgs,
            current_org,
            notice: None,
            error: None,
        })
    }

    pub fn with_notice(mut self, key: Option<&str>) -> Layout {
        self.notice = key.and_then(notice_text);
        self
    }

    pub fn with_error(mut self, error: Option<String>) -> Layout {
        self.error = error;
        self
    }
}

/// Notices shown after a redirect, by key (`?notice=…`): a fixed set, so that a
/// crafted link cannot put words on our pages.
fn notice_text(key: &str) -> Option<&'static str> {
    Some(match key {
        "org-created" => "Organization created.",
        "org-renamed" => "Organization renamed.",
        "org-deleted" => "Organization deleted.",
        "member-added" => "Member added.",
        "role-changed" => "Role changed.",
        "member-removed" => "Member removed.",
        "password-changed" => "Password changed. All your other sessions have been signed out.",
        "user-created" => "User created.",
        "user-updated" => "User updated.",
        "user-deleted" => "User deleted.",
        "user-unlocked" => "Login lock lifted.",
        "session-revoked" => "Session ended.",
        "sessions-ended" => "All sessions of the user ended.",
        "command-queued" => "Command queued.",
        "command-cancelled" => "Command cancelled.",
        "device-revoked" => "Device revoked.",
        "device-profile-created" => "Device profile created.",
        "device-profile-saved" => "Device profile saved.",
        "device-profile-deleted" => "Device profile deleted.",
        "lorawan-set" => "DevEUI and profile saved.",
        "lorawan-removed" => "DevEUI and profile removed.",
        "integration-created" => "Broker connection added.",
        "integration-saved" => "Broker connection saved; its worker restarted.",
        "integration-deleted" => "Broker connection deleted; its worker stopped.",
        "token-revoked" => "Enrollment token revoked.",
        "api-token-revoked" => "API token revoked.",
        "service-account-created" => "Service account created.",
        "service-account-deleted" => "Service account deleted, with all its tokens.",
        "logged-out" => "You have been signed out.",
        "two-factor-required" => {
            "An organization you belong to requires two-factor authentication. Set it up to continue."
        }
        "two-factor-disabled" => {
            "Two-factor authentication is off. All your other sessions have been signed out."
        }
        "two-factor-reset" => "Two-factor authentication reset; the user's sessions have ended.",
        "two-factor-policy-changed" => "Two-factor policy saved.",
        "sign-in-expired" => "That sign-in expired or was used up. Sign in again.",
        _ => return None,
    })
}

/// Renders a template as an HTML response with `status`.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => UiError(AppError::Internal(format!("template: {e}"))).into_response(),
    }
}

/// Errors a form's user can act on, shown on the page itself; others are
/// error pages.
pub fn shown_on_page(e: &AppError) -> bool {
    matches!(
        e,
        AppError::BadRequest(_)
            | AppError::Invalid(_)
            | AppError::Conflict(_)
            | AppError::NotFound(_)
            | AppError::Forbidden(_)
    )
}

/// What a form's POST came to, for the page that shows it again: its status,
/// what to show (on success) and the error to show on the page. Errors the
/// user cannot act on are handed back for the error page.
pub fn on_page<T>(
    outcome: Result<T, AppError>,
) -> Result<(StatusCode, Option<T>, Option<AppError>), AppError> {
    match outcome {
        Ok(shown) => Ok((StatusCode::OK, Some(shown), None)),
        Err(e) if shown_on_page(&e) => Ok((e.status(), None, Some(e))),
        Err(e) => Err(e),
    }
}

/// A page that shows `error` on itself: a refusal is still a refusal, and the
/// guard audits it.
pub fn render_with_error(
    status: StatusCode,
    template: &impl Template,
    error: Option<&AppError>,
) -> Response {
    let mut response = render(status, template);
    if let Some(error) = error {
        error.mark_denial(&mut response);
    }
    response
}

/// Where a browser goes once its session has ended: the login page, with the
/// cookie cleared.
pub fn signed_out() -> Response {
    (
        [(header::SET_COOKIE, crate::session::clear_cookie())],
        see_other("/login?notice=logged-out"),
    )
        .into_response()
}

/// A form whose one field is the box confirming an irreversible step
/// (revoking a device, deleting a profile or a broker connection).
#[derive(serde::Deserialize)]
pub struct ConfirmForm {
    confirm: Option<String>,
}

impl ConfirmForm {
    /// Ok once the box is ticked; otherwise the error saying that the
    /// `step` was not confirmed and nothing changed.
    pub fn ticked(&self, step: &str) -> Result<(), AppError> {
        if matches!(self.confirm.as_deref(), Some("yes" | "on")) {
            Ok(())
        } else {
            Err(AppError::BadRequest(format!(
                "tick the box to confirm the {step}; nothing was changed"
            )))
        }
    }
}

/// A 303 redirect (after a successful form post).
pub fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    status: u16,
    reason: &'a str,
    message: &'a str,
}

/// The plain error page of the UI.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let page = ErrorPage {
        layout: Layout::anonymous(reason),
        status: status.as_u16(),
        reason,
        message,
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            message.to_owned(),
        )
            .into_response(),
    }
}

/// `/`: the organizations page when signed in, else the login page.
pub async fn home(MaybePrincipal(principal): MaybePrincipal) -> Response {
    see_other(if principal.is_some() {
        "/orgs"
    } else {
        "/login"
    })
}

/// Where to go after login: only a local path, never another site.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => "/orgs",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_never_leaves_the_site() {
        assert_eq!(safe_next(Some("/orgs/1/members")), "/orgs/1/members");
        for hostile in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "evil",
            "/a\r\nb",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/orgs", "{hostile}");
        }
        assert_eq!(safe_next(None), "/orgs");
    }

    #[test]
    fn unknown_notices_show_nothing() {
        assert!(notice_text("<script>").is_none());
        assert!(notice_text("member-added").is_some());
    }
}
