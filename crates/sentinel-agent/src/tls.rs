//! The TLS configuration the agent connects with: the pinned CA alone when enrollment was
//! given one, else Mozilla's public roots; ring for the cryptography.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// No certificate was found in the PEM text.
    #[error("the CA file holds no PEM certificate")]
    NoCertificate,
    /// A certificate could not be parsed or used as a root.
    #[error("the CA file holds an unusable certificate: {0}")]
    BadCertificate(String),
    /// rustls refused the configuration.
    #[error("TLS setup failed: {0}")]
    Setup(#[from] rustls::Error),
}

/// What the agent trusts to vouch for its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust<'a> {
    /// Only the CA certificates in this PEM text.
    Pinned(&'a [u8]),
    /// The public WebPKI roots.
    PublicRoots,
}

/// A client configuration trusting `trust`, offering HTTP/1.1 (see [`crate::api`] for
/// why not HTTP/2).
pub fn client_config(trust: Trust<'_>) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match trust {
        Trust::Pinned(pem) => {
            for certificate in CertificateDer::pem_slice_iter(pem) {
                let certificate =
                    certificate.map_err(|e| TlsError::BadCertificate(e.to_string()))?;
                roots
                    .add(certificate)
                    .map_err(|e| TlsError::BadCertificate(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(TlsError::NoCertificate);
            }
        }
        Trust::PublicRoots => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
