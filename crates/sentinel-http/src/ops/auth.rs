//! Logging in and out, and changing one's own password.

use sentinel_core::{Email, PasswordHash, ValidationError};
use sentinel_store::User;

use crate::access::Principal;
use crate::client::ClientInfo;
use crate::error::AppError;
use crate::session::{self, StartedSession};
use crate::state::AppState;

/// Checks the credentials and starts a new session, ending `previous` (the
/// session the browser held before, if any). Unknown addresses and wrong
/// passwords fail the same way and take the same time: both run one Argon2id
/// verification.
pub async fn login(
    state: &AppState,
    email: &str,
    password: &str,
    client: &ClientInfo,
    previous: Option<&Principal>,
) -> Result<(User, StartedSession), AppError> {
    let account = match Email::parse(email) {
        Ok(email) => state.stores.control().user_by_email(&email).await?,
        Err(_) => None,
    };
    let verified = match &account {
        Some(account) => account.password_hash.verify(password),
        None => PasswordHash::verify_dummy(password),
    };
    let Some(account) = account.filter(|_| verified) else {
        tracing::info!(client_ip = %client.ip, "login failed");
        return Err(AppError::InvalidCredentials);
    };
    let started = session::start(
        state,
        account.user.id,
        client,
        previous.map(|p| p.session_id),
    )
    .await?;
    tracing::info!(user_id = %account.user.id, client_ip = %client.ip, "login");
    Ok((account.user, started))
}

/// Ends the caller's session.
pub async fn logout(state: &AppState, principal: &Principal) -> Result<(), AppError> {
    state
        .stores
        .control()
        .delete_session(principal.session_id)
        .await?;
    tracing::info!(user_id = %principal.user.id, "logout");
    Ok(())
}

/// Changes the caller's password after checking the current one, and ends all
/// their other sessions. Returns how many sessions ended.
pub async fn change_password(
    state: &AppState,
    principal: &Principal,
    current: &str,
    new: &str,
) -> Result<u64, AppError> {
    let control = state.stores.control();
    let account = control
        .user_with_password(principal.user.id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    if !account.password_hash.verify(current) {
        return Err(
            ValidationError::new("current_password", "is not your current password").into(),
        );
    }
    let user = &account.user;
    let password = state
        .settings
        .password_policy
        .check(new, &[user.email.as_str(), user.name.as_str()])?;
    let hash = PasswordHash::new(&password)?;
    control
        .set_password(user.id, &hash, state.clock.now())
        .await?;
    let ended = control
        .delete_sessions_of(user.id, Some(principal.session_id))
        .await?;
    tracing::info!(user_id = %user.id, other_sessions_ended = ended, "password changed");
    Ok(ended)
}
