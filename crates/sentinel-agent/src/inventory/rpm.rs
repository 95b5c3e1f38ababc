//! Querying rpm's database and parsing the query output into the installed packages.
//!
//! rpm's database is not a text file, so the agent asks `rpm -qa` to print one line per
//! package in [`QUERY_FORMAT`] and parses that. The `gpg-pubkey` pseudo-packages that hold
//! imported signing keys are skipped.

use std::path::Path;
use std::process::{Command, Stdio};

use sentinel_protocol::inventory::{Inventory, Package, PackageManager};

use super::source::InventoryError;
use super::{Collection, ParseWarning, excerpt, numbered_lines};

/// The `--queryformat` the parser expects: six tab-separated fields per package. The `\t`
/// and `\n` escapes are passed to rpm as written, and rpm expands them.
pub const QUERY_FORMAT: &str =
    "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\n";

/// The program run to query the database, looked up in `PATH`.
pub const PROGRAM: &str = "rpm";

/// What rpm prints for a tag the package does not have.
const NONE: &str = "(none)";

/// Runs `rpm -qa` against the database of the system installed under `root` (`/` for this
/// host) and returns its output.
pub fn query(root: &Path) -> Result<String, InventoryError> {
    let mut command = Command::new(PROGRAM);
    if root != Path::new("/") {
        command.arg("--root").arg(root);
    }
    let output = command
        .args(["-qa", "--queryformat", QUERY_FORMAT])
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| InventoryError::RpmSpawn { source })?;
    if !output.status.success() {
        return Err(InventoryError::RpmFailed {
            status: output.status,
            stderr: excerpt(String::from_utf8_lossy(&output.stderr).trim()),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Parses the output of `rpm -qa --queryformat` [`QUERY_FORMAT`]. Never fails: lines that
/// cannot be used are reported in the warnings.
pub fn parse_query_output(text: &str) -> Collection {
    let mut packages = Vec::new();
    let mut warnings = Vec::new();
    for (line, text) in numbered_lines(text) {
        if !text.trim().is_empty() {
            let mut warn = |reason| warnings.push(ParseWarning { line, reason });
            packages.extend(parse_line(text, &mut warn));
        }
    }
    Collection {
        inventory: Inventory::new(packages),
        warnings,
    }
}

/// The package on one line of query output, if it is one worth listing: `gpg-pubkey`s are
/// not, and neither are lines `warn` is told about. A source rpm that cannot be parsed is
/// worth a warning but not losing the package.
fn parse_line(line: &str, warn: &mut impl FnMut(String)) -> Option<Package> {
    let fields: Vec<&str> = line.splitn(7, '\t').collect();
    let &[name, epoch, version, release, arch, source_rpm] = fields.as_slice() else {
        warn(format!(
            "skipped: {} tab-separated fields instead of 6 in {:?}",
            fields.len(),
            excerpt(line)
        ));
        return None;
    };
    if name == "gpg-pubkey" {
        return None;
    }
    if name.is_empty() {
        warn("skipped: empty package name".to_owned());
        return None;
    }
    let package = format!("package {:?}", excerpt(name));
    let epoch = match present(epoch) {
        Some(epoch) if !epoch.bytes().all(|b| b.is_ascii_digit()) => {
            warn(format!(
                "{package} skipped: non-numeric epoch {:?}",
                excerpt(epoch)
            ));
            return None;
        }
        epoch => epoch,
    };
    let Some(version) = present(version) else {
        warn(format!("{package} skipped: no version"));
        return None;
    };
    let version_release = match present(release) {
        Some(release) => format!("{version}-{release}"),
        None => version.to_owned(),
    };
    let source = present(source_rpm).and_then(|file| {
        let source = split_source_rpm(file);
        if source.is_none() {
            warn(format!(
                "{package}: unparsable source rpm {:?}",
                excerpt(file)
            ));
        }
        source
    });
    Some(Package {
        manager: PackageManager::Rpm,
        name: name.to_owned(),
        version: with_epoch(epoch, &version_release),
        arch: present(arch).map(str::to_owned),
        source_name: source.as_ref().map(|(name, _)| (*name).to_owned()),
        source_version: source.map(|(_, version)| with_epoch(epoch, &version)),
    })
}

/// `field`, unless rpm printed it empty or as `(none)`.
fn present(field: &str) -> Option<&str> {
    let field = field.trim();
    (!field.is_empty() && field != NONE).then_some(field)
}

fn with_epoch(epoch: Option<&str>, version: &str) -> String {
    match epoch {
        Some(epoch) => format!("{epoch}:{version}"),
        None => version.to_owned(),
    }
}

/// Splits a source rpm file name, `openssl-3.0.7-27.el9.src.rpm`, into its name and
/// `version-release`: `openssl` and `3.0.7-27.el9`.
fn split_source_rpm(file: &str) -> Option<(&str, String)> {
    let stem = file
        .strip_suffix(".src.rpm")
        .or_else(|| file.strip_suffix(".nosrc.rpm"))?;
    let mut parts = stem.rsplitn(3, '-');
    let (release, version, name) = (parts.next()?, parts.next()?, parts.next()?);
    if [name, version, release].iter().any(|part| part.is_empty()) {
        return None;
    }
    Some((name, format!("{version}-{release}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_rpm_names() {
        assert_eq!(
            split_source_rpm("openssl-3.0.7-27.el9.src.rpm"),
            Some(("openssl", "3.0.7-27.el9".to_owned()))
        );
        assert_eq!(
            split_source_rpm("python-pip-21.3.1-1.el9.noarch.nosrc.rpm"),
            Some(("python-pip", "21.3.1-1.el9.noarch".to_owned()))
        );
        assert_eq!(split_source_rpm("openssl-3.0.7.src.rpm"), None);
        assert_eq!(split_source_rpm("openssl-3.0.7-27.el9.rpm"), None);
        assert_eq!(split_source_rpm("--.src.rpm"), None);
    }

    #[test]
    fn malformed_lines_are_warned_about() {
        let parsed = parse_query_output(concat!(
            "bash\t(none)\t5.1.8\t6.el9\tx86_64\tbash-5.1.8-6.el9.src.rpm\n",
            "too\tfew\tfields\n",
            "\t(none)\t1\t1\tx86_64\t(none)\n",
            "weird\tone\t1\t1\tx86_64\t(none)\n",
            "noversion\t(none)\t(none)\t1\tx86_64\t(none)\n",
            "badsource\t(none)\t1\t1\tx86_64\tnot-a-source.rpm\n",
            "a\tb\tc\td\te\tf\tg\n",
        ));
        let names: Vec<_> = parsed
            .inventory
            .packages()
            .iter()
            .map(|p| &p.name)
            .collect();
        assert_eq!(names, ["badsource", "bash"]);
        assert_eq!(parsed.inventory.packages()[0].source_name, None);
        let lines: Vec<_> = parsed.warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 7], "{:?}", parsed.warnings);
    }

    #[test]
    fn package_without_source_rpm_or_release() {
        let parsed = parse_query_output("local\t(none)\t1.0\t(none)\t(none)\t(none)\n");
        let [package] = parsed.inventory.packages() else {
            panic!("one package expected")
        };
        assert_eq!(package.version, "1.0");
        assert_eq!(
            (package.arch.as_ref(), package.source_name.as_ref()),
            (None, None)
        );
    }
}
