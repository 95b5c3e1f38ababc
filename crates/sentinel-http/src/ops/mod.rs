//! The operations behind the API and the UI: one function per use case, shared by
//! both surfaces. They validate input and enforce the rules that go beyond a
//! route's permission (who may grant the owner role, the password policy, …); the
//! handlers only translate between HTTP and these functions.

pub mod audit;
pub mod auth;
pub mod members;
pub mod orgs;
pub mod setup;
pub mod users;
