//! External MQTT broker connections (integrations) of an organization and the
//! status of their ingestion workers. The password is write-only.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sentinel_core::OrgId;
use sentinel_store::Integration;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::ApiResult;
use crate::access::OrgContext;
use crate::audit::Audit;
use crate::error::Problem;
use crate::extract::{ApiJson, ApiPath};
use crate::ingest::IngestStatus;
use crate::ops;
use crate::ops::integrations::Settings;
use crate::state::AppState;

/// A broker connection as created or replaced.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationBody {
    pub name: String,
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub tls: bool,
    /// PEM certificates to trust for the broker instead of the public roots.
    #[serde(default)]
    pub ca_pem: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// Write-only. On update: absent keeps the stored one, null removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub password: Option<Option<String>>,
    /// MQTT topic filter, e.g. `application/+/device/+/event/up`.
    pub topic: String,
    /// `chirpstack_v4` (the default and only format).
    #[serde(default = "default_format")]
    pub format: String,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn default_format() -> String {
    crate::ingest::chirpstack::FORMAT.to_owned()
}

fn yes() -> bool {
    true
}

/// Tells a field given as null (`Some(None)`) from one left out (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl IntegrationBody {
    fn split(self) -> (Settings, Option<Option<String>>) {
        let settings = Settings {
            name: self.name,
            host: self.host,
            port: self.port,
            tls: self.tls,
            ca_pem: self.ca_pem,
            username: self.username,
            topic: self.topic,
            format: self.format,
            enabled: self.enabled,
        };
        (settings, self.password)
    }
}

/// A connection with its worker's status.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationView {
    #[serde(flatten)]
    pub integration: Integration,
    pub status: IngestStatus,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationList {
    pub integrations: Vec<IntegrationView>,
}

fn view(state: &AppState, ctx: &OrgContext, integration: Integration) -> IntegrationView {
    let status = ops::integrations::worker_status(state, ctx, &integration);
    IntegrationView {
        integration,
        status,
    }
}

/// The organization's broker connections and their status (`devices.read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/integrations", tag = "iot",
    params(("org_id" = OrgId, Path)), responses((status = 200, body = IntegrationList)))]
pub async fn list(
    State(state): State<AppState>,
    ctx: OrgContext,
) -> ApiResult<Json<IntegrationList>> {
    let integrations = ops::integrations::list(&state, &ctx)
        .await?
        .into_iter()
        .map(|i| view(&state, &ctx, i))
        .collect();
    Ok(Json(IntegrationList { integrations }))
}

/// One broker connection and its status (`devices.read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/integrations/{integration_id}", tag = "iot",
    params(("org_id" = OrgId, Path), ("integration_id" = Uuid, Path)),
    responses((status = 200, body = IntegrationView), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    ctx: OrgContext,
    ApiPath((_, id)): ApiPath<(OrgId, Uuid)>,
) -> ApiResult<Json<IntegrationView>> {
    let integration = ops::integrations::get(&state, &ctx, id).await?;
    Ok(Json(view(&state, &ctx, integration)))
}

/// The status of a connection's ingestion worker (`devices.read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/integrations/{integration_id}/status", tag = "iot",
    params(("org_id" = OrgId, Path), ("integration_id" = Uuid, Path)),
    responses((status = 200, body = IngestStatus), (status = 404, body = Problem)))]
pub async fn status(
    State(state): State<AppState>,
    ctx: OrgContext,
    ApiPath((_, id)): ApiPath<(OrgId, Uuid)>,
) -> ApiResult<Json<IngestStatus>> {
    Ok(Json(ops::integrations::status(&state, &ctx, id).await?))
}

/// Adds a broker connection and starts its worker when enabled (`devices.write`).
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/integrations", tag = "iot",
    params(("org_id" = OrgId, Path)), request_body = IntegrationBody,
    responses((status = 201, body = IntegrationView), (status = 422, body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    ApiJson(body): ApiJson<IntegrationBody>,
) -> ApiResult<(StatusCode, Json<IntegrationView>)> {
    let (settings, password) = body.split();
    let created = ops::integrations::create(
        &state,
        &ctx,
        &audit,
        settings,
        password.flatten().as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view(&state, &ctx, created))))
}

/// Replaces a broker connection's settings and restarts (or stops) its
/// worker (`devices.write`).
#[utoipa::path(put, path = "/api/v1/orgs/{org_id}/integrations/{integration_id}", tag = "iot",
    params(("org_id" = OrgId, Path), ("integration_id" = Uuid, Path)), request_body = IntegrationBody,
    responses((status = 200, body = IntegrationView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    ApiPath((_, id)): ApiPath<(OrgId, Uuid)>,
    ApiJson(body): ApiJson<IntegrationBody>,
) -> ApiResult<Json<IntegrationView>> {
    let (settings, password) = body.split();
    let password = password.as_ref().map(Option::as_deref);
    let updated = ops::integrations::update(&state, &ctx, &audit, id, settings, password).await?;
    Ok(Json(view(&state, &ctx, updated)))
}

/// Removes a broker connection and stops its worker (`devices.write`).
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/integrations/{integration_id}", tag = "iot",
    params(("org_id" = OrgId, Path), ("integration_id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    ApiPath((_, id)): ApiPath<(OrgId, Uuid)>,
) -> ApiResult<StatusCode> {
    ops::integrations::delete(&state, &ctx, &audit, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
