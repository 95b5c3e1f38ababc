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
    if let Ok(mut value) = HeaderValue::from_str(&id.to_string()) {
        // Never indexed by HTTP/2: each response's id is new, so indexing it
        // would only churn the HPACK table that every agent's long-lived
        // connection keeps (docs/benchmarks.md, the connected fleet).
        value.set_sensitive(true);
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::extract::Request;
    use tower::ServiceExt;

    #[tokio::test]
    async fn every_response_carries_a_request_id_that_http2_never_indexes() {
        let app = axum::Router::new()
            .route("/", axum::routing::get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(super::trace));
        let mut ids = Vec::new();
        for _ in 0..2 {
            let request = Request::get("/").body(Body::empty()).unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            let id = response.headers()["x-request-id"].clone();
            assert!(id.is_sensitive());
            ids.push(uuid::Uuid::parse_str(id.to_str().unwrap()).unwrap());
        }
        assert_ne!(ids[0], ids[1]);
    }
}
