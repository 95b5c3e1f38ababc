//! Integration tests of the agent's collection library, in one test binary: inventory
//! parsers on realistic fixtures, host facts and telemetry on fake roots and on this host,
//! and hostile input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod facts;
mod hostile_input;
mod inventory;
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
