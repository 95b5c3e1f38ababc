//! The service accounts page of an organization: its non-human members and
//! their API tokens; creating and deleting accounts, making tokens for them
//! (the secret shown once) and revoking those tokens.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use sentinel_core::{OrgId, Permission, TenantRole, UserId};
use serde::Deserialize;
use uuid::Uuid;

use super::orgs::NoticeQuery;
use super::tokens::{NewSecret, PermissionChoice, TokenFields, TokenRow};
use super::{Layout, UiResult, render_with_error, see_other, shown_on_page};
use crate::access::OrgContext;
use crate::audit::Audit;
use crate::error::AppError;
use crate::extract::{UiForm, UiPath, UiQuery};
use crate::ops;
use crate::state::AppState;

/// A service account as a block of the page, with its tokens and its token form.
pub struct AccountRow {
    pub id: UserId,
    pub name: String,
    pub role: TenantRole,
    pub created_at: String,
    pub tokens: Vec<TokenRow>,
    /// The permissions its role grants: all a token of its may have.
    pub permissions: Vec<PermissionChoice>,
    pub form: TokenFields,
}

/// What was posted, to show again on an error.
#[derive(Default)]
struct Posted {
    account_name: String,
    /// The token form of one account.
    token_form: Option<(UserId, TokenFields)>,
}

#[derive(Template)]
#[template(path = "service_accounts.html")]
struct ServiceAccountsPage {
    layout: Layout,
    org_id: OrgId,
    org_name: String,
    accounts: Vec<AccountRow>,
    can_manage: bool,
    roles: Vec<TenantRole>,
    account_name: String,
    created: Option<NewSecret>,
}

async fn accounts_page(
    state: &AppState,
    ctx: &OrgContext,
    notice: Option<&str>,
    outcome: Result<Option<NewSecret>, AppError>,
    posted: Posted,
) -> UiResult {
    let (status, created, error) = match outcome {
        Ok(created) => (StatusCode::OK, created, None),
        Err(e) if shown_on_page(&e) => (e.status(), None, Some(e)),
        Err(e) => return Err(e.into()),
    };
    let org = ctx.organization();
    let layout = Layout::signed_in(
        state,
        &ctx.principal,
        &format!("Service accounts of {}", org.name),
        Some(org.id),
    )
    .await?
    .with_notice(notice)
    .with_error(error.as_ref().map(AppError::detail));
    let now = state.clock.now();
    let (accounts, tokens) = ops::service_accounts::list(state, ctx).await?;
    let accounts = accounts
        .into_iter()
        .map(|a| {
            let form = match &posted.token_form {
                Some((id, form)) if *id == a.id => form.clone(),
                _ => TokenFields::default(),
            };
            AccountRow {
                tokens: tokens
                    .iter()
                    .filter(|t| t.owner == a.id)
                    .map(|t| TokenRow::new(t.clone(), org.name.to_string(), now))
                    .collect(),
                permissions: form.choices(a.role.permissions()),
                form,
                id: a.id,
                name: a.name.to_string(),
                role: a.role,
                created_at: a.created_at.to_rfc3339(),
            }
        })
        .collect();
    let my_role = ctx.membership.role();
    let page = ServiceAccountsPage {
        layout,
        org_id: org.id,
        org_name: org.name.to_string(),
        accounts,
        can_manage: my_role.grants(Permission::MembersManage),
        roles: TenantRole::ALL
            .into_iter()
            .filter(|r| *r != TenantRole::Owner && my_role.may_change_membership(None, Some(*r)))
            .collect(),
        account_name: posted.account_name,
        created,
    };
    Ok(render_with_error(status, &page, error.as_ref()))
}

/// `GET /orgs/{org_id}/service-accounts`.
pub async fn list(
    State(state): State<AppState>,
    ctx: OrgContext,
    UiQuery(query): UiQuery<NoticeQuery>,
) -> UiResult {
    accounts_page(
        &state,
        &ctx,
        query.notice.as_deref(),
        Ok(None),
        Posted::default(),
    )
    .await
}

#[derive(Deserialize)]
pub struct AccountForm {
    name: String,
    role: TenantRole,
}

/// `POST /orgs/{org_id}/service-accounts`.
pub async fn create(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    UiForm(form): UiForm<AccountForm>,
) -> UiResult {
    match ops::service_accounts::create(&state, &ctx, &audit, &form.name, form.role).await {
        Ok(_) => Ok(see_other(&format!(
            "/orgs/{}/service-accounts?notice=service-account-created",
            ctx.organization().id
        ))),
        Err(e) => {
            let posted = Posted {
                account_name: form.name,
                token_form: None,
            };
            accounts_page(&state, &ctx, None, Err(e), posted).await
        }
    }
}

/// `POST /orgs/{org_id}/service-accounts/{user_id}/tokens`: makes a token for
/// the account and shows its secret, once.
pub async fn create_token(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    UiPath((_, account)): UiPath<(OrgId, UserId)>,
    UiForm(pairs): UiForm<Vec<(String, String)>>,
) -> UiResult {
    let form = TokenFields::from_pairs(pairs);
    let issued = match form.request(Some(ctx.organization().id), Some(account)) {
        Ok(request) => ops::tokens::create(&state, &ctx.principal, &audit, request).await,
        Err(e) => Err(e),
    };
    match issued {
        Ok(issued) => {
            accounts_page(
                &state,
                &ctx,
                None,
                Ok(Some(issued.into())),
                Posted::default(),
            )
            .await
        }
        Err(e) => {
            let posted = Posted {
                account_name: String::new(),
                token_form: Some((account, form)),
            };
            accounts_page(&state, &ctx, None, Err(e), posted).await
        }
    }
}

/// `POST /orgs/{org_id}/service-accounts/{user_id}/tokens/{token_id}/revoke`:
/// only a token of that account of this organization.
pub async fn revoke_token(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    UiPath((_, account, token_id)): UiPath<(OrgId, UserId, Uuid)>,
) -> UiResult {
    let (_, tokens) = ops::service_accounts::list(&state, &ctx).await?;
    let result = if tokens
        .iter()
        .any(|t| t.id == token_id && t.owner == account)
    {
        ops::tokens::revoke(&state, &ctx.principal, &audit, token_id).await
    } else {
        Err(AppError::NotFound("token"))
    };
    match result {
        Ok(()) => Ok(see_other(&format!(
            "/orgs/{}/service-accounts?notice=api-token-revoked",
            ctx.organization().id
        ))),
        Err(e) => accounts_page(&state, &ctx, None, Err(e), Posted::default()).await,
    }
}

#[derive(Deserialize)]
pub struct DeleteForm {
    confirm: Option<String>,
}

/// `POST /orgs/{org_id}/service-accounts/{user_id}/delete`: deletes the
/// account and all its tokens, when the confirmation box is ticked.
pub async fn delete(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    UiPath((_, account)): UiPath<(OrgId, UserId)>,
    UiForm(form): UiForm<DeleteForm>,
) -> UiResult {
    let result = if matches!(form.confirm.as_deref(), Some("yes" | "on")) {
        ops::service_accounts::delete(&state, &ctx, &audit, account).await
    } else {
        Err(AppError::BadRequest(String::from(
            "tick the box to confirm the deletion; nothing was changed",
        )))
    };
    match result {
        Ok(()) => Ok(see_other(&format!(
            "/orgs/{}/service-accounts?notice=service-account-deleted",
            ctx.organization().id
        ))),
        Err(e) => accounts_page(&state, &ctx, None, Err(e), Posted::default()).await,
    }
}
