//! The operations behind the API and the UI: one function per use case, shared by
//! both surfaces. They validate input and enforce the rules that go beyond a
//! route's permission (who may grant the owner role, the password policy, …); the
//! handlers only translate between HTTP and these functions.

pub mod agent;
pub mod audit;
pub mod auth;
pub mod devices;
pub mod feeds;
pub mod findings;
pub mod integrations;
pub mod lorawan;
pub mod members;
pub mod orgs;
pub mod service_accounts;
pub mod sessions;
pub mod setup;
pub mod tokens;
pub mod two_factor;
pub mod users;

/// Moves a change's audit event from the control store's outbox into the
/// organization's log. The change is made either way: if this fails, the event
/// stays queued and the server's maintenance moves it later.
pub(crate) async fn flush_audit(state: &crate::state::AppState, org: sentinel_core::OrgId) {
    if let Err(e) = state.stores.flush_audit_outbox(org).await {
        tracing::warn!(org_id = %org, error = %e, "audit events stay queued for later");
    }
}

/// Maps the store's `NotFound` to a 404 naming `what`.
pub(crate) fn not_found_as(
    what: &'static str,
) -> impl Fn(sentinel_store::StoreError) -> crate::error::AppError {
    move |e| match e {
        sentinel_store::StoreError::NotFound => crate::error::AppError::NotFound(what),
        other => other.into(),
    }
}
