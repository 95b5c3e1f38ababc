//! `sentinel admin …`: administrative tasks run against a data directory (or a
//! PostgreSQL database) directly, whether or not a server is running on it.

use sentinel_core::audit::{Actor, ActorKind, AuditContext, Origin};
use std::io::{BufRead, IsTerminal};

use sentinel_core::{Clock, NewAccount, PasswordPolicy};
use sentinel_store::{NewUser, Stores, User};

use crate::StartError;
use crate::config::Config;
use crate::data_dir::DataDir;

/// Creates a user. The password comes from standard input — prompted twice
/// without echo on a terminal, else the first line — never from the command line.
pub async fn create_user(
    config: &Config,
    clock: &dyn Clock,
    email: &str,
    name: &str,
    platform_admin: bool,
) -> Result<User, StartError> {
    let password = read_password()?;
    let account = NewAccount::parse(email, name, &password, &PasswordPolicy::default())
        .map_err(|e| StartError::Refused(format!("{}: {}", e.field, e.message)))?;
    let data_dir = DataDir::open(&config.data_dir)?;
    let location = config.store_location(&data_dir);
    let stores = Stores::open(&location, clock).await?;
    let new =
        NewUser::hashed(account, platform_admin).map_err(|e| StartError::Refused(e.to_string()))?;
    let by = AuditContext {
        actor: Actor {
            kind: ActorKind::System,
            id: String::new(),
            name: String::from("sentinel admin create-user"),
        },
        origin: Origin::default(),
    };
    let created = stores.control().create_user(&new, clock.now(), &by).await;
    stores.close().await;
    let user = created?;
    tracing::info!(user_id = %user.id, platform_admin, "user created from the command line");
    Ok(user)
}

fn read_password() -> Result<String, StartError> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")
            .map_err(|e| StartError::io("reading the password", e))?;
        let second = rpassword::prompt_password("Password, again: ")
            .map_err(|e| StartError::io("reading the password", e))?;
        if first != second {
            return Err(StartError::Refused("the two passwords differ".into()));
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| StartError::io("reading the password from standard input", e))?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err(StartError::Refused("no password on standard input".into()));
    }
    Ok(password.to_owned())
}
