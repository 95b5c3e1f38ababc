//! Integration tests of the version orderings, in one test binary: property tests
//! for every ecosystem, and dpkg itself as the oracle for Debian ordering.

mod dpkg_oracle;
mod properties;
