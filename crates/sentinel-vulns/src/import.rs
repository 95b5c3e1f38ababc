//! Reading feed files and importing them into the control store.
//!
//! A feed is an OSV record, a JSON array of them, OSV.dev's per-ecosystem
//! `all.zip`, a directory of any of those (read as one feed), or the CISA KEV
//! catalog. Every record is read in full before anything is stored; a record
//! that cannot be read is reported and skipped, never half-imported. A file
//! imported before, or a KEV catalog older than the one held, changes nothing.

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use sentinel_advisories::kev::KevEntry;
use sentinel_advisories::{Vulnerability, osv};
use sentinel_core::Timestamp;
use sentinel_core::audit::AuditContext;
use sentinel_core::audit::hex;
use sentinel_store::{
    AdvisoryRecord, FeedCounts, FeedImport, FeedKind, KevCatalogVersion, KevRecord, NewFeedImport,
    StoreError, Stores,
};
use sha2::{Digest, Sha256};

/// The largest record, or KEV catalog, read (OSV records are a few KiB; the
/// whole KEV catalog is about 1.5 MiB).
pub const MAX_RECORD_BYTES: u64 = 16 * 1024 * 1024;
/// The most a zip archive may unpack to in all (OSV.dev's largest, Debian's,
/// is under 2 GiB).
pub const MAX_ARCHIVE_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// How many malformed records an import reports by name (all are counted).
pub const MALFORMED_SHOWN: usize = 50;

/// A feed read into memory, checked, not yet stored.
#[derive(Debug)]
pub struct ReadFeed {
    /// The file or directory name as given.
    pub name: String,
    /// SHA-256 of the file, hex (for a directory: of its files' names and digests).
    pub sha256: String,
    pub content: FeedContent,
    /// Records found, readable or not.
    pub records: usize,
    /// Records that could not be read: where, and why.
    pub malformed: Vec<Malformed>,
}

/// What a feed holds.
#[derive(Debug)]
pub enum FeedContent {
    Osv(Vec<OsvRecord>),
    Kev {
        version: KevCatalogVersion,
        entries: Vec<KevRecord>,
    },
}

/// One OSV record, parsed, with its JSON as read.
#[derive(Debug)]
pub struct OsvRecord {
    pub record: Vulnerability,
    pub json: String,
}

/// A record that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Malformed {
    /// The file, archive entry or array index.
    pub location: String,
    pub error: String,
}

/// Why a feed could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: {1}")]
    Unreadable(String, String),
}

/// What importing a feed did.
#[derive(Debug)]
pub enum ImportOutcome {
    /// The feed was stored (possibly changing nothing, if every record was known).
    Imported(FeedImport),
    /// This very file was imported before; nothing was done.
    AlreadyImported(FeedImport),
    /// The KEV catalog is older than the one held; nothing was done.
    OlderCatalog {
        held: KevCatalogVersion,
        offered: KevCatalogVersion,
    },
}

impl ReadFeed {
    /// Reads one feed file's bytes (JSON or a zip archive); `report` is told
    /// how many records have been read so far.
    pub fn from_bytes(
        name: &str,
        bytes: &[u8],
        report: &mut dyn FnMut(usize),
    ) -> Result<ReadFeed, FeedError> {
        let sha256 = hex(&Sha256::digest(bytes));
        let mut feed = ReadFeed {
            name: name.to_owned(),
            sha256,
            content: FeedContent::Osv(Vec::new()),
            records: 0,
            malformed: Vec::new(),
        };
        if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
            feed.read_archive(name, bytes, report)?;
        } else {
            feed.read_json(name, bytes, report)?;
        }
        Ok(feed)
    }

    /// Reads a file, or every `.json` and `.zip` file under a directory (as
    /// one OSV feed).
    pub fn from_path(path: &Path, report: &mut dyn FnMut(usize)) -> Result<ReadFeed, FeedError> {
        let name = path.display().to_string();
        let metadata = std::fs::metadata(path).map_err(|e| FeedError::Io(name.clone(), e))?;
        if !metadata.is_dir() {
            let bytes = std::fs::read(path).map_err(|e| FeedError::Io(name.clone(), e))?;
            return ReadFeed::from_bytes(&name, &bytes, report);
        }
        let mut files = Vec::new();
        collect_files(path, &mut files)?;
        files.sort();
        let mut feed = ReadFeed {
            name: name.clone(),
            sha256: String::new(),
            content: FeedContent::Osv(Vec::new()),
            records: 0,
            malformed: Vec::new(),
        };
        let mut listing = Sha256::new();
        for file in files {
            let shown = file.display().to_string();
            let bytes = std::fs::read(&file).map_err(|e| FeedError::Io(shown.clone(), e))?;
            let relative = file
                .strip_prefix(path)
                .unwrap_or(&file)
                .display()
                .to_string();
            listing.update(relative.as_bytes());
            listing.update([0]);
            listing.update(hex(&Sha256::digest(&bytes)).as_bytes());
            listing.update([b'\n']);
            if shown.ends_with(".zip") {
                feed.read_archive(&shown, &bytes, report)?;
            } else {
                feed.read_json(&shown, &bytes, report)?;
            }
            if matches!(feed.content, FeedContent::Kev { .. }) {
                return Err(FeedError::Unreadable(
                    shown,
                    "a KEV catalog must be imported on its own, not inside a directory".into(),
                ));
            }
        }
        feed.sha256 = hex(&listing.finalize());
        Ok(feed)
    }

    fn kind(&self) -> FeedKind {
        match self.content {
            FeedContent::Osv(_) => FeedKind::Osv,
            FeedContent::Kev { .. } => FeedKind::Kev,
        }
    }

    fn malformed(&mut self, location: String, error: impl ToString) {
        self.records += 1;
        self.malformed.push(Malformed {
            location,
            error: error.to_string(),
        });
    }

    fn osv(&mut self, location: String, json: &[u8]) {
        match std::str::from_utf8(json) {
            Err(e) => self.malformed(location, e),
            Ok(text) => match osv::parse_str(text) {
                Err(e) => self.malformed(location, e),
                Ok(record) => {
                    self.records += 1;
                    if let FeedContent::Osv(records) = &mut self.content {
                        records.push(OsvRecord {
                            record,
                            json: text.to_owned(),
                        });
                    }
                }
            },
        }
    }

    fn read_archive(
        &mut self,
        name: &str,
        bytes: &[u8],
        report: &mut dyn FnMut(usize),
    ) -> Result<(), FeedError> {
        let unreadable =
            |e: zip::result::ZipError| FeedError::Unreadable(name.to_owned(), e.to_string());
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(unreadable)?;
        let mut unpacked = 0u64;
        for index in 0..archive.len() {
            let mut entry = archive.by_index(index).map_err(unreadable)?;
            let entry_name = entry.name().map_err(unreadable)?.into_owned();
            if entry.is_dir() || !entry_name.ends_with(".json") {
                continue;
            }
            let location = format!("{name}:{entry_name}");
            if entry.size() > MAX_RECORD_BYTES {
                self.malformed(location, format!("larger than {MAX_RECORD_BYTES} bytes"));
                continue;
            }
            let mut json = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
            // The declared size can lie: read at most one byte past the limit.
            if let Err(e) = (&mut entry)
                .take(MAX_RECORD_BYTES + 1)
                .read_to_end(&mut json)
            {
                self.malformed(location, e);
                continue;
            }
            unpacked += json.len() as u64;
            if unpacked > MAX_ARCHIVE_BYTES {
                return Err(FeedError::Unreadable(
                    name.to_owned(),
                    format!("unpacks to more than {MAX_ARCHIVE_BYTES} bytes"),
                ));
            }
            if json.len() as u64 > MAX_RECORD_BYTES {
                self.malformed(location, format!("larger than {MAX_RECORD_BYTES} bytes"));
                continue;
            }
            self.osv(location, &json);
            if self.records.is_multiple_of(1000) {
                report(self.records);
            }
        }
        report(self.records);
        Ok(())
    }

    fn read_json(
        &mut self,
        name: &str,
        bytes: &[u8],
        report: &mut dyn FnMut(usize),
    ) -> Result<(), FeedError> {
        if bytes.len() as u64 > MAX_ARCHIVE_BYTES {
            return Err(FeedError::Unreadable(name.to_owned(), "too large".into()));
        }
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| FeedError::Unreadable(name.to_owned(), format!("not JSON: {e}")))?;
        match value {
            serde_json::Value::Array(items) => {
                for (index, item) in items.into_iter().enumerate() {
                    let location = format!("{name}[{index}]");
                    match serde_json::to_vec(&item) {
                        Ok(json) => self.osv(location, &json),
                        Err(e) => self.malformed(location, e),
                    }
                }
            }
            serde_json::Value::Object(ref object)
                if object.contains_key("catalogVersion")
                    && object.contains_key("vulnerabilities") =>
            {
                self.read_kev(name, value)?;
            }
            serde_json::Value::Object(_) => self.osv(name.to_owned(), bytes),
            _ => {
                return Err(FeedError::Unreadable(
                    name.to_owned(),
                    "not an OSV record, an array of them, or the CISA KEV catalog".into(),
                ));
            }
        }
        report(self.records);
        Ok(())
    }

    fn read_kev(&mut self, name: &str, value: serde_json::Value) -> Result<(), FeedError> {
        if self.records > 0 || !matches!(&self.content, FeedContent::Osv(r) if r.is_empty()) {
            return Err(FeedError::Unreadable(
                name.to_owned(),
                "a KEV catalog must be imported on its own".into(),
            ));
        }
        let text = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        let (Some(catalog_version), Some(date_released)) =
            (text("catalogVersion"), text("dateReleased"))
        else {
            return Err(FeedError::Unreadable(
                name.to_owned(),
                "the KEV catalog has no catalogVersion or dateReleased".into(),
            ));
        };
        let Some(items) = value.get("vulnerabilities").and_then(|v| v.as_array()) else {
            return Err(FeedError::Unreadable(
                name.to_owned(),
                "the KEV catalog's vulnerabilities is not a list".into(),
            ));
        };
        let mut entries: Vec<KevRecord> = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let location = format!("{name}: vulnerabilities[{index}]");
            match serde_json::from_value::<KevEntry>(item.clone()) {
                Err(e) => self.malformed(location, e),
                Ok(entry) if !is_cve_id(&entry.cve_id) => {
                    self.malformed(location, format!("{:?} is not a CVE id", entry.cve_id));
                }
                Ok(entry) => {
                    self.records += 1;
                    let json = serde_json::to_string(item)
                        .map_err(|e| FeedError::Unreadable(location, e.to_string()))?;
                    entries.push(KevRecord {
                        cve_id: entry.cve_id,
                        entry: json,
                    });
                }
            }
        }
        // A catalog listing a CVE twice keeps the last entry.
        let mut seen = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            seen.insert(entry.cve_id.clone(), index);
        }
        let mut index = 0;
        entries.retain(|entry| {
            let keep = seen.get(&entry.cve_id) == Some(&index);
            index += 1;
            keep
        });
        self.content = FeedContent::Kev {
            version: KevCatalogVersion {
                catalog_version,
                date_released,
            },
            entries,
        };
        Ok(())
    }
}

/// `CVE-YYYY-NNNN…`.
fn is_cve_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("CVE-") else {
        return false;
    };
    let Some((year, number)) = rest.split_once('-') else {
        return false;
    };
    year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && number.len() >= 4
        && number.len() <= 12
        && number.bytes().all(|b| b.is_ascii_digit())
}

fn collect_files(dir: &Path, into: &mut Vec<PathBuf>) -> Result<(), FeedError> {
    let shown = dir.display().to_string();
    let entries = std::fs::read_dir(dir).map_err(|e| FeedError::Io(shown.clone(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| FeedError::Io(shown.clone(), e))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| FeedError::Io(path.display().to_string(), e))?;
        if kind.is_dir() {
            collect_files(&path, into)?;
        } else if kind.is_file()
            && path
                .extension()
                .is_some_and(|ext| ext == "json" || ext == "zip")
        {
            into.push(path);
        }
    }
    Ok(())
}

/// Stores `feed` (see the module documentation for what changes nothing).
pub async fn import(
    stores: &Stores,
    feed: ReadFeed,
    now: Timestamp,
    audit: &AuditContext,
) -> Result<ImportOutcome, StoreError> {
    let control = stores.control();
    let kind = feed.kind();
    if let Some(earlier) = control.feed_import_of(kind, &feed.sha256).await? {
        return Ok(ImportOutcome::AlreadyImported(earlier));
    }
    let mut counts = FeedCounts {
        records: feed.records as i64,
        malformed: feed.malformed.len() as i64,
        ..FeedCounts::default()
    };
    let new_import = |counts| NewFeedImport {
        kind,
        source: feed.name.clone(),
        sha256: feed.sha256.clone(),
        counts,
    };
    match &feed.content {
        FeedContent::Kev { version, entries } => {
            if let Some(held) = control.kev_catalog_version().await?
                && Timestamp::parse_rfc3339(&held.date_released).ok()
                    > Timestamp::parse_rfc3339(&version.date_released).ok()
            {
                return Ok(ImportOutcome::OlderCatalog {
                    held,
                    offered: version.clone(),
                });
            }
            let recorded = control
                .import_kev(new_import(counts), version, entries, now, audit)
                .await?;
            Ok(ImportOutcome::Imported(recorded))
        }
        FeedContent::Osv(records) => {
            // The newest copy of each id in this feed.
            let mut newest: HashMap<&str, &OsvRecord> = HashMap::new();
            for record in records {
                let slot = newest.entry(record.record.id.as_str()).or_insert(record);
                if record.record.modified > slot.record.modified {
                    *slot = record;
                }
            }
            counts.unchanged += (records.len() - newest.len()) as i64;
            let held = control.advisory_versions().await?;
            let mut changed = Vec::new();
            let mut ids: Vec<&str> = newest.keys().copied().collect();
            ids.sort_unstable();
            for id in ids {
                let Some(record) = newest.get(id) else {
                    continue;
                };
                let modified_key = record.record.modified.sort_key();
                let withdrawn = record.record.is_withdrawn();
                match held.get(id) {
                    Some((held_key, _)) if *held_key >= modified_key => {
                        counts.unchanged += 1;
                        continue;
                    }
                    _ if withdrawn => counts.withdrawn += 1,
                    Some(_) => counts.updated += 1,
                    None => counts.added += 1,
                }
                changed.push(AdvisoryRecord {
                    id: id.to_owned(),
                    modified_key,
                    withdrawn,
                    record: record.json.clone(),
                });
            }
            let recorded = control
                .import_advisories(new_import(counts), &changed, now, audit)
                .await?;
            Ok(ImportOutcome::Imported(recorded))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, modified: &str) -> String {
        format!(
            r#"{{"id": "{id}", "modified": "{modified}", "affected": [{{"package": {{"ecosystem": "Debian:12", "name": "openssl"}},
                "ranges": [{{"type": "ECOSYSTEM", "events": [{{"introduced": "0"}}, {{"fixed": "3.0.11-1~deb12u2"}}]}}]}}]}}"#
        )
    }

    fn read(name: &str, bytes: &[u8]) -> ReadFeed {
        ReadFeed::from_bytes(name, bytes, &mut |_| {}).unwrap()
    }

    #[test]
    fn single_records_arrays_and_archives_are_read_and_bad_records_reported() {
        let single = read(
            "one.json",
            record("DSA-1", "2024-01-01T00:00:00Z").as_bytes(),
        );
        assert!(matches!(&single.content, FeedContent::Osv(r) if r.len() == 1));

        let array = format!(
            "[{}, {{\"id\": \"BROKEN\"}}, 7]",
            record("DSA-2", "2024-01-01T00:00:00Z")
        );
        let array = read("many.json", array.as_bytes());
        assert!(matches!(&array.content, FeedContent::Osv(r) if r.len() == 1));
        assert_eq!(array.records, 3);
        assert_eq!(array.malformed.len(), 2);
        assert_eq!(array.malformed[0].location, "many.json[1]");

        let mut zipped = Cursor::new(Vec::new());
        {
            let mut writer = zip::ZipWriter::new(&mut zipped);
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            writer.start_file("DSA-3.json", options).unwrap();
            std::io::Write::write_all(
                &mut writer,
                record("DSA-3", "2024-01-01T00:00:00Z").as_bytes(),
            )
            .unwrap();
            writer.start_file("bad.json", options).unwrap();
            std::io::Write::write_all(&mut writer, b"{not json").unwrap();
            writer.start_file("README.txt", options).unwrap();
            writer.finish().unwrap();
        }
        let archive = read("all.zip", zipped.get_ref());
        assert!(matches!(&archive.content, FeedContent::Osv(r) if r.len() == 1));
        assert_eq!(archive.malformed.len(), 1);
        assert_eq!(archive.malformed[0].location, "all.zip:bad.json");
    }

    #[test]
    fn the_kev_catalog_is_recognised_and_its_bad_entries_skipped() {
        let catalog = r#"{"title": "CISA KEV", "catalogVersion": "2024.05.14", "dateReleased": "2024-05-14T14:58:26.1617Z", "count": 3,
          "vulnerabilities": [
            {"cveID": "CVE-2024-3094", "vendorProject": "XZ", "product": "XZ Utils", "vulnerabilityName": "backdoor",
             "dateAdded": "2024-04-01", "shortDescription": "", "requiredAction": "", "dueDate": "2024-04-22"},
            {"cveID": "CVE-2024-1", "vendorProject": "x", "product": "y", "vulnerabilityName": "z",
             "dateAdded": "2024-04-01", "shortDescription": "", "requiredAction": "", "dueDate": "2024-04-22"},
            {"cveID": "CVE-2023-4863", "vendorProject": "Google", "product": "Chromium", "vulnerabilityName": "webp",
             "dateAdded": "2023-09-13", "shortDescription": "", "requiredAction": "", "dueDate": "2023-02-30"}
          ]}"#;
        let feed = read("kev.json", catalog.as_bytes());
        let FeedContent::Kev { version, entries } = &feed.content else {
            panic!("not read as KEV");
        };
        assert_eq!(version.catalog_version, "2024.05.14");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].cve_id, "CVE-2024-3094");
        assert_eq!(feed.malformed.len(), 2, "{:?}", feed.malformed);
    }

    #[test]
    fn what_is_not_a_feed_is_refused_whole() {
        for bytes in [&b"42"[..], b"not json", b"\"text\"", b"PK\x03\x04garbage"] {
            assert!(ReadFeed::from_bytes("x", bytes, &mut |_| {}).is_err());
        }
    }
}
