//! Sentinel's HTTP surface: the REST API under `/api/v1`, the server-rendered web
//! UI, and the middleware that every request passes through.
//!
//! Request path (outermost first): security headers → request id and access log →
//! client address → timeout → routing → the route's [`access::Access`] check
//! (session, CSRF, platform role or organization permission; refusals of
//! authenticated callers audited) → handler → an operation in [`ops`] → the
//! stores, where each change records its audit entry.
//!
//! The MQTT device gateway ([`mqtt`]) is the second way in for devices: it
//! authenticates them as the agent routes do and calls the same operations.
//!
//! Every route is registered in [`routes`] together with the access it requires;
//! tests walk that table.

pub mod access;
mod api;
pub mod audit;
mod bus;
mod client;
mod error;
mod extract;
pub mod ingest;
mod live;
mod middleware;
pub mod mqtt;
mod ops;
mod password_work;
mod qr;
pub mod rate_limit;
pub mod routes;
mod session;
mod state;
mod ui;

pub use api::openapi_document;
pub use error::AppError;
pub use rate_limit::RateLimitSettings;
pub use routes::{RouteSpec, Surface, route_table, router};
pub use session::SESSION_COOKIE;
pub use state::{AppState, HttpSettings};
