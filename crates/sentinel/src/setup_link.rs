//! The first-start setup link. While the server has no users it issues a one-time
//! setup token (valid one hour, stored hashed) and writes the link to
//! `setup-url.txt` (0600) in the data directory. The link never enters the log
//! stream: the log only says where to find it, and the terminal shows it apart
//! from the logs (see `main.rs`).

use std::time::Duration;

use sentinel_core::{BearerSecret, Clock};
use sentinel_store::Stores;

use crate::StartError;
use crate::data_dir::{DataDir, write_private};

/// How long a setup link works.
pub const SETUP_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// Issues a setup link if no user exists yet (replacing any earlier one), and
/// returns it. Once users exist, removes a leftover link file and returns None.
pub async fn prepare(
    stores: &Stores,
    clock: &dyn Clock,
    data_dir: &DataDir,
    origin: &str,
) -> Result<Option<String>, StartError> {
    let file = data_dir.setup_url_file();
    if stores.control().count_users().await? > 0 {
        remove_leftover(data_dir);
        return Ok(None);
    }
    let secret = BearerSecret::generate().map_err(|e| StartError::Refused(e.to_string()))?;
    let now = clock.now();
    stores
        .control()
        .replace_setup_token(&secret.hash(), now, now.plus(SETUP_TOKEN_TTL))
        .await?;
    let url = format!("{origin}/setup?token={}", secret.expose());
    write_private(&file, format!("{url}\n").as_bytes())?;
    tracing::warn!(
        file = %file.display(),
        "no users yet: open the one-time setup link written to this file (valid for one hour) to create the first admin"
    );
    Ok(Some(url))
}

/// Removes the setup link file (after setup, the token in it is spent).
pub fn remove_leftover(data_dir: &DataDir) {
    let file = data_dir.setup_url_file();
    match std::fs::remove_file(&file) {
        Ok(()) => {
            tracing::info!(file = %file.display(), "setup is complete; removed the setup link file")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "could not remove the setup link file")
        }
    }
}
