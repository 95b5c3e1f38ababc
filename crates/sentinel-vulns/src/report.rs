//! Signed reports an organization can hand an auditor: the KEV remediation
//! report (every known-exploited vulnerability on its devices, against CISA's
//! due dates, BOD 22-01) and the vulnerability summary.
//!
//! A report is made as JSON content, then written as JSON or HTML. Either
//! carries the SHA-256 of its content and an Ed25519 signature over that
//! digest by the platform key (the audit key), with the key's fingerprint:
//!
//! - JSON: `{"report": {…}, "sha256": "…", "signature": {…}}`; the digest is
//!   over the report object written compactly (a parsed report written again
//!   gives the same bytes, so it is checked by re-serializing).
//! - HTML: the document, then one last line
//!   `<!-- sentinel-report-signature {…} -->`; the digest is over every byte
//!   before that line.
//!
//! [`verify`] finds any change to either.

use sentinel_core::audit::checkpoint::{SigningKey, VerifyingKey};
use sentinel_core::audit::{hex, unhex};
use sentinel_core::{OrgId, Timestamp};
use sentinel_store::{FindingFilter, StoreError, TenantStore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Names the format, and tags the signature.
pub const FORMAT: &str = "sentinel-report/v1";
/// Marks the signature line of an HTML report.
const HTML_SIGNATURE: &str = "<!-- sentinel-report-signature ";
/// The most findings a KEV report lists.
const KEV_FINDINGS_MAX: i64 = 100_000;
/// How many advisories and packages a summary lists.
const SUMMARY_TOP: i64 = 100;

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    KevRemediation,
    VulnerabilitySummary,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::KevRemediation => "kev_remediation",
            ReportKind::VulnerabilitySummary => "vulnerability_summary",
        }
    }

    fn title(self) -> &'static str {
        match self {
            ReportKind::KevRemediation => "KEV remediation report",
            ReportKind::VulnerabilitySummary => "Vulnerability summary",
        }
    }
}

/// How a report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    Html,
    Json,
}

impl ReportFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            ReportFormat::Html => "text/html; charset=utf-8",
            ReportFormat::Json => "application/json",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Html => "html",
            ReportFormat::Json => "json",
        }
    }
}

/// The organization a report is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportOrg {
    pub id: OrgId,
    pub name: String,
}

/// The signature block of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    pub format: String,
    pub algorithm: String,
    /// The signing key's fingerprint.
    pub key_id: String,
    /// The signing key, hex (for reference: verify against a key you trust).
    pub public_key: String,
    /// Ed25519 over the digest, hex.
    pub value: String,
}

/// A JSON report file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonReport {
    report: serde_json::Value,
    sha256: String,
    signature: Signature,
}

/// An HTML report's signature line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HtmlTrailer {
    sha256: String,
    signature: Signature,
}

/// Makes the content of a report on the organization `store` belongs to.
pub async fn content(
    store: &TenantStore,
    org: ReportOrg,
    kind: ReportKind,
    feeds_generation: i64,
    now: Timestamp,
) -> Result<serde_json::Value, StoreError> {
    let today = now.to_offset_datetime().date();
    let body = match kind {
        ReportKind::KevRemediation => kev_body(store, today).await?,
        ReportKind::VulnerabilitySummary => summary_body(store).await?,
    };
    Ok(serde_json::json!({
        "format": FORMAT,
        "kind": kind.as_str(),
        "title": kind.title(),
        "organization": org,
        "generated_at": now.to_rfc3339(),
        "as_of": today.to_string(),
        "feed_generation": feeds_generation,
        "body": body,
    }))
}

async fn kev_body(store: &TenantStore, today: time::Date) -> Result<serde_json::Value, StoreError> {
    let filter = FindingFilter {
        kev: Some(true),
        ..FindingFilter::default()
    };
    let mut findings = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = store.findings(&filter, after.as_ref(), 5_000).await?;
        findings.extend(page);
        match next {
            Some(next) if (findings.len() as i64) < KEV_FINDINGS_MAX => after = Some(next),
            _ => break,
        }
    }
    let mut by_advisory: std::collections::BTreeMap<String, Vec<&sentinel_store::Finding>> =
        std::collections::BTreeMap::new();
    for finding in &findings {
        by_advisory
            .entry(finding.advisory_id.clone())
            .or_default()
            .push(finding);
    }
    let mut devices_affected = std::collections::HashSet::new();
    let mut overdue_count = 0;
    let mut vulnerabilities: Vec<serde_json::Value> = Vec::new();
    for (advisory_id, hits) in &by_advisory {
        let Some(first) = hits.first() else { continue };
        let due = first.kev_due_date.clone().unwrap_or_default();
        let days_overdue = days_overdue(&due, today);
        let overdue = days_overdue > 0;
        if overdue {
            overdue_count += 1;
        }
        let devices: Vec<serde_json::Value> = hits
            .iter()
            .map(|f| {
                devices_affected.insert(f.device_id);
                serde_json::json!({
                    "device_id": f.device_id,
                    "hostname": f.hostname,
                    "package": f.package,
                    "binaries": f.binaries,
                    "installed_version": f.installed_version,
                    "fixed_version": f.fixed_version,
                })
            })
            .collect();
        vulnerabilities.push(serde_json::json!({
            "advisory_id": advisory_id,
            "aliases": first.aliases,
            "severity": first.severity,
            "summary": first.summary,
            "kev_date_added": first.kev_date_added,
            "kev_due_date": due,
            "overdue": overdue,
            "days_overdue": days_overdue,
            "devices": devices,
        }));
    }
    // Overdue first, then by due date.
    vulnerabilities.sort_by(|a, b| {
        let key = |v: &serde_json::Value| {
            (
                !v["overdue"].as_bool().unwrap_or(false),
                v["kev_due_date"].as_str().unwrap_or_default().to_owned(),
                v["advisory_id"].as_str().unwrap_or_default().to_owned(),
            )
        };
        key(a).cmp(&key(b))
    });
    Ok(serde_json::json!({
        "totals": {
            "kev_advisories": by_advisory.len(),
            "overdue": overdue_count,
            "findings": findings.len(),
            "devices_affected": devices_affected.len(),
        },
        "vulnerabilities": vulnerabilities,
    }))
}

async fn summary_body(store: &TenantStore) -> Result<serde_json::Value, StoreError> {
    let all = FindingFilter::default();
    let totals = store.finding_totals().await?;
    let advisories = store.findings_by_advisory(&all, SUMMARY_TOP).await?;
    let packages = store.findings_by_package(&all, SUMMARY_TOP).await?;
    let by_severity: serde_json::Map<String, serde_json::Value> = sentinel_advisories::Level::ALL
        .iter()
        .map(|level| {
            let name = level.as_str();
            let count = totals.by_severity.get(name).copied().unwrap_or(0);
            (name.to_owned(), serde_json::json!(count))
        })
        .collect();
    Ok(serde_json::json!({
        "totals": {
            "findings": totals.by_severity.values().sum::<i64>(),
            "by_severity": by_severity,
            "kev_findings": totals.kev,
            "devices": totals.devices,
            "devices_affected": totals.devices_affected,
        },
        "top_advisories": advisories,
        "top_packages": packages,
    }))
}

/// Days past a KEV due date (`YYYY-MM-DD`) on `today`: 0 when not yet due or
/// when the date does not read.
pub fn days_overdue(due: &str, today: time::Date) -> i64 {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(due, format).map_or(0, |due| (today - due).whole_days().max(0))
}

fn sign(key: &SigningKey, digest: &str) -> Signature {
    let public = key.verifying_key();
    Signature {
        format: FORMAT.to_owned(),
        algorithm: "ed25519".to_owned(),
        key_id: public.key_id(),
        public_key: public.to_hex(),
        value: hex(&key.sign_tagged(FORMAT.as_bytes(), digest.as_bytes())),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Writes a report's content, signed, in `format`.
pub fn write(
    content: &serde_json::Value,
    format: ReportFormat,
    key: &SigningKey,
) -> Result<Vec<u8>, serde_json::Error> {
    match format {
        ReportFormat::Json => {
            let digest = sha256_hex(&serde_json::to_vec(content)?);
            let signature = sign(key, &digest);
            let mut out = serde_json::to_vec_pretty(&JsonReport {
                report: content.clone(),
                sha256: digest,
                signature,
            })?;
            out.push(b'\n');
            Ok(out)
        }
        ReportFormat::Html => {
            let mut out = html::render(content, &key.verifying_key().key_id()).into_bytes();
            let digest = sha256_hex(&out);
            let trailer = HtmlTrailer {
                signature: sign(key, &digest),
                sha256: digest,
            };
            out.extend_from_slice(HTML_SIGNATURE.as_bytes());
            out.extend_from_slice(serde_json::to_string(&trailer)?.as_bytes());
            out.extend_from_slice(b" -->\n");
            Ok(out)
        }
    }
}

/// A report that checks out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub format: ReportFormat,
    pub sha256: String,
    pub key_id: String,
}

/// Why a report does not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("not a Sentinel report: {0}")]
    Malformed(String),
    #[error("the content was changed: its SHA-256 is not the one signed")]
    Digest,
    #[error(
        "the signature does not verify with this key: the report was altered or another key signed it"
    )]
    Signature,
}

/// Checks a report file against `key`.
pub fn verify(bytes: &[u8], key: &VerifyingKey) -> Result<Verified, Invalid> {
    let text = std::str::from_utf8(bytes).map_err(|e| Invalid::Malformed(e.to_string()))?;
    let (format, body_digest, digest, signature) = if text.trim_start().starts_with('{') {
        let report: JsonReport =
            serde_json::from_str(text).map_err(|e| Invalid::Malformed(e.to_string()))?;
        let body =
            serde_json::to_vec(&report.report).map_err(|e| Invalid::Malformed(e.to_string()))?;
        (
            ReportFormat::Json,
            sha256_hex(&body),
            report.sha256,
            report.signature,
        )
    } else {
        let at = text
            .rfind(HTML_SIGNATURE)
            .ok_or_else(|| Invalid::Malformed("no signature line".into()))?;
        let (body, line) = text.split_at(at);
        let json = line
            .strip_prefix(HTML_SIGNATURE)
            .and_then(|rest| {
                rest.strip_suffix(" -->\n")
                    .or_else(|| rest.strip_suffix(" -->"))
            })
            .ok_or_else(|| Invalid::Malformed("the signature line is not the last line".into()))?;
        let trailer: HtmlTrailer =
            serde_json::from_str(json).map_err(|e| Invalid::Malformed(e.to_string()))?;
        (
            ReportFormat::Html,
            sha256_hex(body.as_bytes()),
            trailer.sha256,
            trailer.signature,
        )
    };
    if signature.format != FORMAT || signature.algorithm != "ed25519" {
        return Err(Invalid::Malformed(format!(
            "unknown signature format {:?} / {:?}",
            signature.format, signature.algorithm
        )));
    }
    if body_digest != digest {
        return Err(Invalid::Digest);
    }
    let value = unhex(&signature.value).ok_or(Invalid::Signature)?;
    if !key.verifies_tagged(FORMAT.as_bytes(), digest.as_bytes(), &value) {
        return Err(Invalid::Signature);
    }
    Ok(Verified {
        format,
        sha256: digest,
        key_id: key.key_id(),
    })
}

/// The HTML form of a report: a plain, printable document with no scripts.
mod html {
    use std::fmt::Write;

    use serde_json::Value;

    pub(super) fn escape(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                c => out.push(c),
            }
        }
        out
    }

    fn text(value: &Value) -> String {
        match value {
            Value::String(s) => escape(s),
            Value::Null => String::from("—"),
            Value::Array(items) => escape(
                &items
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            other => escape(&other.to_string()),
        }
    }

    fn table(out: &mut String, headings: &[&str], rows: &[Value], columns: &[&str]) {
        out.push_str("<table><thead><tr>");
        for heading in headings {
            let _ = write!(out, "<th>{}</th>", escape(heading));
        }
        out.push_str("</tr></thead><tbody>");
        for row in rows {
            out.push_str("<tr>");
            for column in columns {
                let _ = write!(out, "<td>{}</td>", text(&row[*column]));
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
    }

    pub(super) fn render(content: &Value, key_id: &str) -> String {
        let title = format!(
            "{} — {}",
            content["title"].as_str().unwrap_or("Report"),
            content["organization"]["name"].as_str().unwrap_or("")
        );
        let mut out = String::new();
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
             <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}\
             th,td{{border:1px solid #999;padding:.25em .5em;text-align:left;vertical-align:top}}\
             .overdue{{color:#a00;font-weight:bold}}</style></head><body>",
            escape(&title)
        );
        let _ = write!(
            out,
            "<h1>{}</h1><p>Organization {} ({}). Generated {}; as of {}; feed generation {}.</p>",
            escape(&title),
            text(&content["organization"]["name"]),
            text(&content["organization"]["id"]),
            text(&content["generated_at"]),
            text(&content["as_of"]),
            text(&content["feed_generation"]),
        );
        let body = &content["body"];
        match content["kind"].as_str() {
            Some("kev_remediation") => {
                let totals = &body["totals"];
                let _ = write!(
                    out,
                    "<p>{} known exploited vulnerabilities on {} devices ({} findings); \
                     <span class=\"overdue\">{} past CISA's due date</span>.</p>",
                    text(&totals["kev_advisories"]),
                    text(&totals["devices_affected"]),
                    text(&totals["findings"]),
                    text(&totals["overdue"]),
                );
                for vulnerability in body["vulnerabilities"].as_array().into_iter().flatten() {
                    let overdue = vulnerability["overdue"].as_bool().unwrap_or(false);
                    let _ = write!(
                        out,
                        "<h2>{} <small>{}</small></h2><p>Severity {}. Added to KEV {}; due {}{}.</p><p>{}</p>",
                        text(&vulnerability["advisory_id"]),
                        text(&vulnerability["aliases"]),
                        text(&vulnerability["severity"]),
                        text(&vulnerability["kev_date_added"]),
                        text(&vulnerability["kev_due_date"]),
                        if overdue {
                            format!(
                                " — <span class=\"overdue\">overdue by {} days</span>",
                                text(&vulnerability["days_overdue"])
                            )
                        } else {
                            String::new()
                        },
                        text(&vulnerability["summary"]),
                    );
                    let devices = vulnerability["devices"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    table(
                        &mut out,
                        &["Device", "Package", "Installed", "Fixed in"],
                        &devices,
                        &["hostname", "package", "installed_version", "fixed_version"],
                    );
                }
            }
            _ => {
                let totals = &body["totals"];
                let _ = write!(
                    out,
                    "<p>{} findings on {} of {} devices; {} in the KEV catalog.</p>",
                    text(&totals["findings"]),
                    text(&totals["devices_affected"]),
                    text(&totals["devices"]),
                    text(&totals["kev_findings"]),
                );
                let severities: Vec<Value> = sentinel_advisories::Level::ALL
                    .iter()
                    .map(|level| {
                        let name = level.as_str();
                        serde_json::json!({"severity": name, "findings": totals["by_severity"][name]})
                    })
                    .collect();
                table(
                    &mut out,
                    &["Severity", "Findings"],
                    &severities,
                    &["severity", "findings"],
                );
                out.push_str("<h2>Advisories affecting the most devices</h2>");
                let advisories = body["top_advisories"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                table(
                    &mut out,
                    &[
                        "Advisory", "Aliases", "Severity", "KEV due", "Devices", "Package",
                    ],
                    &advisories,
                    &[
                        "advisory_id",
                        "aliases",
                        "severity",
                        "kev_due_date",
                        "devices",
                        "package",
                    ],
                );
                out.push_str("<h2>Packages</h2>");
                let packages = body["top_packages"].as_array().cloned().unwrap_or_default();
                table(
                    &mut out,
                    &[
                        "Package",
                        "Severity",
                        "Advisories",
                        "Devices",
                        "KEV advisories",
                    ],
                    &packages,
                    &[
                        "package",
                        "severity",
                        "advisories",
                        "devices",
                        "kev_advisories",
                    ],
                );
            }
        }
        let _ = writeln!(
            out,
            "<footer><p>Signed by Sentinel's platform key {}. Check this file with \
             <code>sentinel report verify FILE</code>.</p></footer></body></html>",
            escape(key_id)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_seed(&[seed; 32]).unwrap()
    }

    fn content() -> serde_json::Value {
        serde_json::json!({
            "format": FORMAT, "kind": "kev_remediation", "title": "KEV remediation report",
            "organization": {"id": OrgId::random(), "name": "Acme <script>"},
            "generated_at": "2026-11-26T00:00:00Z", "as_of": "2026-11-26", "feed_generation": 3,
            "body": {"totals": {"kev_advisories": 1, "overdue": 1, "findings": 1, "devices_affected": 1},
              "vulnerabilities": [{"advisory_id": "DEBIAN-CVE-2024-3094", "aliases": ["CVE-2024-3094"],
                "severity": "critical", "summary": "xz", "kev_date_added": "2024-04-01", "kev_due_date": "2024-04-22",
                "overdue": true, "days_overdue": 950, "devices": [{"hostname": "web-1", "package": "xz-utils",
                "installed_version": "5.6.0-0.2", "fixed_version": "5.6.1+really5.4.5-1"}]}]}
        })
    }

    #[test]
    fn both_formats_verify_and_any_change_is_found() {
        let key = key(1);
        for format in [ReportFormat::Json, ReportFormat::Html] {
            let written = write(&content(), format, &key).unwrap();
            let verified = verify(&written, &key.verifying_key()).unwrap();
            assert_eq!(verified.format, format);

            let text = String::from_utf8(written.clone()).unwrap();
            if format == ReportFormat::Html {
                assert!(!text.contains("<script>"), "hostile names are escaped");
                assert!(text.contains("Acme &lt;script&gt;"));
            }
            let tampered = text.replacen("web-1", "web-2", 1);
            assert_ne!(tampered, text);
            assert!(verify(tampered.as_bytes(), &key.verifying_key()).is_err());
            let appended = format!("{text}<p>injected</p>\n");
            assert!(verify(appended.as_bytes(), &key.verifying_key()).is_err());
            assert_eq!(
                verify(&written, &self::key(2).verifying_key()),
                Err(Invalid::Signature)
            );
        }
    }

    #[test]
    fn a_recomputed_digest_without_the_key_is_refused() {
        let key = key(1);
        let written = write(&content(), ReportFormat::Json, &key).unwrap();
        let mut report: JsonReport = serde_json::from_slice(&written).unwrap();
        report.report["body"]["totals"]["overdue"] = serde_json::json!(0);
        report.sha256 = sha256_hex(&serde_json::to_vec(&report.report).unwrap());
        let forged = serde_json::to_vec(&report).unwrap();
        assert_eq!(
            verify(&forged, &key.verifying_key()),
            Err(Invalid::Signature)
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let key = key(1).verifying_key();
        for bytes in [
            &b""[..],
            b"{}",
            b"<html></html>",
            b"\xff\xfe",
            b"{\"report\": 1}",
        ] {
            assert!(matches!(verify(bytes, &key), Err(Invalid::Malformed(_))));
        }
    }
}
