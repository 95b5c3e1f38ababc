//! Extractors that turn axum's rejections into [`AppError`]s, so that malformed
//! JSON, wrong types, unknown fields, oversized bodies and invalid ids get the same
//! problem document (API) or error page (UI) as every other error.

use axum::extract::FromRequest;
use axum::extract::FromRequestParts;
use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;

use crate::error::{ApiError, AppError, UiError};

fn body_error(status: StatusCode, text: String) -> AppError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => AppError::UnsupportedMediaType(text),
        _ => AppError::BadRequest(text),
    }
}

impl From<JsonRejection> for AppError {
    fn from(r: JsonRejection) -> Self {
        let text = match &r {
            JsonRejection::MissingJsonContentType(_) => {
                String::from("expected a JSON body with `Content-Type: application/json`")
            }
            JsonRejection::JsonSyntaxError(_) => format!("malformed JSON: {}", source_text(&r)),
            JsonRejection::JsonDataError(_) => format!("invalid request body: {}", source_text(&r)),
            _ => r.body_text(),
        };
        body_error(r.status(), text)
    }
}

impl From<FormRejection> for AppError {
    fn from(r: FormRejection) -> Self {
        body_error(r.status(), format!("invalid form: {}", r.body_text()))
    }
}

impl From<PathRejection> for AppError {
    fn from(_: PathRejection) -> Self {
        AppError::BadRequest(String::from("the URL contains an invalid id"))
    }
}

impl From<QueryRejection> for AppError {
    fn from(r: QueryRejection) -> Self {
        AppError::BadRequest(format!("invalid query string: {}", r.body_text()))
    }
}

/// The innermost error message (serde's, which names the field and position),
/// without axum's prefix.
fn source_text(r: &JsonRejection) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(r);
    let mut text = r.body_text();
    while let Some(e) = source {
        text = e.to_string();
        source = e.source();
    }
    text
}

/// A JSON request body for the API (`deny_unknown_fields` is on every body type).
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// Path parameters for the API.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// A form body for the UI.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Form), rejection(UiError))]
pub struct UiForm<T>(pub T);

/// Path parameters for the UI.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(UiError))]
pub struct UiPath<T>(pub T);

/// Query parameters for the UI.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(UiError))]
pub struct UiQuery<T>(pub T);

/// Query parameters for the API.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);
