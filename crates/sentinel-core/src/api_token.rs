//! API tokens as text: `snt_`, a 256-bit secret (43 base64url characters)
//! and an 8-hex-digit checksum. The prefix lets secret scanners recognize a
//! leaked token (`snt_[A-Za-z0-9_-]{43}[0-9a-f]{8}`), the checksum lets them —
//! and Sentinel — tell a real token from a typo without a lookup. Only the
//! SHA-256 of the secret is stored.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::secret::{BearerSecret, RandomnessError, SecretHash};

/// What every API token starts with.
pub const PREFIX: &str = "snt_";

/// The longest life a token may be given.
pub const MAX_LIFETIME_DAYS: u32 = 365;

/// A token's lifetime of `days`, which must be 1 to [`MAX_LIFETIME_DAYS`].
pub fn lifetime(days: u32) -> Option<Duration> {
    (1..=MAX_LIFETIME_DAYS)
        .contains(&days)
        .then(|| Duration::from_secs(u64::from(days) * 86_400))
}

const CHECKSUM_LEN: usize = 8;

/// The secret of an API token. `Debug` redacts it.
#[derive(Debug, Clone)]
pub struct ApiTokenSecret(BearerSecret);

impl ApiTokenSecret {
    pub fn generate() -> Result<ApiTokenSecret, RandomnessError> {
        BearerSecret::generate().map(ApiTokenSecret)
    }

    /// Accepts only text with the prefix, the shape and a matching checksum.
    pub fn parse(text: &str) -> Option<ApiTokenSecret> {
        let rest = text.strip_prefix(PREFIX)?;
        if rest.len() != BearerSecret::TEXT_LEN + CHECKSUM_LEN || !rest.is_ascii() {
            return None;
        }
        let (body, check) = rest.split_at(BearerSecret::TEXT_LEN);
        let secret = BearerSecret::parse(body)?;
        crate::secret::constant_time_eq(check, &checksum(body)).then_some(ApiTokenSecret(secret))
    }

    /// The token as handed to its owner, once.
    pub fn text(&self) -> String {
        let body = self.0.expose();
        format!("{PREFIX}{body}{}", checksum(body))
    }

    /// What the store keeps.
    pub fn hash(&self) -> SecretHash {
        self.0.hash()
    }
}

fn checksum(body: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"sentinel-api-token\0")
        .chain_update(body.as_bytes())
        .finalize();
    digest[..CHECKSUM_LEN / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_has_the_scannable_shape() {
        let secret = ApiTokenSecret::generate().unwrap();
        let text = secret.text();
        assert!(text.starts_with("snt_"));
        assert_eq!(text.len(), 4 + 43 + 8);
        assert!(
            text[47..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        let parsed = ApiTokenSecret::parse(&text).unwrap();
        assert_eq!(parsed.hash(), secret.hash());
        assert!(!format!("{secret:?}").contains(&text[4..47]));
    }

    #[test]
    fn typos_forgeries_and_other_shapes_are_refused() {
        let text = ApiTokenSecret::generate().unwrap().text();
        // One changed character anywhere in the body or checksum.
        for i in 4..text.len() {
            let mut bytes = text.clone().into_bytes();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(bytes).unwrap();
            assert!(ApiTokenSecret::parse(&typo).is_none(), "{i}");
        }
        for bad in [
            "",
            "snt_",
            &text[4..],
            &format!("sdt_{}", &text[4..]),
            &format!("{text}0"),
            &text[..text.len() - 1],
            &text.to_uppercase(),
            &format!("snt_{}é{}", &text[4..46], &text[47..]),
        ] {
            assert!(ApiTokenSecret::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn lifetimes_are_one_day_to_one_year() {
        assert_eq!(lifetime(0), None);
        assert_eq!(lifetime(1), Some(Duration::from_secs(86_400)));
        assert_eq!(lifetime(365), Some(Duration::from_secs(365 * 86_400)));
        assert_eq!(lifetime(366), None);
    }
}
