//! HTTPS to the server as agents and members reach it: TCP from a chosen source
//! address, TLS trusting only the server's CA, then HTTP/1.1, one request at a time,
//! as the real agent speaks it ([`Http1`], pooled per device by [`crate::pool`]), or
//! HTTP/2, as a member's browser does ([`Connection`]). The TCP and TLS steps serve
//! the MQTT devices too ([`crate::mqtt::link`]).
//!
//! Failures are sorted into [`Failure`] kinds, which is how the report counts
//! errors.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Why a request did not get a successful answer.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Failure {
    /// TCP connect failed (refused, no ports left, …).
    Connect,
    /// The TLS or HTTP handshake failed.
    Handshake,
    /// The connection broke while the request was out.
    Transport,
    /// No answer within the request's time limit.
    Timeout,
    /// The server answered with this status.
    Status(u16),
    /// The MQTT gateway refused the CONNECT (or a SUBSCRIBE) with this code.
    Refused(u8),
    /// A successful answer whose body is not what the protocol says.
    Decode,
}

impl Failure {
    /// Whether the server itself failed (5xx), as opposed to refusing the request or
    /// the network failing.
    pub fn is_server_error(&self) -> bool {
        matches!(self, Self::Status(s) if *s >= 500)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect => f.write_str("connect"),
            Self::Handshake => f.write_str("handshake"),
            Self::Transport => f.write_str("connection lost"),
            Self::Timeout => f.write_str("timeout"),
            Self::Status(s) => write!(f, "HTTP {s}"),
            Self::Refused(code) => write!(f, "MQTT refusal {code:#04x}"),
            Self::Decode => f.write_str("unreadable answer"),
        }
    }
}

/// A client TLS configuration trusting only the CAs in `ca_pem`, offering the
/// ALPN protocol `alpn` (none: MQTT).
pub fn tls_config(
    ca_pem: &str,
    alpn: Option<&[u8]>,
) -> Result<Arc<rustls::ClientConfig>, SetupError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| SetupError::Ca(e.to_string()))?;
        roots.add(cert)?;
    }
    if roots.is_empty() {
        return Err(SetupError::Ca("no certificate in the PEM text".into()));
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.into_iter().map(<[u8]>::to_vec).collect();
    Ok(Arc::new(config))
}

/// `host` as the name the server's certificate must carry.
pub fn server_name(host: &str) -> Result<ServerName<'static>, SetupError> {
    ServerName::try_from(host.to_owned())
        .map_err(|e| SetupError::Other(format!("server name {host:?}: {e}")))
}

/// A TCP connection to `addr` from `source` (any local address when `None`),
/// without Nagle's delay.
pub async fn tcp(addr: SocketAddr, source: Option<IpAddr>) -> Result<TcpStream, Failure> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|_| Failure::Connect)?;
    if let Some(ip) = source {
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(|_| Failure::Connect)?;
    }
    let tcp = tokio::time::timeout(Duration::from_secs(10), socket.connect(addr))
        .await
        .map_err(|_| Failure::Timeout)?
        .map_err(|_| Failure::Connect)?;
    tcp.set_nodelay(true).map_err(|_| Failure::Connect)?;
    Ok(tcp)
}

/// The TLS handshake on `tcp`, checking the certificate against `name` (at most 20 s).
pub async fn handshake(
    connector: &TlsConnector,
    name: &ServerName<'static>,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, Failure> {
    tokio::time::timeout(
        Duration::from_secs(20),
        connector.connect(name.clone(), tcp),
    )
    .await
    .map_err(|_| Failure::Timeout)?
    .map_err(|_| Failure::Handshake)
}

/// Where the server is and how to reach it.
#[derive(Clone)]
pub struct Target {
    /// The socket address connected to.
    pub addr: SocketAddr,
    /// `localhost:8443`: the authority of every request (the certificate's name).
    pub authority: String,
    server_name: ServerName<'static>,
    h2: Arc<rustls::ClientConfig>,
    http1: Arc<rustls::ClientConfig>,
}

/// Errors that stop the load generator before it starts.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the CA certificate: {0}")]
    Ca(String),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("{0}")]
    Other(String),
}

impl Target {
    /// The server at `addr`, known by `host` (a name its certificate carries), whose
    /// certificate is issued by the CA in `ca_pem`.
    pub fn new(addr: SocketAddr, host: &str, ca_pem: &str) -> Result<Self, SetupError> {
        Ok(Self {
            addr,
            authority: format!("{host}:{}", addr.port()),
            server_name: server_name(host)?,
            h2: tls_config(ca_pem, Some(b"h2"))?,
            http1: tls_config(ca_pem, Some(b"http/1.1"))?,
        })
    }

    /// `https://authority`: what the server takes as its origin.
    pub fn origin(&self) -> String {
        format!("https://{}", self.authority)
    }

    /// A TLS connection from `source` (any local address when `None`), speaking
    /// HTTP/2 when `h2`, else HTTP/1.1.
    pub async fn tls(
        &self,
        source: Option<IpAddr>,
        h2: bool,
    ) -> Result<TlsStream<TcpStream>, Failure> {
        let tcp = tcp(self.addr, source).await?;
        let config = if h2 { &self.h2 } else { &self.http1 };
        handshake(&TlsConnector::from(config.clone()), &self.server_name, tcp).await
    }

    /// A new HTTP/2 connection from `source`.
    pub async fn connect(&self, source: Option<IpAddr>) -> Result<Connection, Failure> {
        let tls = self.tls(source, true).await?;
        let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|_| Failure::Handshake)?;
        tokio::spawn(async move {
            // Ends when the connection closes; its requests see the error.
            let _ = connection.await;
        });
        Ok(Connection {
            sender,
            origin: self.origin(),
        })
    }

    /// A new HTTP/1.1 connection from `source`.
    pub async fn connect_http1(&self, source: Option<IpAddr>) -> Result<Http1, Failure> {
        let tls = self.tls(source, false).await?;
        let (sender, connection) = http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|_| Failure::Handshake)?;
        tokio::spawn(async move {
            // Ends when the connection closes or its sender is dropped.
            let _ = connection.await;
        });
        Ok(Http1 {
            sender,
            authority: self.authority.clone(),
        })
    }
}

/// One HTTP/2 connection; cheap to clone, every clone sends on the same connection.
#[derive(Clone)]
pub struct Connection {
    sender: http2::SendRequest<Full<Bytes>>,
    origin: String,
}

/// One HTTP/1.1 connection: one request at a time; dropping it closes it.
pub struct Http1 {
    sender: http1::SendRequest<Full<Bytes>>,
    authority: String,
}

/// A request as the simulated clients make them.
pub struct Call<'a> {
    pub method: Method,
    pub path: &'a str,
    pub body: Option<Vec<u8>>,
    pub headers: &'a [(&'a str, &'a str)],
    pub timeout: Duration,
}

impl<'a> Call<'a> {
    pub fn get(path: &'a str) -> Self {
        Self {
            method: Method::GET,
            path,
            body: None,
            headers: &[],
            timeout: Duration::from_secs(30),
        }
    }

    pub fn post(path: &'a str, body: Vec<u8>) -> Self {
        Self {
            method: Method::POST,
            path,
            body: Some(body),
            headers: &[],
            timeout: Duration::from_secs(30),
        }
    }

    pub fn delete(path: &'a str) -> Self {
        Self {
            method: Method::DELETE,
            path,
            body: None,
            headers: &[],
            timeout: Duration::from_secs(30),
        }
    }

    pub fn headers(mut self, headers: &'a [(&'a str, &'a str)]) -> Self {
        self.headers = headers;
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// A successful answer: its status and body.
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
    /// `Set-Cookie`, when the server set one (login).
    pub cookie: Option<String>,
}

impl Answer {
    /// The body as `T`, or [`Failure::Decode`].
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Failure> {
        serde_json::from_slice(&self.body).map_err(|_| Failure::Decode)
    }
}

impl Connection {
    /// Whether the connection can still carry requests.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Sends `call` with `bearer` (if any); a 2xx answer is `Ok`, anything else a
    /// [`Failure`].
    pub async fn send(&self, call: Call<'_>, bearer: Option<&str>) -> Result<Answer, Failure> {
        let (timeout, uri) = (call.timeout, format!("{}{}", self.origin, call.path));
        let request = request(call, uri, None, bearer)?;
        let mut sender = self.sender.clone();
        exchange(timeout, async move {
            sender.ready().await?;
            sender.send_request(request).await
        })
        .await
    }
}

impl Http1 {
    /// Whether the connection can take another request.
    pub fn is_open(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Sends `call` with `bearer` (if any); a 2xx answer is `Ok`, anything else a
    /// [`Failure`].
    pub async fn send(&mut self, call: Call<'_>, bearer: Option<&str>) -> Result<Answer, Failure> {
        let (timeout, uri) = (call.timeout, call.path.to_owned());
        let request = request(call, uri, Some(&self.authority), bearer)?;
        let sender = &mut self.sender;
        exchange(timeout, async move {
            sender.ready().await?;
            sender.send_request(request).await
        })
        .await
    }
}

/// `call` as a request for `uri`, with a `Host` header when `host` is given (HTTP/1.1).
fn request(
    call: Call<'_>,
    uri: String,
    host: Option<&str>,
    bearer: Option<&str>,
) -> Result<Request<Full<Bytes>>, Failure> {
    let mut request = Request::builder().method(call.method).uri(uri);
    if let Some(host) = host {
        request = request.header("host", host);
    }
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if call.body.is_some() {
        request = request.header("content-type", "application/json");
    }
    for (name, value) in call.headers {
        request = request.header(*name, *value);
    }
    request
        .body(Full::new(Bytes::from(call.body.unwrap_or_default())))
        .map_err(|_| Failure::Transport)
}

/// The answer to the request `sent` sends, read whole within `timeout`; a 2xx answer
/// is `Ok`, anything else a [`Failure`].
async fn exchange(
    timeout: Duration,
    sent: impl Future<Output = hyper::Result<Response<Incoming>>>,
) -> Result<Answer, Failure> {
    let exchange = async move {
        let response = sent.await.map_err(|_| Failure::Transport)?;
        let status = response.status();
        let cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_owned);
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|_| Failure::Transport)?
            .to_bytes();
        Ok::<_, Failure>(Answer {
            status,
            body,
            cookie,
        })
    };
    let answer = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| Failure::Timeout)??;
    if answer.status.is_success() {
        Ok(answer)
    } else {
        Err(Failure::Status(answer.status.as_u16()))
    }
}
