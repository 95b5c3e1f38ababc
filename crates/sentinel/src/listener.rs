//! Accepting TCP connections, as the HTTPS server and the MQTT gateway both
//! do: a bounded number at once (more are closed, with a warning at most every
//! 10 s), accept errors backed off, finished connections reaped, the TLS
//! handshake under a deadline, and draining on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A client has this long to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The connections being served by one listener.
pub struct Connections {
    /// What they are, for the logs (`HTTP`, `MQTT`).
    protocol: &'static str,
    tasks: JoinSet<()>,
    slots: Arc<Semaphore>,
    max_connections: usize,
    last_full_warning: Option<Instant>,
}

impl Connections {
    pub fn new(protocol: &'static str, max_connections: usize) -> Self {
        Connections {
            protocol,
            tasks: JoinSet::new(),
            slots: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            last_full_warning: None,
        }
    }

    /// The next connection `listener` accepts, or `None` once `stopped`
    /// changes. Reaps finished connections while it waits.
    pub async fn accept(
        &mut self,
        listener: &TcpListener,
        stopped: &mut watch::Receiver<bool>,
    ) -> Option<(TcpStream, SocketAddr)> {
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(connection) => return Some(connection),
                    Err(e) => {
                        // Out of file descriptors and the like: back off briefly.
                        tracing::warn!(protocol = self.protocol, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
                _ = stopped.changed() => return None,
            }
        }
    }

    /// Serves a connection with `serve` if a slot is free; otherwise drops it
    /// (closing the connection `serve` owns).
    pub fn serve(&mut self, serve: impl Future<Output = ()> + Send + 'static) {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            if self
                .last_full_warning
                .is_none_or(|at| at.elapsed() > Duration::from_secs(10))
            {
                tracing::warn!(
                    protocol = self.protocol,
                    max_connections = self.max_connections,
                    "connection limit reached; closing new connections"
                );
                self.last_full_warning = Some(Instant::now());
            }
            return;
        };
        self.tasks.spawn(async move {
            let _slot = slot;
            serve.await;
        });
    }

    /// After `shutdown` (which tells the connections to end), waits up to
    /// `timeout` for them to finish, then aborts whatever is left, so nothing
    /// runs after the stores close.
    pub async fn drain(mut self, shutdown: impl Future<Output = ()>, timeout: Duration) {
        let drained = async {
            shutdown.await;
            while self.tasks.join_next().await.is_some() {}
        };
        if tokio::time::timeout(timeout, drained).await.is_err() {
            tracing::warn!(
                protocol = self.protocol,
                "connections still open after the drain timeout are closed"
            );
        }
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// The TLS handshake of a new connection, within [`HANDSHAKE_TIMEOUT`];
/// `None` (logged) when it fails or times out.
pub async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(peer = %peer, "TLS handshake timed out");
            None
        }
    }
}
