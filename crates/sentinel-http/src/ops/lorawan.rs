//! IoT devices as members manage them: device profiles with their payload
//! decoders (checked in the sandbox before they are saved, and testable on a
//! sample payload without saving), the DevEUI and profile of a device, and the
//! uplinks stored for it.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sentinel_core::ValidationError;
use sentinel_core::audit::{AuditContext, unhex};
use sentinel_decoders::{DecodeError, Decoded};
use sentinel_store::{DeviceEvent, DeviceProfile, EventCursor, LorawanDevice};
use uuid::Uuid;

use crate::access::OrgContext;
use crate::error::AppError;
use crate::ingest::chirpstack::normalize_dev_eui;
use crate::ops::devices::tenant;
use crate::ops::not_found_as;
use crate::state::AppState;

/// The largest decoder script accepted.
pub const MAX_DECODER_BYTES: usize = 64 * 1024;
const MAX_NAME_CHARS: usize = 100;
/// Events per page unless `limit` says otherwise, and the most it may say.
pub const DEFAULT_EVENTS: i64 = 100;
pub const MAX_EVENTS: i64 = 1000;

/// A name: trimmed, 1 to 100 characters, no control characters.
pub(crate) fn check_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(ValidationError::new(
            "name",
            format!("1 to {MAX_NAME_CHARS} characters, no control characters"),
        )
        .into());
    }
    Ok(name.to_owned())
}

/// Checks that `decoder` is small enough, compiles and defines `decodeUplink`
/// (in the sandbox, off the async executor).
async fn check_decoder(state: &AppState, decoder: Option<&str>) -> Result<(), AppError> {
    let Some(code) = decoder else {
        return Ok(());
    };
    if code.len() > MAX_DECODER_BYTES {
        return Err(
            ValidationError::new("decoder", format!("at most {MAX_DECODER_BYTES} bytes")).into(),
        );
    }
    let code = code.to_owned();
    let limits = *state.decoders.limits();
    let checked = tokio::task::spawn_blocking(move || sentinel_decoders::check(&code, &limits))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    checked.map_err(|e| ValidationError::new("decoder", e.to_string()).into())
}

pub async fn profiles(state: &AppState, ctx: &OrgContext) -> Result<Vec<DeviceProfile>, AppError> {
    Ok(tenant(state, ctx).await?.device_profiles().await?)
}

pub async fn profile(
    state: &AppState,
    ctx: &OrgContext,
    id: Uuid,
) -> Result<DeviceProfile, AppError> {
    tenant(state, ctx)
        .await?
        .device_profile(id)
        .await
        .map_err(not_found_as("device profile"))
}

pub async fn create_profile(
    state: &AppState,
    ctx: &OrgContext,
    audit: &AuditContext,
    name: &str,
    decoder: Option<&str>,
) -> Result<DeviceProfile, AppError> {
    let name = check_name(name)?;
    check_decoder(state, decoder).await?;
    Ok(tenant(state, ctx)
        .await?
        .create_device_profile(&name, decoder, state.clock.now(), audit)
        .await?)
}

pub async fn update_profile(
    state: &AppState,
    ctx: &OrgContext,
    audit: &AuditContext,
    id: Uuid,
    name: &str,
    decoder: Option<&str>,
) -> Result<DeviceProfile, AppError> {
    let name = check_name(name)?;
    check_decoder(state, decoder).await?;
    tenant(state, ctx)
        .await?
        .update_device_profile(id, &name, decoder, state.clock.now(), audit)
        .await
        .map_err(not_found_as("device profile"))
}

pub async fn delete_profile(
    state: &AppState,
    ctx: &OrgContext,
    audit: &AuditContext,
    id: Uuid,
) -> Result<(), AppError> {
    tenant(state, ctx)
        .await?
        .delete_device_profile(id, state.clock.now(), audit)
        .await
        .map_err(not_found_as("device profile"))
}

/// A sample uplink payload as typed, in one of the two encodings people paste.
#[derive(Debug, Clone, Copy)]
pub enum SamplePayload<'a> {
    /// Two hex digits a byte, either case (`09C464`).
    Hex(&'a str),
    /// Standard base64 with padding (`CcRk`), as ChirpStack shows payloads.
    Base64(&'a str),
}

impl SamplePayload<'_> {
    /// The payload's bytes, or an error saying which encoding it is not.
    pub fn bytes(self) -> Result<Vec<u8>, AppError> {
        match self {
            SamplePayload::Hex(text) => unhex(text.trim()).ok_or_else(|| {
                AppError::BadRequest(
                    "the sample payload is not hex: two hex digits a byte, e.g. 09c464".into(),
                )
            }),
            SamplePayload::Base64(text) => STANDARD.decode(text.trim()).map_err(|_| {
                AppError::BadRequest("the sample payload is not base64, e.g. CcRk".into())
            }),
        }
    }
}

/// Runs `code` on a sample payload under the same limits as real uplinks and
/// stores nothing: the decoder's result, or why it failed.
pub async fn test_decoder(
    state: &AppState,
    code: &str,
    payload: SamplePayload<'_>,
    f_port: u8,
) -> Result<Result<Decoded, DecodeError>, AppError> {
    if code.len() > MAX_DECODER_BYTES {
        return Err(
            ValidationError::new("code", format!("at most {MAX_DECODER_BYTES} bytes")).into(),
        );
    }
    let payload = payload.bytes()?;
    let recv_time = state.clock.now().to_offset_datetime();
    Ok(state
        .decoders
        .decode(Arc::from(code), payload, f_port, recv_time)
        .await)
}

pub async fn lorawan_device(
    state: &AppState,
    ctx: &OrgContext,
    device: Uuid,
) -> Result<Option<LorawanDevice>, AppError> {
    tenant(state, ctx)
        .await?
        .lorawan_device(device)
        .await
        .map_err(not_found_as("device"))
}

/// Sets a device's DevEUI (16 hex digits, unique in the organization) and
/// profile, or clears both when `dev_eui` is None.
pub async fn set_lorawan_device(
    state: &AppState,
    ctx: &OrgContext,
    audit: &AuditContext,
    device: Uuid,
    dev_eui: Option<&str>,
    profile: Option<Uuid>,
) -> Result<Option<LorawanDevice>, AppError> {
    let dev_eui = match dev_eui {
        Some(text) => Some(
            normalize_dev_eui(text)
                .ok_or_else(|| AppError::from(ValidationError::new("dev_eui", "16 hex digits")))?,
        ),
        None if profile.is_some() => {
            return Err(ValidationError::new("dev_eui", "a profile needs a DevEUI").into());
        }
        None => None,
    };
    let identity = dev_eui.as_deref().map(|eui| (eui, profile));
    tenant(state, ctx)
        .await?
        .set_lorawan_device(device, identity, state.clock.now(), audit)
        .await
        .map_err(not_found_as("device or device profile"))
}

pub async fn events(
    state: &AppState,
    ctx: &OrgContext,
    device: Uuid,
    before: Option<EventCursor>,
    limit: Option<i64>,
) -> Result<Vec<DeviceEvent>, AppError> {
    let limit = limit.unwrap_or(DEFAULT_EVENTS);
    if !(1..=MAX_EVENTS).contains(&limit) {
        return Err(AppError::BadRequest(format!(
            "limit must be between 1 and {MAX_EVENTS}"
        )));
    }
    tenant(state, ctx)
        .await?
        .device_events(device, before, limit)
        .await
        .map_err(not_found_as("device"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_payloads_are_hex_or_base64_and_nothing_else() {
        assert_eq!(
            SamplePayload::Hex(" 09C464 ").bytes().ok(),
            Some(vec![0x09, 0xc4, 0x64])
        );
        assert_eq!(SamplePayload::Hex("").bytes().ok(), Some(vec![]));
        for bad in ["0g", "123", "09C4 64", "+1+2", "-1", "éé"] {
            assert!(SamplePayload::Hex(bad).bytes().is_err(), "{bad}");
        }
        assert_eq!(
            SamplePayload::Base64("CcRk").bytes().ok(),
            Some(vec![0x09, 0xc4, 0x64])
        );
        assert!(SamplePayload::Base64("!!!!").bytes().is_err());
    }
}
