//! Platform administration of user accounts.

use sentinel_core::audit::AuditContext;
use sentinel_core::{NewAccount, Timestamp, UserId};
use sentinel_store::{NewUser, StoreError, User};

use crate::access::Principal;
use crate::error::AppError;
use crate::state::AppState;

/// Every user, with the end of their login lock if they are locked now.
pub async fn list(state: &AppState) -> Result<Vec<(User, Option<Timestamp>)>, AppError> {
    let now = state.clock.now();
    let users = state.stores.control().users().await?;
    Ok(users
        .into_iter()
        .map(|(user, locked_until)| (user, locked_until.filter(|until| *until > now)))
        .collect())
}

/// Lifts a user's login lock and forgets their failed logins.
pub async fn unlock(
    state: &AppState,
    principal: &Principal,
    audit: &AuditContext,
    user: UserId,
) -> Result<(), AppError> {
    state
        .stores
        .control()
        .unlock_user(user, state.clock.now(), audit)
        .await
        .map_err(no_such_user)?;
    tracing::info!(user_id = %user, by = %principal.user.id, "login lock lifted");
    Ok(())
}

/// Creates an account with an initial password chosen by the platform admin.
pub async fn create(
    state: &AppState,
    principal: &Principal,
    audit: &AuditContext,
    email: &str,
    name: &str,
    password: &str,
    platform_admin: bool,
) -> Result<User, AppError> {
    let (email, name, password) = (email.to_owned(), name.to_owned(), password.to_owned());
    let policy = state.settings.password_policy;
    let new = state
        .password_work
        .run(move || -> Result<NewUser, AppError> {
            let account = NewAccount::parse(&email, &name, &password, &policy)?;
            Ok(NewUser::hashed(account, platform_admin)?)
        })
        .await??;
    let user = state
        .stores
        .control()
        .create_user(&new, state.clock.now(), audit)
        .await?;
    tracing::info!(user_id = %user.id, by = %principal.user.id, platform_admin, "user created");
    Ok(user)
}

pub async fn set_platform_admin(
    state: &AppState,
    principal: &Principal,
    audit: &AuditContext,
    user: UserId,
    platform_admin: bool,
) -> Result<User, AppError> {
    let updated = state
        .stores
        .control()
        .set_platform_admin(user, platform_admin, state.clock.now(), audit)
        .await
        .map_err(no_such_user)?;
    tracing::info!(user_id = %user, by = %principal.user.id, platform_admin, "platform admin role changed");
    Ok(updated)
}

/// Deletes an account (not one's own), with its sessions and memberships.
pub async fn delete(
    state: &AppState,
    principal: &Principal,
    audit: &AuditContext,
    user: UserId,
) -> Result<(), AppError> {
    if user == principal.user.id {
        return Err(AppError::Conflict(
            "you cannot delete your own account".into(),
        ));
    }
    state
        .stores
        .control()
        .delete_user(user, state.clock.now(), audit)
        .await
        .map_err(no_such_user)?;
    tracing::info!(user_id = %user, by = %principal.user.id, "user deleted");
    Ok(())
}

fn no_such_user(e: StoreError) -> AppError {
    match e {
        StoreError::NotFound => AppError::NotFound("user"),
        other => other.into(),
    }
}
