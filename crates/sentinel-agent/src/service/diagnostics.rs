//! The `collect_diagnostics` output: what the agent knows about itself and its host, as
//! pretty JSON, without the device token.

use serde_json::{Value, json};

use super::Agent;
use crate::facts;
use crate::host::Host;
use crate::telemetry::Sampler;

/// The diagnostics, as pretty JSON.
pub(super) async fn collect(agent: &Agent) -> String {
    let host = agent.host.clone();
    let (facts, telemetry, inventory) = tokio::task::spawn_blocking(move || read_host(host))
        .await
        .unwrap_or_else(|error| {
            let error = json!({"error": error.to_string()});
            (error.clone(), error.clone(), error)
        });
    let state = agent.state().clone();
    let diagnostics = json!({
        "agent_version": env!("CARGO_PKG_VERSION"),
        "facts": facts,
        "telemetry": telemetry,
        "inventory": inventory,
        "settings": agent.settings(),
        "state": {
            "server_url": state.server_url,
            "device_id": state.device_id,
            "org_id": state.org_id,
            "ca_pinned": state.ca_pinned,
            "enrolled_at": state.enrolled_at,
            "token_rotated_at": state.token_rotated_at,
        },
        "replay_record": {"commands": agent.replay().len()},
    });
    serde_json::to_string_pretty(&diagnostics).unwrap_or_else(|error| error.to_string())
}

/// The host's facts, a fresh telemetry sample, and the inventory's digest and size.
fn read_host(host: Host) -> (Value, Value, Value) {
    let facts = json!(facts::collect(&host.facts));
    let telemetry = json!(Sampler::new(host.telemetry).sample());
    let inventory = match host.inventory.map(|source| source.collect()) {
        None => json!({"error": "no package manager found"}),
        Some(Ok(collection)) => json!({
            "digest": collection.inventory.digest(),
            "packages": collection.inventory.packages().len(),
            "warnings": collection.warnings.len(),
        }),
        Some(Err(error)) => json!({"error": error.to_string()}),
    };
    (facts, telemetry, inventory)
}
