//! Sentinel's domain vocabulary, free of I/O: identifiers, the injected clock,
//! secrets and bearer tokens, e-mail addresses, passwords, organizations, and the
//! one table that maps tenant roles to permissions, TOTP and the two-factor rules,
//! and the audit trail's entries, hash chain and signed checkpoints.
//!
//! Everything here is pure and unit-tested; the stores and the HTTP layer build on
//! these types so that a value that exists has already been validated.

pub mod account;
pub mod api_token;
pub mod audit;
pub mod clock;
pub mod custody;
pub mod email;
pub mod id;
pub mod lockout;
pub mod names;
pub mod password;
pub mod role;
pub mod sealing;
pub mod secret;
pub mod totp;
pub mod two_factor;
pub mod validation;

pub use account::NewAccount;
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use email::Email;
pub use id::{OrgId, SessionId, UserId};
pub use names::{DisplayName, OrgName, Slug};
pub use password::{Password, PasswordHash, PasswordPolicy};
pub use role::{Permission, TenantRole};
pub use secret::{BearerSecret, SecretHash, SecretString};
pub use totp::TotpSecret;
pub use two_factor::{RecoveryCode, TwoFactorPolicy};
pub use validation::ValidationError;
