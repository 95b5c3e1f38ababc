//! A stub Sentinel server for the agent's HTTP loops: the agent routes over real TLS
//! (its own CA, made with rcgen), recording what the agent sends and handing out the
//! commands a test queues; and helpers to enroll and run the real `sentinel-agent`
//! binary against it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sentinel_protocol::command::{
    Command, CommandAction, CommandBatch, CommandReport, CommandStatus, Interpreter,
};
use sentinel_protocol::enroll::{AgentSettings, EnrollRequest, EnrollResponse, TokenRotation};
use sentinel_protocol::inventory::{InventoryAck, InventoryReport, InventoryStatus};
use sentinel_protocol::paths;
use sentinel_protocol::signing::{CommandSigner, SignedCommand};
use sentinel_protocol::telemetry::{TelemetryAck, TelemetryBatch};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use uuid::Uuid;

/// The enrollment token the stub accepts.
pub const ENROLLMENT_TOKEN: &str = "set_stub-enrollment-token";

/// Settings that keep tests short: a sample a second, one-second long-polls.
pub fn quick_settings() -> AgentSettings {
    AgentSettings {
        telemetry_interval_seconds: 1,
        inventory_interval_seconds: 3600,
        long_poll_seconds: 1,
        poll_interval_seconds: 1,
        token_rotation_seconds: 3600,
    }
}

/// What the stub has seen and will do.
#[derive(Debug)]
pub struct Record {
    pub device_id: Uuid,
    pub org_id: Uuid,
    pub settings: AgentSettings,
    pub enrollments: Vec<EnrollRequest>,
    /// Device tokens the server accepts now.
    pub valid_tokens: Vec<String>,
    /// Every device token issued, oldest first.
    pub issued_tokens: Vec<String>,
    /// The bearer token of every authenticated request, in order.
    pub tokens_used: Vec<String>,
    /// Answer 401 to every agent request.
    pub revoked: bool,
    pub unauthorized: u32,
    /// Answer 503 to this many telemetry posts.
    pub telemetry_outage: u32,
    /// And keep answering 503 until this long after the first post.
    pub telemetry_outage_at_least: Option<std::time::Duration>,
    /// Answer 429 with `Retry-After: 2` to this many telemetry posts.
    pub telemetry_rate_limited: u32,
    /// When each telemetry post arrived.
    pub telemetry_attempts: Vec<tokio::time::Instant>,
    pub telemetry: Vec<TelemetryBatch>,
    pub inventory: Vec<InventoryReport>,
    pub inventory_digest: Option<String>,
    pub queue: VecDeque<SignedCommand>,
    pub reports: Vec<(Uuid, CommandReport)>,
    /// The HTTP version of every request, in order.
    pub versions: Vec<axum::http::Version>,
    /// The `wait` of every long-poll, in order.
    pub poll_waits: Vec<Duration>,
    /// Command polls being answered now.
    pub polls_open: u32,
    /// Telemetry posts that arrived while a poll was open.
    pub telemetry_during_poll: u32,
}

impl Record {
    /// The reports on command `id`, in arrival order.
    pub fn reports_on(&self, id: Uuid) -> Vec<&CommandReport> {
        self.reports
            .iter()
            .filter(|(reported, _)| *reported == id)
            .map(|(_, report)| report)
            .collect()
    }

    /// The final report on command `id`, if it came.
    pub fn final_report(&self, id: Uuid) -> Option<CommandReport> {
        self.reports_on(id)
            .into_iter()
            .find(|report| report.status.is_final())
            .cloned()
    }
}

type Shared = Arc<Mutex<Record>>;

/// A running stub server.
pub struct Stub {
    pub url: String,
    pub ca_pem: String,
    pub signer: CommandSigner,
    record: Shared,
    /// Where the token and CA files for enrollment are.
    files: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Stub {
    /// A stub on a free loopback port, with `settings`.
    pub async fn start(settings: AgentSettings) -> Self {
        let (ca_pem, tls) = tls_material();
        let signer = CommandSigner::generate().unwrap().0;
        let record = Arc::new(Mutex::new(Record {
            device_id: Uuid::new_v4(),
            org_id: Uuid::new_v4(),
            settings,
            enrollments: Vec::new(),
            valid_tokens: Vec::new(),
            issued_tokens: Vec::new(),
            tokens_used: Vec::new(),
            revoked: false,
            unauthorized: 0,
            telemetry_outage: 0,
            telemetry_outage_at_least: None,
            telemetry_rate_limited: 0,
            telemetry_attempts: Vec::new(),
            telemetry: Vec::new(),
            inventory: Vec::new(),
            inventory_digest: None,
            queue: VecDeque::new(),
            reports: Vec::new(),
            versions: Vec::new(),
            poll_waits: Vec::new(),
            polls_open: 0,
            telemetry_during_poll: 0,
        }));
        let command_key = signer.public_key_hex();
        let app = Router::new()
            .route(
                paths::ENROLL,
                post(move |state: State<Shared>, body: Json<EnrollRequest>| {
                    enroll(state, body, command_key.clone())
                }),
            )
            .route(paths::TELEMETRY, post(telemetry))
            .route(paths::INVENTORY, post(inventory))
            .route(paths::COMMANDS, get(commands))
            .route("/api/v1/agent/commands/{id}/result", post(result))
            .route(paths::TOKEN, post(rotate))
            .layer(axum::middleware::from_fn_with_state(
                record.clone(),
                note_version,
            ))
            .with_state(record.clone());
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let listener = TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(tls),
        };
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let files = tempfile::tempdir().unwrap();
        std::fs::write(files.path().join("token"), format!("{ENROLLMENT_TOKEN}\n")).unwrap();
        std::fs::write(files.path().join("ca.pem"), &ca_pem).unwrap();
        Self {
            url: format!("https://{addr}"),
            ca_pem,
            signer,
            record,
            files,
            server,
        }
    }

    /// What the stub has seen, locked.
    pub fn record(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap()
    }

    /// The enrollment token file.
    pub fn token_file(&self) -> PathBuf {
        self.files.path().join("token")
    }

    /// The stub's CA certificate file.
    pub fn ca_file(&self) -> PathBuf {
        self.files.path().join("ca.pem")
    }

    /// A command for the enrolled device, valid for an hour.
    pub fn command(&self, action: CommandAction) -> Command {
        let record = self.record();
        let now = sentinel_agent::clock::unix_now();
        Command {
            id: Uuid::new_v4(),
            org_id: record.org_id,
            device_id: record.device_id,
            issued_at: now,
            expires_at: now + 3600,
            issued_by: "ada@example.org".into(),
            action,
        }
    }

    /// A `sh` script command with a timeout.
    pub fn script(&self, script: &str, timeout_seconds: u32) -> Command {
        self.command(CommandAction::RunScript {
            interpreter: Interpreter::Sh,
            script: script.into(),
            timeout_seconds,
        })
    }

    /// `command` signed with the organization's key.
    pub fn sign(&self, command: &Command) -> SignedCommand {
        self.signer.sign(command).unwrap()
    }

    /// Queues signed commands for the agent's next poll.
    pub fn push(&self, commands: impl IntoIterator<Item = SignedCommand>) {
        self.record().queue.extend(commands);
    }

    /// Waits until `found` finds something in the record (at most 20 s).
    pub async fn wait_for<T>(&self, what: &str, found: impl Fn(&Record) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(value) = found(&self.record()) {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {:#?}",
                self.record()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits for the final report on command `id`.
    pub async fn final_report(&self, id: Uuid) -> CommandReport {
        self.wait_for(&format!("the final report on {id}"), |record| {
            record.final_report(id)
        })
        .await
    }

    /// Runs `sentinel-agent enroll` against the stub with the CA pinned.
    pub async fn enroll(&self, state_dir: &Path) -> std::process::Output {
        agent_command()
            .args(["enroll", "--server", &self.url, "--token-file"])
            .arg(self.token_file())
            .arg("--state-dir")
            .arg(state_dir)
            .arg("--ca-cert")
            .arg(self.ca_file())
            .output()
            .await
            .unwrap()
    }
}

/// The agent binary, with a clean log filter.
pub fn agent_command() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sentinel-agent"));
    command.env("RUST_LOG", "info").stdin(Stdio::null());
    command
}

/// A running `sentinel-agent run`, killed if the test ends without stopping it.
pub struct RunningAgent {
    child: tokio::process::Child,
    log: PathBuf,
}

impl RunningAgent {
    /// Starts `sentinel-agent run --state-dir DIR --dpkg-status FIXTURE`, with `bin`
    /// first in its `PATH` when given. Its log goes to `DIR/../agent.log`.
    pub fn start(state_dir: &Path, bin: Option<&Path>) -> Self {
        let log = state_dir.with_extension("log");
        let mut command = agent_command();
        command
            .args(["run", "--state-dir"])
            .arg(state_dir)
            .arg("--dpkg-status")
            .arg(crate::fixture("dpkg/status"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true);
        if let Some(bin) = bin {
            let path = std::env::var("PATH").unwrap_or_default();
            command.env("PATH", format!("{}:{path}", bin.display()));
        }
        Self {
            child: command.spawn().unwrap(),
            log,
        }
    }

    /// What the agent logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Where the agent logs.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Waits for the agent to exit by itself (at most 20 s).
    pub async fn wait(mut self) -> ExitStatus {
        tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the agent did not exit:\n{}", self.log()))
            .unwrap()
    }

    /// Sends SIGTERM and waits for the agent to exit (at most 20 s).
    pub async fn stop(mut self) -> ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id().unwrap() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the agent did not stop:\n{}", self.log()))
            .unwrap()
    }
}

/// A CA and a server certificate for 127.0.0.1 and localhost: the CA's PEM and the
/// server's TLS configuration.
fn tls_material() -> (String, Arc<rustls::ServerConfig>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let leaf = params.signed_by(&key, &issuer).unwrap();
    let chain = vec![CertificateDer::from(leaf.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (ca.pem(), Arc::new(config))
}

/// TLS connections for axum, the handshake done on accept.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Records the HTTP version of every request.
async fn note_version(
    State(record): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    record.lock().unwrap().versions.push(request.version());
    next.run(request).await
}

/// A command poll being answered (counted until it is dropped, answered or not).
struct PollOpen(Shared);

impl PollOpen {
    fn new(record: &Shared, wait: Duration) -> Self {
        let mut locked = record.lock().unwrap();
        locked.polls_open += 1;
        if !wait.is_zero() {
            locked.poll_waits.push(wait);
        }
        Self(record.clone())
    }
}

impl Drop for PollOpen {
    fn drop(&mut self) {
        self.0.lock().unwrap().polls_open -= 1;
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": {"message": message}}))).into_response()
}

/// Checks the bearer token: the 401 to send when it is not valid.
fn unauthorized(record: &mut Record, headers: &HeaderMap) -> Option<Response> {
    let token = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    if record.revoked || !record.valid_tokens.contains(&token) {
        record.unauthorized += 1;
        return Some(error(StatusCode::UNAUTHORIZED, "unauthorized"));
    }
    // The first use of the newest token retires the older ones.
    if record.issued_tokens.last() == Some(&token) {
        record.valid_tokens.retain(|valid| *valid == token);
    }
    record.tokens_used.push(token);
    None
}

fn issue_token(record: &mut Record) -> String {
    let token = format!("{}{}", paths::DEVICE_TOKEN_PREFIX, Uuid::new_v4().simple());
    record.valid_tokens.push(token.clone());
    record.issued_tokens.push(token.clone());
    token
}

async fn enroll(
    State(record): State<Shared>,
    Json(request): Json<EnrollRequest>,
    command_key: String,
) -> Response {
    let mut record = record.lock().unwrap();
    if request.token != ENROLLMENT_TOKEN {
        return error(StatusCode::FORBIDDEN, "invalid enrollment token");
    }
    record.enrollments.push(request);
    let response = EnrollResponse {
        device_id: record.device_id,
        org_id: record.org_id,
        device_token: issue_token(&mut record),
        command_key,
        settings: record.settings,
    };
    (StatusCode::CREATED, Json(response)).into_response()
}

async fn telemetry(
    State(record): State<Shared>,
    headers: HeaderMap,
    Json(batch): Json<TelemetryBatch>,
) -> Response {
    let mut record = record.lock().unwrap();
    if let Some(refused) = unauthorized(&mut record, &headers) {
        return refused;
    }
    record.telemetry_attempts.push(tokio::time::Instant::now());
    if record.polls_open > 0 {
        record.telemetry_during_poll += 1;
    }
    let first_attempt = record.telemetry_attempts[0];
    let outage_lasts = record
        .telemetry_outage_at_least
        .is_some_and(|least| first_attempt.elapsed() < least);
    if record.telemetry_outage > 0 || outage_lasts {
        record.telemetry_outage = record.telemetry_outage.saturating_sub(1);
        return error(StatusCode::SERVICE_UNAVAILABLE, "down for the test");
    }
    if record.telemetry_rate_limited > 0 {
        record.telemetry_rate_limited -= 1;
        let mut response = error(StatusCode::TOO_MANY_REQUESTS, "slow down");
        response
            .headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("2"));
        return response;
    }
    let accepted = batch.samples.len() as u32;
    record.telemetry.push(batch);
    Json(TelemetryAck {
        accepted,
        settings: record.settings,
    })
    .into_response()
}

async fn inventory(
    State(record): State<Shared>,
    headers: HeaderMap,
    Json(report): Json<InventoryReport>,
) -> Response {
    let mut record = record.lock().unwrap();
    if let Some(refused) = unauthorized(&mut record, &headers) {
        return refused;
    }
    let status = match &report.packages {
        Some(_) => {
            record.inventory_digest = Some(report.digest.clone());
            InventoryStatus::Stored
        }
        None if record.inventory_digest.as_ref() == Some(&report.digest) => {
            InventoryStatus::Unchanged
        }
        None => InventoryStatus::SendFull,
    };
    record.inventory.push(report);
    Json(InventoryAck { status }).into_response()
}

#[derive(serde::Deserialize)]
struct Wait {
    wait: Option<f64>,
}

async fn commands(
    State(record): State<Shared>,
    headers: HeaderMap,
    Query(wait): Query<Wait>,
) -> Response {
    if let Some(refused) = unauthorized(&mut record.lock().unwrap(), &headers) {
        return refused;
    }
    let wait = Duration::from_secs_f64(wait.wait.unwrap_or(0.0).clamp(0.0, 60.0));
    let deadline = tokio::time::Instant::now() + wait;
    let _open = PollOpen::new(&record, wait);
    loop {
        let commands: Vec<SignedCommand> = record.lock().unwrap().queue.drain(..).collect();
        if !commands.is_empty() || tokio::time::Instant::now() >= deadline {
            return Json(CommandBatch { commands }).into_response();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn result(
    State(record): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<Uuid>,
    Json(report): Json<CommandReport>,
) -> Response {
    let mut record = record.lock().unwrap();
    if let Some(refused) = unauthorized(&mut record, &headers) {
        return refused;
    }
    assert!(report.problem().is_none(), "{report:?}");
    assert_ne!(report.status, CommandStatus::Queued);
    record.reports.push((id, report));
    StatusCode::NO_CONTENT.into_response()
}

async fn rotate(State(record): State<Shared>, headers: HeaderMap) -> Response {
    let mut record = record.lock().unwrap();
    if let Some(refused) = unauthorized(&mut record, &headers) {
        return refused;
    }
    Json(TokenRotation {
        device_token: issue_token(&mut record),
    })
    .into_response()
}
