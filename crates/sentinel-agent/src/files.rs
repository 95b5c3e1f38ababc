//! Reading host files whole, with a size cap so that a runaway file cannot exhaust memory.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The largest file the agent reads whole: real dpkg status files are a few MiB.
pub(crate) const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Reads `path` whole, failing with [`io::ErrorKind::FileTooLarge`] past [`MAX_FILE_BYTES`].
pub(crate) fn read_capped(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    Ok(bytes)
}

/// Reads `path` whole as text, replacing invalid UTF-8 rather than rejecting the file.
pub(crate) fn read_text(path: &Path) -> io::Result<String> {
    let bytes = read_capped(path)?;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(invalid) => String::from_utf8_lossy(invalid.as_bytes()).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_is_replaced_not_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latin1");
        std::fs::write(&path, b"caf\xe9\n").unwrap();
        assert_eq!(read_text(&path).unwrap(), "caf\u{fffd}\n");
    }

    #[test]
    fn missing_file_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_text(&dir.path().join("absent")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
