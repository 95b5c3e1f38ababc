//! Logging in and out, and changing one's own password.

use sentinel_core::audit::{
    Actor, AuditAction, AuditContext, Entity, EntityType, LogId, Origin, Outcome,
};
use sentinel_core::{Email, PasswordHash, UserId, ValidationError};
use sentinel_store::User;

use super::two_factor::{self, MfaToken};
use crate::access::Principal;
use crate::client::ClientInfo;
use crate::error::AppError;
use crate::rate_limit::RateKey;
use crate::session::{self, StartedSession};
use crate::state::AppState;

/// What a right password leads to.
#[derive(Debug)]
pub enum LoginOutcome {
    /// A new session.
    SignedIn(User, StartedSession),
    /// Nothing yet: the user has two-factor authentication on, and the login
    /// continues with this token and a code (see [`super::two_factor`]).
    SecondFactorRequired(MfaToken),
}

/// Checks the credentials and starts a new session, ending `previous` (the
/// session the browser held before, if any) — or, for a user with two-factor
/// authentication on, a pending login that awaits a code. Unknown addresses,
/// wrong passwords, service accounts and locked accounts fail the same way and
/// take the same time: each runs one Argon2id verification, and each is
/// audited as `auth.login_failed` (the entry says which it was). Within the
/// rate limits, every failure counts towards the account's lock
/// (`sentinel_core::lockout`).
pub async fn login(
    state: &AppState,
    email: &str,
    password: &str,
    client: &ClientInfo,
    origin: &Origin,
    previous: Option<&Principal>,
) -> Result<LoginOutcome, AppError> {
    state
        .limits
        .login_address
        .check(RateKey::address(client.ip))?;
    state.limits.login_account.check(RateKey::account(email))?;
    let control = state.stores.control();
    let account = match Email::parse(email) {
        Ok(email) => control.user_by_email(&email).await?,
        Err(_) => None,
    }
    .filter(|account| !account.service_account);
    let now = state.clock.now();
    let locked = account
        .as_ref()
        .and_then(|a| a.locked_until)
        .is_some_and(|until| until > now);
    let stored = account.as_ref().map(|a| a.password_hash.clone());
    let candidate = password.to_owned();
    let verified = state
        .password_work
        .run(move || match stored {
            Some(hash) => hash.verify(&candidate),
            None => PasswordHash::verify_dummy(&candidate),
        })
        .await?;
    let account = match account {
        Some(account) if verified && !locked => account,
        account => {
            tracing::info!(client_ip = %client.ip, locked, "login failed");
            let (actor, entity) = match &account {
                Some(a) => (
                    Actor::user(a.user.id, &a.user.name),
                    Entity::new(EntityType::User, a.user.id),
                ),
                None => (Actor::anonymous(email), Entity::new(EntityType::User, "")),
            };
            let audit = AuditContext {
                actor,
                origin: origin.clone(),
            };
            let reason = match (&account, locked) {
                (None, _) => "unknown account",
                (Some(_), true) => "account locked",
                (Some(_), false) => "wrong password",
            };
            let event = audit.event(
                now,
                AuditAction::LoginFailed,
                entity.clone(),
                serde_json::json!({
                    "email": email.chars().take(254).collect::<String>(),
                    "reason": reason,
                }),
                Outcome::Failure,
            );
            state.stores.record(LogId::Platform, event).await?;
            if let (Some(account), false) = (&account, locked) {
                count_towards_lock(state, &audit, account.user.id).await?;
            }
            return Err(AppError::InvalidCredentials);
        }
    };
    let user = account.user;
    // With two-factor on, the failures are forgotten only once the code is right.
    if two_factor::required_at_login(state, user.id).await? {
        let token = two_factor::challenge(state, user.id, account.password_changed_at).await?;
        tracing::info!(user_id = %user.id, client_ip = %client.ip, "password accepted; second factor required");
        return Ok(LoginOutcome::SecondFactorRequired(token));
    }
    let audit = AuditContext {
        actor: Actor::user(user.id, &user.name),
        origin: origin.clone(),
    };
    let started = session::start(
        state,
        user.id,
        account.password_changed_at,
        client,
        previous.and_then(Principal::session_id),
        Some(&audit),
    )
    .await
    .map_err(|e| match e {
        // The password changed while it was being checked.
        AppError::NotFound(_) => AppError::InvalidCredentials,
        other => other,
    })?;
    if account.failed_logins > 0 || account.locked_until.is_some() {
        control.clear_login_failures(user.id).await?;
    }
    tracing::info!(user_id = %user.id, client_ip = %client.ip, "login");
    Ok(LoginOutcome::SignedIn(user, started))
}

/// Counts a failed login (a wrong password or a wrong second factor) towards
/// `user`'s lock, and records `auth.account_locked` if this one locked it.
pub(crate) async fn count_towards_lock(
    state: &AppState,
    audit: &AuditContext,
    user: UserId,
) -> Result<(), AppError> {
    let now = state.clock.now();
    let Some(until) = state
        .stores
        .control()
        .record_login_failure(user, now)
        .await?
    else {
        return Ok(());
    };
    tracing::warn!(user_id = %user, %until, "account locked after failed logins");
    let event = audit.success(
        now,
        AuditAction::AccountLocked,
        Entity::new(EntityType::User, user),
        serde_json::json!({ "locked_until": until.to_string() }),
    );
    state.stores.record(LogId::Platform, event).await?;
    Ok(())
}

/// Ends the caller's session.
pub async fn logout(
    state: &AppState,
    principal: &Principal,
    audit: &AuditContext,
) -> Result<(), AppError> {
    let session = principal.session_id().ok_or(AppError::Unauthenticated)?;
    let event = audit.success(
        state.clock.now(),
        AuditAction::Logout,
        Entity::new(EntityType::Session, session),
        serde_json::json!({}),
    );
    state
        .stores
        .control()
        .delete_session(session, Some(event))
        .await?;
    tracing::info!(user_id = %principal.user.id, "logout");
    Ok(())
}

/// Changes the caller's password after checking the current one. Every session
/// of theirs ends — the one making the change too, which is replaced by a new
/// session (so a stolen cookie does not survive the change). Returns the new
/// session and how many other sessions ended.
pub async fn change_password(
    state: &AppState,
    principal: &Principal,
    client: &ClientInfo,
    audit: &AuditContext,
    current: &str,
    new: &str,
) -> Result<(StartedSession, u64), AppError> {
    let control = state.stores.control();
    let account = control
        .user_with_password(principal.user.id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let user = account.user.clone();
    let (current, new) = (current.to_owned(), new.to_owned());
    let policy = state.settings.password_policy;
    let checked = state
        .password_work
        .run(move || -> Result<PasswordHash, AppError> {
            if !account.password_hash.verify(&current) {
                return Err(ValidationError::new(
                    "current_password",
                    "is not your current password",
                )
                .into());
            }
            let password = policy.check(
                &new,
                &[account.user.email.as_str(), account.user.name.as_str()],
            )?;
            Ok(PasswordHash::new(&password)?)
        })
        .await??;
    let now = state.clock.now();
    let ended = control
        .change_password(user.id, &checked, now, audit)
        .await?;
    let started = session::start(state, user.id, now, client, None, None).await?;
    tracing::info!(user_id = %user.id, sessions_ended = ended, "password changed");
    Ok((started, ended.saturating_sub(1)))
}
