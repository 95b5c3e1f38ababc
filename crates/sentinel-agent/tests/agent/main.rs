//! Integration tests of the agent, in one test binary: the collection library on
//! fixtures and this host; the agent's building blocks (back-off, spool, replay record,
//! state files, package manager argv, running processes); and the real `sentinel-agent`
//! binary enrolled with and run against a stub server over TLS.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backoff;
mod cli;
mod commands;
mod facts;
mod hostile_input;
mod inventory;
mod packages;
mod process;
mod replay;
mod service;
mod spool;
mod state;
mod stub;
mod telemetry;

use std::path::{Path, PathBuf};

/// A file under `tests/fixtures`.
fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// The text of a file under `tests/fixtures`.
fn fixture_text(path: &str) -> String {
    std::fs::read_to_string(fixture(path)).unwrap()
}

/// Writes `contents` to `path` under `root`, creating directories on the way.
fn write(root: &Path, path: &str, contents: impl AsRef<[u8]>) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// The permission bits of `path`.
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}
