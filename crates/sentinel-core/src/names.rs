//! Human-facing names: a person's display name, an organization's name, and the
//! URL-safe slug derived from it. All are trimmed, bounded, and free of control
//! characters, because they are rendered in pages and written to logs.

use std::fmt;

use serde::Serialize;

use crate::validation::{ValidationError, has_control_chars};

fn bounded_text(
    field: &'static str,
    input: &str,
    max_chars: usize,
) -> Result<String, ValidationError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(ValidationError::new(field, "is required"));
    }
    if text.chars().count() > max_chars {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if has_control_chars(text) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(text.to_owned())
}

macro_rules! text_newtype {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, Serialize, sqlx::Type)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn parse(input: &str) -> Result<Self, ValidationError> {
                bounded_text($field, input, $max).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Rebuilds a value read back from the store, where it was saved valid.
            pub fn from_trusted(stored: String) -> Self {
                Self(stored)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

text_newtype!(
    /// What a user is called in the UI and the audit trail.
    DisplayName, "name", 100
);
text_newtype!(
    /// An organization's name as its members see it.
    OrgName, "name", 100
);

/// An organization's URL-safe short name: lowercase ASCII letters, digits and single
/// hyphens, 2 to 63 characters, unique across the platform.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, sqlx::Type)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct Slug(String);

impl Slug {
    const FIELD: &'static str = "slug";
    pub const MAX_LEN: usize = 63;

    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let slug = input.trim();
        let valid_chars = slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if slug.len() < 2 || slug.len() > Self::MAX_LEN {
            return Err(ValidationError::new(
                Self::FIELD,
                "must be 2 to 63 characters",
            ));
        }
        if !valid_chars || slug.starts_with('-') || slug.ends_with('-') || slug.contains("--") {
            return Err(ValidationError::new(
                Self::FIELD,
                "may contain only lowercase letters, digits and single inner hyphens",
            ));
        }
        Ok(Self(slug.to_owned()))
    }

    /// A slug derived from a name: ASCII letters and digits kept (lowercased), runs of
    /// anything else become one hyphen. Names with too little ASCII get a generic base.
    pub fn from_name(name: &OrgName) -> Self {
        let mut slug = String::new();
        for c in name.as_str().chars() {
            if c.is_ascii_alphanumeric() {
                slug.push(c.to_ascii_lowercase());
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
            if slug.len() >= Self::MAX_LEN - 4 {
                break;
            }
        }
        let slug = slug.trim_end_matches('-');
        if slug.len() < 2 {
            Self(String::from("org"))
        } else {
            Self(slug.to_owned())
        }
    }

    /// The `n`th alternative when this slug is taken: `acme-2`, `acme-3`, …
    pub fn with_suffix(&self, n: u32) -> Self {
        let suffix = format!("-{n}");
        let keep = Self::MAX_LEN.saturating_sub(suffix.len()).min(self.0.len());
        let base = self.0.get(..keep).unwrap_or(&self.0).trim_end_matches('-');
        Self(format!("{base}{suffix}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Slug({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            DisplayName::parse("  Ada Lovelace ").unwrap().as_str(),
            "Ada Lovelace"
        );
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"x".repeat(101)).is_err());
        assert!(OrgName::parse(&"é".repeat(100)).is_ok());
    }

    #[test]
    fn names_refuse_control_characters() {
        assert!(DisplayName::parse("Ada\nINFO forged log line").is_err());
        assert!(OrgName::parse("Acme\u{0}").is_err());
        assert!(OrgName::parse("Acme\u{1b}[31m").is_err());
    }

    #[test]
    fn hostile_markup_is_kept_as_text_for_escaping_later() {
        let name = OrgName::parse("<script>alert(1)</script>").unwrap();
        assert_eq!(name.as_str(), "<script>alert(1)</script>");
        assert_eq!(Slug::from_name(&name).as_str(), "script-alert-1-script");
    }

    #[test]
    fn slugs_from_names() {
        let slug = |s: &str| Slug::from_name(&OrgName::parse(s).unwrap());
        assert_eq!(slug("Acme Schools, Inc.").as_str(), "acme-schools-inc");
        assert_eq!(slug("École Nº 5").as_str(), "cole-n-5");
        assert_eq!(slug("東京").as_str(), "org");
        assert!(slug(&"a".repeat(100)).as_str().len() <= Slug::MAX_LEN);
        assert!(Slug::parse(slug(&"word ".repeat(19)).as_str()).is_ok());
    }

    #[test]
    fn slug_suffixes_stay_valid() {
        let base = Slug::parse(&"a".repeat(63)).unwrap();
        let next = base.with_suffix(12);
        assert!(next.as_str().ends_with("-12"));
        assert!(Slug::parse(next.as_str()).is_ok());
        assert_eq!(
            Slug::parse("acme").unwrap().with_suffix(2).as_str(),
            "acme-2"
        );
    }

    #[test]
    fn slug_syntax() {
        for bad in [
            "", "a", "-acme", "acme-", "ac--me", "Acme", "ac me", "acme/..", "ä",
        ] {
            assert!(Slug::parse(bad).is_err(), "accepted {bad:?}");
        }
        assert!(Slug::parse("acme-2").is_ok());
    }
}
