//! Devices as members manage them: enrollment tokens (`devices.write`), the
//! device list and pages (`devices.read`), revocation (`devices.write`), and
//! commands (`commands.run`), signed here with the organization's key.

use sentinel_store::SealedSite;
use std::time::Duration;

use sentinel_core::audit::AuditContext;
use sentinel_core::{BearerSecret, Timestamp};
use sentinel_protocol::command::{
    Command, CommandAction, DEFAULT_EXPIRY_SECONDS, MAX_EXPIRY_SECONDS,
};
use sentinel_protocol::paths::ENROLLMENT_TOKEN_PREFIX;
use sentinel_protocol::signing::CommandSigner;
use sentinel_store::{
    CommandRecord, Device, DeviceFilter, EnrollmentToken, NewCommand, NewEnrollmentToken, OrgKeys,
    TenantStore,
};
use uuid::Uuid;

use crate::access::OrgContext;
use crate::error::AppError;
use crate::live::LiveEvent;
use crate::ops::flush_audit;
use crate::ops::not_found_as;
use crate::state::AppState;

/// Enrollment tokens live at most this long.
pub const MAX_TOKEN_HOURS: u32 = 30 * 24;
pub const DEFAULT_TOKEN_HOURS: u32 = 24;
/// The most devices one token may enroll.
pub const MAX_TOKEN_USES: i64 = 100_000;
/// Tags: at most this many, each 1–64 of `[a-z0-9._-]`.
const MAX_TAGS: usize = 16;

fn check_tags(tags: &[String]) -> Result<(), AppError> {
    let valid = |t: &String| {
        (1..=64).contains(&t.len())
            && t.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
    };
    if tags.len() > MAX_TAGS || !tags.iter().all(valid) {
        return Err(AppError::BadRequest(format!(
            "tags: at most {MAX_TAGS}, each 1-64 characters of a-z, 0-9, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// A new enrollment token and its secret, shown once.
pub struct CreatedToken {
    pub token: EnrollmentToken,
    pub secret: String,
}

pub async fn create_enrollment_token(
    state: &AppState,
    ctx: &OrgContext,
    audit: &AuditContext,
    expires_in_hours: Option<u32>,
    max_uses: Option<i64>,
    tags: Vec<String>,
) -> Result<CreatedToken, AppError> {
    let hours = expires_in_hours.unwrap_or(DEFAULT_TOKEN_HOURS);
    if !(1..=MAX_TOKEN_HOURS).contains(&hours) {
        return Err(AppError::BadRequest(format!(
            "expires_in_hours must be between 1 and {MAX_TOKEN_HOURS}"
        )));
    }
    let max_uses = max_uses.unwrap_or(1);
    if !(1..=MAX_TOKEN_USES).contains(&max_uses) {
        return Err(AppError::BadRequest(format!(
            "max_uses must be between 1 and {MAX_TOKEN_USES}"
        )));
    }
    check_tags(&tags)?;
    let secret = BearerSecret::generate().map_err(|e| AppError::Internal(e.to_string()))?;
    let now = state.clock.now();
    let token = state
        .stores
        .control()
        .create_enrollment_token(
            ctx.organization().id,
            &NewEnrollmentToken {
                secret_hash: secret.hash(),
                tags,
                max_uses,
                expires_at: now.plus(Duration::from_secs(u64::from(hours) * 3600)),
                created_by: ctx.principal.user.id,
            },
            now,
            audit,
        )
        .await?;
    flush_audit(state, ctx.organization().id).await;
    Ok(CreatedToken {
        token,
        secret: format!("{ENROLLMENT_TOKEN_PREFIX}{}", secret.expose()),
    })
}

pub async fn enrollment_tokens(
    state: &AppState,
    ctx: &OrgContext,
) -> Result<Vec<EnrollmentToken>, AppError> {
    Ok(state
        .stores
        .control()
        .enrollment_tokens(ctx.organization().id)
        .await?)
}

pub async fn revoke_enrollment_token(
    state: &AppState,
    ctx: &OrgContext,
    audit: &AuditContext,
    id: Uuid,
) -> Result<(), AppError> {
    state
        .stores
        .control()
        .revoke_enrollment_token(ctx.organization().id, id, state.clock.now(), audit)
        .await
        .map_err(not_found_as("enrollment token"))?;
    flush_audit(state, ctx.organization().id).await;
    Ok(())
}

pub(crate) async fn tenant(state: &AppState, ctx: &OrgContext) -> Result<TenantStore, AppError> {
    Ok(state.stores.tenants().open(&ctx.access).await?)
}

/// Marks `device` online when it was heard from within three telemetry
/// intervals.
fn with_status(state: &AppState, mut device: Device) -> Device {
    let interval = u64::from(state.settings.agent.telemetry_interval_seconds);
    device.online = device.revoked_at.is_none()
        && state.clock.now().since(device.last_seen_at) <= Duration::from_secs(3 * interval);
    device
}

pub async fn devices(
    state: &AppState,
    ctx: &OrgContext,
    filter: &DeviceFilter,
) -> Result<Vec<Device>, AppError> {
    let devices = tenant(state, ctx).await?.devices(filter).await?;
    Ok(devices.into_iter().map(|d| with_status(state, d)).collect())
}

pub async fn device(state: &AppState, ctx: &OrgContext, id: Uuid) -> Result<Device, AppError> {
    let device = tenant(state, ctx)
        .await?
        .device(id)
        .await
        .map_err(not_found_as("device"))?;
    Ok(with_status(state, device))
}

pub async fn inventory(
    state: &AppState,
    ctx: &OrgContext,
    id: Uuid,
    text: Option<&str>,
) -> Result<Vec<sentinel_protocol::inventory::Package>, AppError> {
    tenant(state, ctx)
        .await?
        .inventory(id, text)
        .await
        .map_err(not_found_as("device"))
}

pub async fn telemetry(
    state: &AppState,
    ctx: &OrgContext,
    id: Uuid,
    limit: i64,
) -> Result<Vec<sentinel_store::TelemetryRecord>, AppError> {
    tenant(state, ctx)
        .await?
        .telemetry(id, limit)
        .await
        .map_err(not_found_as("device"))
}

/// Revokes a device: its token stops working at once, its waiting commands
/// are cancelled.
pub async fn revoke_device(
    state: &AppState,
    ctx: &OrgContext,
    audit: &AuditContext,
    id: Uuid,
) -> Result<Device, AppError> {
    let org = ctx.organization().id;
    state
        .stores
        .control()
        .revoke_device_credentials(org, id)
        .await?;
    let device = tenant(state, ctx)
        .await?
        .revoke_device(id, state.clock.now(), audit)
        .await
        .map_err(not_found_as("device"))?;
    tracing::info!(org_id = %org, device_id = %id, "device revoked");
    // A device connected over MQTT checks itself when woken, and leaves.
    state.bus.notify(id);
    state
        .live
        .publish(org, LiveEvent::DeviceRevoked { device_id: id });
    Ok(device)
}

/// The organization's command signer, made (and sealed) on first use.
async fn signer(state: &AppState, store: &OrgKeys) -> Result<CommandSigner, AppError> {
    let context = SealedSite::CommandKey(store.org_id()).context();
    let (_, sealed) = match store.command_key().await? {
        Some(key) => key,
        None => {
            let (signer, seed) =
                CommandSigner::generate().map_err(|e| AppError::Internal(e.to_string()))?;
            let sealed = state
                .sealing
                .seal(&seed, &context)
                .map_err(|e| AppError::Internal(e.to_string()))?;
            store
                .save_command_key(&signer.public_key_hex(), &sealed, state.clock.now())
                .await?
        }
    };
    let seed = state
        .sealing
        .open(&sealed, &context)
        .map_err(|e| AppError::Internal(format!("the organization's command key: {e}")))?;
    CommandSigner::from_seed(&seed).map_err(|e| AppError::Internal(e.to_string()))
}

/// The organization's command-signing public key (hex), made on first use.
pub async fn command_public_key(state: &AppState, store: &OrgKeys) -> Result<String, AppError> {
    Ok(signer(state, store).await?.public_key_hex())
}

/// Queues a command for one device: validated, signed, stored, and the
/// device's long-poll woken.
pub async fn queue_command(
    state: &AppState,
    ctx: &OrgContext,
    audit: &AuditContext,
    device: Uuid,
    kind: &str,
    params: Option<serde_json::Value>,
    expires_in_seconds: Option<u32>,
) -> Result<CommandRecord, AppError> {
    let action = CommandAction::from_request(kind, params).map_err(AppError::BadRequest)?;
    let expiry = expires_in_seconds.unwrap_or(DEFAULT_EXPIRY_SECONDS);
    if !(1..=MAX_EXPIRY_SECONDS).contains(&expiry) {
        return Err(AppError::BadRequest(format!(
            "expires_in_seconds must be between 1 and {MAX_EXPIRY_SECONDS}"
        )));
    }
    let store = tenant(state, ctx).await?;
    let now = state.clock.now();
    let expires_at = now.plus(Duration::from_secs(u64::from(expiry)));
    let command = Command {
        id: Uuid::new_v4(),
        org_id: ctx.organization().id.as_uuid(),
        device_id: device,
        issued_at: now.unix_seconds(),
        expires_at: expires_at.unix_seconds(),
        issued_by: audit.actor.name.clone(),
        action,
    };
    let signed = signer(state, &store.keys())
        .await?
        .sign(&command)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let params = serde_json::to_value(&command.action)
        .ok()
        .and_then(|v| v.get("params").cloned())
        .unwrap_or_default();
    let new = NewCommand {
        id: command.id,
        device_id: device,
        kind: command.action.kind().to_owned(),
        params,
        signed,
        issued_by: ctx.principal.user.id,
        issued_at: now,
        expires_at: Timestamp::from_unix_seconds(command.expires_at),
    };
    let record = store
        .queue_command(&new, audit)
        .await
        .map_err(not_found_as("device"))?;
    state.bus.notify(device);
    command_changed(state, ctx, &record);
    Ok(record)
}

/// Tells the organization's watchers a command's new status.
fn command_changed(state: &AppState, ctx: &OrgContext, record: &CommandRecord) {
    state.live.publish(
        ctx.organization().id,
        LiveEvent::Command {
            device_id: record.device_id,
            command_id: record.id,
            status: record.status.clone(),
            exit_code: record.exit_code.and_then(|code| i32::try_from(code).ok()),
        },
    );
}

/// Queues the same command for every live device tagged `tag`, each signed for
/// its own device; one audit entry per device.
pub async fn queue_command_for_tag(
    state: &AppState,
    ctx: &OrgContext,
    audit: &AuditContext,
    tag: &str,
    kind: &str,
    params: Option<serde_json::Value>,
    expires_in_seconds: Option<u32>,
) -> Result<Vec<CommandRecord>, AppError> {
    check_tags(&[tag.to_owned()])?;
    CommandAction::from_request(kind, params.clone()).map_err(AppError::BadRequest)?;
    let filter = DeviceFilter {
        tag: Some(tag.to_owned()),
        ..DeviceFilter::default()
    };
    let targets = devices(state, ctx, &filter).await?;
    if targets.is_empty() {
        return Err(AppError::NotFound("device with this tag"));
    }
    let mut queued = Vec::with_capacity(targets.len());
    for device in targets {
        queued.push(
            queue_command(
                state,
                ctx,
                audit,
                device.id,
                kind,
                params.clone(),
                expires_in_seconds,
            )
            .await?,
        );
    }
    Ok(queued)
}

pub async fn command(
    state: &AppState,
    ctx: &OrgContext,
    id: Uuid,
) -> Result<CommandRecord, AppError> {
    tenant(state, ctx)
        .await?
        .command(id, state.clock.now())
        .await
        .map_err(not_found_as("command"))
}

pub async fn device_commands(
    state: &AppState,
    ctx: &OrgContext,
    device: Uuid,
) -> Result<Vec<CommandRecord>, AppError> {
    let store = tenant(state, ctx).await?;
    store.device(device).await.map_err(not_found_as("device"))?;
    Ok(store
        .device_commands(device, state.clock.now(), 100)
        .await?)
}

pub async fn cancel_command(
    state: &AppState,
    ctx: &OrgContext,
    audit: &AuditContext,
    id: Uuid,
) -> Result<CommandRecord, AppError> {
    let record = tenant(state, ctx)
        .await?
        .cancel_command(id, state.clock.now(), audit)
        .await
        .map_err(not_found_as("command"))?;
    command_changed(state, ctx, &record);
    Ok(record)
}
