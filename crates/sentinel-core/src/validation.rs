//! The one error type for input that fails a domain rule, naming the field at fault.

use std::fmt;

/// A value that broke a domain rule. `field` names the input (as the API and the
/// forms spell it) so that clients can point at it; `message` says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ValidationError {}

/// True when `s` holds a control character (including newlines), which no name,
/// e-mail address or slug may contain: they end up in logs, headers and HTML.
pub(crate) fn has_control_chars(s: &str) -> bool {
    s.chars().any(char::is_control)
}
