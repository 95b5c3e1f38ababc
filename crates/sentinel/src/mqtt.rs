//! The MQTT device gateway's listener: accepts TCP connections up to the
//! connection limit, performs the TLS handshake with the server's own
//! certificate (or none, on loopback, when `mqtt_plain` says so), and hands each
//! connection to [`sentinel_http::mqtt::Gateway`]. On shutdown it stops
//! accepting; sessions tell their devices the server is going away.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sentinel_http::mqtt::Gateway;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::StartError;

/// A client has this long to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// On shutdown, sessions get this long to say goodbye.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| StartError::io(format!("listening for MQTT on {addr}"), e))
}

/// The TLS settings of the gateway: the HTTPS server's certificate and key,
/// without HTTP's ALPN protocols (MQTT clients ask for none, or for `mqtt`).
pub fn acceptor(https: &rustls::ServerConfig) -> TlsAcceptor {
    let mut config = https.clone();
    config.alpn_protocols.clear();
    TlsAcceptor::from(Arc::new(config))
}

/// Accepts and serves connections until `stopped`.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    tls: Option<TlsAcceptor>,
    max_connections: usize,
    mut stopped: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut connections = JoinSet::new();
    let mut last_full_warning: Option<Instant> = None;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(e) => {
                    tracing::warn!(error = %e, "MQTT accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            _ = stopped.changed() => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if last_full_warning.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                tracing::warn!(
                    max_connections,
                    "MQTT connection limit reached; closing new connections"
                );
                last_full_warning = Some(Instant::now());
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let gateway = gateway.clone();
        let tls = tls.clone();
        let stopping = stopped.clone();
        connections.spawn(async move {
            let _slot = slot;
            match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => gateway.serve(stream, peer, stopping).await,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "MQTT TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(%peer, "MQTT TLS handshake timed out"),
                    }
                }
                None => gateway.serve(stream, peer, stopping).await,
            }
        });
    }
    drop(listener);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_TIMEOUT, drained).await.is_err() {
        tracing::warn!("MQTT connections still open after the drain timeout are closed");
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}
