//! The MQTT client options of a broker connection: a persistent session
//! (`clean_session = false`, a client id fixed per connection) so the broker
//! keeps QoS 1 messages that were not acknowledged, manual acknowledgements, and
//! TLS through rustls with the ring provider (the broker's CA, or the public
//! roots).

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sentinel_store::Integration;
use uuid::Uuid;

/// Largest packet accepted from the broker: events are a few KiB.
const MAX_PACKET_BYTES: usize = 256 * 1024;
/// QoS 1 messages the broker may have in flight to us.
const INFLIGHT: u16 = 100;

/// The client id: the same on every connection, which is what makes the
/// broker resume the session.
pub fn client_id(integration: Uuid) -> String {
    format!("sentinel-{}", integration.simple())
}

/// The options to connect to `integration`'s broker with `password`.
pub fn options(integration: &Integration, password: Option<String>) -> Result<MqttOptions, String> {
    let port = u16::try_from(integration.port).map_err(|_| "port out of range".to_owned())?;
    let mut options = MqttOptions::new(client_id(integration.id), &integration.host, port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_inflight(INFLIGHT)
        .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
    if let Some(username) = &integration.username {
        options.set_credentials(username, password.unwrap_or_default());
    }
    if integration.tls {
        let config = client_config(integration.ca_pem.as_deref())?;
        options.set_transport(Transport::Tls(TlsConfiguration::Rustls(Arc::new(config))));
    }
    Ok(options)
}

/// Parses PEM certificates; an error when there are none or one is damaged.
pub fn certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("CA certificate PEM: {e}"))?;
    if certs.is_empty() {
        return Err("CA certificate PEM holds no certificate".into());
    }
    Ok(certs)
}

fn client_config(ca_pem: Option<&str>) -> Result<rustls::ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for cert in certificates(pem)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("CA certificate: {e}"))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn integration(tls: bool, ca_pem: Option<&str>) -> Integration {
        Integration {
            id: Uuid::nil(),
            name: "ChirpStack".into(),
            host: "broker.example".into(),
            port: 8883,
            tls,
            ca_pem: ca_pem.map(str::to_owned),
            username: Some("sentinel".into()),
            has_password: true,
            topic: "application/#".into(),
            format: "chirpstack_v4".into(),
            enabled: true,
            created_at: sentinel_core::Timestamp::from_unix_seconds(0),
            updated_at: sentinel_core::Timestamp::from_unix_seconds(0),
        }
    }

    #[test]
    fn sessions_persist_and_acks_are_manual() {
        let options = options(&integration(false, None), Some("secret".into())).unwrap();
        assert!(!options.clean_session());
        assert!(options.manual_acks());
        assert_eq!(options.client_id(), client_id(Uuid::nil()));
        assert_eq!(
            options.broker_address(),
            ("broker.example".to_owned(), 8883)
        );
        let login = options.credentials().unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("sentinel", "secret")
        );
        assert!(matches!(options.transport(), Transport::Tcp));
    }

    #[test]
    fn tls_uses_rustls_with_public_roots_or_refuses_a_damaged_ca() {
        let options = options(&integration(true, None), None).unwrap();
        assert!(matches!(
            options.transport(),
            Transport::Tls(TlsConfiguration::Rustls(_))
        ));
        assert!(options_error("not a certificate").contains("no certificate"));
        assert!(
            certificates("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n").is_err()
        );
    }

    fn options_error(pem: &str) -> String {
        options(&integration(true, Some(pem)), None).unwrap_err()
    }
}
