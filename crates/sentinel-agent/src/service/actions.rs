//! What each command action does on the host, and the final report it makes: scripts
//! and package managers run as programs (see [`crate::process`]), the inventory and
//! diagnostics in the agent itself.

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sentinel_protocol::command::{
    Command, CommandAction, CommandReport, CommandStatus, MAX_OUTPUT_BYTES, truncate_output,
};
use tokio_util::sync::CancellationToken;

use super::commands::blank;
use super::{Agent, diagnostics, inventory};
use crate::clock::unix_now;
use crate::packages::{self, Operation, Tool};
use crate::process::{self, Ending, Finished, Program, find_program};
use crate::state::{StateDir, StateError};

/// The `PATH` used when the agent has none (as under some service managers).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How long `systemctl reboot` and `loginctl lock-sessions` may take.
const SYSTEM_TIMEOUT: Duration = Duration::from_secs(60);

/// The environment commands run in: only these variables, nothing else of the agent's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Environment {
    /// Where programs are looked up, for the agent and its commands.
    pub(super) path: OsString,
    pub(super) home: OsString,
}

impl Environment {
    /// The agent's own `PATH` and `HOME`, with defaults.
    pub(super) fn of_agent() -> Self {
        Self {
            path: std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
            home: std::env::var_os("HOME").unwrap_or_else(|| "/".into()),
        }
    }

    fn variables(&self, extra: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        let mut variables = vec![
            ("PATH".into(), self.path.clone()),
            ("LANG".into(), "C.UTF-8".into()),
            ("HOME".into(), self.home.clone()),
        ];
        variables.extend(
            extra
                .iter()
                .map(|(key, value)| ((*key).into(), (*value).into())),
        );
        variables
    }

    /// `name` with `args`, found in `PATH`, to run in `/` for at most `timeout`.
    fn program(
        &self,
        name: &str,
        args: Vec<OsString>,
        extra: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Program, String> {
        let path =
            find_program(name, &self.path).ok_or_else(|| format!("{name} not found in PATH"))?;
        Ok(Program {
            path,
            args,
            env: self.variables(extra),
            dir: PathBuf::from("/"),
            timeout,
            output_limit: MAX_OUTPUT_BYTES,
        })
    }
}

/// Runs `command`, which started at `started_at`; `kill` ends it early. Returns the
/// final report.
pub(super) async fn execute(
    agent: &Agent,
    command: &Command,
    started_at: i64,
    kill: &CancellationToken,
) -> CommandReport {
    let env = &agent.environment;
    let mut report = match &command.action {
        CommandAction::RunScript {
            interpreter,
            script,
            timeout_seconds,
        } => {
            let timeout = Duration::from_secs((*timeout_seconds).into());
            run_script(agent, command, interpreter.program(), script, timeout, kill).await
        }
        CommandAction::InstallPackage { name } => {
            run_package_manager(env, Operation::Install, name, kill).await
        }
        CommandAction::RemovePackage { name } => {
            run_package_manager(env, Operation::Remove, name, kill).await
        }
        CommandAction::RefreshInventory {} => {
            let synced = tokio::select! {
                synced = inventory::sync(agent) => synced.map_err(|e| e.to_string()),
                () = kill.cancelled() => Err("the agent stopped first".into()),
            };
            match synced {
                Ok(synced) => succeeded(synced.to_string()),
                Err(reason) => failed(format!("the inventory was not reported: {reason}")),
            }
        }
        CommandAction::Reboot {} => {
            let program = env.program("systemctl", vec!["reboot".into()], &[], SYSTEM_TIMEOUT);
            run(program, kill).await
        }
        CommandAction::LockSessions {} => {
            let program = env.program(
                "loginctl",
                vec!["lock-sessions".into()],
                &[],
                SYSTEM_TIMEOUT,
            );
            run(program, kill).await
        }
        CommandAction::CollectDiagnostics {} => succeeded(diagnostics::collect(agent).await),
    };
    report.started_at = Some(started_at);
    report.finished_at = Some(unix_now());
    report
}

/// Writes the script to a private file, runs it with `interpreter`, and removes it.
async fn run_script(
    agent: &Agent,
    command: &Command,
    interpreter: &str,
    script: &str,
    timeout: Duration,
    kill: &CancellationToken,
) -> CommandReport {
    let file = match write_script(&agent.dir, command, script) {
        Ok(file) => file,
        Err(error) => return failed(format!("cannot write the script: {error}")),
    };
    let program = agent
        .environment
        .program(interpreter, vec![file.clone().into()], &[], timeout);
    let report = run(program, kill).await;
    if let Err(error) = std::fs::remove_file(&file) {
        tracing::warn!("cannot remove the script {}: {error}", file.display());
    }
    report
}

/// The script, written `0600` in the private scripts directory under the command's id.
fn write_script(dir: &StateDir, command: &Command, script: &str) -> io::Result<PathBuf> {
    let scripts = dir.scripts_dir().map_err(io::Error::other)?;
    let path = scripts.join(command.id.to_string());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(script.as_bytes())?;
    Ok(path)
}

/// Removes the scripts a previous run left behind when it died mid-command.
pub(super) fn remove_leftover_scripts(dir: &StateDir) -> Result<(), StateError> {
    let scripts = dir.scripts_dir()?;
    let remove = |path: &Path| -> io::Result<()> {
        for entry in std::fs::read_dir(path)? {
            std::fs::remove_file(entry?.path())?;
        }
        Ok(())
    };
    remove(&scripts).map_err(|source| StateError::Io {
        path: scripts,
        source,
    })
}

/// Installs or removes `name` with the first package manager found.
async fn run_package_manager(
    env: &Environment,
    operation: Operation,
    name: &str,
    kill: &CancellationToken,
) -> CommandReport {
    let Some((tool, _)) = Tool::detect(&env.path) else {
        return failed("no package manager (apt-get, dnf or apk) found in PATH".into());
    };
    let args = match tool.args(operation, name) {
        Ok(args) => args.into_iter().map(OsString::from).collect(),
        Err(problem) => return failed(problem),
    };
    let program = env.program(tool.program(), args, tool.env(), packages::TIMEOUT);
    run(program, kill).await
}

/// Runs `program` and reports how it ended.
async fn run(program: Result<Program, String>, kill: &CancellationToken) -> CommandReport {
    let program = match program {
        Ok(program) => program,
        Err(problem) => return failed(problem),
    };
    match process::run(&program, kill).await {
        Ok(finished) => finished_report(finished, program.timeout),
        Err(error) => failed(format!("cannot start {}: {error}", program.path.display())),
    }
}

fn finished_report(finished: Finished, timeout: Duration) -> CommandReport {
    let (status, exit_code, reason) = match finished.ending {
        Ending::Exited(0) => (CommandStatus::Succeeded, Some(0), None),
        Ending::Exited(code) => (CommandStatus::Failed, Some(code), None),
        Ending::Signalled(signal) => (
            CommandStatus::Failed,
            None,
            Some(format!("killed by signal {signal}")),
        ),
        Ending::TimedOut => (
            CommandStatus::TimedOut,
            None,
            Some(format!(
                "still running after {}s: its process group was killed",
                timeout.as_secs()
            )),
        ),
        Ending::Stopped => (
            CommandStatus::Failed,
            None,
            Some("the agent stopped: its process group was killed".into()),
        ),
    };
    CommandReport {
        status,
        exit_code,
        stdout: finished.stdout,
        stderr: finished.stderr,
        output_truncated: finished.truncated,
        reason,
        ..blank(status)
    }
}

/// A report of an action the agent did itself, `stdout` its output.
fn succeeded(stdout: String) -> CommandReport {
    let (kept, truncated) = truncate_output(&stdout, MAX_OUTPUT_BYTES);
    CommandReport {
        stdout: kept.to_owned(),
        output_truncated: truncated,
        ..blank(CommandStatus::Succeeded)
    }
}

/// The longest reason the server accepts, in bytes.
const MAX_REASON_BYTES: usize = 1024;

/// A failure before or instead of running anything.
fn failed(reason: String) -> CommandReport {
    tracing::warn!("command failed: {reason}");
    let (reason, _) = truncate_output(&reason, MAX_REASON_BYTES);
    CommandReport {
        reason: Some(reason.to_owned()),
        ..blank(CommandStatus::Failed)
    }
}
