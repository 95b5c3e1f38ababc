//! Filtered reads of a log, newest first, with keyset pagination: a page ends
//! at an entry number and the next page starts below it, so entries appended
//! meanwhile never shift or repeat what a reader has already seen.
//!
//! Structured filters are answered from indexes. Free text cannot be: it is
//! matched by scanning, so a page searches at most [`TEXT_SCAN_WINDOW`]
//! entries and, if that found fewer than asked for, says where to go on. A
//! search for text that is nowhere costs a bounded amount per request, not a
//! scan of the whole log.

use sentinel_core::Timestamp;
use sentinel_core::audit::StoredEntry;

use super::ENTRY_COLUMNS;
use crate::StoreError;
use crate::backend::{Tx, with_tx};

/// What to look for. Every field narrows the result; `None` matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub action: Option<String>,
    /// The actor's id (a user id, for users).
    pub actor: Option<String>,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub outcome: Option<String>,
    /// At or after this time.
    pub since: Option<Timestamp>,
    /// Before this time.
    pub until: Option<Timestamp>,
    /// Text to find, case-insensitively, in the actor's name, the action, the
    /// entity id or the detail.
    pub text: Option<String>,
    /// Only entries numbered below this (the cursor of the previous page).
    pub before_seq: Option<i64>,
}

/// `%text%` for LIKE (lowercased), with `\`, `%` and `_` in `text` matched
/// literally: every free-text search of the stores uses it with `ESCAPE '\'`.
pub(crate) fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Entries a free-text page searches at most.
pub(crate) const TEXT_SCAN_WINDOW: i64 = 50_000;

/// Entries matching a filter, newest first, and where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    pub entries: Vec<StoredEntry>,
    /// The `before_seq` of the next page; `None` when nothing older matches.
    /// A free-text page may be short (even empty) and still have a next page:
    /// it searched its window of entries and the rest lies below.
    pub next: Option<i64>,
}

pub(super) async fn page(
    tx: &mut Tx,
    filter: &AuditFilter,
    limit: i64,
    text_window: i64,
) -> Result<AuditPage, StoreError> {
    let searches_text = filter.text.as_deref().is_some_and(|t| !t.is_empty());
    let mut filter = filter.clone();
    let mut window_floor = None;
    if searches_text {
        let top = match filter.before_seq {
            Some(before) => before,
            None => {
                let head: Option<i64> = with_tx!(&mut *tx, c =>
                    sqlx::query_scalar("SELECT MAX(seq) FROM audit_entries").fetch_one(c).await
                )?;
                head.unwrap_or(0) + 1
            }
        };
        filter.before_seq = Some(top);
        window_floor = Some(top - text_window);
    }
    let mut entries = matching(tx, &filter, window_floor, limit + 1).await?;
    let next = if entries.len() as i64 > limit {
        entries.truncate(limit as usize);
        entries.last().map(|e| e.seq)
    } else {
        window_floor.filter(|&floor| floor > 1)
    };
    Ok(AuditPage { entries, next })
}

/// Up to `limit` entries matching `filter` numbered at least `floor`, newest first.
async fn matching(
    tx: &mut Tx,
    filter: &AuditFilter,
    floor: Option<i64>,
    limit: i64,
) -> Result<Vec<StoredEntry>, StoreError> {
    let entries = with_tx!(tx, c => {
        let mut q = sqlx::QueryBuilder::new(format!("SELECT {ENTRY_COLUMNS} FROM audit_entries WHERE 1 = 1"));
        for (column, value) in [
            ("action", &filter.action),
            ("actor_id", &filter.actor),
            ("entity_type", &filter.entity_type),
            ("entity_id", &filter.entity_id),
            ("outcome", &filter.outcome),
        ] {
            if let Some(value) = value {
                q.push(format_args!(" AND {column} = ")).push_bind(value.clone());
            }
        }
        if let Some(since) = filter.since {
            q.push(" AND at >= ").push_bind(since);
        }
        if let Some(until) = filter.until {
            q.push(" AND at < ").push_bind(until);
        }
        if let Some(before) = filter.before_seq {
            q.push(" AND seq < ").push_bind(before);
        }
        if let Some(floor) = floor {
            q.push(" AND seq >= ").push_bind(floor);
        }
        if let Some(text) = filter.text.as_deref().filter(|t| !t.is_empty()) {
            let pattern = like_pattern(text);
            q.push(" AND (");
            for (i, column) in ["actor_name", "action", "entity_id", "detail"].iter().enumerate() {
                if i > 0 {
                    q.push(" OR ");
                }
                q.push(format_args!("LOWER({column}) LIKE ")).push_bind(pattern.clone()).push(" ESCAPE '\\'");
            }
            q.push(")");
        }
        q.push(" ORDER BY seq DESC LIMIT ").push_bind(limit);
        q.build_query_as().fetch_all(c).await
    })?;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn wildcards_in_search_text_are_literal() {
        assert_eq!(like_pattern("50%_a\\B"), "%50\\%\\_a\\\\b%");
    }
}
