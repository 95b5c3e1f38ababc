//! Bounds how long a request may take, so that a stuck request cannot hold a
//! connection and its resources forever.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::AppError;
use crate::routes::Surface;

pub async fn limit(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    let surface = Surface::of(request.uri().path());
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => surface.error_response(AppError::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::middleware::from_fn_with_state;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    async fn slow() -> &'static str {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        "too late"
    }

    #[tokio::test(start_paused = true)]
    async fn slow_requests_are_cut_off_with_the_surfaces_error() {
        let app = Router::new()
            .route("/api/v1/slow", get(slow))
            .route("/slow", get(slow))
            .route("/fast", get(|| async { "ok" }))
            .layer(from_fn_with_state(Duration::from_secs(30), limit));
        let call = |path: &'static str| {
            app.clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
        };

        let api = call("/api/v1/slow").await.unwrap();
        assert_eq!(api.status(), 503);
        assert_eq!(api.headers()["content-type"], "application/problem+json");
        let page = call("/slow").await.unwrap();
        assert_eq!(page.status(), 503);
        assert!(
            page.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(call("/fast").await.unwrap().status(), 200);
    }
}
