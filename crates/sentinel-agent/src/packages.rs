//! Installing and removing packages: which package manager the host has, and the exact
//! argument list it is run with (no shell; the name after `--`).

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use sentinel_protocol::command::is_package_name;

use crate::process::find_program;

/// How long an install or removal may take.
pub const TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A package manager front end the agent can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// Debian, Ubuntu and derivatives.
    AptGet,
    /// Fedora, RHEL and derivatives.
    Dnf,
    /// Alpine.
    Apk,
}

/// What to do with a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Install the package (or upgrade it to the candidate version).
    Install,
    /// Remove the package, keeping its configuration files.
    Remove,
}

impl Tool {
    /// The tools in the order they are looked for.
    pub const PREFERENCE: [Tool; 3] = [Tool::AptGet, Tool::Dnf, Tool::Apk];

    /// The program's name, looked up in `PATH`.
    pub fn program(self) -> &'static str {
        match self {
            Self::AptGet => "apt-get",
            Self::Dnf => "dnf",
            Self::Apk => "apk",
        }
    }

    /// The first tool found in `search_path` (a `PATH` value), and where.
    pub fn detect(search_path: &OsStr) -> Option<(Self, PathBuf)> {
        Self::PREFERENCE
            .into_iter()
            .find_map(|tool| find_program(tool.program(), search_path).map(|path| (tool, path)))
    }

    /// The arguments for `operation` on the package `name`, or why `name` is refused
    /// (anything but a plain package name: it could be read as an option or a path).
    pub fn args(self, operation: Operation, name: &str) -> Result<Vec<String>, String> {
        if !is_package_name(name) {
            return Err(format!("{name:?} is not a plain package name"));
        }
        let verb: &[&str] = match (self, operation) {
            (Self::AptGet | Self::Dnf, Operation::Install) => &["install", "-y"],
            (Self::AptGet | Self::Dnf, Operation::Remove) => &["remove", "-y"],
            (Self::Apk, Operation::Install) => &["add"],
            (Self::Apk, Operation::Remove) => &["del"],
        };
        Ok(verb
            .iter()
            .chain(&["--", name])
            .map(|arg| (*arg).to_owned())
            .collect())
    }

    /// Environment variables the tool needs besides the minimal ones.
    pub fn env(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::AptGet => &[("DEBIAN_FRONTEND", "noninteractive")],
            Self::Dnf | Self::Apk => &[],
        }
    }
}
