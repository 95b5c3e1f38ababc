//! The static assets, compiled into the binary: the one stylesheet, and the
//! live feed's script (the only script; the CSP allows scripts from our own
//! origin only).

use axum::http::header;
use axum::response::IntoResponse;

const STYLESHEET: &str = include_str!("../../static/sentinel.css");
const LIVE_SCRIPT: &str = include_str!("../../static/live.js");

pub async fn stylesheet() -> impl IntoResponse {
    asset("text/css; charset=utf-8", STYLESHEET)
}

pub async fn live_script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", LIVE_SCRIPT)
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
}
