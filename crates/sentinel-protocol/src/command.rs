//! What an administrator can ask a device to do, the limits both ends enforce, and what
//! the device reports back.
//!
//! A [`Command`] names its organization, its one target device, when it was issued and
//! when it expires; it travels inside a [`crate::signing::SignedCommand`]. The server
//! checks [`CommandAction::problem`] before queueing, and the agent checks it again,
//! with the signature, the target, the expiry and replay, before running anything.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The largest script body, in bytes.
pub const MAX_SCRIPT_BYTES: usize = 64 * 1024;
/// A script's timeout when none is given.
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 5 * 60;
/// The longest timeout a script may ask for.
pub const MAX_TIMEOUT_SECONDS: u32 = 60 * 60;
/// How much of each of stdout and stderr is kept, in bytes; the rest is cut.
pub const MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// How long a command waits for its device when none is given.
pub const DEFAULT_EXPIRY_SECONDS: u32 = 24 * 3600;
/// The longest a command may wait for its device.
pub const MAX_EXPIRY_SECONDS: u32 = 30 * 24 * 3600;
/// The longest package name accepted.
pub const MAX_PACKAGE_NAME_BYTES: usize = 128;

/// A command for one device, as signed by its organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    pub id: Uuid,
    pub org_id: Uuid,
    /// The one device allowed to run it.
    pub device_id: Uuid,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds; the agent refuses the command from then on.
    pub expires_at: i64,
    /// Who queued it, for the device's local log.
    pub issued_by: String,
    pub action: CommandAction,
}

/// What to do, with its parameters: `{"type": "run_script", "params": {…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    content = "params",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum CommandAction {
    /// Runs `script` with `interpreter`, killing its whole process group at the timeout.
    RunScript {
        interpreter: Interpreter,
        script: String,
        #[serde(default = "default_timeout")]
        timeout_seconds: u32,
    },
    /// Installs a package with the host's package manager (apt, dnf or apk).
    InstallPackage { name: String },
    /// Removes a package with the host's package manager.
    RemovePackage { name: String },
    /// Reads the software inventory now and reports it if it changed.
    RefreshInventory {},
    /// Reboots the host.
    Reboot {},
    /// Locks every graphical and terminal session (`loginctl lock-sessions`): for a
    /// device reported stolen.
    LockSessions {},
    /// Collects facts, telemetry, the agent's state and recent logs into the output.
    CollectDiagnostics {},
}

fn default_timeout() -> u32 {
    DEFAULT_TIMEOUT_SECONDS
}

/// The programs a script may be run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpreter {
    Sh,
    Bash,
    Python3,
}

impl Interpreter {
    /// The program's name, looked up in `PATH`.
    pub fn program(self) -> &'static str {
        match self {
            Self::Sh => "sh",
            Self::Bash => "bash",
            Self::Python3 => "python3",
        }
    }
}

impl CommandAction {
    /// The action's name on the wire: `run_script`, `reboot`, …
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RunScript { .. } => "run_script",
            Self::InstallPackage { .. } => "install_package",
            Self::RemovePackage { .. } => "remove_package",
            Self::RefreshInventory {} => "refresh_inventory",
            Self::Reboot {} => "reboot",
            Self::LockSessions {} => "lock_sessions",
            Self::CollectDiagnostics {} => "collect_diagnostics",
        }
    }

    /// Parses `{"type", "params"}` as an API caller sends it, where `params` may be
    /// left out for actions that take none, and checks it.
    pub fn from_request(kind: &str, params: Option<serde_json::Value>) -> Result<Self, String> {
        let params = params.unwrap_or_else(|| serde_json::json!({}));
        let action: Self =
            serde_json::from_value(serde_json::json!({"type": kind, "params": params}))
                .map_err(|e| format!("invalid command: {e}"))?;
        match action.problem() {
            Some(problem) => Err(problem),
            None => Ok(action),
        }
    }

    /// Why this action must not run, if it must not.
    pub fn problem(&self) -> Option<String> {
        match self {
            Self::RunScript { script, timeout_seconds, .. } => {
                if script.trim().is_empty() {
                    Some("the script is empty".into())
                } else if script.len() > MAX_SCRIPT_BYTES {
                    Some(format!("the script is longer than {MAX_SCRIPT_BYTES} bytes"))
                } else if script.contains('\0') {
                    Some("the script contains a NUL byte".into())
                } else if !(1..=MAX_TIMEOUT_SECONDS).contains(timeout_seconds) {
                    Some(format!("timeout_seconds must be between 1 and {MAX_TIMEOUT_SECONDS}"))
                } else {
                    None
                }
            }
            Self::InstallPackage { name } | Self::RemovePackage { name } => {
                (!is_package_name(name)).then(|| {
                    "the package name must be 1-128 letters, digits and + . _ - , starting with a letter or digit".to_string()
                })
            }
            Self::RefreshInventory {} | Self::Reboot {} | Self::LockSessions {} | Self::CollectDiagnostics {} => None,
        }
    }
}

/// Whether `name` is a plain package name: it cannot be read as an option, a version
/// constraint, a path or a glob by apt, dnf or apk.
pub fn is_package_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    name.len() <= MAX_PACKAGE_NAME_BYTES
        && first.is_ascii_alphanumeric()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '_' | '-'))
}

/// `GET /api/v1/agent/commands`: the commands waiting for this device, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandBatch {
    pub commands: Vec<crate::signing::SignedCommand>,
}

/// Where a command is in its life. The server moves it from `queued` to `delivered`
/// when it hands it over; the agent reports the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    Queued,
    Delivered,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Expired,
    Cancelled,
    /// The agent refused it: bad signature, wrong device, expired, replayed or invalid.
    Rejected,
}

impl CommandStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Delivered => "delivered",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Delivered,
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::TimedOut,
            Self::Expired,
            Self::Cancelled,
            Self::Rejected,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }

    /// Whether the command is over: nothing can change it any more.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Delivered | Self::Running)
    }

    /// Whether an agent may report this status.
    pub fn reportable(self) -> bool {
        matches!(
            self,
            Self::Running | Self::Succeeded | Self::Failed | Self::TimedOut | Self::Rejected
        )
    }
}

/// `POST /api/v1/agent/commands/{id}/result`: `running` when the agent starts a
/// command, then once more with how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandReport {
    /// One of `running`, `succeeded`, `failed`, `timed_out`, `rejected`.
    pub status: CommandStatus,
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// At most [`MAX_OUTPUT_BYTES`], cut at a character boundary.
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
    /// Whether output beyond [`MAX_OUTPUT_BYTES`] was cut.
    #[serde(default)]
    pub output_truncated: bool,
    /// Unix seconds.
    #[serde(default)]
    pub started_at: Option<i64>,
    #[serde(default)]
    pub finished_at: Option<i64>,
    /// Why the command was rejected or failed before it ran.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A [`CommandReport`] as a device publishes it over MQTT, on its `results`
/// topic: the command's id travels in the message (over HTTPS it is in the
/// path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultMessage {
    pub command_id: Uuid,
    pub report: CommandReport,
}

impl CommandReport {
    /// Why this report cannot be stored, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if !self.status.reportable() {
            return Some(format!("an agent cannot report {}", self.status.as_str()));
        }
        if self.stdout.len() > MAX_OUTPUT_BYTES || self.stderr.len() > MAX_OUTPUT_BYTES {
            return Some(format!(
                "stdout and stderr are limited to {MAX_OUTPUT_BYTES} bytes each"
            ));
        }
        if self.reason.as_ref().is_some_and(|r| r.len() > 1024) {
            return Some("reason is longer than 1024 bytes".into());
        }
        None
    }
}

/// `text` cut to at most `max` bytes at a character boundary, and whether it was cut.
pub fn truncate_output(text: &str, max: usize) -> (&str, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}
