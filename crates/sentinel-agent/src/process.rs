//! Running one program for a command: in its own process group, with a minimal
//! environment and no input, its output captured up to a limit while the pipes keep
//! draining, and its whole group killed at the timeout, when the agent stops, and once
//! the program itself has exited (a command's processes do not outlive it).

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use sentinel_protocol::command::truncate_output;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;

/// How long the pipes may keep delivering output once the process group is dead (a
/// process that left the group may still hold them open).
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// A program to run and the limits it runs under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The executable's path.
    pub path: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// The whole environment: nothing of the agent's is inherited.
    pub env: Vec<(OsString, OsString)>,
    /// The working directory.
    pub dir: PathBuf,
    /// How long it may run before its process group is killed.
    pub timeout: Duration,
    /// How many bytes of each of stdout and stderr are kept.
    pub output_limit: usize,
}

/// How a program's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it (not one of ours).
    Signalled(i32),
    /// It ran past its timeout; its process group was killed.
    TimedOut,
    /// The agent stopped; its process group was killed.
    Stopped,
}

/// What a finished program did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// How it ended.
    pub ending: Ending,
    /// Standard output, at most the output limit, cut at a character boundary.
    pub stdout: String,
    /// Standard error, likewise.
    pub stderr: String,
    /// Whether either output was longer than the limit and cut.
    pub truncated: bool,
}

/// Runs `program` to its end; `stop` kills it early. Fails only if it cannot start.
pub async fn run(program: &Program, stop: &CancellationToken) -> io::Result<Finished> {
    let mut child = tokio::process::Command::new(&program.path)
        .args(&program.args)
        .env_clear()
        .envs(program.env.iter().map(|(key, value)| (key, value)))
        .current_dir(&program.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    // The child leads its own process group, whose id is its pid.
    let group = child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .map(Pid::from_raw);
    let cut_off = CancellationToken::new();
    let limit = program.output_limit;
    let stdout = tokio::spawn(capture(child.stdout.take(), limit, cut_off.clone()));
    let stderr = tokio::spawn(capture(child.stderr.take(), limit, cut_off.clone()));

    let ending = tokio::select! {
        status = child.wait() => ending_of(status?),
        () = tokio::time::sleep(program.timeout) => Ending::TimedOut,
        () = stop.cancelled() => Ending::Stopped,
    };
    kill_group(group);
    // Reaps the program when it was killed (a no-op when it had exited).
    child.wait().await?;

    let outputs = async { tokio::join!(stdout, stderr) };
    tokio::pin!(outputs);
    let (stdout, stderr) = tokio::select! {
        outputs = &mut outputs => outputs,
        () = tokio::time::sleep(DRAIN_TIME) => {
            cut_off.cancel();
            outputs.await
        }
    };
    let (stdout, stdout_cut) = text(stdout.unwrap_or_default(), limit);
    let (stderr, stderr_cut) = text(stderr.unwrap_or_default(), limit);
    Ok(Finished {
        ending,
        stdout,
        stderr,
        truncated: stdout_cut || stderr_cut,
    })
}

fn ending_of(status: ExitStatus) -> Ending {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Ending::Exited(code),
        (None, Some(signal)) => Ending::Signalled(signal),
        (None, None) => Ending::Exited(-1),
    }
}

/// Kills every process left in the group; a group already gone is fine.
fn kill_group(group: Option<Pid>) {
    let Some(group) = group else { return };
    match killpg(group, Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(errno) => tracing::warn!("cannot kill process group {group}: {errno}"),
    }
}

/// Bytes read from `pipe` until it closes or `cut_off`: the first `limit` of them, and
/// whether there were more. Reading goes on past the limit so the writer never blocks.
async fn capture(
    pipe: Option<impl AsyncRead + Unpin>,
    limit: usize,
    cut_off: CancellationToken,
) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut overflowed = false;
    let Some(mut pipe) = pipe else {
        return (kept, overflowed);
    };
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = tokio::select! {
            read = pipe.read(&mut buffer) => read,
            () = cut_off.cancelled() => break,
        };
        let Ok(count @ 1..) = read else { break };
        let room = limit.saturating_sub(kept.len());
        overflowed |= count > room;
        kept.extend_from_slice(buffer.get(..count.min(room)).unwrap_or_default());
    }
    (kept, overflowed)
}

/// Captured bytes as text of at most `limit` bytes, and whether anything was cut.
fn text((bytes, overflowed): (Vec<u8>, bool), limit: usize) -> (String, bool) {
    let lossy = String::from_utf8_lossy(&bytes);
    let (kept, cut) = truncate_output(&lossy, limit);
    (kept.to_owned(), overflowed || cut)
}

/// The first executable file called `name` in the directories of `search_path` (a
/// `PATH` value).
pub fn find_program(name: &str, search_path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(search_path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}
