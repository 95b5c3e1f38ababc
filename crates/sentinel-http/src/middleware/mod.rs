//! Middleware that wraps every request, whatever its route.

pub mod cors;
pub mod request_trace;
pub mod security_headers;
pub mod timeout;
