//! The device pages of an organization: the device list, one device (facts,
//! metrics as server-drawn SVG, inventory, commands, and the LoRaWAN section
//! from `ui::lorawan`), queueing a command after a confirmation page, revoking
//! a device, and enrollment tokens.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use sentinel_core::{OrgId, Permission};
use sentinel_protocol::command::CommandAction;
use sentinel_store::{CommandRecord, Device, DeviceFilter, EnrollmentToken, TelemetryRecord};
use serde::Deserialize;
use uuid::Uuid;

use super::lorawan::{LorawanForm, LorawanSection};
use super::{ConfirmForm, Layout, UiResult, on_page, render, render_with_error, see_other};
use crate::access::OrgContext;
use crate::audit::Audit;
use crate::error::AppError;
use crate::extract::{UiForm, UiPath, UiQuery};
use crate::ops;
use crate::state::AppState;

/// How many telemetry samples the charts show.
const CHART_SAMPLES: i64 = 120;
const CHART_WIDTH: f64 = 600.0;
const CHART_HEIGHT: f64 = 120.0;

/// The command types the form offers, with their labels.
const COMMAND_TYPES: [(&str, &str); 7] = [
    ("run_script", "Run a script"),
    ("install_package", "Install a package"),
    ("remove_package", "Remove a package"),
    ("refresh_inventory", "Refresh the inventory"),
    ("reboot", "Reboot"),
    ("lock_sessions", "Lock all sessions"),
    ("collect_diagnostics", "Collect diagnostics"),
];

/// An empty form or query field means "not given".
fn given(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// Whether the caller's role in the organization grants `permission` (what
/// a page offers; the guard decides what a request may do).
pub(super) fn role_grants(ctx: &OrgContext, permission: Permission) -> bool {
    ctx.membership.role().grants(permission)
}

/// The page frame of an organization page, with the notice named in its URL.
pub(super) async fn layout_for(
    state: &AppState,
    ctx: &OrgContext,
    title: &str,
    notice: Option<&str>,
) -> Result<Layout, AppError> {
    Ok(
        Layout::signed_in(state, &ctx.principal, title, Some(ctx.organization().id))
            .await?
            .with_notice(notice),
    )
}

/// One device as a row of the list.
pub struct DeviceRow {
    pub id: Uuid,
    pub hostname: String,
    pub status: &'static str,
    pub last_seen: String,
    pub os: String,
    pub agent_version: String,
    pub tags: String,
}

fn status_of(device: &Device) -> &'static str {
    if device.revoked_at.is_some() {
        "revoked"
    } else if device.online {
        "online"
    } else {
        "offline"
    }
}

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesPage {
    layout: Layout,
    org_id: OrgId,
    org_name: String,
    q: String,
    tag: String,
    revoked: bool,
    rows: Vec<DeviceRow>,
    can_write: bool,
}

#[derive(Deserialize)]
pub struct DevicesQuery {
    q: Option<String>,
    tag: Option<String>,
    /// `on`: list revoked devices too.
    revoked: Option<String>,
    notice: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    ctx: OrgContext,
    UiQuery(query): UiQuery<DevicesQuery>,
) -> UiResult {
    let org = ctx.organization();
    let layout = layout_for(
        &state,
        &ctx,
        &format!("Devices of {}", org.name),
        query.notice.as_deref(),
    )
    .await?;
    let filter = DeviceFilter {
        text: given(query.q.clone()),
        tag: given(query.tag.clone()),
        include_revoked: query.revoked.is_some(),
    };
    let rows = ops::devices::devices(&state, &ctx, &filter)
        .await?
        .into_iter()
        .map(|d| DeviceRow {
            id: d.id,
            status: status_of(&d),
            hostname: d.hostname,
            last_seen: d.last_seen_at.to_rfc3339(),
            os: d.os_pretty_name,
            agent_version: d.agent_version,
            tags: d.tags.join(", "),
        })
        .collect();
    let page = DevicesPage {
        layout,
        org_id: org.id,
        org_name: org.name.to_string(),
        q: query.q.unwrap_or_default(),
        tag: query.tag.unwrap_or_default(),
        revoked: query.revoked.is_some(),
        rows,
        can_write: role_grants(&ctx, Permission::DevicesWrite),
    };
    Ok(render(StatusCode::OK, &page))
}

/// A line chart of percentages, drawn on the server.
pub struct Chart {
    pub id: &'static str,
    pub title: &'static str,
    /// The SVG path: only `M`, `L`, digits, dots and spaces.
    pub path: String,
    pub latest: String,
    pub samples: usize,
}

/// The SVG path through `values` (0–100, oldest first), left to right.
fn chart_path(values: &[f64]) -> String {
    let step = if values.len() > 1 {
        CHART_WIDTH / (values.len() - 1) as f64
    } else {
        0.0
    };
    let mut path = String::new();
    for (i, value) in values.iter().enumerate() {
        let y = CHART_HEIGHT - value.clamp(0.0, 100.0) / 100.0 * CHART_HEIGHT;
        let x = step * i as f64;
        let op = if i == 0 { 'M' } else { 'L' };
        path.push_str(&format!("{op}{x:.1} {y:.1} "));
    }
    path.trim_end().to_owned()
}

fn chart(id: &'static str, title: &'static str, values: &[f64]) -> Chart {
    Chart {
        id,
        title,
        path: chart_path(values),
        latest: values
            .last()
            .map_or_else(|| String::from("no data"), |v| format!("{v:.1} %")),
        samples: values.len(),
    }
}

fn cpu_percent(record: &TelemetryRecord) -> Option<f64> {
    record
        .sample
        .get("cpu_percent")
        .and_then(serde_json::Value::as_f64)
        .filter(|v| v.is_finite())
}

fn memory_percent(record: &TelemetryRecord) -> Option<f64> {
    let memory = record.sample.get("memory")?;
    let total = memory.get("total_bytes")?.as_f64()?;
    let used = memory.get("used_bytes")?.as_f64()?;
    (total > 0.0).then(|| used / total * 100.0)
}

/// The charts for `samples` (newest first, as the store gives them).
fn charts(samples: &[TelemetryRecord]) -> Vec<Chart> {
    let oldest_first: Vec<&TelemetryRecord> = samples.iter().rev().collect();
    let cpu: Vec<f64> = oldest_first.iter().filter_map(|r| cpu_percent(r)).collect();
    let memory: Vec<f64> = oldest_first
        .iter()
        .filter_map(|r| memory_percent(r))
        .collect();
    vec![
        chart("chart-cpu", "CPU used (%)", &cpu),
        chart("chart-memory", "Memory used (%)", &memory),
    ]
}

pub struct CommandRow {
    pub id: Uuid,
    pub kind: String,
    pub params: String,
    pub issued_by: String,
    pub issued_at: String,
    pub status: String,
    pub exit_code: String,
    pub stdout: String,
    pub stderr: String,
    pub truncated: bool,
    pub reason: String,
}

impl From<CommandRecord> for CommandRow {
    fn from(c: CommandRecord) -> CommandRow {
        let params = match &c.params {
            serde_json::Value::Object(map) if map.is_empty() => String::new(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        CommandRow {
            id: c.id,
            kind: c.kind,
            params,
            issued_by: c.issued_by_name,
            issued_at: c.issued_at.to_rfc3339(),
            status: c.status,
            exit_code: c.exit_code.map(|e| e.to_string()).unwrap_or_default(),
            stdout: c.stdout,
            stderr: c.stderr,
            truncated: c.output_truncated,
            reason: c.reason.unwrap_or_default(),
        }
    }
}

pub struct PackageRow {
    pub manager: String,
    pub name: String,
    pub version: String,
    pub arch: String,
    pub source: String,
}

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage {
    layout: Layout,
    org_id: OrgId,
    org_name: String,
    device: Device,
    status: &'static str,
    tags: String,
    charts: Vec<Chart>,
    chart_width: f64,
    chart_height: f64,
    inventory_q: String,
    packages: Vec<PackageRow>,
    findings: Vec<sentinel_store::Finding>,
    commands: Vec<CommandRow>,
    command_types: Vec<(&'static str, &'static str)>,
    can_run: bool,
    can_write: bool,
    lorawan: LorawanSection,
}

#[derive(Deserialize, Default)]
pub struct DeviceQuery {
    inventory_q: Option<String>,
    notice: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    ctx: OrgContext,
    UiPath((_, device_id)): UiPath<(OrgId, Uuid)>,
    UiQuery(query): UiQuery<DeviceQuery>,
) -> UiResult {
    device_page(&state, &ctx, device_id, query, None, Ok(())).await
}

/// A device's page; after a refused LoRaWAN form (`outcome`), with the error
/// and the form as typed.
pub(super) async fn device_page(
    state: &AppState,
    ctx: &OrgContext,
    device_id: Uuid,
    query: DeviceQuery,
    lorawan_form: Option<LorawanForm>,
    outcome: Result<(), AppError>,
) -> UiResult {
    let (status, _, error) = on_page(outcome)?;
    let org = ctx.organization();
    let device = ops::devices::device(state, ctx, device_id).await?;
    let layout = layout_for(state, ctx, &device.hostname, query.notice.as_deref())
        .await?
        .with_error(error.as_ref().map(AppError::detail));
    let inventory_q = given(query.inventory_q);
    let packages = ops::devices::inventory(state, ctx, device_id, inventory_q.as_deref())
        .await?
        .into_iter()
        .map(|p| PackageRow {
            manager: p.manager.as_str().to_owned(),
            name: p.name,
            version: p.version,
            arch: p.arch.unwrap_or_default(),
            source: match (p.source_name, p.source_version) {
                (Some(name), Some(version)) => format!("{name} {version}"),
                (Some(name), None) => name,
                _ => String::new(),
            },
        })
        .collect();
    let findings = ops::findings::of_device(state, ctx, device_id).await?;
    let samples = ops::devices::telemetry(state, ctx, device_id, CHART_SAMPLES).await?;
    let commands = ops::devices::device_commands(state, ctx, device_id)
        .await?
        .into_iter()
        .map(CommandRow::from)
        .collect();
    let lorawan = super::lorawan::section(state, ctx, device_id, lorawan_form).await?;
    let page = DevicePage {
        layout,
        org_id: org.id,
        org_name: org.name.to_string(),
        status: status_of(&device),
        tags: device.tags.join(", "),
        device,
        charts: charts(&samples),
        chart_width: CHART_WIDTH,
        chart_height: CHART_HEIGHT,
        inventory_q: inventory_q.unwrap_or_default(),
        packages,
        findings,
        commands,
        command_types: COMMAND_TYPES.to_vec(),
        can_run: role_grants(ctx, Permission::CommandsRun),
        can_write: role_grants(ctx, Permission::DevicesWrite),
        lorawan,
    };
    Ok(render_with_error(status, &page, error.as_ref()))
}

/// A command as the form sends it (both to the confirmation page and the final
/// POST). Fields a type does not use are ignored.
#[derive(Deserialize, Clone, Default)]
pub struct CommandForm {
    #[serde(rename = "type")]
    kind: String,
    script: Option<String>,
    interpreter: Option<String>,
    timeout_seconds: Option<String>,
    name: Option<String>,
    /// How long the command may wait for its device (default one day).
    expires_in_hours: Option<String>,
    confirm: Option<String>,
}

impl CommandForm {
    /// The parameters `queue_command` takes for this type, as the form gave them.
    fn params(&self) -> Result<Option<serde_json::Value>, AppError> {
        Ok(match self.kind.as_str() {
            "run_script" => {
                let mut params = serde_json::json!({
                    "script": self.script.clone().unwrap_or_default().replace("\r\n", "\n"),
                    "interpreter": given(self.interpreter.clone()).unwrap_or_else(|| "sh".into()),
                });
                if let Some(timeout) = given(self.timeout_seconds.clone()) {
                    let seconds: u32 = timeout.parse().map_err(|_| {
                        AppError::BadRequest(String::from(
                            "timeout_seconds must be a whole number of seconds",
                        ))
                    })?;
                    params["timeout_seconds"] = seconds.into();
                }
                Some(params)
            }
            "install_package" | "remove_package" => Some(serde_json::json!({
                "name": self.name.clone().unwrap_or_default().trim(),
            })),
            _ => None,
        })
    }

    /// The expiry the form asks for, in seconds (`None`: the default).
    fn expiry_seconds(&self) -> Result<Option<u32>, AppError> {
        given(self.expires_in_hours.clone())
            .map(|hours| {
                hours
                    .parse::<u32>()
                    .ok()
                    .and_then(|h| h.checked_mul(3600))
                    .ok_or_else(|| {
                        AppError::BadRequest(String::from(
                            "expires_in_hours must be a whole number of hours",
                        ))
                    })
            })
            .transpose()
    }

    /// The checked action: what would be signed and sent.
    fn action(&self) -> Result<(CommandAction, Option<serde_json::Value>), AppError> {
        let params = self.params()?;
        let action = CommandAction::from_request(&self.kind, params.clone())
            .map_err(AppError::BadRequest)?;
        Ok((action, params))
    }
}

#[derive(Template)]
#[template(path = "command_confirm.html")]
struct ConfirmPage {
    layout: Layout,
    org_id: OrgId,
    device: Device,
    label: &'static str,
    form: CommandForm,
    /// What will run, field by field.
    details: Vec<(&'static str, String)>,
    script: Option<String>,
}

/// `POST …/commands/confirm`: what the command will do, with a confirm
/// button. Changes nothing (a POST only because a script may be too large for
/// a URL).
pub async fn confirm(
    State(state): State<AppState>,
    ctx: OrgContext,
    UiPath((_, device_id)): UiPath<(OrgId, Uuid)>,
    UiForm(form): UiForm<CommandForm>,
) -> UiResult {
    let device = ops::devices::device(&state, &ctx, device_id).await?;
    if device.revoked_at.is_some() {
        return Err(AppError::BadRequest(String::from("this device is revoked")).into());
    }
    let (action, _) = form.action()?;
    let expiry = form.expiry_seconds()?;
    let label = COMMAND_TYPES
        .iter()
        .find(|(kind, _)| *kind == action.kind())
        .map_or("Command", |(_, label)| *label);
    let mut details = vec![
        ("Type", action.kind().to_owned()),
        (
            "Waits for the device",
            format!("{} h", expiry.map_or(24, |s| s / 3600)),
        ),
    ];
    let mut script = None;
    match &action {
        CommandAction::RunScript {
            interpreter,
            script: text,
            timeout_seconds,
        } => {
            details.push(("Interpreter", interpreter.program().to_owned()));
            details.push(("Timeout", format!("{timeout_seconds} s")));
            script = Some(text.clone());
        }
        CommandAction::InstallPackage { name } | CommandAction::RemovePackage { name } => {
            details.push(("Package", name.clone()));
        }
        _ => {}
    }
    let layout = layout_for(
        &state,
        &ctx,
        &format!("Confirm: {label} on {}", device.hostname),
        None,
    )
    .await?;
    let page = ConfirmPage {
        layout,
        org_id: ctx.organization().id,
        device,
        label,
        form,
        details,
        script,
    };
    Ok(render(StatusCode::OK, &page))
}

/// `POST …/commands`: queues the confirmed command.
pub async fn queue(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    UiPath((_, device_id)): UiPath<(OrgId, Uuid)>,
    UiForm(form): UiForm<CommandForm>,
) -> UiResult {
    if form.confirm.as_deref() != Some("yes") {
        return Err(AppError::BadRequest(String::from(
            "the command was not confirmed; nothing was queued",
        ))
        .into());
    }
    let (_, params) = form.action()?;
    let expiry = form.expiry_seconds()?;
    ops::devices::queue_command(&state, &ctx, &audit, device_id, &form.kind, params, expiry)
        .await?;
    Ok(see_other(&format!(
        "/orgs/{}/devices/{device_id}?notice=command-queued#commands",
        ctx.organization().id
    )))
}

/// `POST …/commands/{command_id}/cancel`: cancels a command that has not
/// ended, then shows its device.
pub async fn cancel(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    UiPath((_, command_id)): UiPath<(OrgId, Uuid)>,
) -> UiResult {
    let command = ops::devices::cancel_command(&state, &ctx, &audit, command_id).await?;
    Ok(see_other(&format!(
        "/orgs/{}/devices/{}?notice=command-cancelled#commands",
        ctx.organization().id,
        command.device_id
    )))
}

/// `POST …/revoke`: revokes the device, when the confirmation box is ticked.
pub async fn revoke(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    UiPath((_, device_id)): UiPath<(OrgId, Uuid)>,
    UiForm(form): UiForm<ConfirmForm>,
) -> UiResult {
    form.ticked("revocation")?;
    ops::devices::revoke_device(&state, &ctx, &audit, device_id).await?;
    Ok(see_other(&format!(
        "/orgs/{}/devices/{device_id}?notice=device-revoked",
        ctx.organization().id
    )))
}

pub struct TokenRow {
    pub id: Uuid,
    pub uses: i64,
    pub max_uses: i64,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: String,
    pub tags: String,
    pub state: &'static str,
    pub revocable: bool,
}

/// The token as first shown, with the command that enrolls a device with it.
pub struct NewToken {
    pub secret: String,
    pub server: String,
}

#[derive(Template)]
#[template(path = "enrollment_tokens.html")]
struct TokensPage {
    layout: Layout,
    org_id: OrgId,
    org_name: String,
    rows: Vec<TokenRow>,
    can_write: bool,
    created: Option<NewToken>,
    form: TokenForm,
}

#[derive(Deserialize, Clone, Default)]
pub struct TokenForm {
    expires_in_hours: Option<String>,
    max_uses: Option<String>,
    tags: Option<String>,
}

async fn tokens_page(
    state: &AppState,
    ctx: &OrgContext,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<String>,
    created: Option<NewToken>,
    form: TokenForm,
) -> UiResult {
    let org = ctx.organization();
    let layout = layout_for(
        state,
        ctx,
        &format!("Enrollment tokens of {}", org.name),
        notice,
    )
    .await?
    .with_error(error);
    let now = state.clock.now();
    let rows = ops::devices::enrollment_tokens(state, ctx)
        .await?
        .into_iter()
        .map(|t: EnrollmentToken| TokenRow {
            id: t.id,
            uses: t.uses,
            max_uses: t.max_uses,
            created_by: t.created_by_name.clone(),
            created_at: t.created_at.to_rfc3339(),
            expires_at: t.expires_at.to_rfc3339(),
            tags: t.tags.join(", "),
            state: if t.revoked_at.is_some() {
                "revoked"
            } else if now >= t.expires_at {
                "expired"
            } else if t.uses >= t.max_uses {
                "used up"
            } else {
                "usable"
            },
            revocable: t.revoked_at.is_none(),
        })
        .collect();
    let page = TokensPage {
        layout,
        org_id: org.id,
        org_name: org.name.to_string(),
        rows,
        can_write: role_grants(ctx, Permission::DevicesWrite),
        created,
        form,
    };
    Ok(render(status, &page))
}

#[derive(Deserialize)]
pub struct NoticeOnly {
    notice: Option<String>,
}

pub async fn tokens(
    State(state): State<AppState>,
    ctx: OrgContext,
    UiQuery(query): UiQuery<NoticeOnly>,
) -> UiResult {
    tokens_page(
        &state,
        &ctx,
        StatusCode::OK,
        query.notice.as_deref(),
        None,
        None,
        TokenForm::default(),
    )
    .await
}

fn parse_number<T: std::str::FromStr>(
    field: &str,
    value: Option<String>,
) -> Result<Option<T>, AppError> {
    given(value)
        .map(|v| {
            v.parse()
                .map_err(|_| AppError::BadRequest(format!("{field} must be a whole number")))
        })
        .transpose()
}

/// The address agents reach this server at, for the enroll command line.
fn server_origin(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(origin) = &state.settings.public_origin {
        return origin.clone();
    }
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(
            || String::from("https://sentinel.example.org"),
            |host| format!("https://{host}"),
        )
}

/// `POST /orgs/{org_id}/enrollment-tokens`: creates a token and shows it, once.
pub async fn create_token(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    headers: HeaderMap,
    UiForm(form): UiForm<TokenForm>,
) -> UiResult {
    let parsed =
        parse_number::<u32>("expires_in_hours", form.expires_in_hours.clone()).and_then(|hours| {
            Ok((
                hours,
                parse_number::<i64>("max_uses", form.max_uses.clone())?,
            ))
        });
    let tags: Vec<String> = form
        .tags
        .clone()
        .unwrap_or_default()
        .split([',', ' '])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let result = match parsed {
        Ok((hours, max_uses)) => {
            ops::devices::create_enrollment_token(&state, &ctx, &audit, hours, max_uses, tags).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(created) => {
            let new = NewToken {
                secret: created.secret,
                server: server_origin(&state, &headers),
            };
            tokens_page(
                &state,
                &ctx,
                StatusCode::OK,
                None,
                None,
                Some(new),
                TokenForm::default(),
            )
            .await
        }
        Err(e @ (AppError::BadRequest(_) | AppError::Invalid(_))) => {
            tokens_page(&state, &ctx, e.status(), None, Some(e.detail()), None, form).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /orgs/{org_id}/enrollment-tokens/{token_id}/revoke`.
pub async fn revoke_token(
    State(state): State<AppState>,
    Audit(audit): Audit,
    ctx: OrgContext,
    UiPath((_, token_id)): UiPath<(OrgId, Uuid)>,
) -> UiResult {
    ops::devices::revoke_enrollment_token(&state, &ctx, &audit, token_id).await?;
    Ok(see_other(&format!(
        "/orgs/{}/enrollment-tokens?notice=token-revoked",
        ctx.organization().id
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_paths_hold_only_numbers_and_commands() {
        let path = chart_path(&[0.0, 50.0, 100.0, 250.0]);
        assert!(path.starts_with("M0.0 120.0 L200.0 60.0 L400.0 0.0"));
        assert!(
            path.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, 'M' | 'L' | '.' | ' '))
        );
        assert_eq!(chart_path(&[]), "");
        assert_eq!(chart_path(&[10.0]), "M0.0 108.0");
    }
}
