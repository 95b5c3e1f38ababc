//! Vulnerability detection: device inventories checked against OSV advisories
//! and the CISA KEV catalog, imported offline.
//!
//! - [`import`] reads feed files and stores them as platform data.
//! - [`feeds`] holds the feeds compiled in memory, refreshed from the store.
//! - [`matcher`] turns inventories into findings and keeps them current.
//! - [`report`] makes signed KEV-remediation and vulnerability-summary reports
//!   and checks them.

pub mod feeds;
pub mod import;
pub mod matcher;
pub mod numbering;
pub mod report;

use std::sync::Arc;

use sentinel_core::audit::checkpoint::SigningKey;

pub use feeds::{FeedState, Feeds};
pub use matcher::Matcher;
pub use sentinel_advisories::Level;

/// What the server holds for vulnerability detection.
#[derive(Debug)]
pub struct Vulns {
    pub feeds: Arc<FeedState>,
    pub matcher: Arc<Matcher>,
    /// Signs reports: the platform's audit key.
    pub report_key: Arc<SigningKey>,
}

impl Vulns {
    pub fn new(report_key: Arc<SigningKey>) -> Self {
        Self {
            feeds: Arc::new(FeedState::default()),
            matcher: Arc::new(Matcher::default()),
            report_key,
        }
    }
}
