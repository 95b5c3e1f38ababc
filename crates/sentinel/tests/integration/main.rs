//! Integration tests: the real server, booted in-process on `127.0.0.1:0` with real
//! TLS (or the real binary, where the process itself is under test), driven by a
//! real HTTPS client that trusts the generated CA. One test binary for all of them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod agent_mqtt;
mod audit;
mod auth;
mod browser;
mod cli;
mod devices;
mod errors;
mod findings;
mod headers;
mod iot;
mod limits;
mod live;
mod logs;
mod mqtt;
mod orgs;
mod rotation;
mod routes;
mod setup;
mod tokens;
mod transport;
mod two_factor;
mod ui_devices;
mod ui_iot;
mod ui_tokens;
