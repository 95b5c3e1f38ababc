//! The LoRaWAN section of a device's page: its DevEUI and device profile, the
//! forms that assign, change or remove them, and the device's latest stored
//! uplinks (decoded data or the decoder's error).

use axum::extract::State;
use sentinel_core::OrgId;
use sentinel_store::DeviceEvent;
use serde::Deserialize;
use uuid::Uuid;

use super::devices::{DeviceQuery, device_page};
use super::{UiResult, see_other};
use crate::access::OrgContext;
use crate::audit::Audit;
use crate::error::AppError;
use crate::extract::{UiForm, UiPath};
use crate::ops;
use crate::state::AppState;

/// How many of the newest uplinks the device page shows (the API pages
/// through all of them).
const RECENT_EVENTS: i64 = 20;

/// The assignment form as posted, kept as typed for a second try.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LorawanForm {
    #[serde(default)]
    pub dev_eui: String,
    /// A profile's id; empty for none.
    #[serde(default)]
    pub profile_id: String,
}

impl LorawanForm {
    fn profile(&self) -> Result<Option<Uuid>, AppError> {
        let id = self.profile_id.trim();
        if id.is_empty() {
            return Ok(None);
        }
        id.parse()
            .map(Some)
            .map_err(|_| AppError::BadRequest("choose a device profile from the list".into()))
    }
}

/// A profile in the form's list.
pub struct ProfileChoice {
    pub id: Uuid,
    pub name: String,
    pub selected: bool,
}

/// A stored uplink as a row of the table.
pub struct EventRow {
    pub received_at: String,
    pub f_port: i32,
    pub payload_hex: String,
    /// The decoded data, pretty JSON.
    pub data: Option<String>,
    /// Warnings and errors the decoder reported.
    pub notes: Vec<String>,
    pub decoder_error: Option<String>,
}

impl EventRow {
    fn new(event: DeviceEvent) -> Result<EventRow, AppError> {
        let field = |name: &str| event.decoded.as_ref().and_then(|d| d.get(name)).cloned();
        let data = field("data")
            .map(|data| serde_json::to_string_pretty(&data))
            .transpose()
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let notes = ["warnings", "errors"]
            .into_iter()
            .filter_map(|name| Some((name, field(name)?)))
            .flat_map(|(name, list)| {
                let list = list.as_array().cloned().unwrap_or_default();
                list.into_iter().map(move |note| match note.as_str() {
                    Some(text) => format!("{name}: {text}"),
                    None => format!("{name}: {note}"),
                })
            })
            .collect();
        Ok(EventRow {
            received_at: event.received_at.to_rfc3339(),
            f_port: event.f_port,
            payload_hex: sentinel_core::audit::hex(&event.payload),
            data,
            notes,
            decoder_error: event.decoder_error,
        })
    }
}

/// What the device page's LoRaWAN section shows.
pub struct LorawanSection {
    pub dev_eui: Option<String>,
    /// The profile's id and name, when the device has one.
    pub profile: Option<(Uuid, String)>,
    pub profiles: Vec<ProfileChoice>,
    /// The DevEUI in the form: as typed after a refusal, else the current one.
    pub form_dev_eui: String,
    pub events: Vec<EventRow>,
}

/// The section for `device`, its form filled from `typed` when a post was
/// refused.
pub(super) async fn section(
    state: &AppState,
    ctx: &OrgContext,
    device: Uuid,
    typed: Option<LorawanForm>,
) -> Result<LorawanSection, AppError> {
    let current = ops::lorawan::lorawan_device(state, ctx, device).await?;
    let all = ops::lorawan::profiles(state, ctx).await?;
    let events = ops::lorawan::events(state, ctx, device, None, Some(RECENT_EVENTS))
        .await?
        .into_iter()
        .map(EventRow::new)
        .collect::<Result<_, _>>()?;
    let current_profile = current.as_ref().and_then(|d| d.profile_id);
    let form = typed.unwrap_or_else(|| LorawanForm {
        dev_eui: current
            .as_ref()
            .map(|d| d.dev_eui.clone())
            .unwrap_or_default(),
        profile_id: current_profile.map(|id| id.to_string()).unwrap_or_default(),
    });
    let profile = current_profile.and_then(|id| {
        all.iter()
            .find(|p| p.id == id)
            .map(|p| (p.id, p.name.clone()))
    });
    let profiles = all
        .into_iter()
        .map(|p| ProfileChoice {
            selected: form.profile_id == p.id.to_string(),
            id: p.id,
            name: p.name,
        })
        .collect();
    Ok(LorawanSection {
        dev_eui: current.map(|d| d.dev_eui),
        profile,
        profiles,
        form_dev_eui: form.dev_eui,
        events,
    })
}

fn device_url(ctx: &OrgContext, device: Uuid, notice: &str) -> String {
    format!(
        "/orgs/{}/devices/{device}?notice={notice}#lorawan",
        ctx.organization().id
    )
}

/// `POST /orgs/{org_id}/devices/{device_id}/lorawan`: sets the device's
/// DevEUI and profile; a refusal shows the device page again with the form
/// as typed.
pub async fn assign(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    UiPath((_, device_id)): UiPath<(OrgId, Uuid)>,
    UiForm(form): UiForm<LorawanForm>,
) -> UiResult {
    let set = match form.profile() {
        Ok(profile) => {
            ops::lorawan::set_lorawan_device(
                &state,
                &ctx,
                &audit,
                device_id,
                Some(form.dev_eui.trim()),
                profile,
            )
            .await
        }
        Err(e) => Err(e),
    };
    match set {
        Ok(_) => Ok(see_other(&device_url(&ctx, device_id, "lorawan-set"))),
        Err(e) => {
            device_page(
                &state,
                &ctx,
                device_id,
                DeviceQuery::default(),
                Some(form),
                Err(e),
            )
            .await
        }
    }
}

/// `POST /orgs/{org_id}/devices/{device_id}/lorawan/remove`: clears the
/// device's DevEUI and profile (its stored uplinks stay).
pub async fn remove(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    UiPath((_, device_id)): UiPath<(OrgId, Uuid)>,
) -> UiResult {
    ops::lorawan::set_lorawan_device(&state, &ctx, &audit, device_id, None, None).await?;
    Ok(see_other(&device_url(&ctx, device_id, "lorawan-removed")))
}
