//! The token rotation loop: every `token_rotation_seconds` after the last rotation (as
//! saved in the state, so across restarts), the device token is exchanged for a new one,
//! which is saved durably before it is first used.

use std::sync::Arc;
use std::time::Duration;

use sentinel_protocol::paths::DEVICE_TOKEN_PREFIX;
use tokio_util::sync::CancellationToken;

use super::{Agent, pause};
use crate::api::ApiError;
use crate::clock::unix_now;
use crate::retry::Retry;
use crate::secret::Secret;

/// The longest the loop sleeps before looking at the wall clock again (it may jump).
const RECHECK: Duration = Duration::from_secs(600);

/// Rotates the device token when due, until `stop`.
pub(super) async fn run(agent: Arc<Agent>, stop: CancellationToken) {
    let mut retry = Retry::default();
    let mut settings = agent.settings.subscribe();
    loop {
        let rotation = i64::from(settings.borrow_and_update().token_rotation_seconds);
        let due = agent.state().token_rotated_at.saturating_add(rotation);
        let wait = due.saturating_sub(unix_now());
        if wait > 0 {
            let wait = Duration::from_secs(wait.unsigned_abs()).min(RECHECK);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = settings.changed() => {}
                () = stop.cancelled() => return,
            }
            continue;
        }
        let rotated = tokio::select! {
            rotated = rotate(&agent) => rotated,
            () = stop.cancelled() => return,
        };
        match rotated {
            Ok(()) => retry.succeeded(),
            Err(error) => {
                if !pause(
                    retry.delay_after(&error, "rotating the device token"),
                    &stop,
                )
                .await
                {
                    return;
                }
            }
        }
    }
}

/// Gets a new token, saves it, then uses it. Until it is saved the old one stays in use
/// (the server keeps it valid until the new one is first used).
async fn rotate(agent: &Agent) -> Result<(), ApiError> {
    let rotation = agent.transport.api().rotate_token().await?;
    if !rotation.device_token.starts_with(DEVICE_TOKEN_PREFIX) {
        return Err(ApiError::Unavailable(
            "the server sent a device token of an unknown form".into(),
        ));
    }
    let token = Secret::new(rotation.device_token);
    agent
        .update_state(|state| {
            state.device_token = token.clone();
            state.token_rotated_at = unix_now();
        })
        .map_err(|e| {
            ApiError::Unavailable(format!(
                "the new device token could not be saved ({e}); keeping the current one"
            ))
        })?;
    agent.transport.set_token(token);
    tracing::info!("device token rotated");
    Ok(())
}
