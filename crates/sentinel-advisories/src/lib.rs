//! Vulnerability feeds and deciding which installed packages they affect,
//! without I/O.
//!
//! [`osv`] reads OSV records as OSV.dev and the distributions publish them
//! (Debian, Ubuntu, Alpine, Rocky Linux, AlmaLinux, Red Hat) and [`kev`] reads
//! CISA's catalog of known exploited vulnerabilities. [`ecosystem`] turns an
//! OSV ecosystem string (`Debian:12`, `Ubuntu:22.04:LTS`) and a device's
//! `/etc/os-release` into the same [`EcosystemKey`], which also says how that
//! release orders versions. [`range`] compiles an OSV `affected` entry once,
//! parsing its versions with `sentinel-versions`, and evaluates the OSV
//! algorithm against an installed version; entries that cannot be evaluated
//! faithfully are skipped with a [`SkipReason`] instead of being guessed at.
//! [`matching`] gathers compiled records in an [`AdvisoryIndex`] keyed by
//! release and package name, keeps only the newest copy of each record and
//! none that are withdrawn, and answers "which advisories affect this package
//! at this version on this device, and what fixes them". KEV entries are then
//! found through the CVE ids of each match ([`AdvisoryMatch::cve_ids`]).
//!
//! [`severity`] turns CVSS v3 vectors and distribution ratings into one
//! [`Level`].
//!
//! Nothing here panics on any input; malformed input is an error value.

mod calendar;
pub mod ecosystem;
pub mod kev;
pub mod matching;
pub mod osv;
pub mod range;
pub mod severity;

pub use ecosystem::{Distro, EcosystemError, EcosystemKey};
pub use kev::{Date, KevCatalog, KevEntry, KevError};
pub use matching::{
    AdvisoryIndex, AdvisoryMatch, CompiledAdvisory, InsertOutcome, Insertion, Release,
    SkippedEntry, SourcePackage,
};
pub use osv::{OsvError, Timestamp, Vulnerability};
pub use range::{AffectedBy, AffectedVersions, CompiledAffected, SkipReason, Version};
pub use sentinel_versions::Ecosystem;
pub use severity::Level;
