//! What agents do: enroll with a token, then — as their device, and only for it
//! — report telemetry and inventory, fetch commands (long-polling) and report
//! on them, and rotate their token.

use crate::client::ClientInfo;
use crate::rate_limit::RateKey;
use std::time::Duration;

use sentinel_core::audit::{Actor, AuditAction, AuditContext, Entity, EntityType, LogId, Origin};
use sentinel_core::{BearerSecret, SecretHash};
use sentinel_protocol::command::{CommandReport, CommandStatus};
use sentinel_protocol::enroll::{AgentSettings, EnrollRequest, EnrollResponse};
use sentinel_protocol::inventory::{Inventory, InventoryReport, InventoryStatus};
use sentinel_protocol::paths::{DEVICE_TOKEN_PREFIX, ENROLLMENT_TOKEN_PREFIX};
use sentinel_protocol::signing::SignedCommand;
use sentinel_protocol::telemetry::{MAX_BATCH_SAMPLES, TelemetryBatch};
use sentinel_store::{DeviceAccess, DeviceStore, StoreError};
use uuid::Uuid;

use crate::access::DeviceContext;
use crate::bus::Waiter;
use crate::error::AppError;
use crate::live::LiveEvent;
use crate::ops::devices::command_public_key;
use crate::ops::not_found_as;
use crate::state::AppState;

/// The longest a command poll may wait.
const MAX_WAIT_SECONDS: u64 = 60;
/// A long poll answers this long before the request timeout would cut it.
const WAIT_MARGIN: Duration = Duration::from_secs(5);

/// The longest a poll may wait on this server.
fn max_wait(state: &AppState) -> Duration {
    Duration::from_secs(MAX_WAIT_SECONDS)
        .min(state.settings.request_timeout.saturating_sub(WAIT_MARGIN))
}

/// The settings every agent gets (`agent_*` in the configuration): long-polls
/// end before the request timeout.
pub fn settings(state: &AppState) -> AgentSettings {
    let configured = state.settings.agent;
    AgentSettings {
        long_poll_seconds: configured
            .long_poll_seconds
            .min(max_wait(state).as_secs() as u32),
        ..configured
    }
}

/// Exchanges an enrollment token for a new device identity.
pub async fn enroll(
    state: &AppState,
    client: &ClientInfo,
    origin: &Origin,
    request: &EnrollRequest,
) -> Result<EnrollResponse, AppError> {
    state.limits.enrollment.check(RateKey::address(client.ip))?;
    if let Some(problem) = request.facts.problem() {
        return Err(AppError::BadRequest(format!("facts: {problem}")));
    }
    if request.agent_version.is_empty()
        || request.agent_version.len() > 64
        || request.agent_version.chars().any(char::is_control)
    {
        return Err(AppError::BadRequest(
            "agent_version must be 1-64 printable characters".into(),
        ));
    }
    // One answer for every kind of bad token: unknown, revoked, expired, used up.
    let refused = || AppError::Forbidden("this enrollment token is not valid");
    let token = request
        .token
        .strip_prefix(ENROLLMENT_TOKEN_PREFIX)
        .and_then(BearerSecret::parse)
        .ok_or_else(refused)?;
    let device_secret = BearerSecret::generate().map_err(|e| AppError::Internal(e.to_string()))?;
    let enrolled = state
        .stores
        .enroll(
            token.hash(),
            device_secret.hash(),
            &request.facts,
            &request.agent_version,
            origin,
            state.clock.now(),
        )
        .await?
        .ok_or_else(refused)?;
    let command_key = command_public_key(state, &enrolled.store.keys()).await?;
    let (org_id, device_id) = (enrolled.store.org_id(), enrolled.store.device_id());
    tracing::info!(%org_id, %device_id, hostname = %request.facts.hostname, "device enrolled");
    state.live.publish(
        org_id,
        LiveEvent::DeviceEnrolled {
            device_id,
            hostname: request.facts.hostname.clone(),
        },
    );
    Ok(EnrollResponse {
        device_id,
        org_id: org_id.as_uuid(),
        device_token: format!("{DEVICE_TOKEN_PREFIX}{}", device_secret.expose()),
        command_key,
        settings: settings(state),
    })
}

/// Why `batch` cannot be stored, if it cannot.
fn check_telemetry(batch: &TelemetryBatch) -> Result<(), AppError> {
    if batch.samples.len() > MAX_BATCH_SAMPLES {
        return Err(AppError::BadRequest(format!(
            "at most {MAX_BATCH_SAMPLES} samples per batch"
        )));
    }
    if let Some(problem) = batch.samples.iter().find_map(|s| s.sample.problem()) {
        return Err(AppError::BadRequest(format!("sample: {problem}")));
    }
    if let Some(problem) = batch.facts.as_ref().and_then(|f| f.problem()) {
        return Err(AppError::BadRequest(format!("facts: {problem}")));
    }
    Ok(())
}

/// Stores a telemetry batch (a heartbeat when empty).
pub async fn telemetry(
    state: &AppState,
    ctx: &DeviceContext,
    batch: &TelemetryBatch,
) -> Result<u32, AppError> {
    telemetry_batches(state, ctx, std::slice::from_ref(batch))
        .await
        .pop()
        .unwrap_or_else(|| Err(AppError::Internal("no result for the batch".into())))
}

/// Stores several telemetry batches of one device in one transaction (the
/// MQTT gateway's pipelined publishes): each is checked as [`telemetry`]
/// checks it, and the valid ones are appended to the chain together, in
/// order (the newest facts win). One result per batch.
pub async fn telemetry_batches(
    state: &AppState,
    ctx: &DeviceContext,
    batches: &[TelemetryBatch],
) -> Vec<Result<u32, AppError>> {
    let checked: Vec<Result<(), AppError>> = batches.iter().map(check_telemetry).collect();
    let valid = || batches.iter().zip(&checked).filter(|(_, c)| c.is_ok());
    let samples = || valid().flat_map(|(batch, _)| &batch.samples);
    let facts = valid()
        .filter_map(|(batch, _)| batch.facts.clone())
        .next_back();
    let now = state.clock.now();
    let newest = samples().max_by_key(|s| s.at);
    let count = samples().count() as u32;
    let stored = if valid().count() == 0 {
        Ok(0)
    } else {
        ctx.store.record_telemetry(samples(), facts, now).await
    };
    if stored.is_ok() {
        state.live.publish(
            ctx.store.org_id(),
            LiveEvent::telemetry(ctx.device.id, now, count, newest),
        );
    }
    // One store error answers every batch it took down with it.
    let failed = |e: &StoreError| match e {
        StoreError::NotFound => AppError::NotFound("device"),
        other => AppError::Internal(other.to_string()),
    };
    batches
        .iter()
        .zip(checked)
        .map(|(batch, checked)| {
            checked?;
            match &stored {
                Ok(_) => Ok(batch.samples.len() as u32),
                Err(e) => Err(failed(e)),
            }
        })
        .collect()
}

/// Compares the reported inventory digest with the stored one; stores a full
/// list when one is sent (and its digest checks out).
pub async fn inventory(
    state: &AppState,
    ctx: &DeviceContext,
    report: &InventoryReport,
) -> Result<InventoryStatus, AppError> {
    let is_digest =
        report.digest.len() == 64 && report.digest.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_digest {
        return Err(AppError::BadRequest("digest must be 64 hex digits".into()));
    }
    let Some(packages) = &report.packages else {
        let stored = ctx.store.inventory_digest().await?;
        return Ok(if stored.as_deref() == Some(report.digest.as_str()) {
            InventoryStatus::Unchanged
        } else {
            InventoryStatus::SendFull
        });
    };
    let inventory = Inventory::new(packages.clone());
    if let Some(problem) = inventory.problem() {
        return Err(AppError::BadRequest(problem));
    }
    if inventory.digest() != report.digest {
        return Err(AppError::BadRequest(
            "the digest does not match the packages".into(),
        ));
    }
    ctx.store
        .replace_inventory(&report.digest, inventory.packages(), state.clock.now())
        .await?;
    state.vulns.matcher.inventory_changed(ctx.store.org_id());
    state.live.publish(
        ctx.store.org_id(),
        LiveEvent::Inventory {
            device_id: ctx.device.id,
            packages: inventory.packages().len(),
        },
    );
    Ok(InventoryStatus::Stored)
}

/// What a look at a device's queue found.
pub enum Queue {
    /// Commands, handed over to the device.
    Taken(Vec<SignedCommand>),
    /// None; the waiter wakes when one is queued. It listened before the look,
    /// so a command queued in between is not missed.
    Empty(Waiter),
}

/// Takes the commands waiting for the device.
pub async fn take_commands(state: &AppState, ctx: &DeviceContext) -> Result<Queue, AppError> {
    let waiter = state.bus.waiter(ctx.device.id);
    let now = state.clock.now();
    // Boxed: a parked poll then holds only its waiter, not the room for the
    // store's future (10,000 parked polls: docs/benchmarks.md).
    let waiting = Box::pin(ctx.store.waiting_commands(now)).await?;
    if waiting.is_empty() {
        return Ok(Queue::Empty(waiter));
    }
    // Recorded after the answer leaves: the hand-over waits for no disk flush,
    // and a lost mark only means the command is handed over again (the agent
    // runs an id once).
    let (state, store) = (state.clone(), ctx.store.clone());
    let ids: Vec<Uuid> = waiting.iter().map(|c| c.id).collect();
    tokio::spawn(async move {
        match store.mark_delivered(&ids, now).await {
            Ok(()) => delivered(&state, &store, &ids),
            Err(e) => tracing::warn!(error = %e, "could not mark commands delivered"),
        }
    });
    Ok(Queue::Taken(waiting))
}

/// After an empty look ([`take_commands`], which gave `waiter`): the first
/// commands queued within `wait` seconds, or none.
pub async fn await_commands(
    state: &AppState,
    ctx: &DeviceContext,
    mut waiter: Waiter,
    wait: Duration,
) -> Result<Vec<SignedCommand>, AppError> {
    let deadline = tokio::time::Instant::now() + wait.min(max_wait(state));
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() || !waiter.wait(left).await {
            return Ok(Vec::new());
        }
        match take_commands(state, ctx).await? {
            Queue::Taken(commands) => return Ok(commands),
            Queue::Empty(next) => waiter = next,
        }
    }
}

/// Records the device's report on one of its own commands.
pub async fn report(
    state: &AppState,
    ctx: &DeviceContext,
    origin: &Origin,
    id: Uuid,
    report: &CommandReport,
) -> Result<(), AppError> {
    if let Some(problem) = report.problem() {
        return Err(AppError::BadRequest(problem));
    }
    ctx.store
        .report(id, report, &ctx.device.hostname, origin, state.clock.now())
        .await
        .map_err(not_found_as("command"))?;
    state.live.publish(
        ctx.store.org_id(),
        LiveEvent::Command {
            device_id: ctx.device.id,
            command_id: id,
            status: report.status.as_str().to_owned(),
            exit_code: report.exit_code,
        },
    );
    Ok(())
}

/// Tells the organization's watchers that the device received `commands`.
pub fn delivered(state: &AppState, store: &DeviceStore, commands: &[Uuid]) {
    for &command_id in commands {
        state.live.publish(
            store.org_id(),
            LiveEvent::Command {
                device_id: store.device_id(),
                command_id,
                status: CommandStatus::Delivered.as_str().to_owned(),
                exit_code: None,
            },
        );
    }
}

/// The device whose token hashes to `token`. When this use completes a
/// rotation (the new token's first), the device's sessions are woken: an MQTT
/// session logged in with a token just retired checks itself and ends.
pub async fn authenticate(
    state: &AppState,
    token: SecretHash,
) -> Result<Option<DeviceAccess>, StoreError> {
    let login = state.stores.control().authenticate_device(token).await?;
    Ok(login.map(|login| {
        if login.retired_older {
            state.bus.notify(login.access.device_id());
        }
        login.access
    }))
}

/// Issues the device a new token; the current one works until the new one is
/// first used.
pub async fn rotate_token(
    state: &AppState,
    ctx: &DeviceContext,
    origin: &Origin,
) -> Result<String, AppError> {
    let secret = BearerSecret::generate().map_err(|e| AppError::Internal(e.to_string()))?;
    let now = state.clock.now();
    state
        .stores
        .control()
        .rotate_device_token(ctx.store.access(), secret.hash(), now)
        .await?;
    let context = AuditContext {
        actor: Actor::device(ctx.device.id, &ctx.device.hostname),
        origin: origin.clone(),
    };
    let event = context.success(
        now,
        AuditAction::DeviceTokenRotated,
        Entity::new(EntityType::Device, ctx.device.id),
        serde_json::json!({}),
    );
    state
        .stores
        .record(LogId::Org(ctx.store.org_id()), event)
        .await?;
    Ok(format!("{DEVICE_TOKEN_PREFIX}{}", secret.expose()))
}
