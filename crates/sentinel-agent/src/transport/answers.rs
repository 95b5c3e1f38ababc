//! What the device gateway's MQTT answers mean to the agent: a PUBACK's reason code, a
//! refused CONNECT and a dropped connection, sorted into the same [`ApiError`] kinds as
//! HTTPS statuses, so that every loop handles both transports alike.
//!
//! | gateway answer | HTTPS equivalent | [`ApiError`] |
//! |---|---|---|
//! | PUBACK 0x00 success, 0x10 no matching subscribers | 2xx | taken ([`Taken`]) |
//! | PUBACK 0x97 quota exceeded | 429 | `RateLimited` |
//! | PUBACK 0x80 unspecified error, 0x91 packet id in use | 5xx | `Unavailable` |
//! | PUBACK 0x99, 0x87, 0x83, 0x90 | other 4xx | `Refused` |
//! | CONNACK bad user name or password, not authorized, banned | 401 | `Unauthorized` |
//! | CONNACK quota exceeded, connection rate exceeded | 429 | `RateLimited` |
//! | anything else, a DISCONNECT, a network error | network error | `Unavailable` |

use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, PubAckReason};
use rumqttc::v5::{ConnectionError, StateError};

use crate::api::ApiError;

/// How the gateway took a publish it acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// 0x00: stored (or, for an inventory digest, one the server already holds).
    Stored,
    /// 0x10 "no matching subscribers": for an inventory digest, one the server does
    /// not hold (send the full list).
    Unmatched,
}

/// The code and MQTT 5 name of a PUBACK reason.
fn code(reason: PubAckReason) -> (u8, &'static str) {
    match reason {
        PubAckReason::Success => (0x00, "success"),
        PubAckReason::NoMatchingSubscribers => (0x10, "no matching subscribers"),
        PubAckReason::UnspecifiedError => (0x80, "unspecified error"),
        PubAckReason::ImplementationSpecificError => (0x83, "implementation specific error"),
        PubAckReason::NotAuthorized => (0x87, "not authorized"),
        PubAckReason::TopicNameInvalid => (0x90, "topic name invalid"),
        PubAckReason::PacketIdentifierInUse => (0x91, "packet identifier in use"),
        PubAckReason::QuotaExceeded => (0x97, "quota exceeded"),
        PubAckReason::PayloadFormatInvalid => (0x99, "payload format invalid"),
    }
}

/// What a PUBACK with `reason` (and the gateway's reason string, `detail`) means.
pub fn acknowledgement(reason: PubAckReason, detail: Option<&str>) -> Result<Taken, ApiError> {
    let (number, name) = code(reason);
    let detail = detail.unwrap_or(name).to_owned();
    match reason {
        PubAckReason::Success => Ok(Taken::Stored),
        PubAckReason::NoMatchingSubscribers => Ok(Taken::Unmatched),
        PubAckReason::QuotaExceeded => Err(ApiError::RateLimited { retry_after: None }),
        PubAckReason::UnspecifiedError | PubAckReason::PacketIdentifierInUse => {
            Err(ApiError::Unavailable(format!(
                "the gateway did not take it ({number:#04x}): {detail}"
            )))
        }
        PubAckReason::PayloadFormatInvalid
        | PubAckReason::NotAuthorized
        | PubAckReason::ImplementationSpecificError
        | PubAckReason::TopicNameInvalid => Err(ApiError::Refused {
            answer: format!("PUBACK {number:#04x} {name}"),
            detail,
        }),
    }
}

/// What a failed connection (or one the gateway ended) means.
pub fn connection_failure(error: &ConnectionError) -> ApiError {
    match error {
        ConnectionError::ConnectionRefused(code) => match code {
            ConnectReturnCode::BadUserNamePassword
            | ConnectReturnCode::NotAuthorized
            | ConnectReturnCode::Banned => ApiError::Unauthorized,
            ConnectReturnCode::QuotaExceeded | ConnectReturnCode::ConnectionRateExceeded => {
                ApiError::RateLimited { retry_after: None }
            }
            other => {
                ApiError::Unavailable(format!("the gateway refused the connection: {other:?}"))
            }
        },
        ConnectionError::MqttState(StateError::ServerDisconnect {
            reason_code,
            reason_string,
        }) => ApiError::Unavailable(format!(
            "the gateway ended the connection: {reason_code:?}{}",
            reason_string
                .as_deref()
                .map(|text| format!(" ({text})"))
                .unwrap_or_default()
        )),
        other => ApiError::Unavailable(format!("MQTT connection: {other}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use rumqttc::v5::mqttbytes::v5::DisconnectReasonCode;

    use super::*;

    #[test]
    fn a_puback_is_taken_refused_retried_or_slowed_as_its_http_equivalent() {
        assert_eq!(
            acknowledgement(PubAckReason::Success, None).unwrap(),
            Taken::Stored
        );
        assert_eq!(
            acknowledgement(PubAckReason::NoMatchingSubscribers, None).unwrap(),
            Taken::Unmatched
        );
        // Refusals: sending the same message again would be refused again.
        for (reason, code) in [
            (PubAckReason::PayloadFormatInvalid, "0x99"),
            (PubAckReason::NotAuthorized, "0x87"),
            (PubAckReason::ImplementationSpecificError, "0x83"),
            (PubAckReason::TopicNameInvalid, "0x90"),
        ] {
            match acknowledgement(reason, Some("the message does not fit its topic")) {
                Err(ApiError::Refused { answer, detail }) => {
                    assert!(answer.starts_with(&format!("PUBACK {code}")), "{answer}");
                    assert_eq!(detail, "the message does not fit its topic");
                }
                other => panic!("{reason:?}: {other:?}"),
            }
        }
        // Without a reason string, the code's name says why.
        match acknowledgement(PubAckReason::PayloadFormatInvalid, None) {
            Err(ApiError::Refused { detail, .. }) => assert_eq!(detail, "payload format invalid"),
            other => panic!("{other:?}"),
        }
        // Worth sending again later.
        for reason in [
            PubAckReason::UnspecifiedError,
            PubAckReason::PacketIdentifierInUse,
        ] {
            assert!(
                matches!(
                    acknowledgement(reason, Some("internal error")),
                    Err(ApiError::Unavailable(text)) if text.contains("internal error")
                ),
                "{reason:?}"
            );
        }
        assert!(matches!(
            acknowledgement(PubAckReason::QuotaExceeded, None),
            Err(ApiError::RateLimited { retry_after: None })
        ));
    }

    #[test]
    fn a_connect_refused_for_its_credentials_is_a_revoked_token() {
        for code in [
            ConnectReturnCode::BadUserNamePassword,
            ConnectReturnCode::NotAuthorized,
            ConnectReturnCode::Banned,
        ] {
            let error = connection_failure(&ConnectionError::ConnectionRefused(code));
            assert!(matches!(error, ApiError::Unauthorized), "{code:?}");
        }
        let limited = connection_failure(&ConnectionError::ConnectionRefused(
            ConnectReturnCode::QuotaExceeded,
        ));
        assert!(matches!(
            limited,
            ApiError::RateLimited { retry_after: None }
        ));
        let busy = connection_failure(&ConnectionError::ConnectionRefused(
            ConnectReturnCode::ServerBusy,
        ));
        assert!(matches!(busy, ApiError::Unavailable(_)));
    }

    #[test]
    fn a_dropped_connection_is_worth_trying_again() {
        // Revocation ends the session (0x98); the next CONNECT is what gets refused.
        let ended = connection_failure(&ConnectionError::MqttState(StateError::ServerDisconnect {
            reason_code: DisconnectReasonCode::AdministrativeAction,
            reason_string: Some("revoked".into()),
        }));
        match ended {
            ApiError::Unavailable(text) => {
                assert!(text.contains("AdministrativeAction (revoked)"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        let io = connection_failure(&ConnectionError::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert!(matches!(io, ApiError::Unavailable(_)));
    }
}
