//! An organization's vulnerability findings for its members: the query both
//! surfaces accept (checked strictly), pages, groupings by advisory and by
//! package, the KEV view, CSV/NDJSON export (audited before it starts), and
//! signed reports (audited).

use axum::body::{Body, Bytes};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sentinel_core::audit::{AuditAction, AuditContext, Entity, EntityType, LogId};
use sentinel_store::{AdvisoryGroup, Finding, FindingCursor, FindingFilter, PackageGroup};
use sentinel_vulns::Level;
use sentinel_vulns::report::{self, ReportFormat, ReportKind, ReportOrg, days_overdue};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use uuid::Uuid;

use crate::access::OrgContext;
use crate::error::AppError;
use crate::ops::audit::{ExportFormat, bad, csv_field, page_limit, present};
use crate::ops::devices::tenant;
use crate::state::AppState;

/// Findings per page unless `limit` says otherwise, and the most it may say.
pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;
/// Findings read per step of an export.
const EXPORT_BATCH: i64 = 1000;
const MAX_TEXT: usize = 200;
pub const CSV_COLUMNS: [&str; 14] = [
    "device_id",
    "hostname",
    "advisory_id",
    "aliases",
    "package",
    "binaries",
    "installed_version",
    "fixed_version",
    "release",
    "severity",
    "kev",
    "kev_date_added",
    "kev_due_date",
    "first_seen_at",
];

/// The filters of a findings query, as the client sent them. Empty values
/// mean "any" (HTML forms send every field).
#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FindingsQuery {
    /// Only this device's findings.
    pub device_id: Option<String>,
    /// `true`: only those in CISA's KEV catalog; `false`: only those not in it.
    pub kev: Option<String>,
    /// `critical`, `high`, `medium`, `low` or `unknown`.
    pub severity: Option<String>,
    /// Text in the advisory id, its aliases (CVE ids), the package or the hostname.
    pub q: Option<String>,
    /// The `next` cursor of the previous page.
    pub after: Option<String>,
    /// Findings per page, 1 to 1000 (default 100).
    pub limit: Option<String>,
    /// For exports: `ndjson` (default) or `csv`.
    pub format: Option<String>,
}

impl FindingsQuery {
    /// The store filter, after checking every value.
    pub fn filter(&self) -> Result<FindingFilter, AppError> {
        let device_id = present(&self.device_id)
            .map(|id| {
                id.parse::<Uuid>()
                    .map_err(|_| bad("device_id must be a device id"))
            })
            .transpose()?;
        let kev = match present(&self.kev) {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => return Err(bad("kev must be true or false")),
        };
        let severity = present(&self.severity)
            .map(|s| {
                Level::parse(s)
                    .map(|level| level.as_str().to_owned())
                    .ok_or_else(|| bad("severity must be critical, high, medium, low or unknown"))
            })
            .transpose()?;
        let text = match present(&self.q) {
            Some(q) if q.chars().count() > MAX_TEXT => {
                return Err(bad(format!("q is longer than {MAX_TEXT} characters")));
            }
            other => other.map(str::to_owned),
        };
        Ok(FindingFilter {
            device_id,
            kev,
            severity,
            text,
        })
    }

    pub fn cursor(&self) -> Result<Option<FindingCursor>, AppError> {
        present(&self.after)
            .map(|after| {
                URL_SAFE_NO_PAD
                    .decode(after)
                    .ok()
                    .and_then(|json| serde_json::from_slice(&json).ok())
                    .ok_or_else(|| bad("after must be the `next` value of a previous page"))
            })
            .transpose()
    }

    pub fn limit(&self) -> Result<i64, AppError> {
        page_limit(&self.limit, DEFAULT_LIMIT, MAX_LIMIT)
    }

    pub fn format(&self) -> Result<ExportFormat, AppError> {
        ExportFormat::parse(&self.format)
    }
}

fn encode_cursor(cursor: &FindingCursor) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(cursor).unwrap_or_default())
}

/// One page of findings, most severe first, and the cursor of the next.
pub async fn page(
    state: &AppState,
    ctx: &OrgContext,
    query: &FindingsQuery,
) -> Result<(Vec<Finding>, Option<String>), AppError> {
    let filter = query.filter()?;
    let after = query.cursor()?;
    let limit = query.limit()?;
    let (findings, next) = tenant(state, ctx)
        .await?
        .findings(&filter, after.as_ref(), limit)
        .await?;
    Ok((findings, next.as_ref().map(encode_cursor)))
}

/// Every finding of one device (`NotFound` for another organization's device).
pub async fn of_device(
    state: &AppState,
    ctx: &OrgContext,
    device: Uuid,
) -> Result<Vec<Finding>, AppError> {
    let store = tenant(state, ctx).await?;
    store
        .device(device)
        .await
        .map_err(crate::ops::not_found_as("device"))?;
    let filter = FindingFilter {
        device_id: Some(device),
        ..FindingFilter::default()
    };
    let mut findings = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = store.findings(&filter, after.as_ref(), MAX_LIMIT).await?;
        findings.extend(page);
        match next {
            Some(next) => after = Some(next),
            None => return Ok(findings),
        }
    }
}

/// Findings grouped by advisory, most severe and widespread first.
pub async fn by_advisory(
    state: &AppState,
    ctx: &OrgContext,
    query: &FindingsQuery,
) -> Result<Vec<AdvisoryGroup>, AppError> {
    let filter = query.filter()?;
    let limit = query.limit()?;
    Ok(tenant(state, ctx)
        .await?
        .findings_by_advisory(&filter, limit)
        .await?)
}

/// Findings grouped by package, most severe and widespread first.
pub async fn by_package(
    state: &AppState,
    ctx: &OrgContext,
    query: &FindingsQuery,
) -> Result<Vec<PackageGroup>, AppError> {
    let filter = query.filter()?;
    let limit = query.limit()?;
    Ok(tenant(state, ctx)
        .await?
        .findings_by_package(&filter, limit)
        .await?)
}

/// A known exploited vulnerability on the organization's devices, against
/// CISA's due date.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KevItem {
    #[serde(flatten)]
    pub advisory: AdvisoryGroup,
    /// Past its due date today.
    pub overdue: bool,
    /// Days past the due date (0 when not overdue).
    pub days_overdue: i64,
}

/// The KEV view: every KEV advisory affecting the organization, overdue ones
/// first, then by due date.
pub async fn kev(state: &AppState, ctx: &OrgContext) -> Result<Vec<KevItem>, AppError> {
    let filter = FindingFilter {
        kev: Some(true),
        ..FindingFilter::default()
    };
    let today = state.clock.now().to_offset_datetime().date();
    let groups = tenant(state, ctx)
        .await?
        .findings_by_advisory(&filter, 10_000)
        .await?;
    let mut items: Vec<KevItem> = groups
        .into_iter()
        .map(|advisory| {
            let days = days_overdue(advisory.kev_due_date.as_deref().unwrap_or_default(), today);
            KevItem {
                advisory,
                overdue: days > 0,
                days_overdue: days,
            }
        })
        .collect();
    items.sort_by(|a, b| {
        (
            !a.overdue,
            &a.advisory.kev_due_date,
            &a.advisory.advisory_id,
        )
            .cmp(&(
                !b.overdue,
                &b.advisory.kev_due_date,
                &b.advisory.advisory_id,
            ))
    });
    Ok(items)
}

/// Streams the findings `query` selects as NDJSON or CSV; the export is
/// audited first.
pub async fn export(
    state: &AppState,
    ctx: &OrgContext,
    audit: &AuditContext,
    query: &FindingsQuery,
) -> Result<(ExportFormat, Body), AppError> {
    let filter = query.filter()?;
    let format = query.format()?;
    let org = ctx.organization().id;
    let event = audit.success(
        state.clock.now(),
        AuditAction::FindingsExported,
        Entity::new(EntityType::Organization, org),
        serde_json::json!({
            "format": format.extension(),
            "filter": serde_json::to_value(FindingsQuery { format: None, limit: None, after: None, ..query.clone() })
                .unwrap_or_default(),
        }),
    );
    state.stores.record(LogId::Org(org), event).await?;
    let store = tenant(state, ctx).await?;
    let header = match format {
        ExportFormat::Csv => Some(format!("{}\r\n", CSV_COLUMNS.join(","))),
        ExportFormat::Ndjson => None,
    };
    let start = (header, Some(None::<FindingCursor>));
    let stream = futures_util::stream::unfold(start, move |(header, after)| {
        let store = store.clone();
        let filter = filter.clone();
        async move {
            if let Some(header) = header {
                return Some((Ok(Bytes::from(header)), (None, after)));
            }
            let after = after?;
            match store.findings(&filter, after.as_ref(), EXPORT_BATCH).await {
                Err(e) => {
                    tracing::error!(error = %e, "findings export failed midway");
                    Some((
                        Err(std::io::Error::other("findings export failed")),
                        (None, None),
                    ))
                }
                Ok((findings, next)) => {
                    let mut out = Vec::new();
                    render(format, &findings, &mut out);
                    Some((Ok(Bytes::from(out)), (None, next.map(Some))))
                }
            }
        }
    });
    Ok((format, Body::from_stream(stream)))
}

fn render(format: ExportFormat, findings: &[Finding], out: &mut Vec<u8>) {
    for finding in findings {
        match format {
            ExportFormat::Ndjson => {
                if let Ok(line) = serde_json::to_vec(finding) {
                    out.extend_from_slice(&line);
                    out.push(b'\n');
                }
            }
            ExportFormat::Csv => {
                let fields = [
                    finding.device_id.to_string(),
                    finding.hostname.clone(),
                    finding.advisory_id.clone(),
                    finding.aliases.join(" "),
                    finding.package.clone(),
                    finding.binaries.join(" "),
                    finding.installed_version.clone(),
                    finding.fixed_version.clone().unwrap_or_default(),
                    finding.release.clone(),
                    finding.severity.clone(),
                    finding.kev.to_string(),
                    finding.kev_date_added.clone().unwrap_or_default(),
                    finding.kev_due_date.clone().unwrap_or_default(),
                    finding.first_seen_at.to_rfc3339(),
                ];
                let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                out.extend_from_slice(line.join(",").as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

/// A signed report, ready to download.
#[derive(Debug)]
pub struct MadeReport {
    pub format: ReportFormat,
    pub file_name: String,
    pub bytes: Vec<u8>,
}

/// Makes a signed report of `kind` on the organization (audited).
pub async fn create_report(
    state: &AppState,
    ctx: &OrgContext,
    audit: &AuditContext,
    kind: ReportKind,
    format: ReportFormat,
) -> Result<MadeReport, AppError> {
    let organization = ctx.organization();
    let now = state.clock.now();
    let store = tenant(state, ctx).await?;
    let content = report::content(
        &store,
        ReportOrg {
            id: organization.id,
            name: organization.name.as_str().to_owned(),
        },
        kind,
        state.vulns.feeds.generation(),
        now,
    )
    .await?;
    let bytes = report::write(&content, format, &state.vulns.report_key)
        .map_err(|e| AppError::Internal(format!("writing a report: {e}")))?;
    let digest = sentinel_core::audit::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let event = audit.success(
        now,
        AuditAction::ReportCreated,
        Entity::new(EntityType::Report, organization.id),
        serde_json::json!({
            "kind": kind.as_str(),
            "format": format.extension(),
            "file_sha256": digest,
            "key_id": state.vulns.report_key.verifying_key().key_id(),
        }),
    );
    state
        .stores
        .record(LogId::Org(organization.id), event)
        .await?;
    let date = now.to_offset_datetime().date();
    Ok(MadeReport {
        format,
        file_name: format!(
            "{}-{}-{date}.{}",
            kind.as_str(),
            organization.id,
            format.extension()
        ),
        bytes,
    })
}
