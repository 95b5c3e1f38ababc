//! Reading and exporting audit logs: the query parameters both surfaces accept,
//! checked strictly, one page at a time (newest first) or the whole selection as
//! NDJSON or CSV. An export is itself audited before it starts.

use axum::body::{Body, Bytes};
use sentinel_core::Timestamp;
use sentinel_core::audit::{AuditAction, AuditContext, Entity, EntityType, Outcome, StoredEntry};
use sentinel_store::{AuditFilter, AuditLog};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use crate::error::AppError;
use crate::state::AppState;

/// Entries per page unless `limit` says otherwise, and the most it may say.
pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;
/// Entries read per step of an export.
const EXPORT_BATCH: i64 = 1000;
/// The longest accepted text of a filter value.
const MAX_FILTER_TEXT: usize = 200;

/// The filters of an audit query, as the client sent them. Empty values mean
/// "any" (HTML forms send every field).
#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// A dotted action name, e.g. `member.role_changed`.
    pub action: Option<String>,
    /// The actor's id (a user id).
    pub actor: Option<String>,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    /// `success`, `denied` or `failure`.
    pub outcome: Option<String>,
    /// RFC 3339 time: entries at or after it.
    pub since: Option<String>,
    /// RFC 3339 time: entries before it.
    pub until: Option<String>,
    /// Free text, matched case-insensitively in actor name, action, entity id and detail.
    pub q: Option<String>,
    /// The `next` cursor of the previous page.
    pub after: Option<String>,
    /// Entries per page, 1 to 500 (default 50).
    pub limit: Option<String>,
    /// For exports: `ndjson` (default) or `csv`.
    pub format: Option<String>,
}

pub(crate) fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

pub(crate) fn bad(text: impl Into<String>) -> AppError {
    AppError::BadRequest(text.into())
}

impl AuditQuery {
    /// The store filter, after checking every value.
    pub fn filter(&self) -> Result<AuditFilter, AppError> {
        let text = |field: &str, value: &Option<String>| -> Result<Option<String>, AppError> {
            match present(value) {
                Some(v) if v.chars().count() > MAX_FILTER_TEXT => Err(bad(format!(
                    "{field} is longer than {MAX_FILTER_TEXT} characters"
                ))),
                other => Ok(other.map(str::to_owned)),
            }
        };
        let action = present(&self.action)
            .map(|a| a.parse::<AuditAction>().map(|a| a.as_str().to_owned()))
            .transpose()
            .map_err(|_| bad("action is not a known audit action"))?;
        let entity_type = present(&self.entity_type)
            .map(|t| t.parse::<EntityType>().map(|t| t.as_str().to_owned()))
            .transpose()
            .map_err(|_| bad("entity_type is not a known entity type"))?;
        let outcome = present(&self.outcome)
            .map(|o| o.parse::<Outcome>().map(|o| o.as_str().to_owned()))
            .transpose()
            .map_err(|_| bad("outcome must be success, denied or failure"))?;
        let time = |field: &str, value: &Option<String>| -> Result<Option<Timestamp>, AppError> {
            present(value)
                .map(|v| {
                    Timestamp::parse_rfc3339(v)
                        .map_err(|_| bad(format!("{field} must be an RFC 3339 time")))
                })
                .transpose()
        };
        let before_seq = present(&self.after)
            .map(|a| a.parse::<i64>().ok().filter(|n| *n > 0))
            .map(|n| n.ok_or_else(|| bad("after must be the `next` value of a previous page")))
            .transpose()?;
        Ok(AuditFilter {
            action,
            actor: text("actor", &self.actor)?,
            entity_type,
            entity_id: text("entity_id", &self.entity_id)?,
            outcome,
            since: time("since", &self.since)?,
            until: time("until", &self.until)?,
            text: text("q", &self.q)?,
            before_seq,
        })
    }

    pub fn limit(&self) -> Result<i64, AppError> {
        page_limit(&self.limit, DEFAULT_LIMIT, MAX_LIMIT)
    }

    pub fn format(&self) -> Result<ExportFormat, AppError> {
        ExportFormat::parse(&self.format)
    }
}

/// A `limit` query value: `default` when absent, else 1 to `max`.
pub(crate) fn page_limit(value: &Option<String>, default: i64, max: i64) -> Result<i64, AppError> {
    match present(value) {
        None => Ok(default),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| bad(format!("limit must be a number from 1 to {max}"))),
    }
}

/// One page of entries, newest first, and the cursor of the next page.
#[derive(Debug)]
pub struct Page {
    pub entries: Vec<StoredEntry>,
    pub next: Option<i64>,
}

pub async fn page(log: &AuditLog, query: &AuditQuery) -> Result<Page, AppError> {
    let filter = query.filter()?;
    let limit = query.limit()?;
    let page = log.page(&filter, limit).await?;
    Ok(Page {
        entries: page.entries,
        next: page.next,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Ndjson,
    Csv,
}

impl ExportFormat {
    /// A `format` query value: `ndjson` (the default) or `csv`.
    pub fn parse(value: &Option<String>) -> Result<ExportFormat, AppError> {
        match present(value) {
            None | Some("ndjson") => Ok(ExportFormat::Ndjson),
            Some("csv") => Ok(ExportFormat::Csv),
            Some(_) => Err(bad("format must be ndjson or csv")),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Ndjson => "application/x-ndjson",
            ExportFormat::Csv => "text/csv; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Ndjson => "ndjson",
            ExportFormat::Csv => "csv",
        }
    }
}

const CSV_COLUMNS: [&str; 15] = [
    "seq",
    "at",
    "actor_kind",
    "actor_id",
    "actor_name",
    "action",
    "entity_type",
    "entity_id",
    "outcome",
    "detail",
    "client_ip",
    "user_agent",
    "request_id",
    "prev_hash",
    "hash",
];

/// One CSV field: quoted when needed, and defused when a spreadsheet would
/// take it for a formula.
pub(crate) fn csv_field(value: &str) -> String {
    let defused = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if defused.contains([',', '"', '\n', '\r']) || defused != value {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

fn render(format: ExportFormat, entries: &[StoredEntry], out: &mut Vec<u8>) {
    for entry in entries {
        match format {
            ExportFormat::Ndjson => {
                if let Ok(line) = serde_json::to_vec(entry) {
                    out.extend_from_slice(&line);
                    out.push(b'\n');
                }
            }
            ExportFormat::Csv => {
                let fields = [
                    entry.seq.to_string(),
                    entry.at.to_rfc3339(),
                    entry.actor_kind.clone(),
                    entry.actor_id.clone(),
                    entry.actor_name.clone(),
                    entry.action.clone(),
                    entry.entity_type.clone(),
                    entry.entity_id.clone(),
                    entry.outcome.clone(),
                    entry.detail.clone(),
                    entry.client_ip.clone(),
                    entry.user_agent.clone(),
                    entry.request_id.clone(),
                    sentinel_core::audit::hex(&entry.prev_hash),
                    sentinel_core::audit::hex(&entry.hash),
                ];
                let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                out.extend_from_slice(line.join(",").as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

/// Records the export in `log`, then streams every entry matching the query,
/// newest first, in `format`.
pub async fn export(
    state: &AppState,
    log: AuditLog,
    audit: &AuditContext,
    query: &AuditQuery,
) -> Result<(ExportFormat, Body), AppError> {
    let filter = query.filter()?;
    let format = query.format()?;
    let event = audit.success(
        state.clock.now(),
        AuditAction::AuditExported,
        Entity::new(EntityType::AuditLog, log.id()),
        serde_json::json!({
            "format": format.extension(),
            "filter": serde_json::to_value(AuditQuery { format: None, limit: None, ..query.clone() })
                .unwrap_or_default(),
        }),
    );
    state.stores.record(log.id(), event).await?;
    let header = match format {
        ExportFormat::Csv => Some(format!("{}\r\n", CSV_COLUMNS.join(","))),
        ExportFormat::Ndjson => None,
    };
    let start = (header, Some(filter));
    let stream = futures_util::stream::unfold(start, move |(header, filter)| {
        let log = log.clone();
        async move {
            if let Some(header) = header {
                return Some((Ok(Bytes::from(header)), (None, filter)));
            }
            let filter = filter?;
            match log.page(&filter, EXPORT_BATCH).await {
                Err(e) => {
                    tracing::error!(error = %e, "audit export failed midway");
                    Some((
                        Err(std::io::Error::other("audit export failed")),
                        (None, None),
                    ))
                }
                Ok(page) => {
                    let mut out = Vec::new();
                    render(format, &page.entries, &mut out);
                    // A free-text page may come back empty with more to search.
                    let next = page.next.map(|seq| AuditFilter {
                        before_seq: Some(seq),
                        ..filter.clone()
                    });
                    Some((Ok(Bytes::from(out)), (None, next)))
                }
            }
        }
    });
    Ok((format, Body::from_stream(stream)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-1"), "\"'-1\"");
    }

    #[test]
    fn hostile_or_malformed_filters_are_refused() {
        let bad = |q: AuditQuery| q.filter().is_err() || q.limit().is_err() || q.format().is_err();
        assert!(bad(AuditQuery {
            action: Some("member.promoted".into()),
            ..Default::default()
        }));
        assert!(bad(AuditQuery {
            outcome: Some("maybe".into()),
            ..Default::default()
        }));
        assert!(bad(AuditQuery {
            since: Some("yesterday".into()),
            ..Default::default()
        }));
        assert!(bad(AuditQuery {
            after: Some("-5".into()),
            ..Default::default()
        }));
        assert!(bad(AuditQuery {
            after: Some("1; DROP TABLE x".into()),
            ..Default::default()
        }));
        assert!(bad(AuditQuery {
            limit: Some("100000".into()),
            ..Default::default()
        }));
        assert!(bad(AuditQuery {
            q: Some("x".repeat(201)),
            ..Default::default()
        }));
        assert!(bad(AuditQuery {
            format: Some("xml".into()),
            ..Default::default()
        }));
        let fine = AuditQuery {
            action: Some("member.added".into()),
            since: Some("2026-01-01T00:00:00Z".into()),
            q: Some("".into()),
            ..Default::default()
        };
        assert!(!bad(fine.clone()));
        assert_eq!(fine.filter().unwrap().text, None);
    }
}
