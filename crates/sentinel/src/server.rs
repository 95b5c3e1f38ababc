//! The server's lifecycle: open the data directory, keys, TLS and stores; bind the
//! listeners; serve HTTPS (or plain HTTP to trusted proxies only) and the MQTT
//! device gateway until told to stop; then drain connections, sign the audit
//! logs' heads and close the stores.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use sentinel_core::Clock;
use sentinel_decoders::{DecoderPool, Limits};
use sentinel_http::ingest::Ingest;
use sentinel_http::{AppState, router};
use sentinel_store::Stores;
use sentinel_vulns::Vulns;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::StartError;
use crate::config::{AuditSettings, Config, Tls};
use crate::data_dir::{DataDir, DataDirLock, MasterKey};
use crate::listener::{self, Connections};
use crate::{audit, mqtt, setup_link, tls};

/// On shutdown, open connections get this long to finish their requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent requests on one HTTP/2 connection.
const H2_MAX_STREAMS: u32 = 100;
/// The most an HTTP/1.1 connection buffers, and so the largest request head it
/// takes (431 beyond). hyper's default, 400 KiB, let the read buffer of every
/// agent that had uploaded an inventory stay at 256 KiB while its poll was
/// parked on the connection (docs/benchmarks.md, the connected fleet).
const HTTP1_MAX_BUFFER: usize = 16 * 1024;
/// How often expired sessions are purged and queued audit events delivered.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);
/// Threads that run IoT payload decoders (each decode is bounded in time,
/// memory and stack; see sentinel_decoders::Limits).
const DECODER_THREADS: std::num::NonZeroUsize = std::num::NonZeroUsize::MIN.saturating_add(1);
/// How often audit retention runs.
const PRUNE_INTERVAL: Duration = Duration::from_secs(86_400);

/// A started server.
#[derive(Debug)]
pub struct RunningServer {
    /// The address actually bound (useful with port 0).
    pub local_addr: SocketAddr,
    /// Where the MQTT device gateway listens, unless it is off.
    pub mqtt_addr: Option<SocketAddr>,
    /// The CA certificate that issued the server certificate, when Sentinel made it.
    pub ca_cert_pem: Option<String>,
    /// The one-time setup link, while the server has no users.
    pub setup_url: Option<String>,
    stop: watch::Sender<bool>,
    serving: JoinHandle<()>,
    mqtt_serving: Option<JoinHandle<()>>,
    checkpointer: JoinHandle<()>,
    stores: Arc<Stores>,
    /// The workers ingesting uplinks from external MQTT brokers.
    ingest: Arc<Ingest>,
    /// Held until the server has stopped.
    _lock: DataDirLock,
}

impl RunningServer {
    /// Stops accepting, lets open requests finish (bounded), closes the stores.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        // Unacknowledged uplinks stay with their brokers for the next start.
        self.ingest.stop_all().await;
        if self.serving.await.is_err() {
            tracing::error!("the server task ended abnormally");
        }
        if let Some(mqtt) = self.mqtt_serving
            && mqtt.await.is_err()
        {
            tracing::error!("the MQTT gateway ended abnormally");
        }
        if self.checkpointer.await.is_err() {
            tracing::error!("the audit checkpointer ended abnormally");
        }
        self.stores.close().await;
        tracing::info!("stopped");
    }
}

/// Starts the server described by `config`, reading time from `clock`.
pub async fn start(config: &Config, clock: Arc<dyn Clock>) -> Result<RunningServer, StartError> {
    let data_dir = DataDir::open(&config.data_dir)?;
    let lock = data_dir.lock("starting a server on it")?;
    // Loaded (and created on first start) now so that an exposed key stops the
    // server before it serves anything.
    let master_key = MasterKey::load_or_create(&data_dir.master_key_file())?;
    let tls = tls::prepare(&config.tls, &data_dir, config.listen, clock.now())?;

    let location = config.store_location(&data_dir);
    let stores = Arc::new(Stores::open(&location, clock.as_ref()).await?);
    let audit_key = Arc::new(audit::signing_key(&data_dir)?);

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError::io(format!("listening on {}", config.listen), e))?;
    let local_addr = listener
        .local_addr()
        .map_err(|e| StartError::io("reading the bound address", e))?;
    let mqtt_listener = match config.mqtt {
        Some(settings) => Some((mqtt::bind(settings.listen).await?, settings.plain)),
        None => None,
    };
    let mqtt_addr = match &mqtt_listener {
        Some((listener, _)) => Some(
            listener
                .local_addr()
                .map_err(|e| StartError::io("reading the bound MQTT address", e))?,
        ),
        None => None,
    };

    let origin = public_origin(config, local_addr);
    let setup_url = setup_link::prepare(&stores, clock.as_ref(), &data_dir, &origin).await?;

    let vulns = Arc::new(Vulns::new(audit_key.clone()));
    let state = AppState::new(
        stores.clone(),
        clock.clone(),
        config.http.clone(),
        data_dir.sealing_key(&master_key)?,
        vulns.clone(),
        DecoderPool::new(DECODER_THREADS, Limits::default())
            .map_err(|e| StartError::io("starting the decoder threads", e))?,
    );
    // Started before the listeners: an uplink needs no request to arrive.
    state.ingest.start_all(&state).await?;
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(sweep_rate_limits(state.clone(), stopped.clone()));
    tokio::spawn(vulns.matcher.clone().run(
        stores.clone(),
        vulns.feeds.clone(),
        clock.clone(),
        stopped.clone(),
    ));
    let mqtt_tls = tls.as_ref().map(|t| mqtt::acceptor(&t.server_config));
    if let Some((_, false)) = &mqtt_listener
        && mqtt_tls.is_none()
    {
        // Configuration refuses this; never fall back to plain MQTT silently.
        return Err(StartError::Refused(
            "the MQTT gateway needs the server's certificate".into(),
        ));
    }
    let state_ingest = state.ingest.clone();
    let app = router(state.clone());
    let acceptor = tls
        .as_ref()
        .map(|t| TlsAcceptor::from(t.server_config.clone()));
    let trusted_proxies = match config.tls {
        Tls::BehindProxy => Some(config.http.trusted_proxies.clone()),
        _ => None,
    };
    tracing::info!(
        address = %local_addr,
        scheme = if acceptor.is_some() { "https" } else { "http" },
        store = stores.control().engine(),
        data_dir = %data_dir.path().display(),
        master_key_id = %master_key.id(),
        audit_key_id = %audit_key.verifying_key().key_id(),
        "serving"
    );
    let checkpointer = audit::spawn_checkpointer(
        stores.clone(),
        audit_key,
        clock.clone(),
        config.audit.checkpoint_interval,
        stopped.clone(),
    );
    tokio::spawn(maintain(
        stores.clone(),
        clock,
        config.http.session_idle_timeout,
        config.audit.clone(),
        data_dir,
        stopped.clone(),
    ));
    let max_connections = connection_limit(config.max_connections);
    let mqtt_serving = mqtt_listener.map(|(listener, plain)| {
        tracing::info!(
            address = ?mqtt_addr,
            scheme = if plain { "mqtt" } else { "mqtts" },
            "serving the MQTT device gateway"
        );
        tokio::spawn(mqtt::serve(
            listener,
            sentinel_http::mqtt::Gateway::new(state),
            if plain { None } else { mqtt_tls },
            max_connections,
            stopped.clone(),
        ))
    });
    let serving = tokio::spawn(serve(
        listener,
        app,
        acceptor,
        trusted_proxies,
        max_connections,
        stopped,
    ));
    Ok(RunningServer {
        local_addr,
        mqtt_addr,
        mqtt_serving,
        ca_cert_pem: tls.and_then(|t| t.ca_cert_pem),
        setup_url,
        stop,
        serving,
        checkpointer,
        stores,
        ingest: state_ingest,
        _lock: lock,
    })
}

/// The origin people reach this server at, for links the server prints.
fn public_origin(config: &Config, addr: SocketAddr) -> String {
    if let Some(origin) = &config.http.public_origin {
        return origin.clone();
    }
    let scheme = if config.tls == Tls::BehindProxy {
        "http"
    } else {
        "https"
    };
    let ip = addr.ip();
    let host = if ip.is_loopback() || ip.is_unspecified() {
        String::from("localhost")
    } else if ip.is_ipv6() {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    format!("{scheme}://{host}:{}", addr.port())
}

/// File descriptors kept free for databases, certificates and logs when the
/// connection limit is fitted to the process's open-file limit.
const RESERVED_FILES: usize = 256;

/// `configured`, lowered to what the process's open-file limit allows.
fn connection_limit(configured: usize) -> usize {
    let Some(open_files) = open_file_limit() else {
        return configured;
    };
    let fits = open_files.saturating_sub(RESERVED_FILES).max(1);
    if configured > fits {
        tracing::warn!(
            configured,
            open_file_limit = open_files,
            using = fits,
            "max_connections exceeds what the open-file limit allows; raise the limit (ulimit -n) to serve more"
        );
        return fits;
    }
    configured
}

/// The soft limit on open files, from /proc (Linux); None where unknown.
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Accepts connections until `stopped`, then drains them: open requests get
/// [`DRAIN_TIMEOUT`] to finish, then whatever is left is aborted, so nothing runs
/// after the stores close.
async fn serve(
    listener: TcpListener,
    app: axum::Router,
    acceptor: Option<TlsAcceptor>,
    trusted_proxies: Option<Vec<ipnet::IpNet>>,
    max_connections: usize,
    mut stopped: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .max_buf_size(HTTP1_MAX_BUFFER)
        // As long as the TLS handshake may take.
        .header_read_timeout(listener::HANDSHAKE_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_STREAMS)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(builder);
    let mut connections = Connections::new("HTTP", max_connections);
    while let Some((stream, peer)) = connections.accept(&listener, &mut stopped).await {
        // Without Nagle's delay: a parked poll's body follows its head at once
        // when a command comes, instead of waiting up to 40 ms for the agent
        // to acknowledge the head.
        let _ = stream.set_nodelay(true);
        if let Some(proxies) = &trusted_proxies
            && !proxies.iter().any(|net| net.contains(&peer.ip()))
        {
            tracing::warn!(peer = %peer.ip(), "refused a plain-HTTP connection from a peer that is not a trusted proxy");
            continue;
        }
        let app = app.clone();
        let builder = builder.clone();
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        let stopping = stopped.clone();
        connections.serve(async move {
            let service = app.map_request(
                move |mut request: axum::http::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                },
            );
            let service = TowerToHyperService::new(service);
            let result = match acceptor {
                // Each phase boxed, as in the MQTT gateway, and the TLS
                // stream and the connection built inside the expression that
                // boxes them: an idle connection's task then holds neither
                // the handshake's state, nor the other branch's, nor room for
                // a binding of the stream or the connection.
                Some(acceptor) => {
                    let connection = Box::pin(listener::handshake(&acceptor, stream, peer))
                        .await
                        .filter(|_| !*stopping.borrow())
                        .map(|tls| {
                            Box::pin(
                                watcher.watch(
                                    builder
                                        .serve_connection_with_upgrades(TokioIo::new(tls), service)
                                        .into_owned(),
                                ),
                            )
                        });
                    match connection {
                        Some(connection) => connection.await,
                        None => return,
                    }
                }
                None => {
                    Box::pin(
                        watcher.watch(
                            builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                                .into_owned(),
                        ),
                    )
                    .await
                }
            };
            if let Err(e) = result {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.drain(graceful.shutdown(), DRAIN_TIMEOUT).await;
}

/// Keeps the rate limiters small: drops the keys whose state is as good as new.
async fn sweep_rate_limits(state: AppState, mut stopped: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(sentinel_http::rate_limit::SWEEP_INTERVAL);
    loop {
        tokio::select! {
            _ = interval.tick() => state.limits.sweep(),
            _ = stopped.changed() => return,
        }
    }
}

/// Periodic housekeeping, starting at once: purge dead sessions; deliver audit
/// events a failure or a crash left queued; prune audit entries past retention
/// (daily); remove the setup link once used.
async fn maintain(
    stores: Arc<Stores>,
    clock: Arc<dyn Clock>,
    idle_timeout: Duration,
    audit_settings: AuditSettings,
    data_dir: DataDir,
    mut stopped: watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(MAINTENANCE_INTERVAL);
    let mut last_prune: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stopped.changed() => return,
        }
        if let Err(e) = stores.flush_all_audit_outboxes().await {
            tracing::warn!(error = %e, "could not deliver queued audit events");
        }
        if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_INTERVAL) {
            last_prune = Some(Instant::now());
            if let Err(e) = audit::prune_all(&stores, clock.as_ref(), &audit_settings).await {
                tracing::warn!(error = %e, "could not prune the audit logs");
            }
        }
        match stores
            .control()
            .purge_sessions(clock.now(), idle_timeout)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "purged expired sessions"),
            Err(e) => tracing::warn!(error = %e, "could not purge expired sessions"),
        }
        if data_dir.setup_url_file().exists()
            && stores.control().count_users().await.is_ok_and(|n| n > 0)
        {
            setup_link::remove_leftover(&data_dir);
        }
    }
}
