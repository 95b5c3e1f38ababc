//! The route table: every route of the server, each with the [`Access`] it
//! requires, declared in one place. [`router`] builds the application from it;
//! tests walk [`route_table`] to prove that nothing outside the public allow-list
//! answers an anonymous caller and that no mutating organization route admits
//! `readonly`.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use sentinel_core::Permission::*;
use sentinel_core::audit::AuditAction as A;
use sentinel_core::audit::AuditAction;

use crate::access::{Access, Guard, enforce};
use crate::error::{ApiError, AppError, UiError};
use crate::middleware::{cors, request_trace, security_headers, timeout};
use crate::state::AppState;
use crate::{api, client, ui};

/// Which face of the server a route belongs to; decides how errors are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// JSON under `/api/` (and the health probes): problem documents on error.
    Api,
    /// HTML pages and forms: error pages and login redirects.
    Ui,
}

impl Surface {
    pub fn of(path: &str) -> Surface {
        if path.starts_with("/api/") || path == "/healthz" || path == "/readyz" {
            Surface::Api
        } else {
            Surface::Ui
        }
    }

    pub fn error_response(self, error: AppError) -> Response {
        match self {
            Surface::Api => ApiError(error).into_response(),
            Surface::Ui => UiError(error).into_response(),
        }
    }
}

/// One route: method, path, what it requires, what it does, and its handler.
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub surface: Surface,
    /// The audited action of a mutating route (every one has one, except device
    /// reports: a test checks).
    pub action: Option<AuditAction>,
    /// A device's routine report (telemetry, inventory): it changes state but
    /// is kept in the device's own records, not one audit entry per call.
    pub device_report: bool,
    /// A larger body limit than `max_body_bytes`, for agent reports.
    pub body_limit: Option<usize>,
    /// A POST that only renders a page from its form (a confirmation page for
    /// a body too large for a URL) and changes nothing: no audited action, and
    /// the route-walk test checks that it records nothing.
    pub preview: bool,
    handler: MethodRouter<AppState>,
}

impl RouteSpec {
    /// Declares the action this route performs, recorded in the audit log on
    /// success (by the operation) and on refusal (by the guard).
    fn audited(self, action: AuditAction) -> RouteSpec {
        RouteSpec {
            action: Some(action),
            ..self
        }
    }

    /// Marks a device's routine report (see [`RouteSpec::device_report`]).
    fn device_report(self) -> RouteSpec {
        RouteSpec {
            device_report: true,
            ..self
        }
    }

    /// Marks a POST that changes nothing (see [`RouteSpec::preview`]).
    fn preview(self) -> RouteSpec {
        RouteSpec {
            preview: true,
            ..self
        }
    }

    /// Accepts bodies up to `bytes`.
    fn body_limit(self, bytes: usize) -> RouteSpec {
        RouteSpec {
            body_limit: Some(bytes),
            ..self
        }
    }

    /// Whether the route changes state (anything but GET, HEAD and OPTIONS).
    pub fn mutates(&self) -> bool {
        crate::access::changes_state(&self.method)
    }
}

impl std::fmt::Debug for RouteSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({:?})", self.method, self.path, self.access)
    }
}

fn route<H, T>(method: Method, path: &'static str, access: Access, handler: H) -> RouteSpec
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
    RouteSpec {
        surface: Surface::of(path),
        method,
        path,
        access,
        action: None,
        device_report: false,
        body_limit: None,
        preview: false,
        handler: on(filter, handler),
    }
}

/// Body limits of agent reports: a telemetry batch or a command result (two
/// outputs of 1 MiB, JSON-escaped), and a full inventory (100,000 packages).
/// A queued command carries a script of up to 64 KiB, which JSON escaping or
/// form encoding can triple.
const COMMAND_BYTES: usize = 256 * 1024;
/// A device profile carries a decoder of up to 64 KiB (and a broker connection
/// a CA certificate of up to 64 KiB), which JSON escaping can triple.
const DECODER_BYTES: usize = 256 * 1024;
const AGENT_REPORT_BYTES: usize = 8 * 1024 * 1024;
const AGENT_INVENTORY_BYTES: usize = 32 * 1024 * 1024;
/// An uploaded feed file (an OSV `all.zip` of one ecosystem, or the KEV catalog).
const FEED_UPLOAD_BYTES: usize = 512 * 1024 * 1024;

/// Every route of the server.
pub fn route_table() -> Vec<RouteSpec> {
    use Access::{Device, Org, OrgCreator, PlatformAdmin, Public, User};
    use Method as M;
    vec![
        // Health and the API description.
        route(M::GET, "/healthz", Public, api::health::healthz),
        route(M::GET, "/readyz", Public, api::health::readyz),
        route(M::GET, "/api/v1/openapi.json", Public, api::openapi_json),
        // API: setup, authentication, the caller's account.
        route(M::POST, "/api/v1/setup", Public, api::setup::complete).audited(A::SetupCompleted),
        route(M::POST, "/api/v1/auth/login", Public, api::auth::login).audited(A::Login),
        route(
            M::POST,
            "/api/v1/auth/login/mfa",
            Public,
            api::auth::login_mfa,
        )
        .audited(A::Login),
        route(M::POST, "/api/v1/auth/logout", User, api::auth::logout).audited(A::Logout),
        route(M::GET, "/api/v1/me", User, api::auth::me),
        route(
            M::PUT,
            "/api/v1/me/password",
            User,
            api::auth::change_password,
        )
        .audited(A::PasswordChanged),
        // API: the caller's sessions.
        route(M::GET, "/api/v1/me/sessions", User, api::sessions::list),
        route(
            M::DELETE,
            "/api/v1/me/sessions/{session_id}",
            User,
            api::sessions::revoke,
        )
        .audited(A::SessionRevoked),
        // API: API tokens.
        route(M::POST, "/api/v1/tokens", User, api::tokens::create).audited(A::ApiTokenCreated),
        route(M::GET, "/api/v1/tokens", User, api::tokens::list),
        route(
            M::DELETE,
            "/api/v1/tokens/{token_id}",
            User,
            api::tokens::revoke,
        )
        .audited(A::ApiTokenRevoked),
        // API: the caller's two-factor authentication.
        route(
            M::GET,
            "/api/v1/me/two-factor",
            User,
            api::two_factor::status,
        ),
        route(
            M::POST,
            "/api/v1/me/two-factor/enrolment",
            User,
            api::two_factor::start_enrolment,
        )
        .audited(A::TwoFactorEnrolmentStarted),
        route(
            M::POST,
            "/api/v1/me/two-factor/enrolment/confirm",
            User,
            api::two_factor::confirm_enrolment,
        )
        .audited(A::TwoFactorEnabled),
        route(
            M::POST,
            "/api/v1/me/two-factor/recovery-codes",
            User,
            api::two_factor::new_recovery_codes,
        )
        .audited(A::RecoveryCodesRegenerated),
        route(
            M::POST,
            "/api/v1/me/two-factor/disable",
            User,
            api::two_factor::disable,
        )
        .audited(A::TwoFactorDisabled),
        // API: organizations and members.
        route(M::GET, "/api/v1/orgs", User, api::orgs::list),
        route(M::POST, "/api/v1/orgs", OrgCreator, api::orgs::create).audited(A::OrgCreated),
        route(
            M::GET,
            "/api/v1/orgs/{org_id}",
            Org(OrgRead),
            api::orgs::get,
        ),
        route(
            M::PATCH,
            "/api/v1/orgs/{org_id}",
            Org(OrgManage),
            api::orgs::rename,
        )
        .audited(A::OrgRenamed),
        route(
            M::PUT,
            "/api/v1/orgs/{org_id}/two-factor-policy",
            Org(OrgManage),
            api::two_factor::set_policy,
        )
        .audited(A::OrgTwoFactorPolicyChanged),
        route(
            M::DELETE,
            "/api/v1/orgs/{org_id}",
            PlatformAdmin,
            api::orgs::delete,
        )
        .audited(A::OrgDeleted),
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/members",
            Org(MembersRead),
            api::members::list,
        ),
        route(
            M::POST,
            "/api/v1/orgs/{org_id}/members",
            Org(MembersManage),
            api::members::add,
        )
        .audited(A::MemberAdded),
        route(
            M::PATCH,
            "/api/v1/orgs/{org_id}/members/{user_id}",
            Org(MembersManage),
            api::members::change_role,
        )
        .audited(A::MemberRoleChanged),
        route(
            M::DELETE,
            "/api/v1/orgs/{org_id}/members/{user_id}",
            Org(MembersManage),
            api::members::remove,
        )
        .audited(A::MemberRemoved),
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/service-accounts",
            Org(MembersRead),
            api::tokens::service_accounts,
        ),
        route(
            M::POST,
            "/api/v1/orgs/{org_id}/service-accounts",
            Org(MembersManage),
            api::tokens::create_service_account,
        )
        .audited(A::ServiceAccountCreated),
        route(
            M::DELETE,
            "/api/v1/orgs/{org_id}/service-accounts/{user_id}",
            Org(MembersManage),
            api::tokens::delete_service_account,
        )
        .audited(A::ServiceAccountDeleted),
        // API: audit logs.
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/audit",
            Org(AuditRead),
            api::audit::org_entries,
        ),
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/audit/export",
            Org(AuditRead),
            api::audit::org_export,
        ),
        route(
            M::GET,
            "/api/v1/audit",
            PlatformAdmin,
            api::audit::platform_entries,
        ),
        route(
            M::GET,
            "/api/v1/audit/export",
            PlatformAdmin,
            api::audit::platform_export,
        ),
        route(
            M::GET,
            "/api/v1/metrics",
            PlatformAdmin,
            api::health::metrics,
        ),
        // API: devices, enrollment tokens and commands.
        route(
            M::POST,
            "/api/v1/orgs/{org_id}/enrollment-tokens",
            Org(DevicesWrite),
            api::devices::create_token,
        )
        .audited(A::EnrollmentTokenCreated),
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/enrollment-tokens",
            Org(DevicesRead),
            api::devices::list_tokens,
        ),
        route(
            M::DELETE,
            "/api/v1/orgs/{org_id}/enrollment-tokens/{token_id}",
            Org(DevicesWrite),
            api::devices::revoke_token,
        )
        .audited(A::EnrollmentTokenRevoked),
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/devices",
            Org(DevicesRead),
            api::devices::list,
        ),
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/devices/{device_id}",
            Org(DevicesRead),
            api::devices::get,
        ),
        route(
            M::DELETE,
            "/api/v1/orgs/{org_id}/devices/{device_id}",
            Org(DevicesWrite),
            api::devices::revoke,
        )
        .audited(A::DeviceRevoked),
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/devices/{device_id}/inventory",
            Org(DevicesRead),
            api::devices::inventory,
        ),
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/devices/{device_id}/telemetry",
            Org(DevicesRead),
            api::devices::telemetry,
        ),
        // API: the organization's live feed (a WebSocket).
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/live",
            Org(DevicesRead),
            api::live::open,
        ),
        route(
            M::POST,
            "/api/v1/orgs/{org_id}/devices/{device_id}/commands",
            Org(CommandsRun),
            api::devices::queue_command,
        )
        .audited(A::CommandQueued)
        .body_limit(COMMAND_BYTES),
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/devices/{device_id}/commands",
            Org(DevicesRead),
            api::devices::device_commands,
        ),
        route(
            M::POST,
            "/api/v1/orgs/{org_id}/commands",
            Org(CommandsRun),
            api::devices::queue_tagged_command,
        )
        .audited(A::CommandQueued)
        .body_limit(COMMAND_BYTES),
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/commands/{command_id}",
            Org(DevicesRead),
            api::devices::command,
        ),
        route(
            M::DELETE,
            "/api/v1/orgs/{org_id}/commands/{command_id}",
            Org(CommandsRun),
            api::devices::cancel_command,
        )
        .audited(A::CommandCancelled),
        // API: IoT device profiles and decoders, DevEUIs, broker connections
        // and stored uplinks.
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/device-profiles",
            Org(DevicesRead),
            api::lorawan::list_profiles,
        ),
        route(
            M::POST,
            "/api/v1/orgs/{org_id}/device-profiles",
            Org(DevicesWrite),
            api::lorawan::create_profile,
        )
        .audited(A::DeviceProfileCreated)
        .body_limit(DECODER_BYTES),
        route(
            M::POST,
            "/api/v1/orgs/{org_id}/device-profiles/test-decoder",
            Org(DevicesWrite),
            api::lorawan::test_decoder,
        )
        .preview()
        .body_limit(DECODER_BYTES),
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/device-profiles/{profile_id}",
            Org(DevicesRead),
            api::lorawan::get_profile,
        ),
        route(
            M::PUT,
            "/api/v1/orgs/{org_id}/device-profiles/{profile_id}",
            Org(DevicesWrite),
            api::lorawan::update_profile,
        )
        .audited(A::DeviceProfileUpdated)
        .body_limit(DECODER_BYTES),
        route(
            M::DELETE,
            "/api/v1/orgs/{org_id}/device-profiles/{profile_id}",
            Org(DevicesWrite),
            api::lorawan::delete_profile,
        )
        .audited(A::DeviceProfileDeleted),
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/devices/{device_id}/lorawan",
            Org(DevicesRead),
            api::lorawan::get_lorawan,
        ),
        route(
            M::PUT,
            "/api/v1/orgs/{org_id}/devices/{device_id}/lorawan",
            Org(DevicesWrite),
            api::lorawan::set_lorawan,
        )
        .audited(A::DeviceLorawanSet),
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/devices/{device_id}/events",
            Org(DevicesRead),
            api::lorawan::events,
        ),
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/integrations",
            Org(DevicesRead),
            api::integrations::list,
        ),
        route(
            M::POST,
            "/api/v1/orgs/{org_id}/integrations",
            Org(DevicesWrite),
            api::integrations::create,
        )
        .audited(A::IntegrationCreated)
        .body_limit(DECODER_BYTES),
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/integrations/{integration_id}",
            Org(DevicesRead),
            api::integrations::get,
        ),
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/integrations/{integration_id}/status",
            Org(DevicesRead),
            api::integrations::status,
        ),
        route(
            M::PUT,
            "/api/v1/orgs/{org_id}/integrations/{integration_id}",
            Org(DevicesWrite),
            api::integrations::update,
        )
        .audited(A::IntegrationUpdated)
        .body_limit(DECODER_BYTES),
        route(
            M::DELETE,
            "/api/v1/orgs/{org_id}/integrations/{integration_id}",
            Org(DevicesWrite),
            api::integrations::delete,
        )
        .audited(A::IntegrationDeleted),
        // API: vulnerability findings, reports and feeds.
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/findings",
            Org(DevicesRead),
            api::findings::list,
        ),
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/findings/advisories",
            Org(DevicesRead),
            api::findings::by_advisory,
        ),
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/findings/packages",
            Org(DevicesRead),
            api::findings::by_package,
        ),
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/findings/kev",
            Org(DevicesRead),
            api::findings::kev,
        ),
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/findings/export",
            Org(DevicesRead),
            api::findings::export,
        ),
        route(
            M::GET,
            "/api/v1/orgs/{org_id}/devices/{device_id}/findings",
            Org(DevicesRead),
            api::findings::device,
        ),
        route(
            M::POST,
            "/api/v1/orgs/{org_id}/reports",
            Org(ReportsCreate),
            api::findings::create_report,
        )
        .audited(A::ReportCreated),
        route(M::GET, "/api/v1/feeds", PlatformAdmin, api::findings::feeds),
        route(
            M::POST,
            "/api/v1/feeds",
            PlatformAdmin,
            api::findings::upload_feed,
        )
        .audited(A::FeedImported)
        .body_limit(FEED_UPLOAD_BYTES),
        // API: the agent.
        route(M::POST, "/api/v1/agent/enroll", Public, api::agent::enroll)
            .audited(A::DeviceEnrolled),
        route(
            M::POST,
            "/api/v1/agent/telemetry",
            Device,
            api::agent::telemetry,
        )
        .device_report()
        .body_limit(AGENT_REPORT_BYTES),
        route(
            M::POST,
            "/api/v1/agent/inventory",
            Device,
            api::agent::inventory,
        )
        .device_report()
        .body_limit(AGENT_INVENTORY_BYTES),
        route(
            M::GET,
            "/api/v1/agent/commands",
            Device,
            api::agent::commands,
        ),
        route(
            M::POST,
            "/api/v1/agent/commands/{command_id}/result",
            Device,
            api::agent::result,
        )
        .audited(A::CommandResultReceived)
        .body_limit(AGENT_REPORT_BYTES),
        route(M::POST, "/api/v1/agent/token", Device, api::agent::token)
            .audited(A::DeviceTokenRotated),
        // API: user accounts.
        route(M::GET, "/api/v1/users", PlatformAdmin, api::users::list),
        route(M::POST, "/api/v1/users", PlatformAdmin, api::users::create).audited(A::UserCreated),
        route(
            M::PATCH,
            "/api/v1/users/{user_id}",
            PlatformAdmin,
            api::users::update,
        )
        .audited(A::PlatformAdminChanged),
        route(
            M::DELETE,
            "/api/v1/users/{user_id}",
            PlatformAdmin,
            api::users::delete,
        )
        .audited(A::UserDeleted),
        route(
            M::POST,
            "/api/v1/users/{user_id}/unlock",
            PlatformAdmin,
            api::users::unlock,
        )
        .audited(A::UserUnlocked),
        route(
            M::DELETE,
            "/api/v1/users/{user_id}/sessions",
            PlatformAdmin,
            api::sessions::end_all,
        )
        .audited(A::UserSessionsEnded),
        route(
            M::DELETE,
            "/api/v1/users/{user_id}/two-factor",
            PlatformAdmin,
            api::two_factor::reset,
        )
        .audited(A::TwoFactorReset),
        // UI: public pages and assets.
        route(M::GET, "/", Public, ui::home),
        route(
            M::GET,
            "/static/sentinel.css",
            Public,
            ui::assets::stylesheet,
        ),
        route(M::GET, "/static/live.js", Public, ui::assets::live_script),
        route(M::GET, "/setup", Public, ui::setup::page),
        route(M::POST, "/setup", Public, ui::setup::submit).audited(A::SetupCompleted),
        route(M::GET, "/login", Public, ui::auth::login_page),
        route(M::POST, "/login", Public, ui::auth::login).audited(A::Login),
        route(M::POST, "/login/mfa", Public, ui::auth::login_mfa).audited(A::Login),
        route(M::POST, "/logout", User, ui::auth::logout).audited(A::Logout),
        // UI: organizations and members.
        route(M::GET, "/orgs", User, ui::orgs::list),
        route(M::POST, "/orgs", OrgCreator, ui::orgs::create).audited(A::OrgCreated),
        route(M::GET, "/orgs/{org_id}", Org(OrgRead), ui::orgs::overview),
        route(
            M::POST,
            "/orgs/{org_id}/rename",
            Org(OrgManage),
            ui::orgs::rename,
        )
        .audited(A::OrgRenamed),
        route(
            M::POST,
            "/orgs/{org_id}/two-factor-policy",
            Org(OrgManage),
            ui::two_factor::set_policy,
        )
        .audited(A::OrgTwoFactorPolicyChanged),
        route(
            M::POST,
            "/orgs/{org_id}/delete",
            PlatformAdmin,
            ui::orgs::delete,
        )
        .audited(A::OrgDeleted),
        route(
            M::GET,
            "/orgs/{org_id}/members",
            Org(MembersRead),
            ui::members::list,
        ),
        route(
            M::POST,
            "/orgs/{org_id}/members",
            Org(MembersManage),
            ui::members::add,
        )
        .audited(A::MemberAdded),
        route(
            M::POST,
            "/orgs/{org_id}/members/{user_id}/role",
            Org(MembersManage),
            ui::members::change_role,
        )
        .audited(A::MemberRoleChanged),
        route(
            M::POST,
            "/orgs/{org_id}/members/{user_id}/remove",
            Org(MembersManage),
            ui::members::remove,
        )
        .audited(A::MemberRemoved),
        route(
            M::GET,
            "/orgs/{org_id}/audit",
            Org(AuditRead),
            ui::audit::org_page,
        ),
        route(
            M::GET,
            "/orgs/{org_id}/service-accounts",
            Org(MembersRead),
            ui::service_accounts::list,
        ),
        route(
            M::POST,
            "/orgs/{org_id}/service-accounts",
            Org(MembersManage),
            ui::service_accounts::create,
        )
        .audited(A::ServiceAccountCreated),
        route(
            M::POST,
            "/orgs/{org_id}/service-accounts/{user_id}/delete",
            Org(MembersManage),
            ui::service_accounts::delete,
        )
        .audited(A::ServiceAccountDeleted),
        route(
            M::POST,
            "/orgs/{org_id}/service-accounts/{user_id}/tokens",
            Org(MembersManage),
            ui::service_accounts::create_token,
        )
        .audited(A::ApiTokenCreated),
        route(
            M::POST,
            "/orgs/{org_id}/service-accounts/{user_id}/tokens/{token_id}/revoke",
            Org(MembersManage),
            ui::service_accounts::revoke_token,
        )
        .audited(A::ApiTokenRevoked),
        // UI: devices, commands and enrollment tokens.
        route(
            M::GET,
            "/orgs/{org_id}/devices",
            Org(DevicesRead),
            ui::devices::list,
        ),
        route(
            M::GET,
            "/orgs/{org_id}/devices/{device_id}",
            Org(DevicesRead),
            ui::devices::page,
        ),
        route(
            M::POST,
            "/orgs/{org_id}/devices/{device_id}/commands/confirm",
            Org(CommandsRun),
            ui::devices::confirm,
        )
        .preview()
        .body_limit(COMMAND_BYTES),
        route(
            M::POST,
            "/orgs/{org_id}/commands/{command_id}/cancel",
            Org(CommandsRun),
            ui::devices::cancel,
        )
        .audited(A::CommandCancelled),
        route(
            M::POST,
            "/orgs/{org_id}/devices/{device_id}/commands",
            Org(CommandsRun),
            ui::devices::queue,
        )
        .audited(A::CommandQueued)
        .body_limit(COMMAND_BYTES),
        route(
            M::POST,
            "/orgs/{org_id}/devices/{device_id}/revoke",
            Org(DevicesWrite),
            ui::devices::revoke,
        )
        .audited(A::DeviceRevoked),
        route(
            M::GET,
            "/orgs/{org_id}/enrollment-tokens",
            Org(DevicesRead),
            ui::devices::tokens,
        ),
        route(
            M::POST,
            "/orgs/{org_id}/enrollment-tokens",
            Org(DevicesWrite),
            ui::devices::create_token,
        )
        .audited(A::EnrollmentTokenCreated),
        route(
            M::POST,
            "/orgs/{org_id}/enrollment-tokens/{token_id}/revoke",
            Org(DevicesWrite),
            ui::devices::revoke_token,
        )
        .audited(A::EnrollmentTokenRevoked),
        // UI: IoT device profiles, DevEUIs and broker connections.
        route(
            M::GET,
            "/orgs/{org_id}/device-profiles",
            Org(DevicesRead),
            ui::device_profiles::list,
        ),
        route(
            M::POST,
            "/orgs/{org_id}/device-profiles",
            Org(DevicesWrite),
            ui::device_profiles::create,
        )
        .audited(A::DeviceProfileCreated)
        .body_limit(DECODER_BYTES),
        route(
            M::POST,
            "/orgs/{org_id}/device-profiles/test-decoder",
            Org(DevicesWrite),
            ui::device_profiles::test_new,
        )
        .preview()
        .body_limit(DECODER_BYTES),
        route(
            M::GET,
            "/orgs/{org_id}/device-profiles/{profile_id}",
            Org(DevicesRead),
            ui::device_profiles::page,
        ),
        route(
            M::POST,
            "/orgs/{org_id}/device-profiles/{profile_id}",
            Org(DevicesWrite),
            ui::device_profiles::update,
        )
        .audited(A::DeviceProfileUpdated)
        .body_limit(DECODER_BYTES),
        route(
            M::POST,
            "/orgs/{org_id}/device-profiles/{profile_id}/test-decoder",
            Org(DevicesWrite),
            ui::device_profiles::test_saved,
        )
        .preview()
        .body_limit(DECODER_BYTES),
        route(
            M::POST,
            "/orgs/{org_id}/device-profiles/{profile_id}/delete",
            Org(DevicesWrite),
            ui::device_profiles::delete,
        )
        .audited(A::DeviceProfileDeleted),
        route(
            M::POST,
            "/orgs/{org_id}/devices/{device_id}/lorawan",
            Org(DevicesWrite),
            ui::lorawan::assign,
        )
        .audited(A::DeviceLorawanSet),
        route(
            M::POST,
            "/orgs/{org_id}/devices/{device_id}/lorawan/remove",
            Org(DevicesWrite),
            ui::lorawan::remove,
        )
        .audited(A::DeviceLorawanSet),
        route(
            M::GET,
            "/orgs/{org_id}/integrations",
            Org(DevicesRead),
            ui::integrations::list,
        ),
        route(
            M::POST,
            "/orgs/{org_id}/integrations",
            Org(DevicesWrite),
            ui::integrations::create,
        )
        .audited(A::IntegrationCreated)
        .body_limit(DECODER_BYTES),
        route(
            M::GET,
            "/orgs/{org_id}/integrations/{integration_id}",
            Org(DevicesRead),
            ui::integrations::page,
        ),
        route(
            M::POST,
            "/orgs/{org_id}/integrations/{integration_id}",
            Org(DevicesWrite),
            ui::integrations::update,
        )
        .audited(A::IntegrationUpdated)
        .body_limit(DECODER_BYTES),
        route(
            M::POST,
            "/orgs/{org_id}/integrations/{integration_id}/delete",
            Org(DevicesWrite),
            ui::integrations::delete,
        )
        .audited(A::IntegrationDeleted),
        // UI: vulnerability findings and reports.
        route(
            M::GET,
            "/orgs/{org_id}/findings",
            Org(DevicesRead),
            ui::findings::page,
        ),
        route(
            M::POST,
            "/orgs/{org_id}/reports",
            Org(ReportsCreate),
            ui::findings::create_report,
        )
        .audited(A::ReportCreated),
        // UI: the caller's profile.
        route(M::GET, "/profile", User, ui::profile::page),
        route(M::GET, "/profile/sessions", User, ui::sessions::page),
        route(
            M::POST,
            "/profile/sessions/{session_id}/revoke",
            User,
            ui::sessions::revoke,
        )
        .audited(A::SessionRevoked),
        route(
            M::POST,
            "/profile/password",
            User,
            ui::profile::change_password,
        )
        .audited(A::PasswordChanged),
        route(M::GET, "/profile/tokens", User, ui::tokens::page),
        route(M::POST, "/profile/tokens", User, ui::tokens::create).audited(A::ApiTokenCreated),
        route(
            M::POST,
            "/profile/tokens/{token_id}/revoke",
            User,
            ui::tokens::revoke,
        )
        .audited(A::ApiTokenRevoked),
        route(M::GET, "/profile/two-factor", User, ui::two_factor::page),
        route(
            M::POST,
            "/profile/two-factor/enrolment",
            User,
            ui::two_factor::start_enrolment,
        )
        .audited(A::TwoFactorEnrolmentStarted),
        route(
            M::POST,
            "/profile/two-factor/confirm",
            User,
            ui::two_factor::confirm_enrolment,
        )
        .audited(A::TwoFactorEnabled),
        route(
            M::POST,
            "/profile/two-factor/recovery-codes",
            User,
            ui::two_factor::new_recovery_codes,
        )
        .audited(A::RecoveryCodesRegenerated),
        route(
            M::POST,
            "/profile/two-factor/disable",
            User,
            ui::two_factor::disable,
        )
        .audited(A::TwoFactorDisabled),
        // UI: platform administration.
        route(M::GET, "/admin/users", PlatformAdmin, ui::admin::users),
        route(M::GET, "/admin/feeds", PlatformAdmin, ui::findings::feeds),
        route(M::POST, "/admin/feeds", PlatformAdmin, ui::findings::upload)
            .audited(A::FeedImported)
            .body_limit(FEED_UPLOAD_BYTES),
        route(
            M::GET,
            "/admin/audit",
            PlatformAdmin,
            ui::audit::platform_page,
        ),
        route(
            M::POST,
            "/admin/users",
            PlatformAdmin,
            ui::admin::create_user,
        )
        .audited(A::UserCreated),
        route(
            M::POST,
            "/admin/users/{user_id}/platform-admin",
            PlatformAdmin,
            ui::admin::set_platform_admin,
        )
        .audited(A::PlatformAdminChanged),
        route(
            M::POST,
            "/admin/users/{user_id}/delete",
            PlatformAdmin,
            ui::admin::delete_user,
        )
        .audited(A::UserDeleted),
        route(
            M::POST,
            "/admin/users/{user_id}/unlock",
            PlatformAdmin,
            ui::admin::unlock_user,
        )
        .audited(A::UserUnlocked),
        route(
            M::POST,
            "/admin/users/{user_id}/sessions/end",
            PlatformAdmin,
            ui::sessions::end_all,
        )
        .audited(A::UserSessionsEnded),
        route(
            M::POST,
            "/admin/users/{user_id}/two-factor/reset",
            PlatformAdmin,
            ui::two_factor::reset,
        )
        .audited(A::TwoFactorReset),
    ]
}

/// The whole application: the route table, each route behind its guard, and the
/// middleware every request passes through.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for spec in route_table() {
        let guard = Guard {
            state: state.clone(),
            access: spec.access,
            surface: spec.surface,
            action: spec.action,
            body_limit: spec.body_limit.unwrap_or(state.settings.max_body_bytes),
        };
        let mut handler = spec.handler.route_layer(from_fn_with_state(guard, enforce));
        if let Some(bytes) = spec.body_limit {
            handler = handler.layer(DefaultBodyLimit::max(bytes));
        }
        router = router.route(spec.path, handler);
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(from_fn_with_state(
            state.settings.request_timeout,
            timeout::limit,
        ))
        .layer(from_fn_with_state(state.clone(), client::record_client))
        .layer(from_fn_with_state(state.clone(), cors::apply))
        .layer(from_fn(request_trace::trace))
        .layer(from_fn(security_headers::apply))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> Response {
    Surface::of(uri.path()).error_response(AppError::NotFound("page"))
}

async fn method_not_allowed(uri: axum::http::Uri) -> Response {
    Surface::of(uri.path()).error_response(AppError::MethodNotAllowed)
}
