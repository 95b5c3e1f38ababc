#![warn(missing_docs)]
//! The Sentinel device agent: enrolls a device with its server, then reports the host's
//! facts, telemetry and software inventory and runs the signed commands its organization
//! sends.
//!
//! Collection only reads the host: [`facts`] identifies the host and its operating
//! system, [`telemetry`] samples its load, memory, disks, network and users, and
//! [`inventory`] lists the packages dpkg, rpm or apk installed. Every path is resolved
//! under a configurable root ([`host`]) so that tests can use a fake host. Parsers never
//! panic and never give up on a whole file because of one bad entry: they skip it and
//! say why. What travels to the server is defined once, in `sentinel_protocol`.
//!
//! The agent itself: [`cli`] parses the command line; [`enroll`] exchanges an enrollment
//! token for a device identity kept in the private [`state`] directory; [`service`] runs
//! the loops, reporting through a [`transport`] ([`api`] over [`tls`]), retrying per [`retry`]
//! and [`backoff`], spooling telemetry in [`spool`], refusing replayed commands with
//! [`replay`], and running commands as [`process`]es (packages via [`packages`]).

pub mod api;
pub mod backoff;
pub mod cli;
pub mod clock;
pub mod enroll;
pub mod facts;
mod files;
pub mod host;
pub mod inventory;
pub mod logging;
pub mod packages;
pub mod process;
pub mod replay;
pub mod retry;
pub mod secret;
pub mod service;
pub mod spool;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod transport;
