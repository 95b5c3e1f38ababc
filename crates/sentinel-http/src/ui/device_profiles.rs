//! The device profiles pages of an organization: the list, one profile (its
//! decoder and the decoder's SHA-256), creating, editing and deleting one, and
//! trying a decoder on a sample payload before it is saved (a form POST that
//! stores nothing and shows the form again, unsaved code kept, with the result).

use askama::Template;
use axum::extract::State;
use sentinel_core::{OrgId, Permission};
use sentinel_decoders::{DecodeError, Decoded};
use sentinel_store::DeviceProfile;
use serde::Deserialize;
use uuid::Uuid;

use super::devices::{layout_for, role_grants};
use super::orgs::NoticeQuery;
use super::{ConfirmForm, UiResult, on_page, render_with_error, see_other};
use crate::access::OrgContext;
use crate::audit::Audit;
use crate::error::AppError;
use crate::extract::{UiForm, UiPath, UiQuery};
use crate::ops;
use crate::ops::lorawan::SamplePayload;
use crate::state::AppState;

/// The profile form as posted, kept as typed so that a test or an error can
/// show it again. The sample fields are read only by "Test decoder".
#[derive(Debug, Clone, Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub decoder: String,
    /// The sample payload, in `encoding`.
    #[serde(default)]
    pub sample: String,
    /// `hex` or `base64`.
    #[serde(default)]
    pub encoding: String,
    #[serde(default)]
    pub f_port: String,
}

impl Default for ProfileForm {
    fn default() -> Self {
        ProfileForm {
            name: String::new(),
            decoder: String::new(),
            sample: String::new(),
            encoding: String::from("hex"),
            f_port: String::from("1"),
        }
    }
}

impl ProfileForm {
    /// The form of a saved profile, ready to edit.
    fn of(profile: &DeviceProfile) -> ProfileForm {
        ProfileForm {
            name: profile.name.clone(),
            decoder: profile.decoder.clone().unwrap_or_default(),
            ..ProfileForm::default()
        }
    }

    /// The decoder as the API would take it: browsers send a textarea's line
    /// ends as CRLF, and an empty box means no decoder (uplinks stored raw).
    fn decoder(&self) -> Option<String> {
        let code = self.decoder.replace("\r\n", "\n");
        (!code.trim().is_empty()).then_some(code)
    }

    fn sample(&self) -> Result<SamplePayload<'_>, AppError> {
        match self.encoding.as_str() {
            "hex" => Ok(SamplePayload::Hex(&self.sample)),
            "base64" => Ok(SamplePayload::Base64(&self.sample)),
            _ => Err(AppError::BadRequest(
                "choose hex or base64 for the sample payload".into(),
            )),
        }
    }

    fn f_port(&self) -> Result<u8, AppError> {
        self.f_port
            .trim()
            .parse()
            .map_err(|_| AppError::BadRequest("fPort must be a whole number from 0 to 255".into()))
    }
}

/// What a decoder made of the sample: its data (pretty JSON), the warnings
/// and errors it reported, or why it did not finish.
pub struct DecoderTrial {
    pub data: Option<String>,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
    pub failure: Option<String>,
}

impl DecoderTrial {
    fn new(outcome: Result<Decoded, DecodeError>) -> Result<DecoderTrial, AppError> {
        Ok(match outcome {
            Ok(decoded) => DecoderTrial {
                data: Some(
                    serde_json::to_string_pretty(&decoded.data)
                        .map_err(|e| AppError::Internal(e.to_string()))?,
                ),
                warnings: decoded.warnings,
                errors: decoded.errors,
                failure: None,
            },
            Err(e) => DecoderTrial {
                data: None,
                warnings: Vec::new(),
                errors: Vec::new(),
                failure: Some(e.to_string()),
            },
        })
    }
}

/// Runs the form's decoder on its sample through the same operation as the
/// API's test-decoder route; stores nothing.
async fn try_decoder(state: &AppState, form: &ProfileForm) -> Result<DecoderTrial, AppError> {
    let code = form.decoder().unwrap_or_default();
    let outcome = ops::lorawan::test_decoder(state, &code, form.sample()?, form.f_port()?).await?;
    DecoderTrial::new(outcome)
}

/// The decoder's SHA-256, as audit entries name it.
fn hash_of(profile: &DeviceProfile) -> Option<String> {
    profile.decoder.as_deref().map(sentinel_decoders::code_hash)
}

/// A profile as a row of the list.
pub struct ProfileRow {
    pub id: Uuid,
    pub name: String,
    pub code_hash: Option<String>,
    pub updated_at: String,
}

#[derive(Template)]
#[template(path = "device_profiles.html")]
struct ProfilesPage {
    layout: super::Layout,
    org_id: OrgId,
    org_name: String,
    rows: Vec<ProfileRow>,
    can_write: bool,
    form: ProfileForm,
    trial: Option<DecoderTrial>,
    save_action: String,
    test_action: String,
    save_label: &'static str,
}

async fn profiles_page(
    state: &AppState,
    ctx: &OrgContext,
    notice: Option<&str>,
    form: ProfileForm,
    outcome: Result<Option<DecoderTrial>, AppError>,
) -> UiResult {
    let (status, trial, error) = on_page(outcome)?;
    let trial = trial.flatten();
    let org = ctx.organization();
    let layout = layout_for(
        state,
        ctx,
        &format!("Device profiles of {}", org.name),
        notice,
    )
    .await?
    .with_error(error.as_ref().map(AppError::detail));
    let rows = ops::lorawan::profiles(state, ctx)
        .await?
        .into_iter()
        .map(|p| ProfileRow {
            code_hash: hash_of(&p),
            id: p.id,
            name: p.name,
            updated_at: p.updated_at.to_rfc3339(),
        })
        .collect();
    let page = ProfilesPage {
        layout,
        org_id: org.id,
        org_name: org.name.to_string(),
        rows,
        can_write: role_grants(ctx, Permission::DevicesWrite),
        form,
        trial,
        save_action: format!("/orgs/{}/device-profiles", org.id),
        test_action: format!("/orgs/{}/device-profiles/test-decoder", org.id),
        save_label: "Create profile",
    };
    Ok(render_with_error(status, &page, error.as_ref()))
}

/// `GET /orgs/{org_id}/device-profiles`.
pub async fn list(
    State(state): State<AppState>,
    ctx: OrgContext,
    UiQuery(query): UiQuery<NoticeQuery>,
) -> UiResult {
    profiles_page(
        &state,
        &ctx,
        query.notice.as_deref(),
        ProfileForm::default(),
        Ok(None),
    )
    .await
}

/// `POST /orgs/{org_id}/device-profiles`: creates the profile (its decoder
/// checked in the sandbox first), then shows it.
pub async fn create(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    UiForm(form): UiForm<ProfileForm>,
) -> UiResult {
    let decoder = form.decoder();
    match ops::lorawan::create_profile(&state, &ctx, &audit, &form.name, decoder.as_deref()).await {
        Ok(profile) => Ok(see_other(&format!(
            "/orgs/{}/device-profiles/{}?notice=device-profile-created",
            ctx.organization().id,
            profile.id
        ))),
        Err(e) => profiles_page(&state, &ctx, None, form, Err(e)).await,
    }
}

/// `POST /orgs/{org_id}/device-profiles/test-decoder`: the new-profile form
/// again, with what its decoder made of the sample. Stores nothing.
pub async fn test_new(
    State(state): State<AppState>,
    ctx: OrgContext,
    UiForm(form): UiForm<ProfileForm>,
) -> UiResult {
    let trial = try_decoder(&state, &form).await.map(Some);
    profiles_page(&state, &ctx, None, form, trial).await
}

#[derive(Template)]
#[template(path = "device_profile.html")]
struct ProfilePage {
    layout: super::Layout,
    org_id: OrgId,
    profile: DeviceProfile,
    code_hash: Option<String>,
    can_write: bool,
    form: ProfileForm,
    trial: Option<DecoderTrial>,
    save_action: String,
    test_action: String,
    save_label: &'static str,
}

/// One profile's page, its form filled from `form` (as posted) or else from
/// the saved profile. 404 for another organization's profile.
async fn profile_page(
    state: &AppState,
    ctx: &OrgContext,
    id: Uuid,
    notice: Option<&str>,
    form: Option<ProfileForm>,
    outcome: Result<Option<DecoderTrial>, AppError>,
) -> UiResult {
    let profile = ops::lorawan::profile(state, ctx, id).await?;
    let (status, trial, error) = on_page(outcome)?;
    let trial = trial.flatten();
    let layout = layout_for(state, ctx, &profile.name, notice)
        .await?
        .with_error(error.as_ref().map(AppError::detail));
    let org_id = ctx.organization().id;
    let save_action = format!("/orgs/{org_id}/device-profiles/{}", profile.id);
    let page = ProfilePage {
        layout,
        org_id,
        test_action: format!("{save_action}/test-decoder"),
        save_action,
        save_label: "Save profile",
        code_hash: hash_of(&profile),
        can_write: role_grants(ctx, Permission::DevicesWrite),
        form: form.unwrap_or_else(|| ProfileForm::of(&profile)),
        profile,
        trial,
    };
    Ok(render_with_error(status, &page, error.as_ref()))
}

/// `GET /orgs/{org_id}/device-profiles/{profile_id}`.
pub async fn page(
    State(state): State<AppState>,
    ctx: OrgContext,
    UiPath((_, id)): UiPath<(OrgId, Uuid)>,
    UiQuery(query): UiQuery<NoticeQuery>,
) -> UiResult {
    profile_page(&state, &ctx, id, query.notice.as_deref(), None, Ok(None)).await
}

/// `POST /orgs/{org_id}/device-profiles/{profile_id}`: saves the name and
/// decoder.
pub async fn update(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    UiPath((_, id)): UiPath<(OrgId, Uuid)>,
    UiForm(form): UiForm<ProfileForm>,
) -> UiResult {
    let decoder = form.decoder();
    match ops::lorawan::update_profile(&state, &ctx, &audit, id, &form.name, decoder.as_deref())
        .await
    {
        Ok(profile) => Ok(see_other(&format!(
            "/orgs/{}/device-profiles/{}?notice=device-profile-saved",
            ctx.organization().id,
            profile.id
        ))),
        Err(e) => profile_page(&state, &ctx, id, None, Some(form), Err(e)).await,
    }
}

/// `POST /orgs/{org_id}/device-profiles/{profile_id}/test-decoder`: the
/// profile's form again, unsaved code kept, with what it made of the sample.
/// Stores nothing.
pub async fn test_saved(
    State(state): State<AppState>,
    ctx: OrgContext,
    UiPath((_, id)): UiPath<(OrgId, Uuid)>,
    UiForm(form): UiForm<ProfileForm>,
) -> UiResult {
    let trial = try_decoder(&state, &form).await.map(Some);
    profile_page(&state, &ctx, id, None, Some(form), trial).await
}

/// `POST /orgs/{org_id}/device-profiles/{profile_id}/delete`: deletes a
/// profile no device uses, when the confirmation box is ticked.
pub async fn delete(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    UiPath((_, id)): UiPath<(OrgId, Uuid)>,
    UiForm(form): UiForm<ConfirmForm>,
) -> UiResult {
    let deleted = match form.ticked("deletion") {
        Ok(()) => ops::lorawan::delete_profile(&state, &ctx, &audit, id).await,
        Err(e) => Err(e),
    };
    match deleted {
        Ok(()) => Ok(see_other(&format!(
            "/orgs/{}/device-profiles?notice=device-profile-deleted",
            ctx.organization().id
        ))),
        Err(e) => profile_page(&state, &ctx, id, None, None, Err(e)).await,
    }
}
