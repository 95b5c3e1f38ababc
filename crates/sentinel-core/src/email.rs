//! E-mail addresses as login names: validated, and normalized (trimmed, lowercased)
//! so that `Alice@Example.org` and `alice@example.org` are one account.

use std::fmt;

use serde::Serialize;

use crate::validation::ValidationError;

/// A normalized e-mail address. The only way to get one is [`Email::parse`].
#[derive(Clone, PartialEq, Eq, Hash, Serialize, sqlx::Type)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct Email(String);

const FIELD: &str = "email";

impl Email {
    /// Validates and normalizes. The rules are deliberately stricter than RFC 5322
    /// (no quoted local parts, no comments, no IP literals): an address is a login
    /// name here, and it is shown in pages and logs.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let address = input.trim().to_lowercase();
        if address.is_empty() {
            return Err(ValidationError::new(FIELD, "is required"));
        }
        if address.chars().count() > 254 {
            return Err(ValidationError::new(
                FIELD,
                "must be at most 254 characters",
            ));
        }
        let Some((local, domain)) = address.split_once('@') else {
            return Err(ValidationError::new(
                FIELD,
                "must look like name@example.org",
            ));
        };
        if !valid_local_part(local) {
            return Err(ValidationError::new(
                FIELD,
                "has an invalid part before the @",
            ));
        }
        if !valid_domain(domain) {
            return Err(ValidationError::new(
                FIELD,
                "has an invalid domain after the @",
            ));
        }
        Ok(Self(address))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds an address read back from the store, where it was saved normalized.
    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }
}

fn valid_local_part(local: &str) -> bool {
    const SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-";
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || SPECIALS.contains(c))
}

fn valid_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.chars().count() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_case_and_whitespace() {
        let e = Email::parse("  Alice.Smith+tag@Example.ORG ").unwrap();
        assert_eq!(e.as_str(), "alice.smith+tag@example.org");
        assert_eq!(e, Email::parse("alice.smith+TAG@example.org").unwrap());
    }

    #[test]
    fn accepts_internationalized_addresses() {
        assert!(Email::parse("jürgen@bücher.de").is_ok());
        assert!(Email::parse("admin@localhost").is_ok());
    }

    #[test]
    fn refuses_malformed_and_hostile_addresses() {
        for bad in [
            "",
            "   ",
            "no-at-sign",
            "@example.org",
            "alice@",
            "alice@@example.org",
            "a@b@example.org",
            ".alice@example.org",
            "alice.@example.org",
            "al..ice@example.org",
            "alice@exa..mple.org",
            "alice@-example.org",
            "alice@example.org.",
            "<script>alert(1)</script>@example.org",
            "alice@example.org\nBcc: victim@example.org",
            "alice smith@example.org",
            "\"quoted\"@example.org",
            "alice@[127.0.0.1]",
            "alice@exam_ple.org",
        ] {
            assert!(Email::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn refuses_overlong_addresses() {
        let long_local = format!("{}@example.org", "a".repeat(65));
        assert!(Email::parse(&long_local).is_err());
        let long_total = format!("a@{}.org", "b".repeat(60).repeat(5));
        assert!(Email::parse(&long_total).is_err());
    }
}
