//! CORS for the API: browsers may call `/api/v1` from the configured origins
//! only (none by default), and never with credentials.
//!
//! An allowed origin gets its own name back in `Access-Control-Allow-Origin`
//! (never `*`) and no `Access-Control-Allow-Credentials`, so a page on another
//! origin can use an API token but can never ride on a user's session cookie.
//! Preflights from allowed origins are answered here, before any route guard;
//! everything from other origins passes through without CORS headers, and the
//! browser keeps the answer from the calling page.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE";
const ALLOWED_HEADERS: &str = "authorization, content-type";
const EXPOSED_HEADERS: &str = "retry-after, x-request-id";
/// How long browsers may cache a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

pub async fn apply(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let allowed = request
        .headers()
        .get(header::ORIGIN)
        .filter(|_| request.uri().path().starts_with("/api/"))
        .filter(|origin| {
            origin
                .to_str()
                .is_ok_and(|origin| is_allowed(&state.settings.cors_allowed_origins, origin))
        })
        .cloned();
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = match (&allowed, preflight) {
        (Some(_), true) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOWED_METHODS),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOWED_HEADERS),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(PREFLIGHT_MAX_AGE),
            );
            response
        }
        _ => next.run(request).await,
    };
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("origin"));
    if let Some(origin) = allowed {
        allow(headers, origin);
    }
    response
}

fn allow(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED_HEADERS),
    );
    headers.remove(header::ACCESS_CONTROL_ALLOW_CREDENTIALS);
}

/// Whether `origin` is one of the configured ones (compared without case).
fn is_allowed(allowed: &[String], origin: &str) -> bool {
    allowed.iter().any(|a| a.eq_ignore_ascii_case(origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_origins_are_allowed() {
        let allowed = vec![String::from("https://portal.example.org")];
        assert!(is_allowed(&allowed, "https://portal.example.org"));
        assert!(is_allowed(&allowed, "HTTPS://Portal.Example.org"));
        assert!(!is_allowed(
            &allowed,
            "https://portal.example.org.evil.test"
        ));
        assert!(!is_allowed(&allowed, "http://portal.example.org"));
        assert!(!is_allowed(&allowed, "null"));
        assert!(!is_allowed(&[], "https://portal.example.org"));
    }
}
