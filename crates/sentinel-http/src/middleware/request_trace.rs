//! Gives every request an id (returned as `X-Request-Id`) and a tracing span, and
//! logs one line when it completes. Only the method and path are logged: never the
//! query string (the setup link carries its token there), headers, cookies or bodies.

use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use uuid::Uuid;

pub async fn trace(request: Request, next: Next) -> Response {
    let id = Uuid::new_v4();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
        user_id = tracing::field::Empty,
        device_id = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut request = request;
    request.extensions_mut().insert(crate::audit::RequestId(id));
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(status, elapsed_ms, "request failed");
        } else {
            tracing::info!(status, elapsed_ms, "request");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id.to_string()) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
