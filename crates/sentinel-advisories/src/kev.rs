//! CISA's Known Exploited Vulnerabilities (KEV) catalog, read from its JSON
//! feed.
//!
//! A CVE in the catalog is being exploited in the wild, which is the strongest
//! reason to fix it first; US federal agencies must fix each entry by its
//! `dueDate`. The catalog is looked up by CVE id, and an entry can say whether
//! it is overdue on a given day. Dates are validated `YYYY-MM-DD` [`Date`]s;
//! `dateReleased` is a timestamp and kept as written.

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;

use crate::calendar::read_date;

/// The KEV catalog.
#[derive(Debug, Clone)]
pub struct KevCatalog {
    /// The catalog's title.
    pub title: String,
    /// Its version, such as `2024.05.14`.
    pub catalog_version: String,
    /// When it was released, as written (a timestamp).
    pub date_released: String,
    /// The number of entries the catalog states.
    pub count: u64,
    vulnerabilities: Vec<KevEntry>,
    by_cve: HashMap<String, usize>,
}

/// One known exploited vulnerability.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KevEntry {
    /// The CVE id (`cveID` in JSON).
    #[serde(rename = "cveID")]
    pub cve_id: String,
    /// The vendor or project.
    pub vendor_project: String,
    /// The product.
    pub product: String,
    /// A short name of the vulnerability.
    pub vulnerability_name: String,
    /// When CISA added it.
    pub date_added: Date,
    /// A short description.
    pub short_description: String,
    /// What CISA requires agencies to do.
    pub required_action: String,
    /// The deadline for `required_action`.
    pub due_date: Date,
    /// `Known` or `Unknown`: whether ransomware campaigns are known to use it.
    #[serde(default)]
    pub known_ransomware_campaign_use: String,
    /// Notes, usually links.
    #[serde(default)]
    pub notes: String,
    /// CWE ids.
    #[serde(default)]
    pub cwes: Vec<String>,
}

impl KevEntry {
    /// Whether the entry is overdue on `today`: its due date has passed. On
    /// the due date itself it is not yet overdue.
    pub fn is_overdue(&self, today: Date) -> bool {
        today > self.due_date
    }

    /// Whether ransomware campaigns are known to exploit it.
    pub fn used_by_ransomware(&self) -> bool {
        self.known_ransomware_campaign_use
            .eq_ignore_ascii_case("known")
    }
}

/// The catalog as it appears in JSON.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCatalog {
    title: String,
    catalog_version: String,
    date_released: String,
    count: u64,
    vulnerabilities: Vec<KevEntry>,
}

/// Why the catalog could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("KEV catalog is invalid: {0}")]
pub struct KevError(pub String);

impl KevCatalog {
    /// Parses the catalog JSON (a UTF-8 byte order mark is allowed).
    pub fn parse(input: &[u8]) -> Result<Self, KevError> {
        let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
        let raw: RawCatalog = serde_json::from_slice(input).map_err(|e| KevError(e.to_string()))?;
        let mut by_cve = HashMap::with_capacity(raw.vulnerabilities.len());
        for (index, entry) in raw.vulnerabilities.iter().enumerate() {
            // The first entry of a CVE wins, should the catalog repeat one.
            by_cve.entry(normalize(&entry.cve_id)).or_insert(index);
        }
        Ok(KevCatalog {
            title: raw.title,
            catalog_version: raw.catalog_version,
            date_released: raw.date_released,
            count: raw.count,
            vulnerabilities: raw.vulnerabilities,
            by_cve,
        })
    }

    /// The entries, in catalog order.
    pub fn vulnerabilities(&self) -> &[KevEntry] {
        &self.vulnerabilities
    }

    /// The entry of a CVE id (case and surrounding blanks do not matter).
    pub fn get(&self, cve_id: &str) -> Option<&KevEntry> {
        self.by_cve
            .get(&normalize(cve_id))
            .and_then(|&index| self.vulnerabilities.get(index))
    }

    /// Whether the CVE is known to be exploited.
    pub fn contains(&self, cve_id: &str) -> bool {
        self.get(cve_id).is_some()
    }
}

fn normalize(cve_id: &str) -> String {
    cve_id.trim().to_ascii_uppercase()
}

/// A calendar date, `YYYY-MM-DD`, checked to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

/// Why a string is not a `YYYY-MM-DD` date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a date of the form YYYY-MM-DD")]
pub struct InvalidDate(pub String);

impl Date {
    /// Parses `YYYY-MM-DD`, rejecting days that do not exist (`2023-02-29`).
    pub fn parse(input: &str) -> Result<Self, InvalidDate> {
        let invalid = || InvalidDate(input.to_owned());
        if input.len() != 10 {
            return Err(invalid());
        }
        let (year, month, day) = read_date(input.as_bytes()).ok_or_else(invalid)?;
        Ok(Date {
            year: u16::try_from(year).map_err(|_| invalid())?,
            month: u8::try_from(month).map_err(|_| invalid())?,
            day: u8::try_from(day).map_err(|_| invalid())?,
        })
    }

    /// The year.
    pub fn year(self) -> u16 {
        self.year
    }

    /// The month, 1–12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// The day of the month, from 1.
    pub fn day(self) -> u8 {
        self.day
    }
}

impl TryFrom<String> for Date {
    type Error = InvalidDate;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Date::parse(&text)
    }
}

impl std::str::FromStr for Date {
    type Err = InvalidDate;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Date::parse(text)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOG: &str = r#"{
        "title": "CISA Catalog of Known Exploited Vulnerabilities",
        "catalogVersion": "2024.07.10",
        "dateReleased": "2024-07-10T16:00:00.0000Z",
        "count": 2,
        "vulnerabilities": [
            {
                "cveID": "CVE-2024-6387",
                "vendorProject": "OpenBSD",
                "product": "OpenSSH",
                "vulnerabilityName": "OpenSSH Signal Handler Race Condition Vulnerability",
                "dateAdded": "2024-07-01",
                "shortDescription": "A race condition in sshd's SIGALRM handler.",
                "requiredAction": "Apply mitigations per vendor instructions.",
                "dueDate": "2024-07-22",
                "knownRansomwareCampaignUse": "Unknown",
                "notes": "https://www.openssh.com/txt/release-9.8",
                "cwes": ["CWE-364"],
                "someNewField": 1
            },
            {
                "cveID": "CVE-2021-44228",
                "vendorProject": "Apache",
                "product": "Log4j2",
                "vulnerabilityName": "Apache Log4j2 Remote Code Execution Vulnerability",
                "dateAdded": "2021-12-10",
                "shortDescription": "JNDI features do not protect against attacker-controlled LDAP.",
                "requiredAction": "Apply updates per vendor instructions.",
                "dueDate": "2021-12-24",
                "knownRansomwareCampaignUse": "Known",
                "notes": ""
            }
        ]
    }"#;

    fn date(s: &str) -> Date {
        Date::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn catalog() -> KevCatalog {
        KevCatalog::parse(CATALOG.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_catalog_is_parsed_and_looked_up_by_cve() {
        let catalog = catalog();
        assert_eq!(catalog.catalog_version, "2024.07.10");
        assert_eq!(catalog.date_released, "2024-07-10T16:00:00.0000Z");
        assert_eq!(catalog.count, 2);
        assert_eq!(catalog.vulnerabilities().len(), 2);
        let entry = catalog.get("CVE-2024-6387");
        assert_eq!(entry.map(|e| e.product.as_str()), Some("OpenSSH"));
        assert_eq!(entry.map(|e| e.due_date), Some(date("2024-07-22")));
        assert_eq!(
            entry.map(|e| e.cwes.clone()),
            Some(vec!["CWE-364".to_owned()])
        );
        assert!(catalog.contains(" cve-2021-44228 "));
        assert!(!catalog.contains("CVE-2021-4422"));
        let log4j = catalog.get("CVE-2021-44228");
        assert_eq!(log4j.map(KevEntry::used_by_ransomware), Some(true));
        assert_eq!(log4j.map(|e| e.cwes.len()), Some(0));
    }

    #[test]
    fn overdue_means_after_the_due_date() {
        let catalog = catalog();
        let Some(entry) = catalog.get("CVE-2024-6387") else {
            panic!("entry missing");
        };
        assert!(!entry.is_overdue(date("2024-07-01")));
        assert!(!entry.is_overdue(date("2024-07-22")));
        assert!(entry.is_overdue(date("2024-07-23")));
        assert!(entry.is_overdue(date("2025-01-01")));
        assert!(!entry.used_by_ransomware());
    }

    #[test]
    fn invalid_catalogs_are_errors() {
        let bad_date = CATALOG.replace("\"2024-07-22\"", "\"2024-07-32\"");
        let error = KevCatalog::parse(bad_date.as_bytes())
            .err()
            .map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("\"2024-07-32\" is not a date")),
            "{error:?}"
        );
        let missing = CATALOG.replace("\"dueDate\": \"2021-12-24\",", "");
        assert!(KevCatalog::parse(missing.as_bytes()).is_err());
        assert!(KevCatalog::parse(b"{}").is_err());
        assert!(KevCatalog::parse(b"").is_err());
    }

    #[test]
    fn dates_are_validated_and_ordered() {
        assert!(date("2024-02-29") > date("2024-02-28"));
        assert!(date("2024-01-01") > date("2023-12-31"));
        assert_eq!(date("2024-07-01").to_string(), "2024-07-01");
        assert_eq!(
            (
                date("2024-07-01").year(),
                date("2024-07-01").month(),
                date("2024-07-01").day()
            ),
            (2024, 7, 1)
        );
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-1-01",
            "2024-01-01T00:00:00Z",
            "",
            "24-01-01",
            "2024/01/01",
            "2024-01-1x",
        ] {
            assert!(Date::parse(bad).is_err(), "{bad}");
        }
        assert_eq!("2024-07-01".parse::<Date>(), Ok(date("2024-07-01")));
    }
}
