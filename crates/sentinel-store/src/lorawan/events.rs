//! Stored uplinks (device events), read by members a page at a time, newest first.

use sentinel_core::Timestamp;
use uuid::Uuid;

use crate::StoreError;
use crate::backend::with_tx;
use crate::devices::device_row;
use crate::tenant::TenantStore;

/// One uplink as stored: the raw payload always, the decoder's output or its
/// error when the device's profile has a decoder.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceEvent {
    /// UUIDv7: events order by it.
    pub id: Uuid,
    pub device_id: Uuid,
    pub received_at: Timestamp,
    pub f_port: i32,
    pub payload: Vec<u8>,
    /// The decoder's result (`{data, warnings, errors}`).
    pub decoded: Option<serde_json::Value>,
    pub decoder_error: Option<String>,
    /// The broker connection it came through.
    pub integration_id: Option<Uuid>,
}

/// Where the next (older) page starts: events before this id.
pub type EventCursor = Uuid;

#[derive(sqlx::FromRow)]
struct EventRow {
    id: Uuid,
    device_id: Uuid,
    received_at: Timestamp,
    f_port: i32,
    payload: Vec<u8>,
    decoded: Option<String>,
    decoder_error: Option<String>,
    integration_id: Option<Uuid>,
}

impl TenantStore {
    /// Up to `limit` of a device's events, newest first, older than `before`
    /// when given; `NotFound` for an unknown device.
    pub async fn device_events(
        &self,
        device: Uuid,
        before: Option<EventCursor>,
        limit: i64,
    ) -> Result<Vec<DeviceEvent>, StoreError> {
        let mut tx = self.read().await?;
        if device_row(&mut tx, device).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        // The largest UUID is the cursor of the first page.
        let before = before.unwrap_or(Uuid::max());
        let rows: Vec<EventRow> = with_tx!(&mut tx, c =>
            sqlx::query_as(
                "SELECT id, device_id, received_at, f_port, payload, decoded, decoder_error, integration_id
                 FROM device_events WHERE device_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
            )
            .bind(device)
            .bind(before)
            .bind(limit)
            .fetch_all(c)
            .await
        )?;
        tx.commit().await?;
        rows.into_iter()
            .map(|row| {
                let decoded = row
                    .decoded
                    .map(|text| serde_json::from_str(&text))
                    .transpose()
                    .map_err(|e| StoreError::Corrupt(format!("device event {}: {e}", row.id)))?;
                Ok(DeviceEvent {
                    id: row.id,
                    device_id: row.device_id,
                    received_at: row.received_at,
                    f_port: row.f_port,
                    payload: row.payload,
                    decoded,
                    decoder_error: row.decoder_error,
                    integration_id: row.integration_id,
                })
            })
            .collect()
    }
}
