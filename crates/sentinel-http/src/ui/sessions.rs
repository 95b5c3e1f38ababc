//! The sessions page: where the caller is signed in, and ending any of those
//! sessions; the admin's "end all sessions" of a user.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use sentinel_core::{SessionId, UserId};

use super::orgs::NoticeQuery;
use super::{Layout, UiResult, render, see_other, signed_out};
use crate::access::Principal;
use crate::audit::Audit;
use crate::extract::{UiPath, UiQuery};
use crate::ops;
use crate::state::AppState;

pub struct SessionRow {
    pub id: SessionId,
    pub created: String,
    pub last_seen: String,
    pub client_ip: String,
    pub user_agent: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage {
    layout: Layout,
    rows: Vec<SessionRow>,
}

pub async fn page(
    State(state): State<AppState>,
    principal: Principal,
    UiQuery(query): UiQuery<NoticeQuery>,
) -> UiResult {
    let layout = Layout::signed_in(&state, &principal, "Sessions", None)
        .await?
        .with_notice(query.notice.as_deref());
    let rows = ops::sessions::list(&state, &principal)
        .await?
        .into_iter()
        .map(|s| SessionRow {
            id: s.record.id,
            created: s.record.created_at.to_rfc3339(),
            last_seen: s.record.last_seen_at.to_rfc3339(),
            client_ip: s.record.client_ip.unwrap_or_default(),
            user_agent: s.record.user_agent.unwrap_or_default(),
            current: s.current,
        })
        .collect();
    Ok(render(StatusCode::OK, &SessionsPage { layout, rows }))
}

pub async fn revoke(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    UiPath(id): UiPath<SessionId>,
) -> UiResult {
    let current = ops::sessions::revoke(&state, &principal, &audit, id).await?;
    if current {
        return Ok(signed_out());
    }
    Ok(see_other("/profile/sessions?notice=session-revoked"))
}

pub async fn end_all(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    UiPath(user): UiPath<UserId>,
) -> UiResult {
    ops::sessions::end_all(&state, &principal, &audit, user).await?;
    if user == principal.user.id {
        return Ok(signed_out());
    }
    Ok(see_other("/admin/users?notice=sessions-ended"))
}
