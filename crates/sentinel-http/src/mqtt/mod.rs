//! The MQTT device gateway: devices connect over MQTT 3.1.1 or 5.0 with their
//! device id as username and their device token as password (the same
//! credentials, limits and revocation as the HTTPS agent API), publish what
//! they report into the same operations as the HTTPS agent routes
//! ([`crate::ops::agent`]), and receive their signed commands the moment they
//! are queued.
//!
//! This is not a broker: devices never reach each other. Each one may use only
//! the topics of its own namespace ([`topics`]); every refusal is counted and
//! audited (within a per-device allowance). QoS 0 and 1 are served, QoS 2 is
//! refused; a QoS 1 publish is acknowledged only once what it carried is
//! committed. Sessions are not persisted: a device subscribes again on each
//! connection, and commands it missed wait in the store.
//!
//! The transport (TCP, TLS, the listener and its connection limit) belongs to
//! the `sentinel` binary; [`Gateway::serve`] takes any byte stream.

mod session;
mod topics;
mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use crate::state::AppState;

pub use topics::{COMMANDS, Channel, DeviceTopics, Refusal};

/// The largest packet a connected device may send: a full software inventory
/// (32 MiB over HTTPS) and its envelope.
pub const MAX_PACKET_BYTES: usize = 33 * 1024 * 1024;

/// The gateway: the application state and who is connected.
#[derive(Debug)]
pub struct Gateway {
    state: AppState,
    /// The live connection of each connected device: a newer one replaces it.
    sessions: Mutex<HashMap<Uuid, Registration>>,
    next_connection: AtomicU64,
}

#[derive(Debug)]
struct Registration {
    connection: u64,
    /// Notified when a newer connection of the same device takes over.
    taken_over: Arc<Notify>,
}

impl Gateway {
    pub fn new(state: AppState) -> Arc<Gateway> {
        Arc::new(Gateway {
            state,
            sessions: Mutex::default(),
            next_connection: AtomicU64::new(1),
        })
    }

    /// Serves one client connection until it ends, the device connects again
    /// elsewhere, or `stopping` turns true.
    ///
    /// The stream is boxed before the future is made: a future keeps room for
    /// its arguments all its life, and for each local or field they move into
    /// (a TLS stream is 1.2 KB, and an idle connection was four of them).
    pub fn serve<S>(
        self: Arc<Self>,
        stream: S,
        peer: SocketAddr,
        stopping: watch::Receiver<bool>,
    ) -> impl Future<Output = ()>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let stream = Box::new(stream);
        async move {
            let metrics = &self.state.metrics;
            metrics.mqtt_connections.fetch_add(1, Ordering::Relaxed);
            session::run(&self, stream, peer, stopping).await;
            metrics.mqtt_connections.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Records `device`'s new connection and tells its previous one, if any,
    /// to end.
    fn register(&self, device: Uuid) -> (u64, Arc<Notify>) {
        let connection = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let taken_over = Arc::new(Notify::new());
        let previous = self
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                device,
                Registration {
                    connection,
                    taken_over: taken_over.clone(),
                },
            );
        if let Some(previous) = previous {
            // Stores a permit: the old session sees it at its next wait.
            previous.taken_over.notify_one();
        }
        (connection, taken_over)
    }

    /// Forgets `device`'s connection, unless a newer one replaced it.
    fn unregister(&self, device: Uuid, connection: u64) {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if sessions
            .get(&device)
            .is_some_and(|r| r.connection == connection)
        {
            sessions.remove(&device);
        }
    }
}
