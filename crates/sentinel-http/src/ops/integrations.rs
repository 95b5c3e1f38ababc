//! Broker connections (integrations) as members manage them: validated, the
//! password sealed under the master key for its site and never shown again,
//! and the connection's ingestion worker restarted or stopped with each change.

use sentinel_core::ValidationError;
use sentinel_core::audit::AuditContext;
use sentinel_store::{Integration, IntegrationChange, NewIntegration, PasswordChange, SealedSite};
use uuid::Uuid;

use crate::access::OrgContext;
use crate::error::AppError;
use crate::ingest::{IngestStatus, broker, chirpstack};
use crate::ops::devices::tenant;
use crate::ops::lorawan::check_name;
use crate::ops::not_found_as;
use crate::state::AppState;

const MAX_HOST: usize = 253;
const MAX_TOPIC: usize = 256;
const MAX_CREDENTIAL: usize = 256;
const MAX_CA_PEM: usize = 64 * 1024;

/// A broker connection's settings as given.
pub use sentinel_store::IntegrationSettings as Settings;

fn invalid(field: &'static str, message: &str) -> AppError {
    ValidationError::new(field, message).into()
}

/// Checks `settings`, returning them with the name trimmed.
fn checked(mut settings: Settings) -> Result<Settings, AppError> {
    settings.name = check_name(&settings.name)?;
    let host = settings.host.trim();
    if host.is_empty()
        || host.len() > MAX_HOST
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(invalid("host", "a host name or IP address"));
    }
    settings.host = host.to_owned();
    if settings.port == 0 {
        return Err(invalid("port", "1 to 65535"));
    }
    if settings.topic.is_empty()
        || settings.topic.len() > MAX_TOPIC
        || settings.topic.contains('\0')
        || !rumqttc::valid_filter(&settings.topic)
    {
        return Err(invalid(
            "topic",
            "an MQTT topic filter of at most 256 bytes",
        ));
    }
    if settings.format != chirpstack::FORMAT {
        return Err(invalid("format", "chirpstack_v4 is the only format"));
    }
    if let Some(pem) = &settings.ca_pem {
        if pem.len() > MAX_CA_PEM {
            return Err(invalid("ca_pem", "at most 64 KiB"));
        }
        broker::certificates(pem).map_err(|e| ValidationError::new("ca_pem", e))?;
    }
    if settings
        .username
        .as_ref()
        .is_some_and(|u| u.len() > MAX_CREDENTIAL || u.contains('\0'))
    {
        return Err(invalid("username", "at most 256 bytes"));
    }
    Ok(settings)
}

fn check_password(password: &str) -> Result<(), AppError> {
    if password.len() > MAX_CREDENTIAL || password.contains('\0') {
        return Err(invalid("password", "at most 256 bytes"));
    }
    Ok(())
}

fn seal(state: &AppState, ctx: &OrgContext, id: Uuid, password: &str) -> Result<Vec<u8>, AppError> {
    let context = SealedSite::BrokerPassword(ctx.organization().id, id).context();
    state
        .sealing
        .seal(password.as_bytes(), &context)
        .map_err(|e| AppError::Internal(e.to_string()))
}

pub async fn list(state: &AppState, ctx: &OrgContext) -> Result<Vec<Integration>, AppError> {
    Ok(tenant(state, ctx).await?.integrations().await?)
}

pub async fn get(state: &AppState, ctx: &OrgContext, id: Uuid) -> Result<Integration, AppError> {
    tenant(state, ctx)
        .await?
        .integration(id)
        .await
        .map_err(not_found_as("integration"))
}

/// The connection's worker status; 404 for another organization's id.
pub async fn status(
    state: &AppState,
    ctx: &OrgContext,
    id: Uuid,
) -> Result<IngestStatus, AppError> {
    let integration = get(state, ctx, id).await?;
    Ok(worker_status(state, ctx, &integration))
}

/// The status of the worker of a connection already read from this
/// organization's store (as listed or fetched).
pub fn worker_status(
    state: &AppState,
    ctx: &OrgContext,
    integration: &Integration,
) -> IngestStatus {
    state.ingest.status(ctx.organization().id, integration.id)
}

pub async fn create(
    state: &AppState,
    ctx: &OrgContext,
    audit: &AuditContext,
    settings: Settings,
    password: Option<&str>,
) -> Result<Integration, AppError> {
    let settings = checked(settings)?;
    let id = Uuid::now_v7();
    let sealed_password = match password {
        Some(password) => {
            check_password(password)?;
            Some(seal(state, ctx, id, password)?)
        }
        None => None,
    };
    let new = NewIntegration {
        id,
        settings,
        sealed_password,
    };
    let created = tenant(state, ctx)
        .await?
        .create_integration(&new, state.clock.now(), audit)
        .await?;
    state
        .ingest
        .restart(state, ctx.organization().id, id, created.enabled);
    Ok(created)
}

/// What to do with the stored password: keep it (no field), clear it (null),
/// or set it (a string).
pub async fn update(
    state: &AppState,
    ctx: &OrgContext,
    audit: &AuditContext,
    id: Uuid,
    settings: Settings,
    password: Option<Option<&str>>,
) -> Result<Integration, AppError> {
    let settings = checked(settings)?;
    let password = match password {
        None => PasswordChange::Keep,
        Some(None) => PasswordChange::Clear,
        Some(Some(password)) => {
            check_password(password)?;
            PasswordChange::Set(seal(state, ctx, id, password)?)
        }
    };
    let change = IntegrationChange { settings, password };
    let updated = tenant(state, ctx)
        .await?
        .update_integration(id, &change, state.clock.now(), audit)
        .await
        .map_err(not_found_as("integration"))?;
    state
        .ingest
        .restart(state, ctx.organization().id, id, updated.enabled);
    Ok(updated)
}

pub async fn delete(
    state: &AppState,
    ctx: &OrgContext,
    audit: &AuditContext,
    id: Uuid,
) -> Result<(), AppError> {
    tenant(state, ctx)
        .await?
        .delete_integration(id, state.clock.now(), audit)
        .await
        .map_err(not_found_as("integration"))?;
    state
        .ingest
        .restart(state, ctx.organization().id, id, false);
    Ok(())
}
