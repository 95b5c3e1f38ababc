//! One broker connection's worker: connect with a persistent session,
//! subscribe with QoS 1, and for each message store the uplink (decoded in the
//! [`sentinel_decoders::DecoderPool`] when the device's profile has a decoder)
//! or drop it deliberately and count it — and only then acknowledge it. A
//! message whose storing fails is not acknowledged: the session ends and the
//! broker delivers it again after the reconnect. Reconnects back off
//! exponentially up to [`MAX_BACKOFF`].

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, Packet, QoS, SubscribeReasonCode};
use sentinel_core::OrgId;
use sentinel_store::{NewUplinkEvent, SealedSite, StoreError, UplinkStore};
use serde_json::json;
use uuid::Uuid;

use super::chirpstack::{self, UplinkEvent};
use super::{Count, Status, broker};
use crate::live::LiveEvent;
use crate::state::AppState;

pub const MIN_BACKOFF: Duration = Duration::from_millis(500);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Requests (acks, the subscription) queued for the event loop: more than the
/// broker may have in flight, so acknowledging never waits.
const REQUEST_CAPACITY: usize = 1024;

/// Runs until aborted (the connection was changed, disabled or deleted, or the
/// server stops) or until the connection no longer exists.
pub async fn run(state: AppState, org: OrgId, id: Uuid, status: Arc<Status>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        match session(&state, org, id, &status).await {
            Ended::Gone => return,
            Ended::Failed { connected, error } => {
                tracing::warn!(org_id = %org, integration_id = %id, error = %error, "broker connection ended");
                status.disconnected(error);
                if connected {
                    backoff = MIN_BACKOFF;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
    }
}

enum Ended {
    /// The connection was deleted: nothing to do any more.
    Gone,
    /// The session failed; `connected` if it got as far as a CONNACK.
    Failed { connected: bool, error: String },
}

fn failed(connected: bool, error: impl std::fmt::Display) -> Ended {
    Ended::Failed {
        connected,
        error: error.to_string(),
    }
}

/// One connection to the broker, from reading the settings to the first error.
async fn session(state: &AppState, org: OrgId, id: Uuid, status: &Status) -> Ended {
    let uplinks = match state.stores.uplink_store(org).await {
        Ok(uplinks) => uplinks,
        Err(StoreError::NotFound) => return Ended::Gone,
        Err(e) => return failed(false, e),
    };
    let (integration, sealed) = match uplinks.integration(id).await {
        Ok(found) => found,
        Err(StoreError::NotFound) => return Ended::Gone,
        Err(e) => return failed(false, e),
    };
    let password = match sealed {
        None => None,
        Some(sealed) => {
            let context = SealedSite::BrokerPassword(org, id).context();
            match state.sealing.open(&sealed, &context) {
                Ok(plain) => Some(String::from_utf8_lossy(&plain).into_owned()),
                Err(e) => return failed(false, format!("the stored password does not open: {e}")),
            }
        }
    };
    let options = match broker::options(&integration, password) {
        Ok(options) => options,
        Err(e) => return failed(false, e),
    };
    let (client, mut events) = AsyncClient::new(options, REQUEST_CAPACITY);
    let mut connected = false;
    loop {
        let event = match events.poll().await {
            Ok(event) => event,
            Err(e) => return failed(connected, e),
        };
        match event {
            Event::Incoming(Packet::ConnAck(_)) => {
                connected = true;
                status.connected();
                // Resubscribing to a resumed session's subscription is harmless.
                if let Err(e) = client.try_subscribe(&integration.topic, QoS::AtLeastOnce) {
                    return failed(connected, e);
                }
            }
            Event::Incoming(Packet::SubAck(ack))
                if ack.return_codes.contains(&SubscribeReasonCode::Failure) =>
            {
                return failed(connected, "the broker refused the subscription");
            }
            Event::Incoming(Packet::Publish(publish)) => {
                if let Err(e) = handle(state, &uplinks, id, status, &publish.payload).await {
                    // Not acknowledged: the broker delivers it again.
                    return failed(connected, format!("storing an uplink: {e}"));
                }
                if let Err(e) = client.try_ack(&publish) {
                    return failed(connected, e);
                }
            }
            _ => {}
        }
    }
}

/// Stores one message's uplink, or drops it and counts why. An error means
/// nothing was stored and the message must not be acknowledged.
pub(crate) async fn handle(
    state: &AppState,
    uplinks: &UplinkStore,
    integration: Uuid,
    status: &Status,
    message: &[u8],
) -> Result<(), StoreError> {
    let now = state.clock.now();
    status.count(Count::Received);
    status.message_at(now);
    let uplink = match chirpstack::parse_uplink(message) {
        Ok(uplink) => uplink,
        Err(e) => {
            tracing::debug!(integration_id = %integration, error = %e, "dropped a message that is no uplink");
            status.count(Count::Malformed);
            return Ok(());
        }
    };
    let Some(device) = uplinks.device_by_dev_eui(&uplink.dev_eui).await? else {
        status.count(Count::UnknownDevEui);
        return Ok(());
    };
    let (decoded, decoder_error) = match &device.decoder {
        None => (None, None),
        Some(code) => decode(state, code, &uplink, now).await,
    };
    if decoder_error.is_some() {
        status.count(Count::DecodeError);
    }
    let event = NewUplinkEvent {
        device_id: device.device_id,
        received_at: now,
        f_port: i32::from(uplink.f_port),
        payload: uplink.payload,
        decoded,
        decoder_error,
        integration_id: integration,
        dedup_id: uplink.dedup_id,
    };
    if uplinks.store_event(&event).await? {
        status.count(Count::Stored);
        state.live.publish(
            uplinks.org_id(),
            LiveEvent::uplink(
                event.device_id,
                event.received_at,
                event.f_port,
                event.decoded.as_ref(),
                event.decoder_error.clone(),
            ),
        );
    } else {
        status.count(Count::Duplicate);
    }
    Ok(())
}

/// Runs `code` on the uplink in the decoder pool: the decoder's result, and an
/// error when it failed (its own `errors`, or why it did not finish).
async fn decode(
    state: &AppState,
    code: &str,
    uplink: &UplinkEvent,
    now: sentinel_core::Timestamp,
) -> (Option<serde_json::Value>, Option<String>) {
    let recv_time = uplink.time.unwrap_or(now).to_offset_datetime();
    match state
        .decoders
        .decode(
            Arc::from(code),
            uplink.payload.clone(),
            uplink.f_port,
            recv_time,
        )
        .await
    {
        Ok(decoded) => {
            let error = decoded.is_failure().then(|| decoded.errors.join("; "));
            let output = json!({
                "data": decoded.data,
                "warnings": decoded.warnings,
                "errors": decoded.errors,
            });
            (Some(output), error)
        }
        Err(e) => (None, Some(e.to_string())),
    }
}
