//! The one error type of the HTTP layer, and its two renderings: RFC 9457
//! `application/problem+json` for the API, a plain page for the UI.
//!
//! Messages are written for the client and never carry SQL, file paths or internal
//! error text; internal errors are logged with the request id and answered with a
//! generic 500.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sentinel_core::ValidationError;
use sentinel_store::StoreError;
use serde::Serialize;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed (syntax, types, unknown fields, bad ids).
    #[error("{0}")]
    BadRequest(String),
    /// The request is well-formed but a value breaks a rule.
    #[error("{0}")]
    Invalid(ValidationError),
    #[error("authentication required")]
    Unauthenticated,
    /// Login failed; deliberately says nothing about which part was wrong.
    #[error("invalid e-mail address or password")]
    InvalidCredentials,
    /// The second step of a login failed: a wrong code, or a pending login that
    /// is no longer valid (the text says which).
    #[error("{0}")]
    SecondFactorFailed(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    /// The organization's policy requires two-factor authentication of this
    /// member, who has not turned it on.
    #[error("this organization requires two-factor authentication: turn it on in your profile")]
    TwoFactorRequired,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the request took too long")]
    Timeout,
    /// The caller went over a rate limit; retry after the given time.
    #[error("too many requests; retry in {} s", retry_after_seconds(*.0))]
    TooManyRequests(std::time::Duration),
    /// The server is at capacity for this kind of work; retry shortly.
    #[error("the server is busy; retry in a moment")]
    Busy,
    /// Anything the client cannot fix; the text is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unauthenticated
            | AppError::InvalidCredentials
            | AppError::SecondFactorFailed(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::TwoFactorRequired => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Timeout | AppError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable short name for the kind of problem (the `type` of a problem document).
    fn kind(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad-request",
            AppError::Invalid(_) => "validation",
            AppError::Unauthenticated => "unauthenticated",
            AppError::InvalidCredentials => "invalid-credentials",
            AppError::SecondFactorFailed(_) => "second-factor-failed",
            AppError::Forbidden(_) => "forbidden",
            AppError::TwoFactorRequired => "two-factor-required",
            AppError::NotFound(_) => "not-found",
            AppError::Conflict(_) => "conflict",
            AppError::MethodNotAllowed => "method-not-allowed",
            AppError::PayloadTooLarge => "payload-too-large",
            AppError::UnsupportedMediaType(_) => "unsupported-media-type",
            AppError::Timeout => "timeout",
            AppError::TooManyRequests(_) => "rate-limited",
            AppError::Busy => "busy",
            AppError::Internal(_) => "internal",
        }
    }

    /// What the client is told.
    pub fn detail(&self) -> String {
        match self {
            AppError::Internal(_) => String::from("an internal error occurred; it has been logged"),
            other => other.to_string(),
        }
    }

    /// Tells the client when to retry, for errors that pass.
    fn add_retry_hint(&self, mut response: Response) -> Response {
        let seconds = match self {
            AppError::Busy => 1,
            AppError::TooManyRequests(wait) => retry_after_seconds(*wait),
            _ => return response,
        };
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        response
    }

    /// Marks a refusal for the access guard to audit (see [`crate::audit`]);
    /// also for pages that show a refusal on themselves.
    pub(crate) fn mark_denial(&self, response: &mut Response) {
        if let Some(reason) = self.denial_reason() {
            response
                .extensions_mut()
                .insert(crate::audit::Denied(reason));
        }
    }

    /// Why a logged-in caller was refused, if this error is a refusal (what
    /// the audit log records).
    pub fn denial_reason(&self) -> Option<&'static str> {
        match self {
            AppError::Forbidden(reason) => Some(reason),
            AppError::TwoFactorRequired => {
                Some("two-factor authentication required by the organization")
            }
            _ => None,
        }
    }

    fn log_if_internal(&self) {
        if let AppError::Internal(cause) = self {
            tracing::error!(error = %cause, "request failed");
        }
    }
}

/// Whole seconds to wait, rounded up (`Retry-After` has no fractions).
fn retry_after_seconds(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl From<ValidationError> for AppError {
    fn from(e: ValidationError) -> Self {
        AppError::Invalid(e)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound("resource"),
            StoreError::Conflict(m) => AppError::Conflict(m.to_owned()),
            StoreError::Refused(m) => AppError::Conflict(m.to_owned()),
            StoreError::NotPermitted(m) => AppError::Forbidden(m),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<sentinel_core::secret::RandomnessError> for AppError {
    fn from(e: sentinel_core::secret::RandomnessError) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl From<sentinel_core::password::HashError> for AppError {
    fn from(e: sentinel_core::password::HashError) -> Self {
        AppError::Internal(e.to_string())
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem, e.g. `urn:sentinel:problem:validation`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For validation problems: the offending input field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error rendered for the API.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = self.0;
        error.log_if_internal();
        let status = error.status();
        let problem = Problem {
            kind: format!("urn:sentinel:problem:{}", error.kind()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: error.detail(),
            field: match &error {
                AppError::Invalid(v) => Some(v.field.to_owned()),
                _ => None,
            },
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        error.mark_denial(&mut response);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Cookie realm=\"sentinel\""),
            );
        }
        error.add_retry_hint(response)
    }
}

/// An error rendered for the UI.
#[derive(Debug)]
pub struct UiError(pub AppError);

impl<E: Into<AppError>> From<E> for UiError {
    fn from(e: E) -> Self {
        UiError(e.into())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let error = self.0;
        error.log_if_internal();
        let mut response = crate::ui::error_page(error.status(), &error.detail());
        error.mark_denial(&mut response);
        error.add_retry_hint(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_answers_say_when_to_retry_on_both_surfaces() {
        for response in [
            ApiError(AppError::Busy).into_response(),
            UiError(AppError::Busy).into_response(),
        ] {
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        }
        let other = ApiError(AppError::Timeout).into_response();
        assert!(other.headers().get(header::RETRY_AFTER).is_none());
    }

    #[test]
    fn internal_errors_say_nothing_of_their_cause() {
        let error = AppError::Internal(String::from("SELECT secret FROM /var/lib/x.db"));
        assert!(!error.detail().contains("SELECT") && !error.detail().contains("/var"));
    }
}
