//! Vulnerability findings over the API: an organization's findings (paged,
//! filtered, grouped, exported), a device's findings, the KEV view, signed
//! reports; and, for platform admins, the feed imports and uploading a feed.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use sentinel_core::OrgId;
use sentinel_store::{AdvisoryGroup, FeedImport, Finding, PackageGroup};
use sentinel_vulns::report::{ReportFormat, ReportKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::ApiResult;
use crate::access::OrgContext;
use crate::audit::Audit;
use crate::error::Problem;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::ops;
use crate::ops::feeds::FeedUploadResult;
use crate::ops::findings::{FindingsQuery, KevItem};
use crate::state::AppState;

/// A page of findings, most severe first.
#[derive(Debug, Serialize, ToSchema)]
pub struct FindingsPage {
    pub findings: Vec<Finding>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<String>,
}

/// The organization's findings (`devices.read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/findings", tag = "findings",
    params(("org_id" = OrgId, Path), FindingsQuery),
    responses((status = 200, body = FindingsPage), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    ctx: OrgContext,
    ApiQuery(query): ApiQuery<FindingsQuery>,
) -> ApiResult<Json<FindingsPage>> {
    let (findings, next) = ops::findings::page(&state, &ctx, &query).await?;
    Ok(Json(FindingsPage { findings, next }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceFindings {
    pub findings: Vec<Finding>,
}

/// Every finding of one device, most severe first (`devices.read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/devices/{device_id}/findings", tag = "findings",
    params(("org_id" = OrgId, Path), ("device_id" = Uuid, Path)),
    responses((status = 200, body = DeviceFindings), (status = 404, body = Problem)))]
pub async fn device(
    State(state): State<AppState>,
    ctx: OrgContext,
    ApiPath((_, device_id)): ApiPath<(OrgId, Uuid)>,
) -> ApiResult<Json<DeviceFindings>> {
    let findings = ops::findings::of_device(&state, &ctx, device_id).await?;
    Ok(Json(DeviceFindings { findings }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdvisoryGroups {
    pub advisories: Vec<AdvisoryGroup>,
}

/// Findings grouped by advisory, with affected-device counts (`devices.read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/findings/advisories", tag = "findings",
    params(("org_id" = OrgId, Path), FindingsQuery),
    responses((status = 200, body = AdvisoryGroups), (status = 400, body = Problem)))]
pub async fn by_advisory(
    State(state): State<AppState>,
    ctx: OrgContext,
    ApiQuery(query): ApiQuery<FindingsQuery>,
) -> ApiResult<Json<AdvisoryGroups>> {
    let advisories = ops::findings::by_advisory(&state, &ctx, &query).await?;
    Ok(Json(AdvisoryGroups { advisories }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PackageGroups {
    pub packages: Vec<PackageGroup>,
}

/// Findings grouped by package, with affected-device counts (`devices.read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/findings/packages", tag = "findings",
    params(("org_id" = OrgId, Path), FindingsQuery),
    responses((status = 200, body = PackageGroups), (status = 400, body = Problem)))]
pub async fn by_package(
    State(state): State<AppState>,
    ctx: OrgContext,
    ApiQuery(query): ApiQuery<FindingsQuery>,
) -> ApiResult<Json<PackageGroups>> {
    let packages = ops::findings::by_package(&state, &ctx, &query).await?;
    Ok(Json(PackageGroups { packages }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KevView {
    /// Overdue first (by CISA's due date, BOD 22-01), then by due date.
    pub vulnerabilities: Vec<KevItem>,
}

/// Known exploited vulnerabilities on the organization's devices (`devices.read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/findings/kev", tag = "findings",
    params(("org_id" = OrgId, Path)),
    responses((status = 200, body = KevView)))]
pub async fn kev(State(state): State<AppState>, ctx: OrgContext) -> ApiResult<Json<KevView>> {
    let vulnerabilities = ops::findings::kev(&state, &ctx).await?;
    Ok(Json(KevView { vulnerabilities }))
}

/// Exports the selected findings as NDJSON or CSV (`devices.read`; the export
/// is itself audited).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/findings/export", tag = "findings",
    params(("org_id" = OrgId, Path), FindingsQuery),
    responses((status = 200, description = "NDJSON or CSV, most severe first"), (status = 400, body = Problem)))]
pub async fn export(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    ApiQuery(query): ApiQuery<FindingsQuery>,
) -> ApiResult<Response> {
    let (format, body) = ops::findings::export(&state, &ctx, &audit, &query).await?;
    Ok(super::attachment(
        StatusCode::OK,
        format.content_type(),
        &format!("findings-{}.{}", ctx.organization().id, format.extension()),
        body,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReport {
    pub kind: ReportKind,
    pub format: ReportFormat,
}

/// Makes a signed report (`reports.create`; audited). The response is the
/// file: JSON or HTML carrying the SHA-256 of its content and the platform
/// key's Ed25519 signature; `sentinel report verify FILE` checks it.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/reports", tag = "findings",
    params(("org_id" = OrgId, Path)), request_body = CreateReport,
    responses((status = 201, description = "The signed report file"), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn create_report(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    ApiJson(body): ApiJson<CreateReport>,
) -> ApiResult<Response> {
    let report = ops::findings::create_report(&state, &ctx, &audit, body.kind, body.format).await?;
    Ok(report_response(report))
}

/// A made report as a download.
pub(crate) fn report_response(report: ops::findings::MadeReport) -> Response {
    super::attachment(
        StatusCode::CREATED,
        report.format.content_type(),
        &report.file_name,
        report.bytes,
    )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedImports {
    /// Newest first.
    pub imports: Vec<FeedImport>,
    /// The feed generation findings are matched against.
    pub generation: i64,
}

/// The vulnerability feed imports (platform admins).
#[utoipa::path(get, path = "/api/v1/feeds", tag = "findings",
    responses((status = 200, body = FeedImports), (status = 403, body = Problem)))]
pub async fn feeds(State(state): State<AppState>) -> ApiResult<Json<FeedImports>> {
    let imports = ops::feeds::imports(&state).await?;
    Ok(Json(FeedImports {
        imports,
        generation: state.vulns.feeds.generation(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FeedUploadQuery {
    /// The file's name, as recorded with the import.
    pub name: Option<String>,
}

/// Imports a feed file sent as the request body: an OSV record, a JSON array
/// of them, an OSV `all.zip`, or the CISA KEV catalog (platform admins;
/// audited). Large archives are better imported with `sentinel feeds import`.
#[utoipa::path(post, path = "/api/v1/feeds", tag = "findings", params(FeedUploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = FeedUploadResult), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn upload_feed(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ApiQuery(query): ApiQuery<FeedUploadQuery>,
    body: Bytes,
) -> ApiResult<Json<FeedUploadResult>> {
    let name = query.name.unwrap_or_else(|| String::from("upload"));
    let result = ops::feeds::upload(&state, &audit, &name, body.to_vec()).await?;
    Ok(Json(result))
}
