//! The client of the server's agent routes: HTTPS with the agent's TLS configuration,
//! timeouts, the device token, and failures sorted by what the caller should do next
//! (the same sorting the MQTT transport uses, so the loops handle both alike).
//!
//! HTTP/1.1, one request per connection at a time. A device's long-poll is parked on
//! the server most of the time, and a parked HTTP/1.1 connection costs the server
//! about a third less memory than an HTTP/2 one (docs/benchmarks.md, the connected
//! fleet). The command poll ends just before telemetry is due
//! ([`crate::service`]), so reports find that connection free; whatever else is sent
//! while the poll is out opens a second connection, closed after [`POOL_IDLE`].

use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use sentinel_protocol::command::{CommandBatch, CommandReport};
use sentinel_protocol::enroll::{EnrollRequest, EnrollResponse, TokenRotation};
use sentinel_protocol::inventory::{InventoryAck, InventoryReport};
use sentinel_protocol::paths;
use sentinel_protocol::telemetry::{TelemetryAck, TelemetryBatch};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::secret::Secret;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an ordinary request may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request carrying a full inventory may take.
pub(crate) const UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// How long an unused connection is kept open.
const POOL_IDLE: Duration = Duration::from_secs(5);
/// How much longer than its `wait` a long-poll may take.
const LONG_POLL_MARGIN: Duration = Duration::from_secs(15);
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// How much of an error body is kept for the log.
const MAX_ERROR_BODY_BYTES: usize = 1024;

/// A failed exchange with the server (an HTTPS request or an MQTT publish or
/// connection), by what the caller should do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// 401, or a CONNECT refused for its credentials: the device was revoked or its
    /// token is wrong. Back off for long.
    #[error("the server refused the device token: the device may have been revoked")]
    Unauthorized,
    /// 429, or MQTT 5 quota exceeded: wait as long as the server asked, when it said.
    #[error("the server is rate-limiting this device")]
    RateLimited {
        /// The server's `Retry-After`, in seconds, at most an hour.
        retry_after: Option<Duration>,
    },
    /// Any other 4xx, or an MQTT 5 refusal: the server will not accept this as it is.
    #[error("the server refused it ({answer}): {detail}")]
    Refused {
        /// The HTTP status, or the MQTT reason code.
        answer: String,
        /// The start of the answer's body, or the MQTT reason string, as text.
        detail: String,
    },
    /// Network errors, timeouts, 5xx and unreadable answers: try again later.
    #[error("the server is unavailable: {0}")]
    Unavailable(String),
}

/// The server's agent routes.
#[derive(Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    /// `https://host[:port][/prefix]`, without a trailing slash.
    base: String,
    token: RwLock<Option<Secret>>,
}

impl ApiClient {
    /// A client of the server at `base` (an `https` URL) trusting what `tls` trusts,
    /// authenticating with `token` once there is one.
    pub fn new(
        base: &str,
        tls: rustls::ClientConfig,
        token: Option<Secret>,
    ) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .https_only(true)
            .http1_only()
            .pool_idle_timeout(POOL_IDLE)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("sentinel-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Unavailable(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: RwLock::new(token),
        })
    }

    /// Replaces the device token for the requests that follow.
    pub fn set_token(&self, token: Secret) {
        *self.token.write().unwrap_or_else(PoisonError::into_inner) = Some(token);
    }

    fn token(&self) -> Option<Secret> {
        self.token
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `POST /enroll`: the enrollment token and facts for a device identity.
    pub async fn enroll(&self, request: &EnrollRequest) -> Result<EnrollResponse, ApiError> {
        let response = self
            .send(Method::POST, paths::ENROLL, Some(request), REQUEST_TIMEOUT)
            .await?;
        json(response).await
    }

    /// `POST /telemetry`.
    pub async fn send_telemetry(&self, batch: &TelemetryBatch) -> Result<TelemetryAck, ApiError> {
        let response = self
            .send(Method::POST, paths::TELEMETRY, Some(batch), REQUEST_TIMEOUT)
            .await?;
        json(response).await
    }

    /// `POST /inventory`.
    pub async fn send_inventory(&self, report: &InventoryReport) -> Result<InventoryAck, ApiError> {
        let response = self
            .send(Method::POST, paths::INVENTORY, Some(report), UPLOAD_TIMEOUT)
            .await?;
        json(response).await
    }

    /// `GET /commands`, waiting up to `wait` on the server when it is not 0.
    pub async fn poll_commands(&self, wait: Duration) -> Result<CommandBatch, ApiError> {
        let (path, timeout) = if wait.is_zero() {
            (paths::COMMANDS.to_owned(), REQUEST_TIMEOUT)
        } else {
            (paths::commands_waiting(wait), wait + LONG_POLL_MARGIN)
        };
        let response = self.send(Method::GET, &path, None::<&()>, timeout).await?;
        json(response).await
    }

    /// `POST /commands/{id}/result`.
    pub async fn report(&self, id: Uuid, report: &CommandReport) -> Result<(), ApiError> {
        let path = paths::command_result(id);
        self.send(Method::POST, &path, Some(report), REQUEST_TIMEOUT)
            .await
            .map(drop)
    }

    /// `POST /token`: a new device token for the current one.
    pub async fn rotate_token(&self) -> Result<TokenRotation, ApiError> {
        let response = self
            .send(Method::POST, paths::TOKEN, None::<&()>, REQUEST_TIMEOUT)
            .await?;
        json(response).await
    }

    /// Sends a request and sorts its failures. A 401 for a token that has just been
    /// replaced (a request that raced a rotation) is retried once with the new token.
    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<Response, ApiError> {
        let url = format!("{}{path}", self.base);
        let build = |token: Option<&Secret>| -> RequestBuilder {
            let mut request = self.http.request(method.clone(), &url).timeout(timeout);
            if let Some(token) = token {
                request = request.bearer_auth(token.expose());
            }
            match body {
                Some(body) => request.json(body),
                None => request,
            }
        };
        let token = self.token();
        let mut response = transmit(build(token.as_ref())).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            let current = self.token();
            if current != token {
                response = transmit(build(current.as_ref())).await?;
            }
        }
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        Err(match status {
            StatusCode::UNAUTHORIZED => ApiError::Unauthorized,
            StatusCode::TOO_MANY_REQUESTS => ApiError::RateLimited {
                retry_after: retry_after(&response),
            },
            status if status.is_client_error() => ApiError::Refused {
                answer: status.to_string(),
                detail: error_body(response).await,
            },
            status => ApiError::Unavailable(format!("{status}: {}", error_body(response).await)),
        })
    }
}

async fn transmit(request: RequestBuilder) -> Result<Response, ApiError> {
    request
        .send()
        .await
        .map_err(|e| ApiError::Unavailable(error_chain(&e)))
}

/// The error and its causes, which is where reqwest puts what actually went wrong.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn json<T: DeserializeOwned>(response: Response) -> Result<T, ApiError> {
    response
        .json()
        .await
        .map_err(|e| ApiError::Unavailable(format!("unreadable answer: {}", error_chain(&e))))
}

/// The `Retry-After` delay in seconds, if the server gave one (capped at an hour).
fn retry_after(response: &Response) -> Option<Duration> {
    let seconds: u64 = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// The start of an error answer's body, for the log: opaque text, cut short.
async fn error_body(mut response: Response) -> String {
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(MAX_ERROR_BODY_BYTES);
    String::from_utf8_lossy(&body).trim().to_owned()
}
