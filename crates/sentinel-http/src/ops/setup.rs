//! Completing the first-admin setup with the one-time link printed at first start.

use sentinel_core::audit::{Actor, AuditContext, Origin};
use sentinel_core::{BearerSecret, NewAccount};
use sentinel_store::{NewUser, SetupOutcome, User};

use crate::error::AppError;
use crate::state::AppState;

const INVALID_LINK: &str =
    "this setup link is invalid, used or expired; restart the server for a new one";

/// Whether `token` is a setup token that can still be used.
pub async fn link_usable(state: &AppState, token: &str) -> Result<bool, AppError> {
    let Some(secret) = BearerSecret::parse(token) else {
        return Ok(false);
    };
    Ok(state
        .stores
        .control()
        .setup_token_usable(&secret.hash(), state.clock.now())
        .await?)
}

/// Creates the first platform admin, spending the setup token. The token is
/// checked before any password work, so a dead link costs the server nothing.
pub async fn complete(
    state: &AppState,
    token: &str,
    name: &str,
    email: &str,
    password: &str,
    origin: &Origin,
) -> Result<User, AppError> {
    let secret = BearerSecret::parse(token).ok_or(AppError::Forbidden(INVALID_LINK))?;
    if !link_usable(state, token).await? {
        return Err(AppError::Forbidden(INVALID_LINK));
    }
    let audit = AuditContext {
        actor: Actor::anonymous(email),
        origin: origin.clone(),
    };
    let (name, email, password) = (name.to_owned(), email.to_owned(), password.to_owned());
    let policy = state.settings.password_policy;
    let admin = state
        .password_work
        .run(move || -> Result<NewUser, AppError> {
            let account = NewAccount::parse(&email, &name, &password, &policy)?;
            Ok(NewUser::hashed(account, true)?)
        })
        .await??;
    match state
        .stores
        .control()
        .complete_setup(&secret.hash(), &admin, state.clock.now(), &audit)
        .await?
    {
        SetupOutcome::Completed(user) => {
            tracing::info!(user_id = %user.id, "setup complete: first platform admin created");
            Ok(user)
        }
        SetupOutcome::InvalidToken => Err(AppError::Forbidden(INVALID_LINK)),
        SetupOutcome::AlreadyDone => Err(AppError::Conflict("setup is already complete".into())),
    }
}
