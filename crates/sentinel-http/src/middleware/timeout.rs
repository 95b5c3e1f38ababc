//! Bounds how long a request may take, so that a stuck request cannot hold a
//! connection and its resources forever.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::AppError;
use crate::routes::Surface;
use crate::state::AppState;

pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let surface = Surface::of(request.uri().path());
    match tokio::time::timeout(state.settings.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => surface.error_response(AppError::Timeout),
    }
}
