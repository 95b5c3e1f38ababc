//! The operations behind the API and the UI: one function per use case, shared by
//! both surfaces. They validate input and enforce the rules that go beyond a
//! route's permission (who may grant the owner role, the password policy, …); the
//! handlers only translate between HTTP and these functions.

pub mod agent;
pub mod audit;
pub mod auth;
pub mod devices;
pub mod members;
pub mod orgs;
pub mod service_accounts;
pub mod sessions;
pub mod setup;
pub mod tokens;
pub mod two_factor;
pub mod users;

/// Maps the store's `NotFound` to a 404 naming `what`.
pub(crate) fn not_found_as(
    what: &'static str,
) -> impl Fn(sentinel_store::StoreError) -> crate::error::AppError {
    move |e| match e {
        sentinel_store::StoreError::NotFound => crate::error::AppError::NotFound(what),
        other => other.into(),
    }
}
