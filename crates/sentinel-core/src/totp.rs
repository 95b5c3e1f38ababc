//! Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA-1, six digits,
//! a 30-second step, as every authenticator app computes them.
//!
//! [`TotpSecret`] is the 160-bit shared key (its `Debug` redacts it), written for
//! people and apps in RFC 4648 base32 without padding and in an `otpauth://` URI.
//! [`TotpSecret::verify`] accepts the code of the current step or of one step on
//! either side (clock drift) and says which step matched, so that the caller can
//! refuse a step it has already accepted (replay). The time always comes from the
//! injected clock.

use std::fmt;

use ring::hmac;

use crate::Timestamp;
use crate::secret::{RandomnessError, constant_time_eq, random_bytes};

/// Seconds per time step.
pub const STEP_SECONDS: i64 = 30;
/// Digits in a code.
pub const DIGITS: usize = 6;
/// Bytes in a secret (160 bits, the size RFC 4226 recommends for HMAC-SHA-1).
pub const SECRET_BYTES: usize = 20;
/// The issuer shown by authenticator apps.
pub const ISSUER: &str = "Sentinel";

/// The RFC 4648 base32 alphabet.
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A TOTP shared secret. Shown once, at enrolment; kept sealed at rest.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret([u8; SECRET_BYTES]);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

/// The time step that contains `t` (steps before 1970 count as step 0).
pub fn step_at(t: Timestamp) -> i64 {
    t.unix_seconds().div_euclid(STEP_SECONDS).max(0)
}

impl TotpSecret {
    /// A fresh random secret.
    pub fn generate() -> Result<Self, RandomnessError> {
        Ok(Self(random_bytes::<SECRET_BYTES>()?))
    }

    /// A secret from its stored bytes; `None` unless exactly 160 bits.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The raw key, for sealing.
    pub fn expose(&self) -> &[u8; SECRET_BYTES] {
        &self.0
    }

    /// The secret as people type it into an app: base32, no padding (32 characters).
    pub fn to_base32(&self) -> String {
        base32_encode(&self.0)
    }

    /// The code of time step `step`, zero-padded.
    pub fn code_at_step(&self, step: i64) -> String {
        let code = hotp(&self.0, step.max(0).unsigned_abs(), DIGITS as u32);
        format!("{code:0width$}", width = DIGITS)
    }

    /// The code at time `t`.
    pub fn code_at(&self, t: Timestamp) -> String {
        self.code_at_step(step_at(t))
    }

    /// The step whose code `code` is, among the step of `now` and its two
    /// neighbours; `None` if none (or if `code` is not six ASCII digits). Every
    /// candidate is compared, in constant time, whatever matched first.
    pub fn verify(&self, code: &str, now: Timestamp) -> Option<i64> {
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let current = step_at(now);
        let mut matched = None;
        for step in [current - 1, current, current + 1] {
            if step >= 0 && constant_time_eq(&self.code_at_step(step), code) && matched.is_none() {
                matched = Some(step);
            }
        }
        matched
    }

    /// The `otpauth://` URI an authenticator app reads from the QR code, with the
    /// account name and issuer percent-encoded.
    pub fn otpauth_uri(&self, account: &str) -> String {
        format!(
            "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            issuer = percent_encode(ISSUER),
            account = percent_encode(account),
            secret = self.to_base32(),
        )
    }
}

/// RFC 4226 HOTP: HMAC-SHA-1 of the big-endian counter, dynamically truncated to
/// `digits` decimal digits.
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac.last().copied().unwrap_or(0) & 0x0f);
    let word = mac
        .get(offset..offset + 4)
        .and_then(|w| <[u8; 4]>::try_from(w).ok())
        .map_or(0, u32::from_be_bytes);
    (word & 0x7fff_ffff) % 10u32.pow(digits)
}

/// RFC 4648 base32, upper case, without `=` padding.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes RFC 4648 base32 (case-insensitive, padding and spaces ignored);
/// `None` on any other character.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| !matches!(c, b'=' | b' ')) {
        let value = BASE32.iter().position(|&a| a == c.to_ascii_uppercase())?;
        buffer = (buffer << 5) | value as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    Some(out)
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_KEY: &[u8; 20] = b"12345678901234567890";

    #[test]
    fn rfc4226_hotp_vectors() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, code) in expected.into_iter().enumerate() {
            assert_eq!(hotp(RFC_KEY, counter as u64, 6), code, "counter {counter}");
        }
    }

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1 column (eight digits).
        for (seconds, code) in [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            let step = step_at(Timestamp::from_unix_seconds(seconds));
            assert_eq!(hotp(RFC_KEY, step as u64, 8), code, "T = {seconds}");
        }
        // The same secret through the six-digit API.
        let secret = TotpSecret::from_bytes(RFC_KEY).unwrap();
        assert_eq!(secret.code_at(Timestamp::from_unix_seconds(59)), "287082");
        assert_eq!(
            secret.code_at(Timestamp::from_unix_seconds(1111111109)),
            "081804"
        );
    }

    #[test]
    fn verification_accepts_one_step_either_side_and_names_it() {
        let secret = TotpSecret::generate().unwrap();
        let now = Timestamp::from_unix_seconds(1_800_000_015);
        let current = step_at(now);
        for step in [current - 1, current, current + 1] {
            assert_eq!(secret.verify(&secret.code_at_step(step), now), Some(step));
        }
        for step in [current - 2, current + 2, current - 100] {
            let code = secret.code_at_step(step);
            let near = [current - 1, current, current + 1]
                .iter()
                .any(|s| secret.code_at_step(*s) == code);
            if !near {
                assert_eq!(secret.verify(&code, now), None, "step {step}");
            }
        }
    }

    #[test]
    fn malformed_codes_are_refused_before_any_work() {
        let secret = TotpSecret::from_bytes(RFC_KEY).unwrap();
        let now = Timestamp::from_unix_seconds(59);
        assert_eq!(secret.verify("287082", now), Some(1));
        for bad in [
            "",
            "28708",
            "2870822",
            " 287082",
            "28708x",
            "２８７０８２",
            "-87082",
        ] {
            assert_eq!(secret.verify(bad, now), None, "{bad:?}");
        }
        let other = TotpSecret::from_bytes(&[7; 20]).unwrap();
        assert_eq!(other.verify("287082", now), None);
    }

    #[test]
    fn base32_round_trips_and_matches_rfc4648() {
        // RFC 4648 section 10, padding removed.
        for (plain, encoded) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(plain.as_bytes()), encoded);
            assert_eq!(base32_decode(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(base32_decode("mzxw6ytboi======").unwrap(), b"foobar");
        assert!(base32_decode("MZXW1").is_none());
        let secret = TotpSecret::generate().unwrap();
        assert_eq!(secret.to_base32().len(), 32);
        assert_eq!(
            base32_decode(&secret.to_base32()).unwrap(),
            secret.expose().to_vec()
        );
    }

    #[test]
    fn otpauth_uri_is_percent_encoded() {
        let secret = TotpSecret::from_bytes(RFC_KEY).unwrap();
        let uri = secret.otpauth_uri("ada+ops@example.org");
        assert_eq!(
            uri,
            "otpauth://totp/Sentinel:ada%2Bops%40example.org?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Sentinel&algorithm=SHA1&digits=6&period=30"
        );
        assert!(!secret.otpauth_uri("a b&c=d?e").contains(' '));
        assert!(
            secret
                .otpauth_uri("a b&c=d?e")
                .contains("Sentinel:a%20b%26c%3Dd%3Fe?")
        );
    }

    #[test]
    fn secrets_are_random_and_never_shown_in_debug() {
        let a = TotpSecret::generate().unwrap();
        let b = TotpSecret::generate().unwrap();
        assert_ne!(a, b);
        assert!(!format!("{a:?}").contains(&a.to_base32()));
        assert!(TotpSecret::from_bytes(&[0; 19]).is_none());
    }
}
