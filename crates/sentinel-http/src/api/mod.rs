//! The REST API under `/api/v1`: JSON in, JSON out, RFC 9457 problems on error,
//! described by an OpenAPI 3.1 document generated from these handlers.

pub mod agent;
pub mod audit;
pub mod auth;
pub mod devices;
pub mod findings;
pub mod health;
pub mod integrations;
pub mod live;
pub mod lorawan;
pub mod members;
pub mod orgs;
pub mod sessions;
pub mod setup;
pub mod tokens;
pub mod two_factor;
pub mod users;

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sentinel_core::{OrgId, TenantRole, Timestamp, UserId};
use sentinel_store::{Member, Organization, OrganizationWithRole, User};
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::error::ApiError;

pub type ApiResult<T> = Result<T, ApiError>;

/// A file to download, saved as `file_name` (exports and signed reports).
pub(crate) fn attachment(
    status: StatusCode,
    content_type: &str,
    file_name: &str,
    body: impl IntoResponse,
) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// A user account.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub platform_admin: bool,
    pub created_at: Timestamp,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            id: u.id,
            email: u.email.to_string(),
            name: u.name.to_string(),
            platform_admin: u.platform_admin,
            created_at: u.created_at,
        }
    }
}

/// An organization, with the caller's role in it (absent when a platform admin
/// sees an organization they are not a member of).
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgView {
    pub id: OrgId,
    pub name: String,
    pub slug: String,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<TenantRole>,
}

impl OrgView {
    fn new(org: Organization, role: Option<TenantRole>) -> Self {
        OrgView {
            id: org.id,
            name: org.name.to_string(),
            slug: org.slug.to_string(),
            created_at: org.created_at,
            role,
        }
    }
}

impl From<OrganizationWithRole> for OrgView {
    fn from(o: OrganizationWithRole) -> Self {
        OrgView::new(o.organization, o.role)
    }
}

/// How many login sessions an action ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsEnded {
    pub sessions_ended: u64,
}

/// A member of an organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub role: TenantRole,
    pub since: Timestamp,
}

impl From<Member> for MemberView {
    fn from(m: Member) -> Self {
        MemberView {
            user_id: m.user_id,
            email: m.email.to_string(),
            name: m.name.to_string(),
            role: m.role,
            since: m.since,
        }
    }
}

/// Adds the authentication schemes to the document.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::SESSION_COOKIE,
                "The session cookie set by POST /api/v1/auth/login. State-changing requests \
                 must also send the session's CSRF token in the X-CSRF-Token header and come \
                 from the same origin (Origin or Sec-Fetch-Site).",
            ))),
        );
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(
                utoipa::openapi::security::HttpBuilder::new()
                    .scheme(utoipa::openapi::security::HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token (snt_…) from POST /api/v1/tokens: valid only on its \
                         organization's routes, for the permissions it was given; no CSRF token \
                         needed, and cookies are ignored when it is present.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "device",
            SecurityScheme::Http(utoipa::openapi::security::Http::new(
                utoipa::openapi::security::HttpAuthScheme::Bearer,
            )),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sentinel API",
        description = "Fleet security platform: organizations, members, sessions, audit logs, devices and their agents.",
        license(name = "AGPL-3.0-only"),
    ),
    paths(
        health::healthz,
        health::readyz,
        openapi_json,
        setup::complete,
        auth::login,
        auth::login_mfa,
        auth::logout,
        auth::me,
        auth::change_password,
        two_factor::status,
        two_factor::start_enrolment,
        two_factor::confirm_enrolment,
        two_factor::new_recovery_codes,
        two_factor::disable,
        two_factor::set_policy,
        two_factor::reset,
        orgs::list,
        orgs::create,
        orgs::get,
        orgs::rename,
        orgs::delete,
        members::list,
        members::add,
        members::change_role,
        members::remove,
        users::list,
        users::create,
        users::update,
        users::delete,
        users::unlock,
        audit::org_entries,
        audit::org_export,
        audit::platform_entries,
        audit::platform_export,
        health::metrics,
        devices::create_token,
        devices::list_tokens,
        devices::revoke_token,
        devices::list,
        devices::get,
        devices::inventory,
        devices::telemetry,
        devices::revoke,
        devices::queue_command,
        devices::device_commands,
        devices::queue_tagged_command,
        devices::command,
        devices::cancel_command,
        live::open,
        agent::enroll,
        agent::telemetry,
        agent::inventory,
        agent::commands,
        agent::result,
        agent::token,
        sessions::list,
        sessions::revoke,
        sessions::end_all,
        tokens::create,
        tokens::list,
        tokens::revoke,
        tokens::service_accounts,
        tokens::create_service_account,
        tokens::delete_service_account,
        findings::list,
        findings::device,
        findings::by_advisory,
        findings::by_package,
        findings::kev,
        findings::export,
        findings::create_report,
        findings::feeds,
        findings::upload_feed,
        lorawan::list_profiles,
        lorawan::get_profile,
        lorawan::create_profile,
        lorawan::update_profile,
        lorawan::delete_profile,
        lorawan::test_decoder,
        lorawan::get_lorawan,
        lorawan::set_lorawan,
        lorawan::events,
        integrations::list,
        integrations::get,
        integrations::status,
        integrations::create,
        integrations::update,
        integrations::delete,
    ),
    modifiers(&Security),
    security(("session" = []), ("api_token" = [])),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "auth", description = "Setup, login, logout and the caller's own account"),
        (name = "orgs", description = "Organizations and their members"),
        (name = "users", description = "User accounts (platform admins)"),
        (name = "audit", description = "Tamper-evident audit logs"),
        (name = "devices", description = "Devices, enrollment tokens and commands"),
        (name = "agent", description = "The routes sentinel-agent calls, with its device token"),
        (name = "tokens", description = "API tokens for scripts and integrations"),
        (name = "findings", description = "Vulnerability findings, feeds and signed reports"),
        (name = "iot", description = "IoT devices: profiles and payload decoders, DevEUIs, broker connections and stored uplinks"),
    )
)]
struct ApiDoc;

/// The OpenAPI document, generated from the handlers' annotations.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// This API's OpenAPI 3.1 description.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "health", security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi_document())
}
