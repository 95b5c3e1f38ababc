//! The member side of a run, through the REST API as any operator would use it:
//! first-admin setup, login (a session with its CSRF token), an organization,
//! an enrollment token, queueing commands, revoking devices, and reading
//! telemetry back for the loss check.

use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::client::{Call, Connection, Failure, Target};

/// A logged-in member's session on its own connections.
#[derive(Clone)]
pub struct Admin {
    connections: Vec<Connection>,
    cookie: String,
    csrf: String,
    origin: String,
}

/// A failed member call, with what it was for.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {failure}")]
pub struct AdminError {
    pub what: &'static str,
    pub failure: Failure,
}

fn context(what: &'static str) -> impl Fn(Failure) -> AdminError {
    move |failure| AdminError { what, failure }
}

#[derive(Deserialize)]
struct LoginAnswer {
    csrf_token: String,
}

#[derive(Deserialize)]
struct Created {
    id: Uuid,
}

/// The new token's secret.
#[derive(Deserialize)]
struct CreatedToken {
    token: String,
}

/// What the loss check needs of a device.
#[derive(Deserialize)]
pub struct DeviceCount {
    pub telemetry_count: i64,
}

#[derive(Deserialize)]
struct TelemetryList {
    samples: Vec<StoredSample>,
}

/// One stored telemetry link, as the member API lists it.
#[derive(Deserialize)]
pub struct StoredSample {
    pub seq: i64,
    pub sample: StoredFields,
}

#[derive(Deserialize)]
pub struct StoredFields {
    pub uptime_seconds: u64,
}

/// How many connections the admin spreads its calls over (the read-back runs many
/// at once).
const CONNECTIONS: usize = 4;

impl Admin {
    /// Creates the first platform admin with the setup token, then logs in.
    pub async fn setup(
        target: &Target,
        setup_token: &str,
        email: &str,
        password: &str,
    ) -> Result<Self, AdminError> {
        let connection = target.connect(None).await.map_err(context("connecting"))?;
        let body = json!({"token": setup_token, "name": "Load Generator", "email": email, "password": password});
        connection
            .send(
                Call::post("/api/v1/setup", body.to_string().into_bytes()),
                None,
            )
            .await
            .map_err(context("first-admin setup"))?;
        Self::login(target, email, password).await
    }

    /// Logs in as an existing member.
    pub async fn login(target: &Target, email: &str, password: &str) -> Result<Self, AdminError> {
        let mut connections = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            connections.push(target.connect(None).await.map_err(context("connecting"))?);
        }
        let body = json!({"email": email, "password": password});
        let answer = connections
            .first()
            .ok_or(AdminError {
                what: "connecting",
                failure: Failure::Connect,
            })?
            .send(
                Call::post("/api/v1/auth/login", body.to_string().into_bytes()),
                None,
            )
            .await
            .map_err(context("login"))?;
        let cookie = answer.cookie.clone().ok_or(AdminError {
            what: "login (no session cookie)",
            failure: Failure::Decode,
        })?;
        let login: LoginAnswer = answer.json().map_err(context("login"))?;
        Ok(Self {
            connections,
            cookie,
            csrf: login.csrf_token,
            origin: target.origin(),
        })
    }

    async fn call(&self, call: Call<'_>, spread: usize) -> Result<crate::client::Answer, Failure> {
        let headers = [
            ("cookie", self.cookie.as_str()),
            ("x-csrf-token", self.csrf.as_str()),
            ("origin", self.origin.as_str()),
        ];
        let connection = self
            .connections
            .get(spread % self.connections.len().max(1))
            .ok_or(Failure::Connect)?;
        connection.send(call.headers(&headers), None).await
    }

    pub async fn create_org(&self, name: &str) -> Result<Uuid, AdminError> {
        let body = json!({"name": name}).to_string().into_bytes();
        let created: Created = self
            .call(Call::post("/api/v1/orgs", body), 0)
            .await
            .and_then(|a| a.json())
            .map_err(context("creating the organization"))?;
        Ok(created.id)
    }

    /// A new enrollment token for `uses` devices: its secret.
    pub async fn enrollment_token(&self, org: Uuid, uses: u64) -> Result<String, AdminError> {
        let body = json!({"max_uses": uses, "expires_in_hours": 24})
            .to_string()
            .into_bytes();
        let path = format!("/api/v1/orgs/{org}/enrollment-tokens");
        let answer = self
            .call(Call::post(&path, body), 0)
            .await
            .map_err(context("creating an enrollment token"))?;
        let created: CreatedToken = answer.json().map_err(|failure| AdminError {
            what: "creating an enrollment token",
            failure,
        })?;
        Ok(created.token)
    }

    /// Queues a `refresh_inventory` command for `device`; its id.
    pub async fn queue_command(
        &self,
        org: Uuid,
        device: Uuid,
        spread: usize,
    ) -> Result<Uuid, Failure> {
        let path = format!("/api/v1/orgs/{org}/devices/{device}/commands");
        let body = br#"{"type":"refresh_inventory","expires_in_seconds":300}"#.to_vec();
        let created: Created = self.call(Call::post(&path, body), spread).await?.json()?;
        Ok(created.id)
    }

    pub async fn revoke_device(&self, org: Uuid, device: Uuid) -> Result<(), Failure> {
        let path = format!("/api/v1/orgs/{org}/devices/{device}");
        self.call(Call::delete(&path), 0).await.map(drop)
    }

    pub async fn device(
        &self,
        org: Uuid,
        device: Uuid,
        spread: usize,
    ) -> Result<DeviceCount, Failure> {
        let path = format!("/api/v1/orgs/{org}/devices/{device}");
        self.call(Call::get(&path), spread).await?.json()
    }

    /// The device's newest stored samples (up to 120), newest first.
    pub async fn telemetry(
        &self,
        org: Uuid,
        device: Uuid,
        spread: usize,
    ) -> Result<Vec<StoredSample>, Failure> {
        let path = format!("/api/v1/orgs/{org}/devices/{device}/telemetry");
        let list: TelemetryList = self.call(Call::get(&path), spread).await?.json()?;
        Ok(list.samples)
    }
}
