//! Which distribution release a package belongs to, as an [`EcosystemKey`]
//! that advisories and devices share.
//!
//! Advisories name their scope with OSV ecosystem strings and devices describe
//! themselves in `/etc/os-release`; both are turned into the same key so that
//! an advisory is only ever matched against devices of the release it is about
//! (a fix shipped in Debian 12 says nothing about Debian 11). The key also says
//! how that release orders package versions.
//!
//! OSV ecosystem strings, as OSV.dev and the distributions publish them (and
//! the OSV schema's list of ecosystems defines them):
//!
//! | String | Key | Notes |
//! |---|---|---|
//! | `Debian:12` | Debian `12` | releases are distro-info numbers (`3.1`, `7`, `12`) or, without one, a series (`sid`) |
//! | `Ubuntu:22.04:LTS`, `Ubuntu:23.10` | Ubuntu `22.04` | `:LTS` is dropped: `VERSION_ID` does not say it, and `22.04` names the release alone |
//! | `Ubuntu:Pro:18.04:LTS` | Ubuntu Pro `18.04` | Ubuntu Pro (ESM) is a stream of its own, see below |
//! | `Ubuntu:Pro:FIPS-updates:20.04:LTS`, `Ubuntu:Pro:22.04:LTS:Realtime:Kernel` | Ubuntu Pro `20.04` / `22.04`, stream `FIPS-updates` / `Realtime:Kernel` | each Pro service is a stream of its own |
//! | `Alpine:v3.19` | Alpine `3.19` | the `v` is required |
//! | `Rocky Linux:9`, `AlmaLinux:9` | Rocky Linux / AlmaLinux `9` | a minor version, if a record had one, is dropped: both publish one repository set per major release |
//! | `Red Hat:enterprise_linux:9::appstream` | Red Hat `enterprise_linux` `9` | a CPE with `cpe:/[oa]:redhat:` removed; the repository (`appstream`, `baseos`, `crb`, …) is dropped, and `enterprise_linux` keeps only its major version (`10.1` → `10`) |
//! | `Red Hat:rhel_eus:9.2::baseos` | Red Hat `rhel_eus` `9.2` | other products (EUS, AUS, E4S, OpenShift, …) keep their product and full version: they are separate streams |
//!
//! Decisions behind the table:
//!
//! - **Ubuntu Pro is its own stream.** Pro fixes (`…+esm1`) reach only
//!   machines attached to an Ubuntu Pro subscription, and `/etc/os-release`
//!   does not say whether a machine is. A device key built from os-release is
//!   therefore plain Ubuntu; a caller that knows a device receives Pro updates
//!   can query the Pro key too ([`EcosystemKey::ubuntu_pro`]). Matching plain
//!   devices against Pro records would report fixes they cannot install.
//! - **Red Hat repositories are merged.** A host installs from several
//!   repositories at once, and the package name and its EVR already identify
//!   the build; keying on the repository would lose every `appstream` advisory
//!   on a host whose os-release CPE says `baseos`. From RHEL 10 on, Red Hat's
//!   CPEs carry the minor release (`enterprise_linux:10.1`); merging minors
//!   under the major is safe because rpm orders the later minors' builds
//!   (`el10_1`) after the earlier ones (`el10_0`). Extended-support products
//!   are not merged, because a host subscribed to 9.2 EUS stays on 9.2 builds,
//!   and os-release cannot tell that either.
//! - Anything else — other OSV ecosystems (npm, SUSE, …), unknown
//!   distributions in os-release — is [`EcosystemError::Unsupported`], a
//!   result to report, not a failure.

use std::fmt;

use sentinel_versions::{Ecosystem, VersionError};

use crate::range::Version;

/// A distribution whose advisories this crate can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Distro {
    /// Debian (`Debian:<release>`).
    Debian,
    /// Ubuntu's standard archive (`Ubuntu:<release>[:LTS]`).
    Ubuntu,
    /// Ubuntu Pro / ESM (`Ubuntu:Pro:…`), a separate stream of fixes.
    UbuntuPro,
    /// Alpine Linux (`Alpine:v<release>`).
    Alpine,
    /// Rocky Linux (`Rocky Linux:<release>`).
    RockyLinux,
    /// AlmaLinux (`AlmaLinux:<release>`).
    AlmaLinux,
    /// Red Hat products (`Red Hat:<product>:<version>…`).
    RedHat,
}

impl Distro {
    /// How this distribution orders package versions.
    pub fn version_scheme(self) -> Ecosystem {
        match self {
            Distro::Debian | Distro::Ubuntu | Distro::UbuntuPro => Ecosystem::Debian,
            Distro::Alpine => Ecosystem::Alpine,
            Distro::RockyLinux | Distro::AlmaLinux | Distro::RedHat => Ecosystem::Rpm,
        }
    }

    /// The name OSV uses for the distribution.
    pub fn osv_name(self) -> &'static str {
        match self {
            Distro::Debian => "Debian",
            Distro::Ubuntu => "Ubuntu",
            Distro::UbuntuPro => "Ubuntu:Pro",
            Distro::Alpine => "Alpine",
            Distro::RockyLinux => "Rocky Linux",
            Distro::AlmaLinux => "AlmaLinux",
            Distro::RedHat => "Red Hat",
        }
    }
}

impl fmt::Display for Distro {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Distro::UbuntuPro => "Ubuntu Pro",
            other => other.osv_name(),
        })
    }
}

/// The product stream of Red Hat Enterprise Linux itself.
pub const RHEL_PRODUCT: &str = "enterprise_linux";

/// A distribution release (and, where the distribution has several, a
/// stream): the key on which advisories and devices meet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EcosystemKey {
    distro: Distro,
    release: String,
    stream: String,
}

/// Why an ecosystem string or os-release could not be turned into a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EcosystemError {
    /// Not a distribution this crate matches (another OSV ecosystem, or an
    /// os-release `ID` it does not know).
    #[error("unsupported distribution or ecosystem {0:?}")]
    Unsupported(String),
    /// The distribution is known but no release is given, so the advisory or
    /// device cannot be tied to one.
    #[error("{0:?} does not name a release")]
    MissingRelease(String),
    /// The release is not in the form the distribution uses.
    #[error("{0:?} does not name a release in the expected form")]
    InvalidRelease(String),
}

impl EcosystemKey {
    /// A key for `release` of `distro`, in its main stream.
    ///
    /// For Red Hat the main stream is the `enterprise_linux` product, and
    /// `release` should be its major version.
    pub fn new(distro: Distro, release: &str) -> Self {
        let stream = if distro == Distro::RedHat {
            RHEL_PRODUCT
        } else {
            ""
        };
        EcosystemKey {
            distro,
            release: release.to_owned(),
            stream: stream.to_owned(),
        }
    }

    /// The key of Ubuntu Pro's main (ESM) stream for an Ubuntu release, for a
    /// device known to receive Pro updates.
    pub fn ubuntu_pro(release: &str) -> Self {
        Self::new(Distro::UbuntuPro, release)
    }

    /// The same release in another stream: an Ubuntu Pro service such as
    /// `FIPS-updates`, or a Red Hat product such as `rhel_eus`.
    pub fn with_stream(mut self, stream: &str) -> Self {
        stream.clone_into(&mut self.stream);
        self
    }

    /// The distribution.
    pub fn distro(&self) -> Distro {
        self.distro
    }

    /// The release: `12`, `22.04`, `3.19`, `9`, `9.2`.
    pub fn release(&self) -> &str {
        &self.release
    }

    /// The stream within the release: empty for the main stream, an Ubuntu Pro
    /// service, or the Red Hat product (`enterprise_linux` for RHEL itself).
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// How packages of this release order their versions.
    pub fn version_scheme(&self) -> Ecosystem {
        self.distro.version_scheme()
    }

    /// Parses an installed package's version with this release's rules.
    pub fn parse_version(&self, text: &str) -> Result<Version, VersionError> {
        Version::parse(self.version_scheme(), text)
    }

    /// Parses an OSV `package.ecosystem` string (see the [module documentation](self)).
    pub fn from_osv(ecosystem: &str) -> Result<Self, EcosystemError> {
        let (name, rest) = match ecosystem.split_once(':') {
            Some((name, rest)) => (name, Some(rest)),
            None => (ecosystem, None),
        };
        let distro = match name {
            "Debian" => Distro::Debian,
            "Ubuntu" => Distro::Ubuntu,
            "Alpine" => Distro::Alpine,
            "Rocky Linux" => Distro::RockyLinux,
            "AlmaLinux" => Distro::AlmaLinux,
            "Red Hat" => Distro::RedHat,
            _ => return Err(EcosystemError::Unsupported(ecosystem.to_owned())),
        };
        let Some(rest) = rest.filter(|rest| !rest.is_empty()) else {
            return Err(EcosystemError::MissingRelease(ecosystem.to_owned()));
        };
        let invalid = || EcosystemError::InvalidRelease(ecosystem.to_owned());
        match distro {
            Distro::Debian => {
                let valid = rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.');
                valid
                    .then(|| Self::new(Distro::Debian, rest))
                    .ok_or_else(invalid)
            }
            Distro::Ubuntu | Distro::UbuntuPro => parse_ubuntu(rest).ok_or_else(invalid),
            Distro::Alpine => rest
                .strip_prefix('v')
                .filter(|release| is_major_minor(release))
                .map(|release| Self::new(Distro::Alpine, release))
                .ok_or_else(invalid),
            Distro::RockyLinux | Distro::AlmaLinux => major_of(rest)
                .map(|major| Self::new(distro, major))
                .ok_or_else(invalid),
            Distro::RedHat => parse_red_hat(rest, ecosystem),
        }
    }

    /// Builds a device's key from the `ID` and `VERSION_ID` fields of its
    /// `/etc/os-release` (surrounding quotes and blanks are ignored).
    ///
    /// Supported: `debian` (`12`), `ubuntu` (`22.04`), `alpine` (`3.19.1` →
    /// `3.19`), `rocky` and `almalinux` (`9.3` → `9`) and `rhel` (`9.3` → `9`).
    /// Alpine's edge (`3.21.0_alpha20240807`) and Debian testing or unstable
    /// (no `VERSION_ID`) have no release that advisories are published for,
    /// and are errors. Derivatives (`ID_LIKE`) are not matched as their
    /// parent: their packages and versions are their own.
    pub fn from_os_release(id: &str, version_id: Option<&str>) -> Result<Self, EcosystemError> {
        let id = unquote(id);
        let distro = match id {
            "debian" => Distro::Debian,
            "ubuntu" => Distro::Ubuntu,
            "alpine" => Distro::Alpine,
            "rocky" => Distro::RockyLinux,
            "almalinux" => Distro::AlmaLinux,
            "rhel" => Distro::RedHat,
            _ => return Err(EcosystemError::Unsupported(id.to_owned())),
        };
        let Some(version) = version_id.map(unquote).filter(|v| !v.is_empty()) else {
            return Err(EcosystemError::MissingRelease(id.to_owned()));
        };
        let invalid = || EcosystemError::InvalidRelease(format!("{id} {version}"));
        let release = match distro {
            Distro::Ubuntu => Some(version).filter(|v| is_ubuntu_release(v)),
            Distro::Alpine => {
                // `3.19.1` → `3.19`: branches are named by major and minor.
                let parts: Vec<&str> = version.split('.').collect();
                match parts.as_slice() {
                    [major, minor] | [major, minor, _] if parts.iter().all(|p| is_number(p)) => {
                        version.get(..major.len() + 1 + minor.len())
                    }
                    _ => None,
                }
            }
            // Debian's VERSION_ID is the major release already; the others
            // carry a minor that their advisories do not.
            _ => major_of(version),
        };
        release
            .map(|release| Self::new(distro, release))
            .ok_or_else(invalid)
    }
}

impl fmt::Display for EcosystemKey {
    /// A readable form of the key, close to the OSV spelling but not an OSV
    /// ecosystem string: `Debian:12`, `Ubuntu:22.04`, `Ubuntu:Pro:FIPS:18.04`,
    /// `Alpine:v3.19`, `Red Hat:enterprise_linux:9`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.distro.osv_name())?;
        if !self.stream.is_empty() {
            write!(f, ":{}", self.stream)?;
        }
        let v = if self.distro == Distro::Alpine {
            "v"
        } else {
            ""
        };
        write!(f, ":{v}{}", self.release)
    }
}

/// Parses what follows `Ubuntu:` (see the module documentation for the forms).
fn parse_ubuntu(rest: &str) -> Option<EcosystemKey> {
    let mut parts: Vec<&str> = rest.split(':').collect();
    let pro = parts.first() == Some(&"Pro");
    if pro {
        parts.remove(0);
    }
    let position = parts.iter().position(|part| is_ubuntu_release(part))?;
    let release = parts.get(position)?;
    let before = parts.get(..position)?;
    let mut after = parts.get(position + 1..)?;
    if after.first() == Some(&"LTS") {
        after = after.get(1..)?;
    }
    if !pro {
        // Plain Ubuntu has only `<release>` and `<release>:LTS`.
        return (before.is_empty() && after.is_empty())
            .then(|| EcosystemKey::new(Distro::Ubuntu, release));
    }
    if before.iter().chain(after).any(|part| part.is_empty()) {
        return None;
    }
    let stream = [before, after].concat().join(":");
    Some(EcosystemKey::new(Distro::UbuntuPro, release).with_stream(&stream))
}

/// Parses what follows `Red Hat:`: `<product>:<version>[:<update>[:<edition>…]]`.
fn parse_red_hat(rest: &str, ecosystem: &str) -> Result<EcosystemKey, EcosystemError> {
    let mut parts = rest.split(':');
    let product = parts.next().unwrap_or_default();
    let version = parts.next().unwrap_or_default();
    let valid_product = !product.is_empty()
        && product
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid_product {
        return Err(EcosystemError::InvalidRelease(ecosystem.to_owned()));
    }
    if version.is_empty() {
        return Err(EcosystemError::MissingRelease(ecosystem.to_owned()));
    }
    let release = if product == RHEL_PRODUCT {
        major_of(version)
    } else {
        let valid = version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
        valid.then_some(version)
    };
    release
        .map(|release| EcosystemKey::new(Distro::RedHat, release).with_stream(product))
        .ok_or_else(|| EcosystemError::InvalidRelease(ecosystem.to_owned()))
}

/// The major version of `9`, `9.3` or `10.1`, if that is what `version` is.
fn major_of(version: &str) -> Option<&str> {
    let major = version.split('.').next().unwrap_or_default();
    let rest_ok = version.split('.').skip(1).all(is_number);
    (is_number(major) && rest_ok).then_some(major)
}

fn is_number(part: &str) -> bool {
    !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())
}

/// `3.19`: two numbers joined by a dot.
fn is_major_minor(release: &str) -> bool {
    release
        .split_once('.')
        .is_some_and(|(major, minor)| is_number(major) && is_number(minor))
}

/// `22.04`: Ubuntu's `YY.MM`.
fn is_ubuntu_release(release: &str) -> bool {
    release.split_once('.').is_some_and(|(year, month)| {
        year.len() == 2 && month.len() == 2 && is_number(year) && is_number(month)
    })
}

/// Strips blanks and one pair of surrounding quotes, as os-release allows.
fn unquote(value: &str) -> &str {
    let value = value.trim();
    ["\"", "'"]
        .iter()
        .find_map(|quote| value.strip_prefix(quote)?.strip_suffix(quote))
        .unwrap_or(value)
        .trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn osv(s: &str) -> EcosystemKey {
        EcosystemKey::from_osv(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn device(id: &str, version: &str) -> EcosystemKey {
        EcosystemKey::from_os_release(id, Some(version)).unwrap_or_else(|e| panic!("{id}: {e}"))
    }

    #[test]
    fn osv_strings_parse_to_distribution_release_and_scheme() {
        let cases = [
            ("Debian:12", Distro::Debian, "12", "", Ecosystem::Debian),
            ("Debian:11", Distro::Debian, "11", "", Ecosystem::Debian),
            ("Debian:3.1", Distro::Debian, "3.1", "", Ecosystem::Debian),
            (
                "Ubuntu:22.04:LTS",
                Distro::Ubuntu,
                "22.04",
                "",
                Ecosystem::Debian,
            ),
            (
                "Ubuntu:23.10",
                Distro::Ubuntu,
                "23.10",
                "",
                Ecosystem::Debian,
            ),
            (
                "Ubuntu:Pro:18.04:LTS",
                Distro::UbuntuPro,
                "18.04",
                "",
                Ecosystem::Debian,
            ),
            (
                "Ubuntu:Pro:FIPS-updates:20.04:LTS",
                Distro::UbuntuPro,
                "20.04",
                "FIPS-updates",
                Ecosystem::Debian,
            ),
            (
                "Ubuntu:Pro:22.04:LTS:Realtime:Kernel",
                Distro::UbuntuPro,
                "22.04",
                "Realtime:Kernel",
                Ecosystem::Debian,
            ),
            (
                "Alpine:v3.19",
                Distro::Alpine,
                "3.19",
                "",
                Ecosystem::Alpine,
            ),
            ("Rocky Linux:9", Distro::RockyLinux, "9", "", Ecosystem::Rpm),
            ("AlmaLinux:8", Distro::AlmaLinux, "8", "", Ecosystem::Rpm),
            (
                "Red Hat:enterprise_linux:9::appstream",
                Distro::RedHat,
                "9",
                RHEL_PRODUCT,
                Ecosystem::Rpm,
            ),
            (
                "Red Hat:enterprise_linux:8::baseos",
                Distro::RedHat,
                "8",
                RHEL_PRODUCT,
                Ecosystem::Rpm,
            ),
            (
                "Red Hat:enterprise_linux:10.1",
                Distro::RedHat,
                "10",
                RHEL_PRODUCT,
                Ecosystem::Rpm,
            ),
            (
                "Red Hat:rhel_eus:9.2::baseos",
                Distro::RedHat,
                "9.2",
                "rhel_eus",
                Ecosystem::Rpm,
            ),
            (
                "Red Hat:openshift:4.14::el9",
                Distro::RedHat,
                "4.14",
                "openshift",
                Ecosystem::Rpm,
            ),
        ];
        for (input, distro, release, stream, scheme) in cases {
            let key = osv(input);
            assert_eq!(key.distro(), distro, "{input}");
            assert_eq!(key.release(), release, "{input}");
            assert_eq!(key.stream(), stream, "{input}");
            assert_eq!(key.version_scheme(), scheme, "{input}");
        }
    }

    #[test]
    fn repositories_and_lts_markers_do_not_split_a_release() {
        assert_eq!(osv("Ubuntu:22.04:LTS"), osv("Ubuntu:22.04"));
        assert_eq!(
            osv("Red Hat:enterprise_linux:9::appstream"),
            osv("Red Hat:enterprise_linux:9::baseos")
        );
        assert_ne!(osv("Debian:11"), osv("Debian:12"));
        assert_ne!(osv("Ubuntu:22.04:LTS"), osv("Ubuntu:Pro:22.04:LTS"));
        assert_ne!(
            osv("Ubuntu:Pro:22.04:LTS"),
            osv("Ubuntu:Pro:FIPS-updates:22.04:LTS")
        );
        assert_ne!(
            osv("Red Hat:enterprise_linux:9::baseos"),
            osv("Red Hat:rhel_eus:9.2::baseos")
        );
        assert_ne!(osv("Rocky Linux:9"), osv("AlmaLinux:9"));
    }

    #[test]
    fn devices_meet_advisories_on_the_same_key() {
        assert_eq!(device("debian", "12"), osv("Debian:12"));
        assert_eq!(device("ubuntu", "22.04"), osv("Ubuntu:22.04:LTS"));
        assert_eq!(device("ubuntu", "\"24.10\""), osv("Ubuntu:24.10"));
        assert_eq!(device("alpine", "3.19.1"), osv("Alpine:v3.19"));
        assert_eq!(device("alpine", "3.20"), osv("Alpine:v3.20"));
        assert_eq!(device("rocky", "9.3"), osv("Rocky Linux:9"));
        assert_eq!(device("almalinux", "8.10"), osv("AlmaLinux:8"));
        assert_eq!(
            device("rhel", "9.3"),
            osv("Red Hat:enterprise_linux:9::appstream")
        );
        assert_eq!(device("rhel", "10.1"), osv("Red Hat:enterprise_linux:10.0"));
        assert_eq!(
            device("\"rhel\"", "8"),
            osv("Red Hat:enterprise_linux:8::baseos")
        );
        // Pro is never inferred from os-release, but can be asked for.
        assert_ne!(device("ubuntu", "18.04"), osv("Ubuntu:Pro:18.04:LTS"));
        assert_eq!(
            EcosystemKey::ubuntu_pro("18.04"),
            osv("Ubuntu:Pro:18.04:LTS")
        );
        assert_eq!(
            EcosystemKey::ubuntu_pro("20.04").with_stream("FIPS"),
            osv("Ubuntu:Pro:FIPS:20.04:LTS")
        );
    }

    #[test]
    fn unsupported_and_malformed_inputs_are_reported() {
        use EcosystemError::*;
        let cases = [
            ("npm", Unsupported("npm".into())),
            (
                "SUSE:Linux Enterprise Server 15 SP5",
                Unsupported("SUSE:Linux Enterprise Server 15 SP5".into()),
            ),
            ("debian:12", Unsupported("debian:12".into())),
            ("", Unsupported(String::new())),
            ("Debian", MissingRelease("Debian".into())),
            ("Debian:", MissingRelease("Debian:".into())),
            ("Red Hat", MissingRelease("Red Hat".into())),
            (
                "Red Hat:enterprise_linux",
                MissingRelease("Red Hat:enterprise_linux".into()),
            ),
            ("Alpine:3.19", InvalidRelease("Alpine:3.19".into())),
            ("Alpine:edge", InvalidRelease("Alpine:edge".into())),
            ("Ubuntu:jammy", InvalidRelease("Ubuntu:jammy".into())),
            (
                "Ubuntu:FIPS:22.04:LTS",
                InvalidRelease("Ubuntu:FIPS:22.04:LTS".into()),
            ),
            (
                "Ubuntu:22.04:LTS:extra",
                InvalidRelease("Ubuntu:22.04:LTS:extra".into()),
            ),
            (
                "Ubuntu:Pro::22.04",
                InvalidRelease("Ubuntu:Pro::22.04".into()),
            ),
            (
                "Rocky Linux:nine",
                InvalidRelease("Rocky Linux:nine".into()),
            ),
            ("Debian:12 ", InvalidRelease("Debian:12 ".into())),
            (
                "Red Hat:enterprise_linux:x",
                InvalidRelease("Red Hat:enterprise_linux:x".into()),
            ),
            ("Red Hat::9", InvalidRelease("Red Hat::9".into())),
        ];
        for (input, expected) in cases {
            assert_eq!(EcosystemKey::from_osv(input), Err(expected), "{input}");
        }
    }

    #[test]
    fn unknown_devices_are_unsupported_not_guessed() {
        use EcosystemError::*;
        let cases = [
            ("linuxmint", Some("21.3"), Unsupported("linuxmint".into())),
            ("centos", Some("7"), Unsupported("centos".into())),
            ("fedora", Some("40"), Unsupported("fedora".into())),
            ("debian", None, MissingRelease("debian".into())),
            ("debian", Some(""), MissingRelease("debian".into())),
            (
                "alpine",
                Some("3.21.0_alpha20240807"),
                InvalidRelease("alpine 3.21.0_alpha20240807".into()),
            ),
            ("alpine", Some("3"), InvalidRelease("alpine 3".into())),
            ("ubuntu", Some("22"), InvalidRelease("ubuntu 22".into())),
            ("rhel", Some("9.x"), InvalidRelease("rhel 9.x".into())),
        ];
        for (id, version, expected) in cases {
            assert_eq!(
                EcosystemKey::from_os_release(id, version),
                Err(expected),
                "{id} {version:?}"
            );
        }
    }

    #[test]
    fn keys_display_readably() {
        assert_eq!(osv("Debian:12").to_string(), "Debian:12");
        assert_eq!(osv("Ubuntu:22.04:LTS").to_string(), "Ubuntu:22.04");
        assert_eq!(
            osv("Ubuntu:Pro:FIPS:18.04:LTS").to_string(),
            "Ubuntu:Pro:FIPS:18.04"
        );
        assert_eq!(osv("Alpine:v3.19").to_string(), "Alpine:v3.19");
        assert_eq!(
            osv("Red Hat:enterprise_linux:9::appstream").to_string(),
            "Red Hat:enterprise_linux:9"
        );
        assert_eq!(Distro::UbuntuPro.to_string(), "Ubuntu Pro");
    }
}
