//! Chain-of-custody evidence for one device (a stolen-device case): its
//! telemetry chain written to a file that anyone holding the server's public
//! audit key can check, with `sentinel evidence verify`, to be complete, in
//! order, unaltered, and exported by this server.
//!
//! The file is NDJSON: a header (the device, how many links, the head hash),
//! one line per link, then the audit key's signature over the header line.
//! The links chain from a genesis bound to the device id, so the signed head
//! hash vouches for every link before it.

use std::io::{BufRead, Write};

use sentinel_core::audit::checkpoint::{SigningKey, VerifyingKey};
use sentinel_core::audit::{hex, unhex};
use sentinel_core::custody::{genesis, link_hash};
use sentinel_core::{OrgId, Timestamp};
use sentinel_store::{StoreError, Stores};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Names the format, and tags the signature.
pub const FORMAT: &str = "sentinel-evidence/v1";
const PAGE: i64 = 5_000;

/// The first line of an evidence file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: String,
    pub org_id: OrgId,
    pub device_id: Uuid,
    pub hostname: String,
    /// The device's record (facts, tags, enrollment, revocation) at export.
    pub device: serde_json::Value,
    pub exported_at: Timestamp,
    pub links: u64,
    /// The hash of the last link (the genesis hash when there are none), hex.
    pub head_hash: String,
    /// Which audit key signs this file.
    pub key_id: String,
}

/// One link of the telemetry chain, exactly as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub seq: i64,
    pub sampled_at: Timestamp,
    pub received_at: Timestamp,
    /// The sample's JSON text, as hashed.
    pub sample: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The last line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    pub signature: String,
}

/// Why an evidence file does not hold.
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    #[error("line {0}: {1}")]
    Malformed(usize, String),
    #[error("link {0}: {1}")]
    Broken(i64, &'static str),
    #[error("{0}")]
    Header(&'static str),
    #[error(
        "the signature does not verify with this key: the header was altered or another key signed it"
    )]
    Signature,
}

/// Writes `device`'s evidence file; returns how many links it holds.
pub async fn export(
    stores: &Stores,
    key: &SigningKey,
    org: OrgId,
    device: Uuid,
    now: Timestamp,
    out: &mut impl Write,
) -> Result<u64, ExportError> {
    let record = stores.device_for_evidence(org, device).await?;
    // The links are read up to a head fixed first, so the header and the
    // lines agree even while the device keeps reporting.
    let mut links = Vec::new();
    let mut after = 0;
    loop {
        let page = stores
            .telemetry_for_evidence(org, device, after, PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        links.extend(page.into_iter().map(|r| Link {
            seq: r.seq,
            sampled_at: r.sampled_at,
            received_at: r.received_at,
            sample: r.sample_text,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }));
    }
    let head_hash = links
        .last()
        .map_or_else(|| hex(&genesis(device)), |l| l.hash.clone());
    let header = Header {
        format: FORMAT.into(),
        org_id: org,
        device_id: device,
        hostname: record.hostname.clone(),
        device: serde_json::to_value(&record)?,
        exported_at: now,
        links: links.len() as u64,
        head_hash,
        key_id: key.verifying_key().key_id(),
    };
    let header_line = serde_json::to_string(&header)?;
    writeln!(out, "{header_line}")?;
    for link in &links {
        writeln!(out, "{}", serde_json::to_string(link)?)?;
    }
    let signature = Signature {
        signature: hex(&key.sign_tagged(FORMAT.as_bytes(), header_line.as_bytes())),
    };
    writeln!(out, "{}", serde_json::to_string(&signature)?)?;
    out.flush()?;
    Ok(header.links)
}

/// Checks an evidence file against `key`; returns its header when it holds.
pub fn verify(input: impl BufRead, key: &VerifyingKey) -> Result<Header, Invalid> {
    let lines: Vec<String> = input
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|e| Invalid::Malformed(0, e.to_string()))?;
    let (Some(header_line), Some(signature_line)) = (lines.first(), lines.last()) else {
        return Err(Invalid::Header("the file is empty"));
    };
    if lines.len() < 2 {
        return Err(Invalid::Header("the signature line is missing"));
    }
    let header: Header =
        serde_json::from_str(header_line).map_err(|e| Invalid::Malformed(1, e.to_string()))?;
    if header.format != FORMAT {
        return Err(Invalid::Header("not a sentinel-evidence/v1 file"));
    }
    let signature: Signature = serde_json::from_str(signature_line)
        .map_err(|e| Invalid::Malformed(lines.len(), e.to_string()))?;
    let signature = unhex(&signature.signature).ok_or(Invalid::Signature)?;
    if !key.verifies_tagged(FORMAT.as_bytes(), header_line.as_bytes(), &signature) {
        return Err(Invalid::Signature);
    }
    let mut prev = genesis(header.device_id).to_vec();
    let mut count = 0u64;
    for (i, line) in lines[1..lines.len() - 1].iter().enumerate() {
        let link: Link =
            serde_json::from_str(line).map_err(|e| Invalid::Malformed(i + 2, e.to_string()))?;
        let expected_seq = count as i64 + 1;
        if link.seq != expected_seq {
            return Err(Invalid::Broken(
                expected_seq,
                "missing, out of order or duplicated",
            ));
        }
        if unhex(&link.prev_hash).as_deref() != Some(prev.as_slice()) {
            return Err(Invalid::Broken(
                link.seq,
                "does not follow the link before it",
            ));
        }
        let hash = link_hash(
            &prev,
            link.seq,
            link.sampled_at,
            link.received_at,
            &link.sample,
        );
        if unhex(&link.hash).as_deref() != Some(hash.as_slice()) {
            return Err(Invalid::Broken(
                link.seq,
                "its content does not match its hash (altered)",
            ));
        }
        prev = hash.to_vec();
        count += 1;
    }
    if count != header.links {
        return Err(Invalid::Header(
            "the file holds a different number of links than its header says (truncated?)",
        ));
    }
    if hex(&prev) != header.head_hash {
        return Err(Invalid::Header(
            "the last link is not the signed head (truncated or replaced?)",
        ));
    }
    Ok(header)
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("writing the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("encoding: {0}")]
    Json(#[from] serde_json::Error),
}
