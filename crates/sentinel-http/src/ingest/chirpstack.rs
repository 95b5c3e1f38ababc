//! ChirpStack v4 application events, the one payload format of broker
//! connections: an uplink event is JSON with `deviceInfo.devEui` (hex),
//! `data` (base64, absent when empty), `fPort` (absent when 0), and optionally
//! `time` (RFC 3339) and `deduplicationId`. Other fields are ignored.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sentinel_core::Timestamp;
use serde::Deserialize;

/// The name of this format in an integration's `format`.
pub const FORMAT: &str = "chirpstack_v4";

/// One uplink, as read from an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UplinkEvent {
    /// 16 lower-case hex digits.
    pub dev_eui: String,
    pub f_port: u8,
    pub payload: Vec<u8>,
    /// When the network server received it, if it says.
    pub time: Option<Timestamp>,
    /// The network server's id of the uplink, the same on every redelivery.
    pub dedup_id: Option<String>,
}

/// Why an event is not an uplink this worker can store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("not a ChirpStack event: {0}")]
    Malformed(String),
    #[error("invalid DevEUI (16 hex digits expected)")]
    DevEui,
    #[error("data is not base64")]
    Data,
    #[error("fPort must be 0-255")]
    FPort,
    #[error("time is not RFC 3339")]
    Time,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    device_info: DeviceInfo,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    f_port: Option<i64>,
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    deduplication_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeviceInfo {
    dev_eui: String,
}

/// A DevEUI in its stored form (lower-case), or None if it is not 16 hex digits.
pub fn normalize_dev_eui(text: &str) -> Option<String> {
    (text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| text.to_ascii_lowercase())
}

/// Parses one uplink event.
pub fn parse_uplink(json: &[u8]) -> Result<UplinkEvent, EventError> {
    let event: Event =
        serde_json::from_slice(json).map_err(|e| EventError::Malformed(e.to_string()))?;
    let dev_eui = normalize_dev_eui(&event.device_info.dev_eui).ok_or(EventError::DevEui)?;
    let payload = match event.data.as_deref() {
        None | Some("") => Vec::new(),
        Some(data) => STANDARD.decode(data).map_err(|_| EventError::Data)?,
    };
    let f_port = u8::try_from(event.f_port.unwrap_or(0)).map_err(|_| EventError::FPort)?;
    let time = event
        .time
        .as_deref()
        .map(Timestamp::parse_rfc3339)
        .transpose()
        .map_err(|_| EventError::Time)?;
    let dedup_id = event
        .deduplication_id
        .filter(|id| !id.is_empty())
        .map(|id| id.chars().take(64).collect());
    Ok(UplinkEvent {
        dev_eui,
        f_port,
        payload,
        time,
        dedup_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPLINK: &str = r#"{
        "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        "time": "2023-01-19T09:31:10.123456+00:00",
        "deviceInfo": {
            "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
            "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97",
            "deviceProfileName": "E77",
            "deviceName": "dev1",
            "devEui": "0101010101010101",
            "tags": {}
        },
        "devAddr": "00189440",
        "adr": true,
        "dr": 1,
        "fCnt": 4,
        "fPort": 2,
        "confirmed": false,
        "data": "AQID",
        "rxInfo": [{"gatewayId": "0016c001f153a14c", "rssi": -30}],
        "txInfo": {"frequency": 868100000}
    }"#;

    #[test]
    fn reads_a_chirpstack_v4_uplink() {
        let event = parse_uplink(UPLINK.as_bytes()).unwrap();
        assert_eq!(event.dev_eui, "0101010101010101");
        assert_eq!(event.f_port, 2);
        assert_eq!(event.payload, vec![1, 2, 3]);
        assert_eq!(
            event.time.unwrap().to_rfc3339(),
            Timestamp::parse_rfc3339("2023-01-19T09:31:10.123456Z")
                .unwrap()
                .to_rfc3339()
        );
        assert_eq!(
            event.dedup_id.as_deref(),
            Some("3ac7e3c4-4401-4b8d-9386-a5c902f9202d")
        );
    }

    #[test]
    fn absent_fields_mean_what_chirpstack_means() {
        let event = parse_uplink(br#"{"deviceInfo": {"devEui": "AABBCCDDEEFF0011"}}"#).unwrap();
        assert_eq!(event.dev_eui, "aabbccddeeff0011");
        assert_eq!(event.f_port, 0);
        assert!(event.payload.is_empty());
        assert_eq!(event.time, None);
        assert_eq!(event.dedup_id, None);
    }

    #[test]
    fn refuses_what_is_not_an_uplink() {
        type Expected = fn(&EventError) -> bool;
        let cases: [(&[u8], Expected); 8] = [
            (b"not json", |e| matches!(e, EventError::Malformed(_))),
            (b"[]", |e| matches!(e, EventError::Malformed(_))),
            (br#"{"data": "AQID"}"#, |e| {
                matches!(e, EventError::Malformed(_))
            }),
            (br#"{"deviceInfo": {"devEui": "0102"}}"#, |e| {
                *e == EventError::DevEui
            }),
            (br#"{"deviceInfo": {"devEui": "zz01010101010101"}}"#, |e| {
                *e == EventError::DevEui
            }),
            (
                br#"{"deviceInfo": {"devEui": "0101010101010101"}, "data": "***"}"#,
                |e| *e == EventError::Data,
            ),
            (
                br#"{"deviceInfo": {"devEui": "0101010101010101"}, "fPort": 256}"#,
                |e| *e == EventError::FPort,
            ),
            (
                br#"{"deviceInfo": {"devEui": "0101010101010101"}, "time": "yesterday"}"#,
                |e| *e == EventError::Time,
            ),
        ];
        for (json, expected) in cases {
            let error = parse_uplink(json).unwrap_err();
            assert!(
                expected(&error),
                "{}: {error:?}",
                String::from_utf8_lossy(json)
            );
        }
    }

    #[test]
    fn dev_eui_must_be_sixteen_hex_digits() {
        assert_eq!(
            normalize_dev_eui("0123456789ABCDEF").as_deref(),
            Some("0123456789abcdef")
        );
        for bad in [
            "",
            "0123456789abcde",
            "0123456789abcdef0",
            "0123456789abcdeg",
            "01234567 9abcdef",
        ] {
            assert_eq!(normalize_dev_eui(bad), None, "{bad:?}");
        }
    }
}
