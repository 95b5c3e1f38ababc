//! The Sentinel device agent's local collection: host facts, telemetry and software inventory.
//!
//! Everything here runs on the device and only reads it: [`facts`] identifies the host and
//! its operating system, [`telemetry`] samples its load, memory, disks, network and users,
//! and [`inventory`] lists the packages dpkg, rpm or apk installed. Every path is resolved
//! under a configurable root so that tests can use a fake host. Parsers never panic and
//! never give up on a whole file because of one bad entry: they skip it and say why.

pub mod facts;
mod files;
pub mod inventory;
pub mod telemetry;
