//! Vulnerability feeds for platform admins: the imports so far, and importing
//! an uploaded feed file (the same import as `sentinel feeds import`; the
//! store records and audits it). After an import the matcher is woken.

use sentinel_core::audit::AuditContext;
use sentinel_store::FeedImport;
use sentinel_vulns::import::{self, ImportOutcome, Malformed, ReadFeed};
use serde::Serialize;

use crate::error::AppError;
use crate::state::AppState;

/// What an uploaded feed did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FeedUploadResult {
    /// `imported`, `already_imported` (this file was imported before) or
    /// `older_catalog` (a KEV catalog older than the one held).
    pub outcome: &'static str,
    /// The import that was recorded (or, for `already_imported`, the earlier one).
    pub import: Option<FeedImport>,
    /// Records that could not be read (the first 50), all skipped.
    #[schema(value_type = Vec<Object>)]
    pub malformed: Vec<Malformed>,
}

/// The most recent imports, newest first.
pub async fn imports(state: &AppState) -> Result<Vec<FeedImport>, AppError> {
    Ok(state.stores.control().feed_imports(100).await?)
}

/// Reads and imports one uploaded feed file.
pub async fn upload(
    state: &AppState,
    audit: &AuditContext,
    name: &str,
    bytes: Vec<u8>,
) -> Result<FeedUploadResult, AppError> {
    let name = clean_name(name);
    let feed =
        tokio::task::spawn_blocking(move || ReadFeed::from_bytes(&name, &bytes, &mut |_| {}))
            .await
            .map_err(|e| AppError::Internal(format!("reading a feed: {e}")))?
            .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let malformed: Vec<Malformed> = feed
        .malformed
        .iter()
        .take(import::MALFORMED_SHOWN)
        .cloned()
        .collect();
    let outcome = import::import(&state.stores, feed, state.clock.now(), audit).await?;
    let result = match outcome {
        ImportOutcome::Imported(recorded) => {
            state.vulns.matcher.feeds_changed();
            FeedUploadResult {
                outcome: "imported",
                import: Some(recorded),
                malformed,
            }
        }
        ImportOutcome::AlreadyImported(earlier) => FeedUploadResult {
            outcome: "already_imported",
            import: Some(earlier),
            malformed,
        },
        ImportOutcome::OlderCatalog { .. } => FeedUploadResult {
            outcome: "older_catalog",
            import: None,
            malformed,
        },
    };
    Ok(result)
}

/// A file name fit to record: its last path component, printable, at most
/// 200 characters.
fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    if cleaned.is_empty() {
        String::from("upload")
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::clean_name;

    #[test]
    fn recorded_names_are_plain_file_names() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\feeds\\all.zip"), "all.zip");
        assert_eq!(clean_name("a\u{1b}[31mb\n.json"), "a[31mb.json");
        assert_eq!(clean_name(""), "upload");
        assert_eq!(clean_name(&"x".repeat(500)).len(), 200);
    }
}
