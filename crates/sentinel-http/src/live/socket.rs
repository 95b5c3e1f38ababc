//! One dashboard's live feed over a WebSocket: the organization's events as
//! JSON text messages, for as long as the session that opened it stays live
//! and its member may still see the organization's devices — checked again
//! before any event is sent when the last check is older than
//! [`FRESHNESS`], and every [`RECHECK`] when nothing happens.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use sentinel_core::{OrgId, Permission, SecretHash, UserId};
use sentinel_store::StoreError;
use tokio::time::{Instant, MissedTickBehavior, interval_at, timeout};

use super::Watch;
use crate::access::member_may;
use crate::state::AppState;

/// An event is sent only if access was confirmed at most this long ago.
pub const FRESHNESS: Duration = Duration::from_secs(2);
/// How often an idle feed confirms access (and closes when it is gone).
const RECHECK: Duration = Duration::from_secs(30);
/// How often the server pings; a client that answered none of the last two
/// is gone.
const PING_EVERY: Duration = Duration::from_secs(30);
/// A client that takes longer to accept one message is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Who watches: the session that opened the feed, its user, and the
/// organization.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub session: SecretHash,
    pub user: UserId,
    pub org: OrgId,
}

impl Viewer {
    /// Whether the session is still live (without refreshing it: an open
    /// feed does not keep an idle session alive) and its user may still see
    /// the organization's devices under the organization's policy.
    async fn still_allowed(&self, state: &AppState) -> Result<bool, StoreError> {
        let control = state.stores.control();
        let Some((session, user)) = control.session_by_secret(&self.session).await? else {
            return Ok(false);
        };
        let now = state.clock.now();
        if user.id != self.user || !session.is_live(now, state.settings.session_idle_timeout) {
            return Ok(false);
        }
        let Some(membership) = control.membership(self.org, user.id).await? else {
            return Ok(false);
        };
        Ok(member_may(&membership, Permission::DevicesRead).is_ok())
    }
}

/// Why a feed ended, as its close frame tells the client.
enum Ending {
    /// Access is gone (logged out, session expired, membership or role
    /// changed): 1008, policy violation.
    AccessEnded,
    /// The server could not check access: 1011.
    CheckFailed,
    /// The client left, stopped answering pings, or could not keep up.
    ClientGone,
}

/// Serves the feed until the client leaves or access ends.
pub async fn serve(state: AppState, mut socket: WebSocket, mut watch: Watch, viewer: Viewer) {
    let ending = run(&state, &mut socket, &mut watch, &viewer).await;
    let frame = match ending {
        Ending::AccessEnded => Some(CloseFrame {
            code: close_code::POLICY,
            reason: Utf8Bytes::from_static("access ended"),
        }),
        Ending::CheckFailed => Some(CloseFrame {
            code: close_code::ERROR,
            reason: Utf8Bytes::from_static("internal error"),
        }),
        Ending::ClientGone => None,
    };
    if let Some(frame) = frame {
        let _ = timeout(SEND_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
    }
}

async fn run(
    state: &AppState,
    socket: &mut WebSocket,
    watch: &mut Watch,
    viewer: &Viewer,
) -> Ending {
    // Access was checked by the route's guard just before the upgrade.
    let mut checked_at = Instant::now();
    let mut recheck = interval_at(Instant::now() + RECHECK, RECHECK);
    recheck.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut ping = interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut unanswered_pings = 0u32;
    loop {
        let message = tokio::select! {
            event = watch.next() => match event {
                Ok(event) => Message::Text(event),
                Err(missed) => Message::Text(Utf8Bytes::from(format!(
                    r#"{{"type":"lagged","missed":{missed}}}"#
                ))),
            },
            incoming = socket.recv() => match incoming {
                // Clients have nothing to say; pongs are counted, pings are
                // answered by the WebSocket layer, anything else is ignored.
                Some(Ok(Message::Pong(_))) => {
                    unanswered_pings = 0;
                    continue;
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Ending::ClientGone,
                Some(Ok(_)) => continue,
            },
            _ = recheck.tick() => {
                match confirm(state, viewer, &mut checked_at).await {
                    Some(ending) => return ending,
                    None => continue,
                }
            }
            _ = ping.tick() => {
                if unanswered_pings >= 2 {
                    return Ending::ClientGone;
                }
                unanswered_pings += 1;
                Message::Ping(axum::body::Bytes::new())
            }
        };
        if matches!(message, Message::Text(_))
            && checked_at.elapsed() >= FRESHNESS
            && let Some(ending) = confirm(state, viewer, &mut checked_at).await
        {
            return ending;
        }
        match timeout(SEND_TIMEOUT, socket.send(message)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return Ending::ClientGone,
        }
    }
}

/// Checks access again: `None` while it holds.
async fn confirm(state: &AppState, viewer: &Viewer, checked_at: &mut Instant) -> Option<Ending> {
    match viewer.still_allowed(state).await {
        Ok(true) => {
            *checked_at = Instant::now();
            None
        }
        Ok(false) => Some(Ending::AccessEnded),
        Err(e) => {
            tracing::warn!(error = %e, "could not check a live feed's access");
            Some(Ending::CheckFailed)
        }
    }
}
