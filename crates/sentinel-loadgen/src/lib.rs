//! `sentinel-loadgen`: many simulated agents in one process, speaking the real
//! agent protocol (the `sentinel-protocol` types over HTTPS, HTTP/1.1, or over
//! the MQTT device gateway) to one Sentinel server, with measurements and a
//! loss check; and the runner of the standard load scenarios whose results go
//! into `docs/benchmarks.md`.
//!
//! - [`client`]: TCP from a chosen source address, TLS, HTTP/1.1 or HTTP/2;
//!   failures by kind.
//! - [`pool`]: a device's HTTP/1.1 connections, kept as the agent keeps them.
//! - [`device`]: one well-behaved simulated agent.
//! - [`fault`]: misbehaving devices (abrupt disconnects, bad and revoked tokens,
//!   slow readers, malformed payloads).
//! - [`fleet`]: one run — ramp-up, measured window, loss check.
//! - [`mqtt`]: the MQTT gateway's measurements (idle connections, QoS 1
//!   telemetry, command push).
//! - [`admin`]: the member REST API calls a run needs.
//! - [`bench`]: the scenario runner (fresh `sentinel serve` per scenario).
//! - [`stats`], [`tracker`], [`loss`], [`procfs`], [`report`]: what is measured
//!   and shown.

pub mod admin;
pub mod bench;
pub mod client;
pub mod device;
pub mod fault;
pub mod fleet;
pub mod inventory;
pub mod loss;
pub mod mqtt;
pub mod pool;
pub mod procfs;
pub mod report;
pub mod rng;
pub mod stats;
pub mod tracker;
