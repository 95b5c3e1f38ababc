//! The MQTT device gateway's listener: accepts TCP connections up to the
//! connection limit, performs the TLS handshake with the server's own
//! certificate (or none, on loopback, when `mqtt_plain` says so), and hands each
//! connection to [`sentinel_http::mqtt::Gateway`]. On shutdown it stops
//! accepting; sessions tell their devices the server is going away.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sentinel_http::mqtt::Gateway;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::StartError;
use crate::listener::{self, Connections};

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
    let mut connections = Connections::new("MQTT", max_connections);
    while let Some((stream, peer)) = connections.accept(&listener, &mut stopped).await {
        let _ = stream.set_nodelay(true);
        let gateway = gateway.clone();
        let tls = tls.clone();
        let stopping = stopped.clone();
        // Each phase is boxed: a task's own future is as large as its largest
        // state, so inline it kept the TLS handshake's state (and, on plain
        // MQTT, the TLS session's) for the life of every connection.
        connections.serve(async move {
            match tls {
                Some(acceptor) => {
                    // The TLS stream goes straight into the boxed session: a
                    // binding of it here would keep its size in this task.
                    let session = Box::pin(listener::handshake(&acceptor, stream, peer))
                        .await
                        .map(|stream| Box::pin(gateway.serve(stream, peer, stopping)));
                    if let Some(session) = session {
                        session.await;
                    }
                }
                None => Box::pin(gateway.serve(stream, peer, stopping)).await,
            }
        });
    }
    drop(listener);
    // Sessions see `stopped` themselves and say goodbye to their devices.
    connections
        .drain(std::future::ready(()), DRAIN_TIMEOUT)
        .await;
}
