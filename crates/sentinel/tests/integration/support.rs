//! The test harness: a server on a temporary data directory (SQLite, or a fresh
//! PostgreSQL database), its injected clock, and an HTTPS client that trusts the
//! server's generated CA and behaves like a browser when told to (cookie, CSRF
//! token, same-origin headers).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::HeaderMap;
use sentinel::RunningServer;
use sentinel::config::{Config, MqttListen, Settings};
use sentinel_core::{Clock, ManualClock, SystemClock};
use sentinel_store::testing::{TestDatabase, postgres_admin_url};
use serde_json::{Value, json};

/// A password every test account uses; it meets the policy.
pub const PASSWORD: &str = "orbit lantern velvet quarry";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub addr: SocketAddr,
    pub origin: String,
    pub clock: ManualClock,
    pub ca_pem: String,
    pub config: Config,
    _dir: tempfile::TempDir,
    pg: Option<TestDatabase>,
    http: reqwest::Client,
}

/// A logged-in user as a browser would hold them.
#[derive(Debug, Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
    pub user_id: String,
}

/// An HTTP response, body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn https_client(ca_pem: &str, addr: SocketAddr) -> reqwest::Client {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    // Like a browser: HTTP/2 when the server offers it (requests then carry
    // `:authority` instead of a Host header).
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .resolve("localhost", addr)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl TestServer {
    /// A fresh server on SQLite with default settings.
    pub async fn start() -> TestServer {
        Self::start_on(Engine::Sqlite, |_| {}).await.unwrap()
    }

    /// A fresh server on `engine`, with `configure` applied to its settings. None when
    /// PostgreSQL is asked for but not available (outside CI).
    pub async fn start_on(
        engine: Engine,
        configure: impl FnOnce(&mut Settings),
    ) -> Option<TestServer> {
        let dir = tempfile::tempdir().unwrap();
        let pg = match engine {
            Engine::Sqlite => None,
            Engine::Postgres => {
                let admin = postgres_admin_url("integration").unwrap()?;
                Some(TestDatabase::create(&admin).await.unwrap())
            }
        };
        let mut settings = Settings {
            data_dir: Some(dir.path().join("data")),
            listen: Some("127.0.0.1:0".parse().unwrap()),
            database_url: pg
                .as_ref()
                .map(|db| sentinel_core::SecretString::new(db.url())),
            // Tests make many requests from one address quickly; the rate-limit
            // tests set the limits they exercise.
            rate_limit_requests: Some(1_000_000),
            rate_limit_agent: Some(1_000_000),
            rate_limit_login: Some(1_000_000),
            rate_limit_two_factor: Some(1_000_000),
            rate_limit_org_creation: Some(1_000_000),
            rate_limit_enrollment: Some(1_000_000),
            // Off unless a test asks for it (its default port is fixed).
            mqtt_listen: Some(MqttListen::Off),
            ..Settings::default()
        };
        configure(&mut settings);
        let config = Config::from_settings(settings).unwrap();
        let clock = ManualClock::starting_at(SystemClock.now());
        let server = sentinel::start(&config, Arc::new(clock.clone()))
            .await
            .unwrap();
        let addr = server.local_addr;
        let ca_pem = server.ca_cert_pem.clone().unwrap_or_default();
        let http = https_client(&ca_pem, addr);
        Some(TestServer {
            origin: format!("https://localhost:{}", addr.port()),
            server: Some(server),
            addr,
            clock,
            ca_pem,
            config,
            _dir: dir,
            pg,
            http,
        })
    }

    /// Stops the server and starts it again on the same data (a restart).
    pub async fn restart(&mut self) {
        self.shut_down().await;
        self.start_again().await;
    }

    /// Stops the server, keeping its data (for offline commands).
    pub async fn shut_down(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    /// Starts the server again on the same data and address.
    pub async fn start_again(&mut self) {
        let mut config = self.config.clone();
        config.listen = self.addr;
        let server = sentinel::start(&config, Arc::new(self.clock.clone()))
            .await
            .unwrap();
        self.server = Some(server);
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        if let Some(db) = self.pg.take() {
            db.drop_database().await.unwrap();
        }
    }

    pub fn running(&self) -> &RunningServer {
        self.server.as_ref().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// A bare request, as any client could send it.
    pub fn raw(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// A request as the browser of `session` would send it: its cookie, its CSRF
    /// token and a same-origin `Origin`.
    pub fn as_user(
        &self,
        session: &Session,
        method: Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.raw(method, path)
            .header("cookie", &session.cookie)
            .header("x-csrf-token", &session.csrf)
            .header("origin", &self.origin)
    }

    pub async fn send(rb: reqwest::RequestBuilder) -> Resp {
        let response = rb.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        Resp {
            status,
            headers,
            text,
        }
    }

    pub async fn get(&self, session: &Session, path: &str) -> Resp {
        Self::send(self.as_user(session, Method::GET, path)).await
    }

    pub async fn call(&self, session: &Session, method: Method, path: &str, body: Value) -> Resp {
        Self::send(self.as_user(session, method, path).json(&body)).await
    }

    /// The token of the first-start setup link.
    pub fn setup_token(&self) -> String {
        let url = self.running().setup_url.clone().expect("a setup link");
        url.split("token=").nth(1).unwrap().to_owned()
    }

    /// Completes setup with `root@example.org` and logs in as them.
    pub async fn setup_admin(&self) -> Session {
        let body = json!({"token": self.setup_token(), "name": "Root Admin", "email": "root@example.org", "password": PASSWORD});
        let resp = Self::send(self.raw(Method::POST, "/api/v1/setup").json(&body)).await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        self.login("root@example.org", PASSWORD).await.unwrap()
    }

    pub async fn try_login(&self, email: &str, password: &str) -> Resp {
        Self::send(
            self.raw(Method::POST, "/api/v1/auth/login")
                .json(&json!({"email": email, "password": password})),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Result<Session, Resp> {
        let resp = self.try_login(email, password).await;
        if resp.status != 200 {
            return Err(resp);
        }
        Ok(session_from(&resp))
    }

    /// Creates a user through the admin API and returns their id.
    pub async fn create_user(&self, admin: &Session, email: &str) -> String {
        let name = email.split('@').next().unwrap();
        let resp = self
            .call(
                admin,
                Method::POST,
                "/api/v1/users",
                json!({"email": email, "name": name, "password": PASSWORD}),
            )
            .await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        resp.json()["id"].as_str().unwrap().to_owned()
    }

    pub async fn create_org(&self, session: &Session, name: &str) -> String {
        let resp = self
            .call(session, Method::POST, "/api/v1/orgs", json!({"name": name}))
            .await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        resp.json()["id"].as_str().unwrap().to_owned()
    }

    pub async fn add_member(&self, session: &Session, org: &str, email: &str, role: &str) {
        let resp = self
            .call(
                session,
                Method::POST,
                &format!("/api/v1/orgs/{org}/members"),
                json!({"email": email, "role": role}),
            )
            .await;
        assert_eq!(resp.status, 201, "{}", resp.text);
    }

    /// A user with `role` in `org`, logged in.
    pub async fn member(&self, admin: &Session, org: &str, email: &str, role: &str) -> Session {
        self.create_user(admin, email).await;
        self.add_member(admin, org, email, role).await;
        self.login(email, PASSWORD).await.unwrap()
    }
}

/// The `name=value` pair of the cookie a response sets.
pub fn cookie_pair(headers: &HeaderMap) -> String {
    let set_cookie = headers
        .get("set-cookie")
        .expect("a cookie")
        .to_str()
        .unwrap();
    set_cookie.split(';').next().unwrap().to_owned()
}

/// The value alone of the cookie a response sets.
pub fn cookie_value(headers: &HeaderMap) -> String {
    cookie_pair(headers).split_once('=').unwrap().1.to_owned()
}

/// The session a successful login response established.
pub fn session_from(resp: &Resp) -> Session {
    let cookie = cookie_pair(&resp.headers);
    let body = resp.json();
    Session {
        cookie,
        csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        user_id: body["user"]["id"].as_str().unwrap().to_owned(),
    }
}

/// Defines `name::sqlite` and `name::postgres` tests running `body(server)`.
macro_rules! on_both_engines {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let server =
                    $crate::support::TestServer::start_on($crate::support::Engine::Sqlite, |_| {})
                        .await
                        .unwrap();
                let server = ($body)(server).await;
                server.stop().await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(server) = $crate::support::TestServer::start_on(
                    $crate::support::Engine::Postgres,
                    |_| {},
                )
                .await
                else {
                    return;
                };
                let server = ($body)(server).await;
                server.stop().await;
            }
        }
    };
}
pub(crate) use on_both_engines;

/// Host facts as an agent sends them.
pub fn facts(hostname: &str) -> Value {
    json!({
        "hostname": hostname,
        "os_id": "debian",
        "os_name": "Debian GNU/Linux",
        "os_version_id": "12",
        "os_pretty_name": "Debian GNU/Linux 12 (bookworm)",
        "kernel": "6.1.0-18-amd64",
        "architecture": "x86_64",
        "machine_id": "0123456789abcdef0123456789abcdef"
    })
}

/// An enrolled device: its id and bearer token.
#[derive(Debug, Clone)]
pub struct Agent {
    pub device_id: String,
    pub token: String,
}

impl TestServer {
    /// Creates an enrollment token in `org` (as `admin`) and returns its secret.
    pub async fn enrollment_token(&self, admin: &Session, org: &str, body: Value) -> String {
        let resp = self
            .call(
                admin,
                Method::POST,
                &format!("/api/v1/orgs/{org}/enrollment-tokens"),
                body,
            )
            .await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        // Strict JSON parsers refuse a repeated key: each field appears once.
        assert_eq!(resp.text.matches("\"id\":").count(), 1, "{}", resp.text);
        resp.json()["token"].as_str().unwrap().to_owned()
    }

    /// `POST /api/v1/agent/enroll` with `token`, as an agent would.
    pub async fn try_enroll(&self, token: &str, hostname: &str) -> Resp {
        Self::send(self.raw(Method::POST, "/api/v1/agent/enroll").json(&json!({
            "token": token,
            "facts": facts(hostname),
            "agent_version": "0.1.0",
        })))
        .await
    }

    /// A TLS connection to `addr` (a listener of this server), trusting the
    /// server's CA, for tests that speak a protocol byte by byte.
    pub async fn tls_connect(
        &self,
        addr: SocketAddr,
    ) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, ServerName};
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap()
    }

    /// A device enrolled into `org`.
    pub async fn enroll(&self, admin: &Session, org: &str, hostname: &str) -> Agent {
        let token = self.enrollment_token(admin, org, json!({})).await;
        let resp = self.try_enroll(&token, hostname).await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        let body = resp.json();
        Agent {
            device_id: body["device_id"].as_str().unwrap().to_owned(),
            token: body["device_token"].as_str().unwrap().to_owned(),
        }
    }

    /// A request on an agent route with `agent`'s token.
    pub fn as_agent(&self, agent: &Agent, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.raw(method, path)
            .header("authorization", format!("Bearer {}", agent.token))
    }

    /// Queues `body` for `device` and returns the command's id.
    pub async fn queue_command(
        &self,
        admin: &Session,
        org: &str,
        device: &str,
        body: Value,
    ) -> String {
        let resp = self
            .call(
                admin,
                Method::POST,
                &format!("/api/v1/orgs/{org}/devices/{device}/commands"),
                body,
            )
            .await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        resp.json()["id"].as_str().unwrap().to_owned()
    }
}

/// Posts `fields` as a browser form would, with the session's CSRF field.
pub async fn post_form(
    server: &TestServer,
    session: &Session,
    path: &str,
    fields: &[(&str, &str)],
) -> Resp {
    let mut all = vec![("csrf_token", session.csrf.as_str())];
    all.extend_from_slice(fields);
    TestServer::send(
        server
            .as_user(session, Method::POST, path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(&all).unwrap()),
    )
    .await
}

/// Polls `check` every 100 ms for up to 20 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
