//! Enrollment: an enrollment token and the host's facts exchanged for a device identity,
//! saved in a private state directory together with the CA the server is pinned to.

use std::io::Read;
use std::path::{Path, PathBuf};

use reqwest::Url;
use sentinel_protocol::enroll::EnrollRequest;
use sentinel_protocol::paths::{DEVICE_TOKEN_PREFIX, ENROLLMENT_TOKEN_PREFIX};
use sentinel_protocol::signing::CommandVerifier;

use crate::api::{ApiClient, ApiError};
use crate::clock::unix_now;
use crate::facts::{self, HostPaths};
use crate::secret::Secret;
use crate::state::{State, StateDir, write_private};
use crate::tls::{self, Trust};

/// What `sentinel-agent enroll` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    /// The server's base URL; must be `https`.
    pub server: String,
    /// The file holding the enrollment token, or `-` for standard input.
    pub token_file: PathBuf,
    /// Where the enrollment is saved.
    pub state_dir: PathBuf,
    /// The CA to pin the server to; the public roots when `None`.
    pub ca_cert: Option<PathBuf>,
    /// Whether an existing enrollment may be replaced.
    pub re_enroll: bool,
    /// Where the host's files are, for its facts.
    pub host_root: PathBuf,
}

/// The most read from a token file: a token is far shorter.
const MAX_TOKEN_FILE_BYTES: u64 = 4096;

/// Why enrollment failed.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// The server answered, and refused.
    #[error("the server refused the enrollment: {0}")]
    Refused(ApiError),
    /// The server could not be reached, or gave an unusable answer.
    #[error("enrollment failed: {0}")]
    Unavailable(String),
    /// A bad argument or a local file problem; nothing was sent.
    #[error("{0}")]
    Local(String),
}

/// Enrolls this host and saves the enrollment; returns it.
pub async fn enroll(enrollment: &Enrollment) -> Result<State, EnrollError> {
    let server = server_url(&enrollment.server).map_err(EnrollError::Local)?;
    let token = read_token(&enrollment.token_file).map_err(EnrollError::Local)?;
    let ca_pem = match &enrollment.ca_cert {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            EnrollError::Local(format!("cannot read the CA file {}: {e}", path.display()))
        })?),
        None => None,
    };
    let trust = ca_pem.as_deref().map_or(Trust::PublicRoots, Trust::Pinned);
    let tls = tls::client_config(trust).map_err(|e| EnrollError::Local(e.to_string()))?;
    let dir = StateDir::create_private(&enrollment.state_dir)
        .map_err(|e| EnrollError::Local(e.to_string()))?;
    if dir.is_enrolled() && !enrollment.re_enroll {
        return Err(EnrollError::Local(format!(
            "{} already holds an enrollment; pass --re-enroll to replace it",
            dir.state_file().display()
        )));
    }

    let client =
        ApiClient::new(&server, tls, None).map_err(|e| EnrollError::Local(e.to_string()))?;
    let request = EnrollRequest {
        token: token.expose().to_owned(),
        facts: facts::collect(&HostPaths::under(&enrollment.host_root)),
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let response = client.enroll(&request).await.map_err(|error| match error {
        ApiError::Unavailable(reason) => EnrollError::Unavailable(reason),
        refused => EnrollError::Refused(refused),
    })?;
    if !response.device_token.starts_with(DEVICE_TOKEN_PREFIX) {
        return Err(EnrollError::Unavailable(
            "the server sent a device token of an unknown form".into(),
        ));
    }
    if CommandVerifier::from_hex(&response.command_key).is_none() {
        return Err(EnrollError::Unavailable(
            "the server sent an unusable command key".into(),
        ));
    }

    let local = |what: &str, path: &Path, e: std::io::Error| {
        EnrollError::Local(format!("cannot {what} {}: {e}", path.display()))
    };
    let ca_file = dir.ca_file();
    match &ca_pem {
        Some(pem) => write_private(&ca_file, pem).map_err(|e| local("write", &ca_file, e))?,
        None => match std::fs::remove_file(&ca_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(local("remove the old pinned CA", &ca_file, e));
            }
            _ => {}
        },
    }
    let now = unix_now();
    let state = State {
        server_url: server,
        device_id: response.device_id,
        org_id: response.org_id,
        device_token: Secret::new(response.device_token),
        command_key: response.command_key,
        ca_pinned: ca_pem.is_some(),
        settings: response.settings,
        enrolled_at: now,
        token_rotated_at: now,
    };
    dir.save(&state)
        .map_err(|e| EnrollError::Local(e.to_string()))?;
    Ok(state)
}

/// The server's base URL without a trailing slash, if it is a plain `https` URL.
pub fn server_url(text: &str) -> Result<String, String> {
    let url = Url::parse(text).map_err(|e| format!("--server {text:?} is not a URL: {e}"))?;
    if url.scheme() != "https" {
        return Err(format!(
            "--server must be an https URL, not {}",
            url.scheme()
        ));
    }
    if url.host().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(
            "--server must be https://host[:port][/path], without credentials, query or fragment"
                .into(),
        );
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// The enrollment token from `path`, or from standard input when it is `-`, trimmed.
fn read_token(path: &Path) -> Result<Secret, String> {
    let mut text = String::new();
    let read = if path == Path::new("-") {
        std::io::stdin()
            .take(MAX_TOKEN_FILE_BYTES)
            .read_to_string(&mut text)
    } else {
        std::fs::File::open(path)
            .and_then(|file| file.take(MAX_TOKEN_FILE_BYTES).read_to_string(&mut text))
    };
    read.map_err(|e| format!("cannot read the token from {}: {e}", path.display()))?;
    let token = text.trim();
    if !token.starts_with(ENROLLMENT_TOKEN_PREFIX) {
        return Err(format!(
            "{} does not hold an enrollment token ({ENROLLMENT_TOKEN_PREFIX}…)",
            path.display()
        ));
    }
    Ok(Secret::new(token))
}
