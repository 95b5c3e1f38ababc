//! The caller's API tokens page (under the profile): their tokens, making one
//! (its secret shown this once) and revoking one. The token form and the token
//! rows are shared with the service accounts page.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use sentinel_core::api_token::MAX_LIFETIME_DAYS;
use sentinel_core::{OrgId, Permission, Timestamp, ValidationError};
use sentinel_store::ApiToken;
use uuid::Uuid;

use super::orgs::NoticeQuery;
use super::{Layout, UiResult, render_with_error, see_other, shown_on_page};
use crate::access::Principal;
use crate::audit::Audit;
use crate::error::AppError;
use crate::extract::{UiForm, UiPath, UiQuery};
use crate::ops;
use crate::ops::tokens::{IssuedToken, TokenRequest};
use crate::state::AppState;

/// The lifetime the forms offer first, in days.
const DEFAULT_DAYS: &str = "90";

/// A token form as posted, kept as typed so that an error can show it again.
/// Read from the raw pairs: the permission checkboxes repeat one name, which a
/// form struct cannot hold.
#[derive(Debug, Clone)]
pub struct TokenFields {
    pub name: String,
    pub org_id: String,
    pub permissions: Vec<String>,
    pub expires_in_days: String,
}

impl Default for TokenFields {
    fn default() -> Self {
        TokenFields {
            name: String::new(),
            org_id: String::new(),
            permissions: Vec::new(),
            expires_in_days: DEFAULT_DAYS.to_owned(),
        }
    }
}

impl TokenFields {
    pub fn from_pairs(pairs: Vec<(String, String)>) -> TokenFields {
        let mut fields = TokenFields {
            expires_in_days: String::new(),
            ..TokenFields::default()
        };
        for (key, value) in pairs {
            match key.as_str() {
                "name" => fields.name = value,
                "org_id" => fields.org_id = value,
                "permissions" => fields.permissions.push(value),
                "expires_in_days" => fields.expires_in_days = value,
                _ => {}
            }
        }
        fields
    }

    /// The request these fields make, for `org_id` (the form's, when `None`).
    pub fn request(
        &self,
        org_id: Option<OrgId>,
        service_account: Option<sentinel_core::UserId>,
    ) -> Result<TokenRequest, AppError> {
        let org_id = match org_id {
            Some(id) => id,
            None => self
                .org_id
                .trim()
                .parse()
                .map_err(|_| ValidationError::new("org_id", "choose an organization"))?,
        };
        let expires_in_days = self.expires_in_days.trim().parse().map_err(|_| {
            ValidationError::new(
                "expires_in_days",
                format!("must be a whole number of days from 1 to {MAX_LIFETIME_DAYS}"),
            )
        })?;
        Ok(TokenRequest {
            name: self.name.clone(),
            org_id,
            permissions: self.permissions.clone(),
            expires_in_days,
            service_account,
        })
    }

    /// The checkboxes for `offered`, ticked as posted.
    pub fn choices(&self, offered: &[Permission]) -> Vec<PermissionChoice> {
        offered
            .iter()
            .map(|p| PermissionChoice {
                name: p.name(),
                checked: self.permissions.iter().any(|n| n == p.name()),
            })
            .collect()
    }
}

/// One permission checkbox.
pub struct PermissionChoice {
    pub name: &'static str,
    pub checked: bool,
}

/// A token as a row of a table (never its secret).
pub struct TokenRow {
    pub id: Uuid,
    pub name: String,
    pub org_name: String,
    pub permissions: String,
    /// The service account the token speaks for, if it is one's.
    pub service_account: Option<String>,
    pub created_at: String,
    pub expires_at: String,
    pub last_used: String,
    pub last_used_ip: String,
    pub state: &'static str,
    pub revocable: bool,
}

impl TokenRow {
    pub fn new(token: ApiToken, org_name: String, now: Timestamp) -> TokenRow {
        TokenRow {
            state: if token.revoked_at.is_some() {
                "revoked"
            } else if token.is_live(now) {
                "live"
            } else {
                "expired"
            },
            revocable: token.revoked_at.is_none(),
            id: token.id,
            name: token.name,
            org_name,
            permissions: token
                .permissions
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", "),
            service_account: token.service_account.then(|| token.owner_name.to_string()),
            created_at: token.created_at.to_rfc3339(),
            expires_at: token.expires_at.to_rfc3339(),
            last_used: token
                .last_used_at
                .map_or_else(|| String::from("never"), Timestamp::to_rfc3339),
            last_used_ip: token.last_used_ip.unwrap_or_default(),
        }
    }
}

/// A token just made: its secret, shown this once.
pub struct NewSecret {
    pub name: String,
    pub secret: String,
    pub expires_at: String,
}

impl From<IssuedToken> for NewSecret {
    fn from(issued: IssuedToken) -> Self {
        NewSecret {
            name: issued.token.name,
            secret: issued.secret.expose().to_owned(),
            expires_at: issued.token.expires_at.to_rfc3339(),
        }
    }
}

/// An organization the caller may make a token for.
pub struct OrgChoice {
    pub id: OrgId,
    pub name: String,
    pub role: String,
    /// What the caller's role grants there: a token's ceiling.
    pub grants: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "api_tokens.html")]
struct ApiTokensPage {
    layout: Layout,
    rows: Vec<TokenRow>,
    orgs: Vec<OrgChoice>,
    permissions: Vec<PermissionChoice>,
    created: Option<NewSecret>,
    form: TokenFields,
}

async fn tokens_page(
    state: &AppState,
    principal: &Principal,
    notice: Option<&str>,
    outcome: Result<Option<NewSecret>, AppError>,
    form: TokenFields,
) -> UiResult {
    let (status, created, error) = match outcome {
        Ok(created) => (StatusCode::OK, created, None),
        Err(e) if shown_on_page(&e) => (e.status(), None, Some(e)),
        Err(e) => return Err(e.into()),
    };
    let layout = Layout::signed_in(state, principal, "API tokens", None)
        .await?
        .with_notice(notice)
        .with_error(error.as_ref().map(AppError::detail));
    let organizations = ops::orgs::list(state, principal).await?;
    let names: HashMap<OrgId, String> = organizations
        .iter()
        .map(|o| (o.organization.id, o.organization.name.to_string()))
        .collect();
    let orgs = organizations
        .into_iter()
        .filter_map(|o| {
            let role = o.role?;
            Some(OrgChoice {
                selected: form.org_id == o.organization.id.to_string(),
                id: o.organization.id,
                name: o.organization.name.to_string(),
                role: role.to_string(),
                grants: role
                    .permissions()
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        })
        .collect();
    let now = state.clock.now();
    let rows = ops::tokens::list(state, principal)
        .await?
        .into_iter()
        .map(|t| {
            let org_name = names
                .get(&t.org_id)
                .cloned()
                .unwrap_or_else(|| t.org_id.to_string());
            TokenRow::new(t, org_name, now)
        })
        .collect();
    let page = ApiTokensPage {
        layout,
        rows,
        orgs,
        permissions: form.choices(&Permission::ALL),
        created,
        form,
    };
    Ok(render_with_error(status, &page, error.as_ref()))
}

/// `GET /profile/tokens`.
pub async fn page(
    State(state): State<AppState>,
    principal: Principal,
    UiQuery(query): UiQuery<NoticeQuery>,
) -> UiResult {
    tokens_page(
        &state,
        &principal,
        query.notice.as_deref(),
        Ok(None),
        TokenFields::default(),
    )
    .await
}

/// `POST /profile/tokens`: makes a token and shows its secret, once (the page
/// is `Cache-Control: no-store`, as every response is by default).
pub async fn create(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    UiForm(pairs): UiForm<Vec<(String, String)>>,
) -> UiResult {
    let form = TokenFields::from_pairs(pairs);
    let issued = match form.request(None, None) {
        Ok(request) => ops::tokens::create(&state, &principal, &audit, request).await,
        Err(e) => Err(e),
    };
    match issued {
        Ok(issued) => {
            tokens_page(
                &state,
                &principal,
                None,
                Ok(Some(issued.into())),
                TokenFields::default(),
            )
            .await
        }
        Err(e) => tokens_page(&state, &principal, None, Err(e), form).await,
    }
}

/// `POST /profile/tokens/{token_id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    UiPath(token_id): UiPath<Uuid>,
) -> UiResult {
    match ops::tokens::revoke(&state, &principal, &audit, token_id).await {
        Ok(()) => Ok(see_other("/profile/tokens?notice=api-token-revoked")),
        Err(e) => tokens_page(&state, &principal, None, Err(e), TokenFields::default()).await,
    }
}
