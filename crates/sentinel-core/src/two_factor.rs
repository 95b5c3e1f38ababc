//! The rules of two-factor authentication that are not the TOTP algorithm itself:
//! an organization's [`TwoFactorPolicy`] (who among its members must use it) and
//! the single-use [`RecoveryCode`]s that stand in for a lost authenticator.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::secret::{RandomnessError, SecretHash, random_bytes};
use crate::{TenantRole, UserId};

/// Which members of an organization must have two-factor authentication on
/// before they may use its routes.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TwoFactorPolicy {
    /// Nobody is required to (the default).
    #[default]
    None,
    /// Owners and admins.
    Admins,
    /// Every member.
    All,
}

impl TwoFactorPolicy {
    pub const ALL: [TwoFactorPolicy; 3] = [
        TwoFactorPolicy::None,
        TwoFactorPolicy::Admins,
        TwoFactorPolicy::All,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TwoFactorPolicy::None => "none",
            TwoFactorPolicy::Admins => "admins",
            TwoFactorPolicy::All => "all",
        }
    }

    /// Whether a member with `role` must have two-factor authentication on.
    pub fn requires(self, role: TenantRole) -> bool {
        match self {
            TwoFactorPolicy::None => false,
            TwoFactorPolicy::Admins => matches!(role, TenantRole::Owner | TenantRole::Admin),
            TwoFactorPolicy::All => true,
        }
    }
}

impl fmt::Display for TwoFactorPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TwoFactorPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        TwoFactorPolicy::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| String::from("must be none, admins or all"))
    }
}

/// Characters of a recovery code: Crockford's base32 (no i, l, o, u), so that
/// nothing on the printed sheet can be misread.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Characters per code: 12 × 5 = 60 random bits.
const CODE_CHARS: usize = 12;
/// Characters per group when shown (`xxxx-xxxx-xxxx`).
const GROUP: usize = 4;

/// A single-use recovery code. Shown to its owner once, stored only as a hash
/// bound to their user id. `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCode(String);

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode([redacted])")
    }
}

impl RecoveryCode {
    /// How many codes a user is given at a time.
    pub const SET_SIZE: usize = 10;

    /// A fresh random code.
    pub fn generate() -> Result<Self, RandomnessError> {
        let bits = u64::from_be_bytes(random_bytes::<8>()?);
        let code = (0..CODE_CHARS)
            .map(|i| char::from(ALPHABET[((bits >> (5 * i)) & 31) as usize]))
            .collect();
        Ok(Self(code))
    }

    /// A full set of fresh codes.
    pub fn generate_set() -> Result<Vec<Self>, RandomnessError> {
        (0..Self::SET_SIZE).map(|_| Self::generate()).collect()
    }

    /// Reads a code as a person types it: case, hyphens and spaces do not
    /// matter, and the letters o, i and l are read as 0, 1 and 1. `None` unless
    /// what remains is exactly a code.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() > 64 {
            return None;
        }
        let mut code = String::with_capacity(CODE_CHARS);
        for c in text.chars().filter(|c| !matches!(c, '-' | ' ')) {
            let c = match c.to_ascii_lowercase() {
                'o' => '0',
                'i' | 'l' => '1',
                other => other,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
                return None;
            }
            code.push(c);
        }
        (code.len() == CODE_CHARS).then_some(Self(code))
    }

    /// The code grouped for reading, e.g. `7k2m-q9xd-4hth`.
    pub fn display(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        chars
            .chunks(GROUP)
            .map(|g| g.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("-")
    }

    /// What the store keeps: a hash of the code bound to its owner, so that a
    /// code (or its hash) means nothing for another account. Sixty random bits
    /// need no slow hash: a guess costs a login attempt, not a hash.
    pub fn hash_for(&self, user: UserId) -> SecretHash {
        SecretHash::of(format!("sentinel-recovery-code\0{user}\0{}", self.0).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_require_the_roles_they_name() {
        use TenantRole::*;
        for role in TenantRole::ALL {
            assert!(!TwoFactorPolicy::None.requires(role));
            assert!(TwoFactorPolicy::All.requires(role));
        }
        assert!(TwoFactorPolicy::Admins.requires(Owner));
        assert!(TwoFactorPolicy::Admins.requires(Admin));
        assert!(!TwoFactorPolicy::Admins.requires(Analyst));
        assert!(!TwoFactorPolicy::Admins.requires(Readonly));
        for p in TwoFactorPolicy::ALL {
            assert_eq!(p.as_str().parse::<TwoFactorPolicy>().unwrap(), p);
        }
        assert!("ALL".parse::<TwoFactorPolicy>().is_err());
        assert_eq!(TwoFactorPolicy::default(), TwoFactorPolicy::None);
    }

    #[test]
    fn recovery_codes_are_60_bit_grouped_and_read_forgivingly() {
        let code = RecoveryCode::generate().unwrap();
        let shown = code.display();
        assert_eq!(shown.len(), 14, "{shown}");
        assert_eq!(shown.matches('-').count(), 2);
        assert_eq!(RecoveryCode::parse(&shown), Some(code.clone()));
        assert_eq!(
            RecoveryCode::parse(&shown.to_uppercase().replace('-', " ")),
            Some(code.clone())
        );
        assert_eq!(
            RecoveryCode::parse("0ab1-cdef-ghjk"),
            RecoveryCode::parse("OAB1-CDEF-GHJK")
        );
        assert_eq!(
            RecoveryCode::parse("1abc-defg-hjkm"),
            RecoveryCode::parse("labc-defg-hjkm")
        );
        for bad in [
            "",
            "123456",
            "abcd-efgh-jkm",
            "abcd-efgh-jkmnp",
            "abcd-efgh-jkmu",
            "ä",
        ] {
            assert!(RecoveryCode::parse(bad).is_none(), "{bad:?}");
        }
        assert!(RecoveryCode::parse(&"a".repeat(10_000)).is_none());
        let set = RecoveryCode::generate_set().unwrap();
        assert_eq!(set.len(), 10);
        let distinct: std::collections::HashSet<_> = set.iter().map(|c| c.display()).collect();
        assert_eq!(distinct.len(), 10);
        assert!(!format!("{code:?}").contains(&code.0));
    }

    #[test]
    fn recovery_code_hashes_are_bound_to_their_owner() {
        let code = RecoveryCode::generate().unwrap();
        let (a, b) = (UserId::random(), UserId::random());
        assert_eq!(code.hash_for(a), code.hash_for(a));
        assert_ne!(code.hash_for(a), code.hash_for(b));
    }
}
