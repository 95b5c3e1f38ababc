//! MQTT packets on the wire. The codecs are rumqttc's (MQTT 3.1.1:
//! `mqttbytes::v4`; MQTT 5.0: `v5::mqttbytes::v5`); this module puts one small
//! vocabulary over both, holding only what the gateway acts on, so the session
//! code is written once for both protocol versions.
//!
//! Reading never panics and never consumes a partial packet: `Ok(None)` means
//! "wait for more bytes"; any error means the connection is closed.

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::{self as m4, v4};
use rumqttc::v5::mqttbytes::{self as m5, v5};

/// The protocol version a connection speaks, fixed by its CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1.1 (protocol level 4).
    V311,
    /// MQTT 5.0 (protocol level 5).
    V5,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V311 => "3.1.1",
            Version::V5 => "5.0",
        }
    }
}

/// A client's CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    pub version: Version,
    /// Seconds; 0 asks for no keepalive.
    pub keep_alive: u16,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// What a client may send once connected (and CONNECT, which opens the session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Connect(Connect),
    Publish {
        topic: String,
        /// 0, 1 or 2 as sent (2 is refused by the session).
        qos: u8,
        pkid: u16,
        payload: Bytes,
    },
    PubAck {
        pkid: u16,
    },
    Subscribe {
        pkid: u16,
        /// Topic filter and requested QoS.
        filters: Vec<(String, u8)>,
    },
    Unsubscribe {
        pkid: u16,
        filters: Vec<String>,
    },
    PingReq,
    Disconnect,
    /// A packet only a server sends, or one of QoS 2's exchange: a protocol
    /// error here.
    Unexpected(&'static str),
}

/// Why the bytes were not a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("malformed packet: {0}")]
    Malformed(String),
    #[error("packet larger than {0} bytes")]
    TooLarge(usize),
    #[error("unsupported protocol level {0}")]
    UnsupportedVersion(u8),
}

/// The reason codes the gateway sends, named for what they mean here; each
/// maps to the nearest MQTT 3.1.1 code where 3.1.1 has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Success,
    /// Accepted, but nothing consumes it yet (MQTT 5 0x10).
    NoMatchingSubscribers,
    Unspecified,
    Malformed,
    ProtocolError,
    NotAuthorized,
    BadCredentials,
    ServerBusy,
    ServerShuttingDown,
    KeepAliveTimeout,
    SessionTakenOver,
    PacketTooLarge,
    QuotaExceeded,
    AdministrativeAction,
    PayloadFormatInvalid,
    /// A valid message the server will never take (MQTT 5 0x83, implementation
    /// specific error); 0x80 (`Unspecified`) is kept for failures worth a retry.
    Refused,
    QosNotSupported,
    UnsupportedVersion,
}

/// What the gateway sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    ConnAck {
        reason: Reason,
        /// MQTT 5: the keepalive the server holds the client to, when it is
        /// not the one the client asked for.
        server_keep_alive: Option<u16>,
        max_packet_bytes: u32,
    },
    PubAck {
        pkid: u16,
        reason: Reason,
        /// MQTT 5: a human-readable reason string.
        detail: Option<String>,
    },
    /// One entry per filter: the granted QoS, or the refusal.
    SubAck {
        pkid: u16,
        results: Vec<Result<u8, Reason>>,
    },
    UnsubAck {
        pkid: u16,
        /// MQTT 5: per filter, whether a subscription existed.
        existed: Vec<bool>,
    },
    PingResp,
    /// A QoS 1 message to the client.
    Publish {
        topic: String,
        pkid: u16,
        payload: Bytes,
    },
    /// MQTT 5 only; on 3.1.1 the server just closes.
    Disconnect(Reason),
}

/// The MQTT fixed header: packet type byte and remaining length, if the
/// buffer holds all of it.
fn fixed_header(buf: &[u8]) -> Result<Option<(u8, usize, usize)>, WireError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let mut length: usize = 0;
    for i in 0..4 {
        let Some(&byte) = buf.get(1 + i) else {
            return Ok(None);
        };
        length |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((first, 2 + i, length)));
        }
    }
    Err(WireError::Malformed(
        "remaining length longer than 4 bytes".into(),
    ))
}

/// The protocol level a CONNECT asks for, once the whole packet is buffered.
fn connect_level(buf: &[u8], max: usize) -> Result<Option<u8>, WireError> {
    let Some((first, header, length)) = fixed_header(buf)? else {
        return Ok(None);
    };
    if first != 0x10 {
        return Err(WireError::Malformed(
            "the first packet must be CONNECT".into(),
        ));
    }
    if length > max {
        return Err(WireError::TooLarge(max));
    }
    if buf.len() < header + length {
        return Ok(None);
    }
    // Protocol name (2-byte length + "MQTT"), then the level.
    match buf.get(header..header + 7) {
        Some([0, 4, b'M', b'Q', b'T', b'T', level]) => Ok(Some(*level)),
        Some([0, 6, b'M', b'Q', b'I', b's', b'd']) => Ok(Some(3)),
        _ => Err(WireError::Malformed("not an MQTT CONNECT".into())),
    }
}

/// Reads the next complete packet from `buf`. Before CONNECT (`version` None)
/// only a CONNECT is accepted, and its level picks the codec.
pub fn read(
    buf: &mut BytesMut,
    version: Option<Version>,
    max: usize,
) -> Result<Option<Inbound>, WireError> {
    match version {
        None => match connect_level(buf, max)? {
            None => Ok(None),
            Some(4) => read_v4(buf, max),
            Some(5) => read_v5(buf, max),
            Some(level) => Err(WireError::UnsupportedVersion(level)),
        },
        Some(Version::V311) => read_v4(buf, max),
        Some(Version::V5) => read_v5(buf, max),
    }
}

fn qos4(qos: m4::QoS) -> u8 {
    qos as u8
}

fn qos5(qos: m5::QoS) -> u8 {
    qos as u8
}

/// The fixed header of the next packet once the whole packet is buffered;
/// None while it is not. Whether a frame is complete is decided here, so that
/// a codec's "more bytes needed" about a complete frame is a malformed packet,
/// not a wait that never ends.
fn complete_frame(buf: &[u8], max: usize) -> Result<Option<(u8, usize)>, WireError> {
    let Some((first, header, length)) = fixed_header(buf)? else {
        return Ok(None);
    };
    if length > max {
        return Err(WireError::TooLarge(max));
    }
    Ok((buf.len() >= header + length).then_some((first, length)))
}

fn read_v4(buf: &mut BytesMut, max: usize) -> Result<Option<Inbound>, WireError> {
    if complete_frame(buf, max)?.is_none() {
        return Ok(None);
    }
    let packet = match v4::Packet::read(buf, max) {
        Ok(packet) => packet,
        Err(m4::Error::PayloadSizeLimitExceeded(_)) => return Err(WireError::TooLarge(max)),
        Err(e) => return Err(WireError::Malformed(e.to_string())),
    };
    Ok(Some(match packet {
        v4::Packet::Connect(c) => {
            if c.protocol != m4::Protocol::V4 {
                return Err(WireError::Malformed("protocol level mismatch".into()));
            }
            let (username, password) = match c.login {
                Some(login) => (Some(login.username), Some(login.password)),
                None => (None, None),
            };
            Inbound::Connect(Connect {
                version: Version::V311,
                keep_alive: c.keep_alive,
                client_id: c.client_id,
                username,
                password,
            })
        }
        v4::Packet::Publish(p) => Inbound::Publish {
            topic: p.topic,
            qos: qos4(p.qos),
            pkid: p.pkid,
            payload: p.payload,
        },
        v4::Packet::PubAck(a) => Inbound::PubAck { pkid: a.pkid },
        v4::Packet::Subscribe(s) => Inbound::Subscribe {
            pkid: s.pkid,
            filters: s
                .filters
                .into_iter()
                .map(|f| (f.path, qos4(f.qos)))
                .collect(),
        },
        v4::Packet::Unsubscribe(u) => Inbound::Unsubscribe {
            pkid: u.pkid,
            filters: u.topics,
        },
        v4::Packet::PingReq => Inbound::PingReq,
        v4::Packet::Disconnect => Inbound::Disconnect,
        v4::Packet::ConnAck(_) => Inbound::Unexpected("CONNACK"),
        v4::Packet::PubRec(_) => Inbound::Unexpected("PUBREC"),
        v4::Packet::PubRel(_) => Inbound::Unexpected("PUBREL"),
        v4::Packet::PubComp(_) => Inbound::Unexpected("PUBCOMP"),
        v4::Packet::SubAck(_) => Inbound::Unexpected("SUBACK"),
        v4::Packet::UnsubAck(_) => Inbound::Unexpected("UNSUBACK"),
        v4::Packet::PingResp => Inbound::Unexpected("PINGRESP"),
    }))
}

fn read_v5(buf: &mut BytesMut, max: usize) -> Result<Option<Inbound>, WireError> {
    let Some((first, length)) = complete_frame(buf, max)? else {
        return Ok(None);
    };
    // rumqttc refuses a DISCONNECT without properties (remaining length 0 or
    // 1), which MQTT 5 allows and clients send.
    if first == 0xE0 && length <= 1 {
        let _ = buf.split_to(2 + length);
        return Ok(Some(Inbound::Disconnect));
    }
    let limit = u32::try_from(max).unwrap_or(u32::MAX);
    let packet = match v5::Packet::read(buf, Some(limit)) {
        Ok(packet) => packet,
        Err(m5::Error::PayloadSizeLimitExceeded { .. }) => return Err(WireError::TooLarge(max)),
        Err(e) => return Err(WireError::Malformed(e.to_string())),
    };
    Ok(Some(match packet {
        v5::Packet::Connect(c, _will, login) => {
            let (username, password) = match login {
                Some(login) => (Some(login.username), Some(login.password)),
                None => (None, None),
            };
            Inbound::Connect(Connect {
                version: Version::V5,
                keep_alive: c.keep_alive,
                client_id: c.client_id,
                username,
                password,
            })
        }
        v5::Packet::Publish(p) => {
            // Topic aliases are not offered (CONNACK says 0), so every
            // PUBLISH names its topic in UTF-8.
            let topic = String::from_utf8(p.topic.to_vec())
                .map_err(|_| WireError::Malformed("topic is not UTF-8".into()))?;
            Inbound::Publish {
                topic,
                qos: qos5(p.qos),
                pkid: p.pkid,
                payload: p.payload,
            }
        }
        v5::Packet::PubAck(a) => Inbound::PubAck { pkid: a.pkid },
        v5::Packet::Subscribe(s) => Inbound::Subscribe {
            pkid: s.pkid,
            filters: s
                .filters
                .into_iter()
                .map(|f| (f.path, qos5(f.qos)))
                .collect(),
        },
        v5::Packet::Unsubscribe(u) => Inbound::Unsubscribe {
            pkid: u.pkid,
            filters: u.filters,
        },
        v5::Packet::PingReq(_) => Inbound::PingReq,
        v5::Packet::Disconnect(_) => Inbound::Disconnect,
        v5::Packet::Auth(_) => Inbound::Unexpected("AUTH"),
        v5::Packet::ConnAck(_) => Inbound::Unexpected("CONNACK"),
        v5::Packet::PubRec(_) => Inbound::Unexpected("PUBREC"),
        v5::Packet::PubRel(_) => Inbound::Unexpected("PUBREL"),
        v5::Packet::PubComp(_) => Inbound::Unexpected("PUBCOMP"),
        v5::Packet::SubAck(_) => Inbound::Unexpected("SUBACK"),
        v5::Packet::UnsubAck(_) => Inbound::Unexpected("UNSUBACK"),
        v5::Packet::PingResp(_) => Inbound::Unexpected("PINGRESP"),
    }))
}

/// Appends `packet` to `buf` in `version`'s encoding. Packets 3.1.1 has no
/// form for (DISCONNECT from the server) write nothing.
pub fn write(packet: &Outbound, version: Version, buf: &mut BytesMut) -> Result<(), WireError> {
    let result = match version {
        Version::V311 => write_v4(packet, buf),
        Version::V5 => write_v5(packet, buf),
    };
    result.map_err(WireError::Malformed)
}

fn write_v4(packet: &Outbound, buf: &mut BytesMut) -> Result<(), String> {
    let packet = match packet {
        Outbound::ConnAck { reason, .. } => v4::Packet::ConnAck(v4::ConnAck::new(
            match reason {
                Reason::Success => v4::ConnectReturnCode::Success,
                Reason::BadCredentials => v4::ConnectReturnCode::BadUserNamePassword,
                Reason::NotAuthorized => v4::ConnectReturnCode::NotAuthorized,
                Reason::UnsupportedVersion => v4::ConnectReturnCode::RefusedProtocolVersion,
                _ => v4::ConnectReturnCode::ServiceUnavailable,
            },
            false,
        )),
        // 3.1.1 acknowledges without a reason: the session only sends
        // successful ones (refusals close the connection).
        Outbound::PubAck { pkid, .. } => v4::Packet::PubAck(v4::PubAck::new(*pkid)),
        Outbound::SubAck { pkid, results } => v4::Packet::SubAck(v4::SubAck::new(
            *pkid,
            results
                .iter()
                .map(|r| match r {
                    Ok(0) => v4::SubscribeReasonCode::Success(m4::QoS::AtMostOnce),
                    Ok(_) => v4::SubscribeReasonCode::Success(m4::QoS::AtLeastOnce),
                    Err(_) => v4::SubscribeReasonCode::Failure,
                })
                .collect(),
        )),
        Outbound::UnsubAck { pkid, .. } => v4::Packet::UnsubAck(v4::UnsubAck::new(*pkid)),
        Outbound::PingResp => v4::Packet::PingResp,
        Outbound::Publish {
            topic,
            pkid,
            payload,
        } => {
            let mut publish = v4::Publish::from_bytes(topic, m4::QoS::AtLeastOnce, payload.clone());
            publish.pkid = *pkid;
            v4::Packet::Publish(publish)
        }
        Outbound::Disconnect(_) => return Ok(()),
    };
    packet
        .write(buf, usize::MAX)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn connect_code(reason: Reason) -> v5::ConnectReturnCode {
    use v5::ConnectReturnCode as C;
    match reason {
        Reason::Success => C::Success,
        Reason::BadCredentials => C::BadUserNamePassword,
        Reason::NotAuthorized => C::NotAuthorized,
        Reason::ServerBusy => C::ServerBusy,
        Reason::QuotaExceeded => C::QuotaExceeded,
        Reason::UnsupportedVersion => C::UnsupportedProtocolVersion,
        Reason::Malformed => C::MalformedPacket,
        Reason::ProtocolError => C::ProtocolError,
        Reason::PacketTooLarge => C::PacketTooLarge,
        _ => C::UnspecifiedError,
    }
}

fn disconnect_code(reason: Reason) -> v5::DisconnectReasonCode {
    use v5::DisconnectReasonCode as D;
    match reason {
        Reason::Success => D::NormalDisconnection,
        Reason::Malformed => D::MalformedPacket,
        Reason::ProtocolError => D::ProtocolError,
        Reason::NotAuthorized | Reason::BadCredentials => D::NotAuthorized,
        Reason::ServerBusy => D::ServerBusy,
        Reason::ServerShuttingDown => D::ServerShuttingDown,
        Reason::KeepAliveTimeout => D::KeepAliveTimeout,
        Reason::SessionTakenOver => D::SessionTakenOver,
        Reason::PacketTooLarge => D::PacketTooLarge,
        Reason::QuotaExceeded => D::QuotaExceeded,
        Reason::AdministrativeAction => D::AdministrativeAction,
        Reason::PayloadFormatInvalid => D::PayloadFormatInvalid,
        Reason::QosNotSupported => D::QoSNotSupported,
        _ => D::UnspecifiedError,
    }
}

fn puback_code(reason: Reason) -> v5::PubAckReason {
    use v5::PubAckReason as P;
    match reason {
        Reason::Success => P::Success,
        Reason::NoMatchingSubscribers => P::NoMatchingSubscribers,
        Reason::NotAuthorized | Reason::BadCredentials => P::NotAuthorized,
        Reason::QuotaExceeded => P::QuotaExceeded,
        Reason::PayloadFormatInvalid => P::PayloadFormatInvalid,
        Reason::Refused => P::ImplementationSpecificError,
        _ => P::UnspecifiedError,
    }
}

fn write_v5(packet: &Outbound, buf: &mut BytesMut) -> Result<(), String> {
    let packet = match packet {
        Outbound::ConnAck {
            reason,
            server_keep_alive,
            max_packet_bytes,
        } => {
            let properties = (*reason == Reason::Success).then(|| v5::ConnAckProperties {
                session_expiry_interval: None,
                receive_max: None,
                max_qos: Some(1),
                retain_available: Some(0),
                max_packet_size: Some(*max_packet_bytes),
                assigned_client_identifier: None,
                topic_alias_max: None,
                reason_string: None,
                user_properties: Vec::new(),
                wildcard_subscription_available: None,
                subscription_identifiers_available: Some(0),
                shared_subscription_available: Some(0),
                server_keep_alive: *server_keep_alive,
                response_information: None,
                server_reference: None,
                authentication_method: None,
                authentication_data: None,
            });
            v5::Packet::ConnAck(v5::ConnAck {
                session_present: false,
                code: connect_code(*reason),
                properties,
            })
        }
        Outbound::PubAck {
            pkid,
            reason,
            detail,
        } => v5::Packet::PubAck(v5::PubAck {
            pkid: *pkid,
            reason: puback_code(*reason),
            properties: detail.as_ref().map(|text| v5::PubAckProperties {
                reason_string: Some(text.clone()),
                user_properties: Vec::new(),
            }),
        }),
        Outbound::SubAck { pkid, results } => v5::Packet::SubAck(v5::SubAck {
            pkid: *pkid,
            return_codes: results
                .iter()
                .map(|r| match r {
                    Ok(0) => v5::SubscribeReasonCode::Success(m5::QoS::AtMostOnce),
                    Ok(_) => v5::SubscribeReasonCode::Success(m5::QoS::AtLeastOnce),
                    Err(Reason::NotAuthorized) => v5::SubscribeReasonCode::NotAuthorized,
                    Err(_) => v5::SubscribeReasonCode::Unspecified,
                })
                .collect(),
            properties: None,
        }),
        Outbound::UnsubAck { pkid, existed } => v5::Packet::UnsubAck(v5::UnsubAck {
            pkid: *pkid,
            reasons: existed
                .iter()
                .map(|existed| {
                    if *existed {
                        v5::UnsubAckReason::Success
                    } else {
                        v5::UnsubAckReason::NoSubscriptionExisted
                    }
                })
                .collect(),
            properties: None,
        }),
        Outbound::PingResp => v5::Packet::PingResp(v5::PingResp),
        Outbound::Publish {
            topic,
            pkid,
            payload,
        } => v5::Packet::Publish(v5::Publish {
            dup: false,
            qos: m5::QoS::AtLeastOnce,
            retain: false,
            topic: Bytes::copy_from_slice(topic.as_bytes()),
            pkid: *pkid,
            payload: payload.clone(),
            properties: None,
        }),
        Outbound::Disconnect(reason) => {
            // Written by hand: rumqttc 0.25 declares one byte of remaining
            // length but writes two (the reason code and an empty property
            // length); this is the same with the length it means.
            buf.extend_from_slice(&[0xE0, 0x02, disconnect_code(*reason) as u8, 0x00]);
            return Ok(());
        }
    };
    packet
        .write(buf, None)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use proptest::prelude::*;

    fn connect_v4(keep_alive: u16) -> BytesMut {
        let mut connect = v4::Connect::new("client-1");
        connect.keep_alive = keep_alive;
        connect.set_login("user", "secret");
        let mut buf = BytesMut::new();
        v4::Packet::Connect(connect)
            .write(&mut buf, 1 << 20)
            .unwrap();
        buf
    }

    fn connect_v5() -> BytesMut {
        let connect = v5::Connect {
            keep_alive: 30,
            client_id: "client-5".into(),
            clean_start: true,
            properties: None,
        };
        let login = v5::Login::new("user", "secret");
        let mut buf = BytesMut::new();
        v5::Packet::Connect(connect, None, Some(login))
            .write(&mut buf, None)
            .unwrap();
        buf
    }

    #[test]
    fn the_connect_picks_the_protocol_version() {
        let mut buf = connect_v4(60);
        let Some(Inbound::Connect(c)) = read(&mut buf, None, 4096).unwrap() else {
            panic!("not a connect");
        };
        assert_eq!(c.version, Version::V311);
        assert_eq!(c.keep_alive, 60);
        assert_eq!(c.username.as_deref(), Some("user"));
        assert_eq!(c.password.as_deref(), Some("secret"));
        assert!(buf.is_empty());

        let mut buf = connect_v5();
        let Some(Inbound::Connect(c)) = read(&mut buf, None, 4096).unwrap() else {
            panic!("not a connect");
        };
        assert_eq!(c.version, Version::V5);
        assert_eq!(c.client_id, "client-5");
    }

    #[test]
    fn partial_packets_wait_and_consume_nothing() {
        let full = connect_v4(10);
        for cut in 0..full.len() {
            let mut buf = BytesMut::from(&full[..cut]);
            assert_eq!(read(&mut buf, None, 4096).unwrap(), None, "cut at {cut}");
            assert_eq!(buf.len(), cut);
        }
    }

    #[test]
    fn anything_but_connect_first_or_another_level_is_refused() {
        let mut ping = BytesMut::from(&[0xC0u8, 0x00][..]);
        assert!(read(&mut ping, None, 4096).is_err());
        let mut v3 = connect_v4(10);
        v3[8] = 3;
        assert_eq!(
            read(&mut v3, None, 4096),
            Err(WireError::UnsupportedVersion(3))
        );
        let mut big = connect_v4(10);
        assert_eq!(read(&mut big, None, 8), Err(WireError::TooLarge(8)));
    }

    #[test]
    fn the_short_mqtt5_disconnect_is_read() {
        let mut buf = BytesMut::from(&[0xE0u8, 0x00, 0xE0, 0x01, 0x04, 0xC0, 0x00][..]);
        for _ in 0..2 {
            assert_eq!(
                read(&mut buf, Some(Version::V5), 4096).unwrap(),
                Some(Inbound::Disconnect)
            );
        }
        assert_eq!(
            read(&mut buf, Some(Version::V5), 4096).unwrap(),
            Some(Inbound::PingReq)
        );
    }

    #[test]
    fn written_packets_read_back_in_both_versions() {
        for version in [Version::V311, Version::V5] {
            let mut buf = BytesMut::new();
            write(
                &Outbound::Publish {
                    topic: "sentinel/a/devices/b/commands".into(),
                    pkid: 7,
                    payload: Bytes::from_static(b"{}"),
                },
                version,
                &mut buf,
            )
            .unwrap();
            let read_back = read(&mut buf, Some(version), 4096).unwrap();
            assert_eq!(
                read_back,
                Some(Inbound::Publish {
                    topic: "sentinel/a/devices/b/commands".into(),
                    qos: 1,
                    pkid: 7,
                    payload: Bytes::from_static(b"{}"),
                })
            );
        }
    }

    #[test]
    fn an_mqtt5_disconnect_carries_its_reason() {
        let mut buf = BytesMut::new();
        write(
            &Outbound::Disconnect(Reason::SessionTakenOver),
            Version::V5,
            &mut buf,
        )
        .unwrap();
        assert_eq!(&buf[..], &[0xE0, 0x02, 0x8E, 0x00]);
        let packet = v5::Packet::read(&mut buf, None).unwrap();
        let v5::Packet::Disconnect(d) = packet else {
            panic!("{packet:?}");
        };
        assert_eq!(d.reason_code, v5::DisconnectReasonCode::SessionTakenOver);
        assert!(buf.is_empty());
        // 3.1.1 has no server DISCONNECT: nothing is written.
        write(
            &Outbound::Disconnect(Reason::SessionTakenOver),
            Version::V311,
            &mut buf,
        )
        .unwrap();
        assert!(buf.is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Whatever arrives, reading returns a packet, "more bytes", or an
        /// error — never a panic — and never grows the buffer.
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            version in prop_oneof![Just(None), Just(Some(Version::V311)), Just(Some(Version::V5))],
        ) {
            let mut buf = BytesMut::from(&bytes[..]);
            for _ in 0..64 {
                let before = buf.len();
                match read(&mut buf, version, 1024) {
                    Ok(Some(_)) => prop_assert!(buf.len() < before),
                    Ok(None) | Err(_) => break,
                }
            }
        }

        /// Valid packets with corrupted bytes: the same promise, on inputs
        /// that get past the fixed header.
        #[test]
        fn corrupted_packets_never_panic(
            flips in proptest::collection::vec((0usize..64, any::<u8>()), 1..6),
            v5 in any::<bool>(),
        ) {
            let mut base = if v5 { connect_v5() } else { connect_v4(30) };
            let mut extra = BytesMut::new();
            let version = if v5 { Version::V5 } else { Version::V311 };
            write(&Outbound::Publish { topic: "t/x".into(), pkid: 3, payload: Bytes::from_static(b"xyz") }, version, &mut extra).unwrap();
            base.extend_from_slice(&extra);
            for (at, value) in flips {
                let len = base.len();
                base[at % len] = value;
            }
            let mut buf = base;
            let mut connected = None;
            for _ in 0..8 {
                match read(&mut buf, connected, 1024) {
                    Ok(Some(Inbound::Connect(c))) => connected = Some(c.version),
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}
