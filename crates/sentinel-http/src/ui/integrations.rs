//! The broker connections (integrations) pages of an organization: the list
//! with each worker's status, one connection, creating, editing and deleting
//! one. The password is write-only: no page ever holds it, and an empty
//! password field on edit keeps the stored one.

use askama::Template;
use axum::extract::State;
use sentinel_core::{OrgId, Permission, ValidationError};
use sentinel_store::Integration;
use serde::Deserialize;
use uuid::Uuid;

use super::devices::{layout_for, role_grants};
use super::orgs::NoticeQuery;
use super::{ConfirmForm, UiResult, on_page, render_with_error, see_other};
use crate::access::OrgContext;
use crate::audit::Audit;
use crate::error::AppError;
use crate::extract::{UiForm, UiPath, UiQuery};
use crate::ingest::{IngestStatus, chirpstack};
use crate::ops;
use crate::ops::integrations::Settings;
use crate::state::AppState;

/// The topic filter a new connection starts with: ChirpStack v4's uplinks.
const DEFAULT_TOPIC: &str = "application/+/device/+/event/up";

/// The connection form as posted. Not `Debug`: it holds the password, which
/// goes to the operation and nowhere else.
#[derive(Deserialize)]
pub struct IntegrationForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: String,
    tls: Option<String>,
    #[serde(default)]
    ca_pem: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    /// Ticked on edit: remove the stored password.
    clear_password: Option<String>,
    #[serde(default)]
    topic: String,
    #[serde(default)]
    format: String,
    enabled: Option<String>,
}

/// What the password field asks for.
enum PasswordField {
    /// Left empty (on edit: keep the stored one; on create: none).
    Empty,
    New(String),
    /// The "remove the stored password" box.
    Remove,
}

impl IntegrationForm {
    /// The fields to show again, and the password apart from them (or why
    /// the password fields contradict each other).
    fn split(self) -> (IntegrationFields, Result<PasswordField, AppError>) {
        let fields = IntegrationFields {
            name: self.name,
            host: self.host,
            port: self.port,
            tls: self.tls.is_some(),
            ca_pem: self.ca_pem,
            username: self.username,
            topic: self.topic,
            format: self.format,
            enabled: self.enabled.is_some(),
        };
        let password = match (self.password.is_empty(), self.clear_password.is_some()) {
            (true, false) => Ok(PasswordField::Empty),
            (false, false) => Ok(PasswordField::New(self.password)),
            (true, true) => Ok(PasswordField::Remove),
            (false, true) => Err(AppError::BadRequest(
                "give a new password or remove the stored one, not both; nothing was changed"
                    .into(),
            )),
        };
        (fields, password)
    }
}

/// A connection's settings as the form shows them (never a password).
#[derive(Debug, Clone)]
pub struct IntegrationFields {
    pub name: String,
    pub host: String,
    pub port: String,
    pub tls: bool,
    pub ca_pem: String,
    pub username: String,
    pub topic: String,
    pub format: String,
    pub enabled: bool,
}

impl Default for IntegrationFields {
    fn default() -> Self {
        IntegrationFields {
            name: String::new(),
            host: String::new(),
            port: String::from("8883"),
            tls: true,
            ca_pem: String::new(),
            username: String::new(),
            topic: String::from(DEFAULT_TOPIC),
            format: String::from(chirpstack::FORMAT),
            enabled: true,
        }
    }
}

/// An empty box means "none"; browsers send a textarea's line ends as CRLF.
fn optional(text: &str) -> Option<String> {
    let text = text.replace("\r\n", "\n");
    (!text.trim().is_empty()).then_some(text)
}

impl IntegrationFields {
    fn of(integration: &Integration) -> IntegrationFields {
        IntegrationFields {
            name: integration.name.clone(),
            host: integration.host.clone(),
            port: integration.port.to_string(),
            tls: integration.tls,
            ca_pem: integration.ca_pem.clone().unwrap_or_default(),
            username: integration.username.clone().unwrap_or_default(),
            topic: integration.topic.clone(),
            format: integration.format.clone(),
            enabled: integration.enabled,
        }
    }

    /// The settings the operation checks (the port is the only field read
    /// here: a form sends text).
    fn settings(&self) -> Result<Settings, AppError> {
        let port = self
            .port
            .trim()
            .parse()
            .map_err(|_| ValidationError::new("port", "1 to 65535"))?;
        Ok(Settings {
            name: self.name.clone(),
            host: self.host.clone(),
            port,
            tls: self.tls,
            ca_pem: optional(&self.ca_pem),
            username: optional(&self.username),
            topic: self.topic.clone(),
            format: self.format.clone(),
            enabled: self.enabled,
        })
    }
}

/// A word for where a connection's worker stands.
fn state_of(integration: &Integration, status: &IngestStatus) -> &'static str {
    if !integration.enabled {
        "disabled"
    } else if status.connected {
        "connected"
    } else if status.running {
        "connecting"
    } else {
        "stopped"
    }
}

/// A connection as a row of the list, with its worker's status.
pub struct IntegrationRow {
    pub integration: Integration,
    pub state: &'static str,
    pub status: IngestStatus,
}

#[derive(Template)]
#[template(path = "integrations.html")]
struct IntegrationsPage {
    layout: super::Layout,
    org_id: OrgId,
    org_name: String,
    rows: Vec<IntegrationRow>,
    can_write: bool,
    form: IntegrationFields,
    save_action: String,
    save_label: &'static str,
    /// Whether the form edits a saved connection (and whether it has a password).
    editing: Option<bool>,
    formats: [&'static str; 1],
}

async fn integrations_page(
    state: &AppState,
    ctx: &OrgContext,
    notice: Option<&str>,
    form: IntegrationFields,
    outcome: Result<(), AppError>,
) -> UiResult {
    let (status, _, error) = on_page(outcome)?;
    let org = ctx.organization();
    let layout = layout_for(
        state,
        ctx,
        &format!("Broker connections of {}", org.name),
        notice,
    )
    .await?
    .with_error(error.as_ref().map(AppError::detail));
    let rows = ops::integrations::list(state, ctx)
        .await?
        .into_iter()
        .map(|integration| {
            let status = ops::integrations::worker_status(state, ctx, &integration);
            IntegrationRow {
                state: state_of(&integration, &status),
                integration,
                status,
            }
        })
        .collect();
    let page = IntegrationsPage {
        layout,
        org_id: org.id,
        org_name: org.name.to_string(),
        rows,
        can_write: role_grants(ctx, Permission::DevicesWrite),
        form,
        save_action: format!("/orgs/{}/integrations", org.id),
        save_label: "Add connection",
        editing: None,
        formats: [chirpstack::FORMAT],
    };
    Ok(render_with_error(status, &page, error.as_ref()))
}

/// `GET /orgs/{org_id}/integrations`.
pub async fn list(
    State(state): State<AppState>,
    ctx: OrgContext,
    UiQuery(query): UiQuery<NoticeQuery>,
) -> UiResult {
    integrations_page(
        &state,
        &ctx,
        query.notice.as_deref(),
        IntegrationFields::default(),
        Ok(()),
    )
    .await
}

/// `POST /orgs/{org_id}/integrations`: adds the connection (its worker starts
/// when enabled), then shows it.
pub async fn create(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    UiForm(form): UiForm<IntegrationForm>,
) -> UiResult {
    let (fields, password) = form.split();
    let created = match (fields.settings(), password) {
        (Ok(settings), Ok(password)) => {
            let password = match &password {
                PasswordField::New(password) => Some(password.as_str()),
                PasswordField::Empty | PasswordField::Remove => None,
            };
            ops::integrations::create(&state, &ctx, &audit, settings, password).await
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match created {
        Ok(integration) => Ok(see_other(&format!(
            "/orgs/{}/integrations/{}?notice=integration-created",
            ctx.organization().id,
            integration.id
        ))),
        Err(e) => integrations_page(&state, &ctx, None, fields, Err(e)).await,
    }
}

#[derive(Template)]
#[template(path = "integration.html")]
struct IntegrationPage {
    layout: super::Layout,
    org_id: OrgId,
    integration: Integration,
    state: &'static str,
    status: IngestStatus,
    can_write: bool,
    form: IntegrationFields,
    save_action: String,
    save_label: &'static str,
    editing: Option<bool>,
    formats: [&'static str; 1],
}

/// One connection's page, its form filled from `form` (as posted) or else
/// from the saved connection. 404 for another organization's connection.
async fn integration_page(
    state: &AppState,
    ctx: &OrgContext,
    id: Uuid,
    notice: Option<&str>,
    form: Option<IntegrationFields>,
    outcome: Result<(), AppError>,
) -> UiResult {
    let integration = ops::integrations::get(state, ctx, id).await?;
    let (status, _, error) = on_page(outcome)?;
    let layout = layout_for(state, ctx, &integration.name, notice)
        .await?
        .with_error(error.as_ref().map(AppError::detail));
    let worker = ops::integrations::worker_status(state, ctx, &integration);
    let org_id = ctx.organization().id;
    let page = IntegrationPage {
        layout,
        org_id,
        state: state_of(&integration, &worker),
        status: worker,
        can_write: role_grants(ctx, Permission::DevicesWrite),
        form: form.unwrap_or_else(|| IntegrationFields::of(&integration)),
        save_action: format!("/orgs/{org_id}/integrations/{}", integration.id),
        save_label: "Save connection",
        editing: Some(integration.has_password),
        formats: [chirpstack::FORMAT],
        integration,
    };
    Ok(render_with_error(status, &page, error.as_ref()))
}

/// `GET /orgs/{org_id}/integrations/{integration_id}`.
pub async fn page(
    State(state): State<AppState>,
    ctx: OrgContext,
    UiPath((_, id)): UiPath<(OrgId, Uuid)>,
    UiQuery(query): UiQuery<NoticeQuery>,
) -> UiResult {
    integration_page(&state, &ctx, id, query.notice.as_deref(), None, Ok(())).await
}

/// `POST /orgs/{org_id}/integrations/{integration_id}`: saves the settings
/// (an empty password field keeps the stored password) and restarts the
/// worker.
pub async fn update(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    UiPath((_, id)): UiPath<(OrgId, Uuid)>,
    UiForm(form): UiForm<IntegrationForm>,
) -> UiResult {
    let (fields, password) = form.split();
    let updated = match (fields.settings(), password) {
        (Ok(settings), Ok(password)) => {
            let password = match &password {
                PasswordField::Empty => None,
                PasswordField::Remove => Some(None),
                PasswordField::New(password) => Some(Some(password.as_str())),
            };
            ops::integrations::update(&state, &ctx, &audit, id, settings, password).await
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match updated {
        Ok(integration) => Ok(see_other(&format!(
            "/orgs/{}/integrations/{}?notice=integration-saved",
            ctx.organization().id,
            integration.id
        ))),
        Err(e) => integration_page(&state, &ctx, id, None, Some(fields), Err(e)).await,
    }
}

/// `POST /orgs/{org_id}/integrations/{integration_id}/delete`: removes the
/// connection and stops its worker, when the confirmation box is ticked.
pub async fn delete(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    UiPath((_, id)): UiPath<(OrgId, Uuid)>,
    UiForm(form): UiForm<ConfirmForm>,
) -> UiResult {
    let deleted = match form.ticked("deletion") {
        Ok(()) => ops::integrations::delete(&state, &ctx, &audit, id).await,
        Err(e) => Err(e),
    };
    match deleted {
        Ok(()) => Ok(see_other(&format!(
            "/orgs/{}/integrations?notice=integration-deleted",
            ctx.organization().id
        ))),
        Err(e) => integration_page(&state, &ctx, id, None, None, Err(e)).await,
    }
}
