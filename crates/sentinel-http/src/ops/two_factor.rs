//! Two-factor authentication (TOTP) as use cases: enrolment and its
//! confirmation, the second step of login, recovery codes, turning it off, an
//! admin's reset, and an organization's policy.
//!
//! [`verify_code`] is the one place where a code is checked, whatever for (login,
//! confirming an enrolment, turning two-factor off, new recovery codes): limits
//! on guessing belong there. The secret is sealed under the master key, bound
//! to its user, and opened only inside it.

use std::time::Duration;

use sentinel_core::audit::{
    Actor, AuditAction, AuditContext, Entity, EntityType, LogId, Origin, Outcome,
};
use sentinel_core::{
    BearerSecret, RecoveryCode, SecretHash, SecretString, Timestamp, TotpSecret, TwoFactorPolicy,
    UserId, ValidationError,
};
use sentinel_store::{NewLoginChallenge, User};
use uuid::Uuid;

use crate::access::{OrgContext, Principal};
use crate::client::ClientInfo;
use crate::error::AppError;
use crate::rate_limit::RateKey;
use crate::session::{self, StartedSession};
use crate::state::AppState;

/// How long the second step of a login may wait for its code.
pub const CHALLENGE_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// Wrong codes after which a pending login is dead.
pub const CHALLENGE_ATTEMPTS: i64 = 5;

const EXPIRED: &str = "this sign-in has expired or is no longer valid; sign in again";
/// Why a second login step failed while its pending login stays usable.
pub const WRONG_CODE: &str = "the code is not right";
const WRONG_PASSWORD_OR_CODE: &str = "wrong password or two-factor code";

/// What a user typed as their second factor, once it has the shape of one.
#[derive(Debug, Clone)]
pub enum SecondFactor {
    /// Six digits from the authenticator app.
    Totp(SecretString),
    /// One of the user's recovery codes.
    Recovery(RecoveryCode),
}

impl SecondFactor {
    /// Reads a code as typed (spaces and hyphens allowed). Anything that is
    /// neither a TOTP code nor a recovery code is refused here, before it
    /// reaches a pending login, a database or a limit.
    pub fn parse(text: &str, recovery_allowed: bool) -> Result<Self, AppError> {
        let invalid = || {
            let message = if recovery_allowed {
                "must be the 6-digit code from your app or one of your recovery codes"
            } else {
                "must be the 6-digit code from your app"
            };
            AppError::Invalid(ValidationError::new("code", message))
        };
        if text.len() > 64 {
            return Err(invalid());
        }
        let compact: String = text.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if compact.len() == sentinel_core::totp::DIGITS
            && compact.bytes().all(|b| b.is_ascii_digit())
        {
            return Ok(SecondFactor::Totp(SecretString::new(compact)));
        }
        match RecoveryCode::parse(text) {
            Some(code) if recovery_allowed => Ok(SecondFactor::Recovery(code)),
            _ => Err(invalid()),
        }
    }
}

/// Why a code is being checked: decides which enrolment it is checked against
/// and whether a recovery code will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePurpose {
    /// The second step of a login.
    SignIn,
    /// Confirming a new, pending enrolment (TOTP only).
    ConfirmEnrolment,
    /// Turning two-factor authentication off.
    Disable,
    /// Replacing the recovery codes (TOTP only).
    NewRecoveryCodes,
}

/// A code that was accepted (and recorded as used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    Totp { enrolment_id: Uuid },
    RecoveryCode,
}

/// The sealing context of a user's TOTP secret: a sealed secret copied to
/// another user's row does not open.
fn sealing_context(user: UserId) -> String {
    sentinel_store::SealedSite::TwoFactorSecret(user).context()
}

/// Checks `code` for `user`; `None` if it is wrong, already used, or not
/// allowed for `purpose`. A TOTP code is accepted for the current time step or
/// one either side, and only for a step later than the last one accepted (the
/// check and the record are one statement). A recovery code is spent, audited
/// as `auth.recovery_code_used` by `audit`.
///
/// This is the single choke point of every code check.
pub async fn verify_code(
    state: &AppState,
    user: UserId,
    code: &SecondFactor,
    purpose: CodePurpose,
    audit: &AuditContext,
) -> Result<Option<Accepted>, AppError> {
    state
        .limits
        .two_factor
        .check(RateKey::User(user.as_uuid()))?;
    let control = state.stores.control();
    let now = state.clock.now();
    match code {
        SecondFactor::Totp(digits) => {
            let Some(record) = control.two_factor(user).await? else {
                return Ok(None);
            };
            let pending_wanted = purpose == CodePurpose::ConfirmEnrolment;
            if record.enabled_at.is_none() != pending_wanted {
                return Ok(None);
            }
            let secret = open_secret(state, user, &record.sealed_secret)?;
            let Some(step) = secret.verify(digits.expose(), now) else {
                return Ok(None);
            };
            let fresh = control
                .accept_totp_step(user, record.enrolment_id, step, !pending_wanted)
                .await?;
            Ok(fresh.then_some(Accepted::Totp {
                enrolment_id: record.enrolment_id,
            }))
        }
        SecondFactor::Recovery(recovery) => {
            if !matches!(purpose, CodePurpose::SignIn | CodePurpose::Disable) {
                return Ok(None);
            }
            let spent = control
                .spend_recovery_code(user, &recovery.hash_for(user), now, audit)
                .await?;
            if spent {
                tracing::info!(user_id = %user, "recovery code used");
            }
            Ok(spent.then_some(Accepted::RecoveryCode))
        }
    }
}

fn open_secret(state: &AppState, user: UserId, sealed: &[u8]) -> Result<TotpSecret, AppError> {
    let bytes = state
        .sealing
        .open(sealed, &sealing_context(user))
        .map_err(|e| AppError::Internal(format!("opening a TOTP secret: {e}")))?;
    TotpSecret::from_bytes(&bytes)
        .ok_or_else(|| AppError::Internal(String::from("a stored TOTP secret has the wrong size")))
}

/// A user's two-factor standing, for their profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// When it was turned on; `None` while off.
    pub enabled_at: Option<Timestamp>,
    /// Whether an enrolment awaits confirmation.
    pub pending: bool,
    pub recovery_codes_left: i64,
}

pub async fn status(state: &AppState, user: UserId) -> Result<Status, AppError> {
    let control = state.stores.control();
    let record = control.two_factor(user).await?;
    Ok(Status {
        enabled_at: record.as_ref().and_then(|r| r.enabled_at),
        pending: record.as_ref().is_some_and(|r| r.enabled_at.is_none()),
        recovery_codes_left: control.recovery_codes_left(user).await?,
    })
}

/// A new secret as shown once to its user: base32 for typing, the otpauth URI,
/// and that URI as a QR code (inline SVG). `Debug` shows none of them.
pub struct Enrolment {
    pub secret: SecretString,
    pub otpauth_uri: SecretString,
    pub qr_svg: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment([redacted])")
    }
}

/// Issues the caller a fresh 160-bit secret, sealed at rest, pending until
/// confirmed with a code. Replaces a pending one; `Conflict` while two-factor
/// authentication is on.
pub async fn start_enrolment(
    state: &AppState,
    principal: &Principal,
    audit: &AuditContext,
) -> Result<Enrolment, AppError> {
    principal.require_recent_sign_in(state.clock.now())?;
    let user = &principal.user;
    let secret = TotpSecret::generate()?;
    let sealed = state
        .sealing
        .seal(secret.expose(), &sealing_context(user.id))
        .map_err(|e| AppError::Internal(format!("sealing a TOTP secret: {e}")))?;
    state
        .stores
        .control()
        .start_two_factor_enrolment(user.id, Uuid::new_v4(), &sealed, state.clock.now(), audit)
        .await?;
    tracing::info!(user_id = %user.id, "two-factor enrolment started");
    shown_once(&secret, user.email.as_str())
}

/// The caller's pending enrolment, shown again (after a mistyped code); `None`
/// if there is none.
pub async fn pending_enrolment(
    state: &AppState,
    principal: &Principal,
) -> Result<Option<Enrolment>, AppError> {
    let user = &principal.user;
    let record = state.stores.control().two_factor(user.id).await?;
    let Some(record) = record.filter(|r| r.enabled_at.is_none()) else {
        return Ok(None);
    };
    let secret = open_secret(state, user.id, &record.sealed_secret)?;
    Ok(Some(shown_once(&secret, user.email.as_str())?))
}

fn shown_once(secret: &TotpSecret, account: &str) -> Result<Enrolment, AppError> {
    let uri = secret.otpauth_uri(account);
    Ok(Enrolment {
        secret: SecretString::new(secret.to_base32()),
        qr_svg: crate::qr::svg(&uri)?,
        otpauth_uri: SecretString::new(uri),
    })
}

/// Turns two-factor authentication on once the caller proves, with a code,
/// that their app holds the pending secret. Returns their recovery codes, to be
/// shown this once.
pub async fn confirm_enrolment(
    state: &AppState,
    principal: &Principal,
    audit: &AuditContext,
    code: &str,
) -> Result<Vec<RecoveryCode>, AppError> {
    let user = principal.user.id;
    let code = SecondFactor::parse(code, false)?;
    let Some(Accepted::Totp { enrolment_id }) =
        verify_code(state, user, &code, CodePurpose::ConfirmEnrolment, audit).await?
    else {
        return Err(AppError::Invalid(ValidationError::new(
            "code",
            "is not the current code of the secret you were given; check your device's clock, or start again",
        )));
    };
    let codes = RecoveryCode::generate_set()?;
    let hashes = recovery_hashes(user, &codes);
    state
        .stores
        .control()
        .enable_two_factor(user, enrolment_id, &hashes, state.clock.now(), audit)
        .await?;
    tracing::info!(user_id = %user, "two-factor authentication enabled");
    Ok(codes)
}

fn recovery_hashes(user: UserId, codes: &[RecoveryCode]) -> Vec<SecretHash> {
    codes.iter().map(|c| c.hash_for(user)).collect()
}

/// Replaces the caller's recovery codes, after a current TOTP code.
pub async fn new_recovery_codes(
    state: &AppState,
    principal: &Principal,
    audit: &AuditContext,
    code: &str,
) -> Result<Vec<RecoveryCode>, AppError> {
    let user = principal.user.id;
    let code = SecondFactor::parse(code, false)?;
    if verify_code(state, user, &code, CodePurpose::NewRecoveryCodes, audit)
        .await?
        .is_none()
    {
        return Err(AppError::Forbidden(WRONG_CODE));
    }
    let codes = RecoveryCode::generate_set()?;
    state
        .stores
        .control()
        .replace_recovery_codes(
            user,
            &recovery_hashes(user, &codes),
            state.clock.now(),
            audit,
        )
        .await
        .map_err(super::not_found_as("two-factor authentication"))?;
    tracing::info!(user_id = %user, "recovery codes replaced");
    Ok(codes)
}

/// Turns the caller's two-factor authentication off, after their password and
/// a current code (or a recovery code). Every other session of theirs ends;
/// returns how many.
pub async fn disable(
    state: &AppState,
    principal: &Principal,
    audit: &AuditContext,
    password: &str,
    code: &str,
) -> Result<u64, AppError> {
    let user = principal.user.id;
    let code = SecondFactor::parse(code, true)?;
    let control = state.stores.control();
    let account = control
        .user_with_password(user)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let candidate = password.to_owned();
    let password_ok = state
        .password_work
        .run(move || account.password_hash.verify(&candidate))
        .await?;
    if !password_ok
        || verify_code(state, user, &code, CodePurpose::Disable, audit)
            .await?
            .is_none()
    {
        return Err(AppError::Forbidden(WRONG_PASSWORD_OR_CODE));
    }
    let ended = control
        .remove_two_factor(
            user,
            principal.session_id(),
            AuditAction::TwoFactorDisabled,
            state.clock.now(),
            audit,
        )
        .await
        .map_err(super::not_found_as("two-factor authentication"))?;
    tracing::info!(user_id = %user, sessions_ended = ended, "two-factor authentication disabled");
    Ok(ended)
}

/// A platform admin removes `user`'s two-factor authentication (a lost
/// device); every session of that user ends. Not for one's own account, which
/// is turned off with password and code.
pub async fn reset(
    state: &AppState,
    principal: &Principal,
    audit: &AuditContext,
    user: UserId,
) -> Result<u64, AppError> {
    if user == principal.user.id {
        return Err(AppError::Conflict(String::from(
            "turn your own two-factor authentication off from your profile",
        )));
    }
    let ended = state
        .stores
        .control()
        .remove_two_factor(
            user,
            None,
            AuditAction::TwoFactorReset,
            state.clock.now(),
            audit,
        )
        .await
        .map_err(super::not_found_as("two-factor authentication"))?;
    tracing::info!(user_id = %user, by = %principal.user.id, sessions_ended = ended, "two-factor authentication reset");
    Ok(ended)
}

/// Sets which members of the organization must use two-factor authentication;
/// returns the previous policy. Refused (409) when the policy would cover the
/// caller and their own two-factor authentication is off.
pub async fn set_policy(
    state: &AppState,
    ctx: &OrgContext,
    audit: &AuditContext,
    policy: TwoFactorPolicy,
) -> Result<TwoFactorPolicy, AppError> {
    let org = ctx.organization().id;
    let previous = state
        .stores
        .control()
        .set_two_factor_policy(org, ctx.principal.user.id, policy, state.clock.now(), audit)
        .await?;
    super::flush_audit(state, ctx.organization().id).await;
    tracing::info!(org_id = %org, %previous, %policy, "two-factor policy changed");
    Ok(previous)
}

/// The pending second step of a login: a bearer secret shown to the client
/// that passed the password check, and nothing else.
#[derive(Debug)]
pub struct MfaToken(pub BearerSecret);

/// Records a login awaiting its second factor for `user`, whose password was
/// checked while `password_changed_at` was as given.
pub async fn challenge(
    state: &AppState,
    user: UserId,
    password_changed_at: Timestamp,
) -> Result<MfaToken, AppError> {
    let token = BearerSecret::generate()?;
    let now = state.clock.now();
    state
        .stores
        .control()
        .create_login_challenge(&NewLoginChallenge {
            token_hash: token.hash(),
            user_id: user,
            password_checked_at: password_changed_at,
            created_at: now,
            expires_at: now.plus(CHALLENGE_LIFETIME),
        })
        .await?;
    Ok(MfaToken(token))
}

/// Completes a login with the pending token and a code (TOTP or recovery
/// code), starting a session as a password-only login does (audited
/// `auth.login`). A wrong code is audited as `auth.login_failed`; the token
/// dies after [`CHALLENGE_ATTEMPTS`] tries, after [`CHALLENGE_LIFETIME`], at
/// its first success, and when the password changes.
pub async fn complete_login(
    state: &AppState,
    token: &str,
    code: &str,
    client: &ClientInfo,
    origin: &Origin,
    previous: Option<&Principal>,
) -> Result<(User, StartedSession), AppError> {
    let code = SecondFactor::parse(code, true)?;
    let token = BearerSecret::parse(token).ok_or(AppError::SecondFactorFailed(EXPIRED))?;
    let control = state.stores.control();
    let hash = token.hash();
    let challenge = control
        .attempt_login_challenge(&hash, state.clock.now(), CHALLENGE_ATTEMPTS)
        .await?
        .ok_or(AppError::SecondFactorFailed(EXPIRED))?;
    let account = control.user_with_password(challenge.user_id).await?;
    let Some(account) = account.filter(|a| a.password_changed_at == challenge.password_checked_at)
    else {
        control.end_login_challenge(&hash).await?;
        return Err(AppError::SecondFactorFailed(EXPIRED));
    };
    let (failed_before, locked_until) = (account.failed_logins, account.locked_until);
    let user = account.user;
    let audit = AuditContext {
        actor: Actor::user(user.id, &user.name),
        origin: origin.clone(),
    };
    // Wrong codes lock the account as wrong passwords do; while it is locked,
    // no code is even looked at.
    let locked = locked_until.is_some_and(|until| until > state.clock.now());
    let accepted = match locked {
        true => None,
        false => verify_code(state, user.id, &code, CodePurpose::SignIn, &audit).await?,
    };
    if accepted.is_none() {
        let event = audit.event(
            state.clock.now(),
            AuditAction::LoginFailed,
            Entity::new(EntityType::User, user.id),
            serde_json::json!({
                "email": user.email.as_str(),
                "reason": if locked { "account locked" } else { "wrong two-factor code" },
                "attempt": challenge.attempts,
            }),
            Outcome::Failure,
        );
        state.stores.record(LogId::Platform, event).await?;
        if !locked {
            super::auth::count_towards_lock(state, &audit, user.id).await?;
        }
        if challenge.attempts >= CHALLENGE_ATTEMPTS {
            control.end_login_challenge(&hash).await?;
            return Err(AppError::SecondFactorFailed(EXPIRED));
        }
        tracing::info!(user_id = %user.id, client_ip = %client.ip, "second factor refused");
        return Err(AppError::SecondFactorFailed(WRONG_CODE));
    }
    // A challenge completes one login, even if raced.
    if !control.end_login_challenge(&hash).await? {
        return Err(AppError::SecondFactorFailed(EXPIRED));
    }
    let started = session::start(
        state,
        user.id,
        challenge.password_checked_at,
        client,
        previous.and_then(Principal::session_id),
        Some(&audit),
    )
    .await
    .map_err(|e| match e {
        // The password changed since it was checked.
        AppError::NotFound(_) => AppError::SecondFactorFailed(EXPIRED),
        other => other,
    })?;
    if failed_before > 0 || locked_until.is_some() {
        control.clear_login_failures(user.id).await?;
    }
    tracing::info!(user_id = %user.id, client_ip = %client.ip, "login with second factor");
    Ok((user, started))
}

/// Whether `user` must give a second factor at login.
pub async fn required_at_login(state: &AppState, user: UserId) -> Result<bool, AppError> {
    let record = state.stores.control().two_factor(user).await?;
    Ok(record.is_some_and(|r| r.enabled_at.is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_code_shaped_input_is_read_as_a_code() {
        assert!(matches!(
            SecondFactor::parse("123 456", true),
            Ok(SecondFactor::Totp(_))
        ));
        assert!(matches!(
            SecondFactor::parse("abcd-efgh-jkmn", true),
            Ok(SecondFactor::Recovery(_))
        ));
        assert!(SecondFactor::parse("abcd-efgh-jkmn", false).is_err());
        for bad in [
            "",
            "12345",
            "1234567",
            "12345x",
            "' OR 1=1 --",
            &"9".repeat(100_000),
        ] {
            assert!(SecondFactor::parse(bad, true).is_err(), "{bad:.20}");
        }
        assert!(!format!("{:?}", SecondFactor::parse("123456", true)).contains("123456"));
    }
}
