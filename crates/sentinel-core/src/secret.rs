//! Secrets in memory and at rest.
//!
//! [`SecretString`] keeps passwords and URLs with credentials out of `Debug` output
//! and logs. [`BearerSecret`] is the 256-bit random value behind every bearer
//! credential (session cookie, setup token, and later API, enrollment and device
//! tokens): it is shown to its holder once and stored only as a [`SecretHash`].

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Postgres, Sqlite, Type};
use subtle::ConstantTimeEq;

/// The operating system could not provide randomness; nothing secret can be made.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomnessError;

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomnessError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|_| RandomnessError)?;
    Ok(bytes)
}

/// A string that must never be printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for the one place that needs it (hashing, connecting).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

/// A freshly generated 256-bit bearer secret, in its text form (43 characters of
/// unpadded base64url). Only its [`SecretHash`] is ever stored.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerSecret(String);

impl BearerSecret {
    /// Length of the text form of a 256-bit secret.
    pub const TEXT_LEN: usize = 43;

    pub fn generate() -> Result<Self, RandomnessError> {
        Ok(Self(URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)))
    }

    /// Accepts text that has the shape of a bearer secret. Anything else (wrong
    /// length, other alphabet) is refused before it reaches a database lookup.
    pub fn parse(s: &str) -> Option<Self> {
        let well_formed = s.len() == Self::TEXT_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| Self(s.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> SecretHash {
        SecretHash::of(self.0.as_bytes())
    }

    /// A value derived from this secret for another purpose (e.g. a session's CSRF
    /// token), which reveals nothing about the secret itself.
    pub fn derive(&self, purpose: &str) -> String {
        let mut h = Sha256::new();
        h.update(b"sentinel-derive\0");
        h.update(purpose.as_bytes());
        h.update(b"\0");
        h.update(self.0.as_bytes());
        URL_SAFE_NO_PAD.encode(h.finalize())
    }
}

impl fmt::Debug for BearerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerSecret([redacted])")
    }
}

/// SHA-256 of a secret: what the database keeps instead of the secret. A 256-bit
/// random secret needs no salt or slow hash; a lookup by hash is safe.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn from_slice(bytes: &[u8]) -> Result<Self, BoxDynError> {
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "secret hash is not 32 bytes")?;
        Ok(Self(array))
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

/// Constant-time equality of two strings (for CSRF tokens and the like).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

impl Type<Sqlite> for SecretHash {
    fn type_info() -> <Sqlite as Database>::TypeInfo {
        <Vec<u8> as Type<Sqlite>>::type_info()
    }
}

impl Encode<'_, Sqlite> for SecretHash {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <Vec<u8> as Encode<Sqlite>>::encode(self.0.to_vec(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for SecretHash {
    fn decode(value: <Sqlite as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        Self::from_slice(<&[u8] as Decode<Sqlite>>::decode(value)?)
    }
}

impl Type<Postgres> for SecretHash {
    fn type_info() -> <Postgres as Database>::TypeInfo {
        <Vec<u8> as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for SecretHash {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <&[u8] as Encode<Postgres>>::encode(&self.0[..], buf)
    }
}

impl<'r> Decode<'r, Postgres> for SecretHash {
    fn decode(value: <Postgres as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        Self::from_slice(<&[u8] as Decode<Postgres>>::decode(value)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_or_display() {
        let s = SecretString::new("hunter2hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        let b = BearerSecret::generate().unwrap();
        assert!(!format!("{b:?}").contains(b.expose()));
    }

    #[test]
    fn bearer_secrets_are_256_bit_and_distinct() {
        let a = BearerSecret::generate().unwrap();
        let b = BearerSecret::generate().unwrap();
        assert_eq!(a.expose().len(), BearerSecret::TEXT_LEN);
        assert_ne!(a, b);
        assert_ne!(a.hash(), b.hash());
        assert_eq!(BearerSecret::parse(a.expose()).unwrap().hash(), a.hash());
    }

    #[test]
    fn malformed_bearer_text_is_refused() {
        assert!(BearerSecret::parse("").is_none());
        assert!(BearerSecret::parse("short").is_none());
        assert!(BearerSecret::parse(&"a".repeat(44)).is_none());
        assert!(BearerSecret::parse(&format!("{}=", "a".repeat(42))).is_none());
        assert!(BearerSecret::parse(&format!("{}'", "a".repeat(42))).is_none());
    }

    #[test]
    fn derived_values_depend_on_purpose_and_secret() {
        let a = BearerSecret::generate().unwrap();
        let b = BearerSecret::generate().unwrap();
        assert_eq!(a.derive("csrf"), a.derive("csrf"));
        assert_ne!(a.derive("csrf"), a.derive("other"));
        assert_ne!(a.derive("csrf"), b.derive("csrf"));
        assert!(!a.derive("csrf").contains(a.expose()));
    }

    #[test]
    fn constant_time_eq_compares_contents() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }
}
