//! The vulnerability pages: an organization's findings (by advisory, by
//! package, the KEV view with what is overdue, or every finding), with
//! filters, exports and signed reports; and the feeds page where platform
//! admins see the imports and upload a feed file.

use askama::Template;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use sentinel_core::{OrgId, Permission};
use sentinel_store::{AdvisoryGroup, FeedImport, Finding, PackageGroup};
use sentinel_vulns::report::{ReportFormat, ReportKind};
use serde::{Deserialize, Serialize};

use super::{Layout, UiResult, render};
use crate::access::{OrgContext, Principal};
use crate::audit::Audit;
use crate::error::AppError;
use crate::extract::{UiForm, UiQuery};
use crate::ops;
use crate::ops::feeds::FeedUploadResult;
use crate::ops::findings::{FindingsQuery, KevItem};
use crate::state::AppState;

/// The findings page's query: which view, and the filters.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FindingsPageQuery {
    /// `advisories` (default), `packages`, `kev` or `list`.
    pub view: Option<String>,
    pub kev: Option<String>,
    pub severity: Option<String>,
    pub q: Option<String>,
    pub after: Option<String>,
}

impl FindingsPageQuery {
    fn filters(&self) -> FindingsQuery {
        FindingsQuery {
            kev: self.kev.clone(),
            severity: self.severity.clone(),
            q: self.q.clone(),
            after: self.after.clone(),
            ..FindingsQuery::default()
        }
    }
}

#[derive(Template)]
#[template(path = "findings.html")]
struct FindingsPage {
    layout: Layout,
    org_id: OrgId,
    org_name: String,
    view: &'static str,
    query: FindingsPageQuery,
    severities: Vec<(&'static str, bool)>,
    export_query: String,
    advisories: Vec<AdvisoryGroup>,
    packages: Vec<PackageGroup>,
    kev: Vec<KevItem>,
    findings: Vec<Finding>,
    next_query: Option<String>,
    can_report: bool,
    generation: i64,
}

impl FindingsPage {
    /// The every-finding view searched for `text`.
    fn list_link(&self, text: &str) -> String {
        let query =
            serde_urlencoded::to_string([("view", "list"), ("q", text)]).unwrap_or_default();
        format!("/orgs/{}/findings?{query}", self.org_id)
    }
}

pub async fn page(
    State(state): State<AppState>,
    ctx: OrgContext,
    UiQuery(query): UiQuery<FindingsPageQuery>,
) -> UiResult {
    let org = ctx.organization();
    let title = format!("Vulnerabilities of {}", org.name);
    let mut layout = Layout::signed_in(&state, &ctx.principal, &title, Some(org.id)).await?;
    let view = match query.view.as_deref().unwrap_or("advisories") {
        "" | "advisories" => "advisories",
        "packages" => "packages",
        "kev" => "kev",
        "list" => "list",
        _ => {
            return Err(AppError::BadRequest(
                "view must be advisories, packages, kev or list".into(),
            )
            .into());
        }
    };
    let filters = query.filters();
    let mut page = FindingsPage {
        layout: Layout::default(),
        org_id: org.id,
        org_name: org.name.to_string(),
        view,
        severities: sentinel_vulns::Level::ALL
            .into_iter()
            .map(|level| {
                (
                    level.as_str(),
                    query.severity.as_deref() == Some(level.as_str()),
                )
            })
            .collect(),
        export_query: serde_urlencoded::to_string(FindingsQuery {
            after: None,
            ..filters.clone()
        })
        .unwrap_or_default(),
        advisories: Vec::new(),
        packages: Vec::new(),
        kev: Vec::new(),
        findings: Vec::new(),
        next_query: None,
        can_report: ctx.membership.role().grants(Permission::ReportsCreate),
        generation: state.vulns.feeds.generation(),
        query: query.clone(),
    };
    let loaded = match view {
        "packages" => ops::findings::by_package(&state, &ctx, &filters)
            .await
            .map(|p| page.packages = p),
        "kev" => ops::findings::kev(&state, &ctx).await.map(|k| page.kev = k),
        "list" => ops::findings::page(&state, &ctx, &filters)
            .await
            .map(|(findings, next)| {
                page.findings = findings;
                page.next_query = next.map(|after| {
                    serde_urlencoded::to_string(FindingsPageQuery {
                        after: Some(after),
                        ..query.clone()
                    })
                    .unwrap_or_default()
                });
            }),
        _ => ops::findings::by_advisory(&state, &ctx, &filters)
            .await
            .map(|a| page.advisories = a),
    };
    let status = match loaded {
        Ok(()) => StatusCode::OK,
        Err(AppError::BadRequest(message)) => {
            layout = layout.with_error(Some(message));
            StatusCode::BAD_REQUEST
        }
        Err(e) => return Err(e.into()),
    };
    page.layout = layout;
    Ok(render(status, &page))
}

#[derive(Debug, Deserialize)]
pub struct ReportForm {
    kind: String,
    format: String,
}

/// Makes a signed report and sends it as a download (`reports.create`; audited).
pub async fn create_report(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    UiForm(form): UiForm<ReportForm>,
) -> UiResult {
    let kind = match form.kind.as_str() {
        "kev_remediation" => ReportKind::KevRemediation,
        "vulnerability_summary" => ReportKind::VulnerabilitySummary,
        _ => {
            return Err(AppError::BadRequest(
                "kind must be kev_remediation or vulnerability_summary".into(),
            )
            .into());
        }
    };
    let format = match form.format.as_str() {
        "html" => ReportFormat::Html,
        "json" => ReportFormat::Json,
        _ => return Err(AppError::BadRequest("format must be html or json".into()).into()),
    };
    let report = ops::findings::create_report(&state, &ctx, &audit, kind, format).await?;
    Ok(crate::api::findings::report_response(report))
}

#[derive(Template)]
#[template(path = "feeds.html")]
struct FeedsPage {
    layout: Layout,
    imports: Vec<FeedImport>,
    generation: i64,
    advisories: usize,
    kev: usize,
    result: Option<FeedUploadResult>,
}

async fn feeds_page(
    state: &AppState,
    principal: &Principal,
    status: StatusCode,
    error: Option<String>,
    result: Option<FeedUploadResult>,
) -> UiResult {
    let layout = Layout::signed_in(state, principal, "Vulnerability feeds", None)
        .await?
        .with_error(error);
    let (advisories, kev) = {
        let feeds = state.vulns.feeds.read();
        (feeds.index.len(), feeds.kev.len())
    };
    let page = FeedsPage {
        layout,
        imports: ops::feeds::imports(state).await?,
        generation: state.vulns.feeds.generation(),
        advisories,
        kev,
        result,
    };
    Ok(render(status, &page))
}

pub async fn feeds(State(state): State<AppState>, principal: Principal) -> UiResult {
    feeds_page(&state, &principal, StatusCode::OK, None, None).await
}

/// Imports the uploaded feed file (platform admins; audited by the store).
pub async fn upload(
    State(state): State<AppState>,
    Audit(audit): Audit,
    principal: Principal,
    request: Request,
) -> UiResult {
    let read = read_upload(request).await;
    let outcome = match read {
        Ok((name, bytes)) => ops::feeds::upload(&state, &audit, &name, bytes).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(result) => feeds_page(&state, &principal, StatusCode::OK, None, Some(result)).await,
        Err(AppError::BadRequest(message)) => {
            feeds_page(
                &state,
                &principal,
                StatusCode::BAD_REQUEST,
                Some(message),
                None,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// The `feed` file of a multipart form: its name and bytes.
async fn read_upload(request: Request) -> Result<(String, Vec<u8>), AppError> {
    let bad = |text: &str| AppError::BadRequest(text.to_owned());
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|_| bad("upload the file with the form (multipart/form-data)"))?;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|_| bad("the upload could not be read"))?
    {
        if field.name() == Some("feed") {
            let name = field.file_name().unwrap_or("upload").to_owned();
            let bytes = field
                .bytes()
                .await
                .map_err(|_| bad("the upload could not be read"))?;
            if bytes.is_empty() {
                return Err(bad("choose a feed file to upload"));
            }
            return Ok((name, bytes.to_vec()));
        }
    }
    Err(bad("choose a feed file to upload"))
}
