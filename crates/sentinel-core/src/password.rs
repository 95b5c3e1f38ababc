//! Passwords: the policy a new password must meet, and Argon2id hashing.
//!
//! Policy: 12 to 128 characters, and not weak by the zxcvbn strength estimator
//! (score 3 of 4 or better), which also penalizes passwords built from the user's
//! own e-mail address or name. Hashes: Argon2id with the OWASP parameters
//! (19 MiB, 2 passes, 1 lane), stored as PHC strings so that parameters can change.

use std::fmt;

use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::secret::{RandomnessError, SecretString, random_bytes};
use crate::validation::ValidationError;

/// A password that met the [`PasswordPolicy`]; the only input to [`PasswordHash::new`].
#[derive(Debug, Clone)]
pub struct Password(SecretString);

impl Password {
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// The rules a new password must meet.
#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    pub min_chars: usize,
    pub max_chars: usize,
    /// The lowest acceptable zxcvbn score (0–4).
    pub min_score: u8,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_chars: 12,
            max_chars: 128,
            min_score: 3,
        }
    }
}

impl PasswordPolicy {
    /// Checks a candidate. `context` holds what the password must not be built from:
    /// the user's e-mail address, name, and the like.
    pub fn check(&self, candidate: &str, context: &[&str]) -> Result<Password, ValidationError> {
        const FIELD: &str = "password";
        let chars = candidate.chars().count();
        if chars < self.min_chars {
            return Err(ValidationError::new(
                FIELD,
                format!("must be at least {} characters", self.min_chars),
            ));
        }
        if chars > self.max_chars {
            return Err(ValidationError::new(
                FIELD,
                format!("must be at most {} characters", self.max_chars),
            ));
        }
        let mut inputs: Vec<&str> = context.to_vec();
        for part in context {
            inputs.extend(
                part.split(|c: char| !c.is_alphanumeric())
                    .filter(|w| w.len() >= 3),
            );
        }
        let estimate = zxcvbn::zxcvbn(candidate, &inputs);
        if u8::from(estimate.score()) < self.min_score {
            let hint = estimate
                .feedback()
                .and_then(|f| f.warning())
                .map(|w| format!(" ({w})"))
                .unwrap_or_default();
            return Err(ValidationError::new(
                FIELD,
                format!("is too easy to guess{hint}; use a longer passphrase of unrelated words"),
            ));
        }
        Ok(Password(SecretString::new(candidate)))
    }
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error(transparent)]
    Randomness(#[from] RandomnessError),
    #[error("password hashing failed")]
    Argon2,
}

/// An Argon2id hash in PHC string form (`$argon2id$v=19$m=19456,t=2,p=1$…`).
#[derive(Clone, PartialEq, Eq, sqlx::Type)]
#[sqlx(transparent)]
pub struct PasswordHash(String);

/// Verifying against this costs as much as a real verification and never succeeds:
/// it is what a login for an unknown e-mail address checks, so that the response
/// time does not reveal whether the account exists.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2VudGluZWwtZHVtbXk$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn argon2() -> Argon2<'static> {
    let params = Params::new(Params::DEFAULT_M_COST, Params::DEFAULT_T_COST, 1, None)
        .unwrap_or(Params::DEFAULT);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl PasswordHash {
    pub fn new(password: &Password) -> Result<Self, HashError> {
        let salt = SaltString::encode_b64(&random_bytes::<16>()?).map_err(|_| HashError::Argon2)?;
        let hash = argon2()
            .hash_password(password.expose().as_bytes(), &salt)
            .map_err(|_| HashError::Argon2)?;
        Ok(Self(hash.to_string()))
    }

    /// True if `candidate` is the password. Malformed stored hashes never verify.
    pub fn verify(&self, candidate: &str) -> bool {
        match argon2::password_hash::PasswordHash::new(&self.0) {
            Ok(parsed) => argon2()
                .verify_password(candidate.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    }

    /// Spends the time of one verification and fails; see [`DUMMY_HASH`].
    pub fn verify_dummy(candidate: &str) -> bool {
        Self(DUMMY_HASH.to_owned()).verify(candidate)
    }

    pub fn as_phc(&self) -> &str {
        &self.0
    }

    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "correct horse battery staple orbit";

    #[test]
    fn length_bounds_are_enforced() {
        let policy = PasswordPolicy::default();
        assert_eq!(
            policy.check("Xk9#mQ2$vL7", &[]).unwrap_err().field,
            "password"
        );
        assert!(policy.check(&"Xk9#mQ2$vL7!".repeat(11), &[]).is_err());
        assert!(policy.check(GOOD, &[]).is_ok());
    }

    #[test]
    fn weak_passwords_are_refused_even_when_long() {
        let policy = PasswordPolicy::default();
        for weak in [
            "password1234",
            "aaaaaaaaaaaaaaaa",
            "123456789012",
            "qwertyuiopasdf",
        ] {
            assert!(policy.check(weak, &[]).is_err(), "accepted {weak}");
        }
    }

    #[test]
    fn passwords_built_from_the_users_identity_are_refused() {
        let policy = PasswordPolicy::default();
        let candidate = "Quaxwortel2026!";
        assert!(policy.check(candidate, &[]).is_ok());
        let refused = policy.check(
            candidate,
            &["zbigniew@quaxwortel.example", "Zbigniew Quaxwortel"],
        );
        assert!(refused.is_err());
    }

    #[test]
    fn hashes_verify_only_the_right_password_and_are_salted() {
        let password = PasswordPolicy::default().check(GOOD, &[]).unwrap();
        let a = PasswordHash::new(&password).unwrap();
        let b = PasswordHash::new(&password).unwrap();
        assert!(a.as_phc().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_ne!(a, b, "two hashes of one password must differ by salt");
        assert!(a.verify(GOOD));
        assert!(!a.verify("correct horse battery staple orbiT"));
        assert!(!PasswordHash::from_trusted("garbage".into()).verify(GOOD));
        assert!(!format!("{a:?}").contains("argon2"));
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_costs() {
        // Unknown e-mail addresses must take as long as wrong passwords: same
        // algorithm, version and parameters.
        let real = PasswordHash::new(&PasswordPolicy::default().check(GOOD, &[]).unwrap()).unwrap();
        let params = |phc: &str| phc.split('$').take(4).collect::<Vec<_>>().join("$");
        assert_eq!(params(DUMMY_HASH), params(real.as_phc()));
        assert!(argon2::password_hash::PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[test]
    fn dummy_verification_never_succeeds() {
        assert!(!PasswordHash::verify_dummy(GOOD));
        assert!(!PasswordHash::verify_dummy(""));
    }
}
