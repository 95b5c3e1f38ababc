//! TLS for the HTTPS listener: rustls with the ring provider, TLS 1.2 and 1.3.
//!
//! Without `--tls-cert`, Sentinel runs its own small CA: `tls/ca.pem` (valid ten
//! years; agents and browsers can trust it) issues `tls/server.pem` for
//! `localhost`, the loopback addresses, the listen address and the configured host
//! names. The server certificate is reissued when those names change or when it
//! is within 30 days of expiry; the CA stays.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints,
};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sentinel_core::Timestamp;
use serde::{Deserialize, Serialize};

use crate::StartError;
use crate::config::Tls;
use crate::data_dir::{DataDir, write_private};

/// The listener's TLS configuration, and the CA certificate clients should trust
/// (when Sentinel issued the server certificate itself).
#[derive(Debug)]
pub struct TlsSetup {
    pub server_config: Arc<ServerConfig>,
    pub ca_cert_pem: Option<String>,
}

const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 86_400);
const SERVER_VALIDITY: Duration = Duration::from_secs(397 * 86_400);
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);

/// What was issued, to decide whether the server certificate is still right.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct ServerCertInfo {
    names: BTreeSet<String>,
    not_after_unix: i64,
}

/// Prepares TLS for `tls` (None when serving plain HTTP behind a proxy).
pub fn prepare(
    tls: &Tls,
    data_dir: &DataDir,
    listen: SocketAddr,
    now: Timestamp,
) -> Result<Option<TlsSetup>, StartError> {
    match tls {
        Tls::BehindProxy => Ok(None),
        Tls::Files { cert, key } => {
            let chain = read_chain(cert)?;
            let key = read_key(key)?;
            Ok(Some(TlsSetup {
                server_config: server_config(chain, key)?,
                ca_cert_pem: None,
            }))
        }
        Tls::Generated { hostnames } => {
            let dir = data_dir.tls_dir();
            create_private_dir(&dir)?;
            let names = certificate_names(hostnames, listen);
            let (ca_pem, ca_key) = ensure_ca(&dir, &names, now)?;
            ensure_server_cert(&dir, &ca_pem, ca_key, &names, now)?;
            let chain = read_chain(&dir.join("server.pem"))?;
            let key = read_key(&dir.join("server.key"))?;
            Ok(Some(TlsSetup {
                server_config: server_config(chain, key)?,
                ca_cert_pem: Some(ca_pem),
            }))
        }
    }
}

/// The names the generated certificate covers.
fn certificate_names(hostnames: &[String], listen: SocketAddr) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = ["localhost", "127.0.0.1", "::1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if !listen.ip().is_unspecified() {
        names.insert(listen.ip().to_string());
    }
    names.extend(hostnames.iter().map(|h| h.to_ascii_lowercase()));
    names
}

fn tls_error(what: &str) -> impl Fn(rcgen::Error) -> StartError + '_ {
    move |e| StartError::Tls(format!("{what}: {e}"))
}

/// What the CA may sign for (`tls/ca.json`).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct CaInfo {
    names: BTreeSet<String>,
}

/// Loads the CA, creating it on first start — and again when the server's names
/// are no longer all within the names the CA is constrained to.
///
/// The CA carries X.509 name constraints: it can only vouch for this server's
/// names. Whoever trusts `ca.pem` (browsers, agents) trusts it for nothing else,
/// even if `ca.key` leaks with a backup of the data directory.
fn ensure_ca(
    dir: &Path,
    names: &BTreeSet<String>,
    now: Timestamp,
) -> Result<(String, KeyPair), StartError> {
    let (cert_path, key_path, info_path) =
        (dir.join("ca.pem"), dir.join("ca.key"), dir.join("ca.json"));
    let covered = std::fs::read(&info_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<CaInfo>(&b).ok())
        .is_some_and(|info| names.is_subset(&info.names));
    if covered && cert_path.exists() && key_path.exists() {
        let pem = read_text(&cert_path)?;
        let key =
            KeyPair::from_pem(&read_text(&key_path)?).map_err(tls_error("reading the CA key"))?;
        return Ok((pem, key));
    }
    if cert_path.exists() {
        tracing::warn!(
            path = %cert_path.display(),
            "the server's names changed beyond what the local CA may sign; issued a new CA, which clients must trust instead"
        );
    }
    let key = KeyPair::generate().map_err(tls_error("generating the CA key"))?;
    let mut params =
        CertificateParams::new(Vec::<String>::new()).map_err(tls_error("CA parameters"))?;
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "Sentinel");
    name.push(
        DnType::CommonName,
        format!(
            "Sentinel local CA {}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ),
    );
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: names
            .iter()
            .map(|n| match n.parse::<IpAddr>() {
                Ok(ip) => GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(
                    ip,
                    if ip.is_ipv4() { 32 } else { 128 },
                )),
                Err(_) => GeneralSubtree::DnsName(n.clone()),
            })
            .collect(),
        excluded_subtrees: Vec::new(),
    });
    params.not_before = now.minus(Duration::from_secs(3600)).to_offset_datetime();
    params.not_after = now.plus(CA_VALIDITY).to_offset_datetime();
    let cert = params
        .self_signed(&key)
        .map_err(tls_error("signing the CA certificate"))?;
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    write_private(&cert_path, cert.pem().as_bytes())?;
    let info = CaInfo {
        names: names.clone(),
    };
    write_private(
        &info_path,
        &serde_json::to_vec_pretty(&info).unwrap_or_default(),
    )?;
    // A new CA means the server certificate must be reissued by it.
    let _ = std::fs::remove_file(dir.join("server.json"));
    tracing::info!(path = %cert_path.display(), names = ?names, "created a local certificate authority");
    Ok((cert.pem(), key))
}

/// Issues the server certificate unless the current one covers `names` and is not
/// about to expire.
fn ensure_server_cert(
    dir: &Path,
    ca_pem: &str,
    ca_key: KeyPair,
    names: &BTreeSet<String>,
    now: Timestamp,
) -> Result<(), StartError> {
    let (cert_path, key_path, info_path) = (
        dir.join("server.pem"),
        dir.join("server.key"),
        dir.join("server.json"),
    );
    let current: Option<ServerCertInfo> = std::fs::read(&info_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let still_good = current.is_some_and(|info| {
        info.names == *names
            && Timestamp::from_unix_seconds(info.not_after_unix) > now.plus(RENEW_BEFORE)
    }) && cert_path.exists()
        && key_path.exists();
    if still_good {
        return Ok(());
    }
    let issuer = Issuer::from_ca_cert_pem(ca_pem, ca_key)
        .map_err(tls_error("reading the CA certificate"))?;
    let key = KeyPair::generate().map_err(tls_error("generating the server key"))?;
    let mut params = CertificateParams::new(names.iter().cloned().collect::<Vec<_>>())
        .map_err(tls_error("server certificate names"))?;
    params
        .distinguished_name
        .push(DnType::CommonName, "Sentinel server");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    let not_after = now.plus(SERVER_VALIDITY);
    params.not_before = now.minus(Duration::from_secs(3600)).to_offset_datetime();
    params.not_after = not_after.to_offset_datetime();
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(tls_error("signing the server certificate"))?;
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    write_private(&cert_path, cert.pem().as_bytes())?;
    let info = ServerCertInfo {
        names: names.clone(),
        not_after_unix: not_after.unix_seconds(),
    };
    write_private(
        &info_path,
        &serde_json::to_vec_pretty(&info).unwrap_or_default(),
    )?;
    tracing::info!(names = ?names, "issued a server certificate");
    Ok(())
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, StartError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| StartError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| StartError::Tls(format!("certificate and key do not fit: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_text(path: &Path) -> Result<String, StartError> {
    std::fs::read_to_string(path)
        .map_err(|e| StartError::io(format!("reading {}", path.display()), e))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, StartError> {
    let chain: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            StartError::Tls(format!("reading certificates from {}: {e}", path.display()))
        })?;
    if chain.is_empty() {
        return Err(StartError::Tls(format!(
            "{} holds no certificate",
            path.display()
        )));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, StartError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| StartError::Tls(format!("reading the private key {}: {e}", path.display())))
}

fn create_private_dir(dir: &Path) -> Result<(), StartError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(|e| StartError::io(format!("creating {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_unix_seconds(1_790_000_000)
    }

    #[test]
    fn generated_material_is_reused_and_reissued_when_names_change() {
        let parent = tempfile::tempdir().unwrap();
        let dir = DataDir::open(&parent.path().join("d")).unwrap();
        let listen: SocketAddr = "127.0.0.1:8443".parse().unwrap();
        let tls = Tls::Generated { hostnames: vec![] };
        let first = prepare(&tls, &dir, listen, now()).unwrap().unwrap();
        let server_pem = std::fs::read(dir.tls_dir().join("server.pem")).unwrap();
        let again = prepare(&tls, &dir, listen, now()).unwrap().unwrap();
        assert_eq!(first.ca_cert_pem, again.ca_cert_pem, "the CA is kept");
        assert_eq!(
            server_pem,
            std::fs::read(dir.tls_dir().join("server.pem")).unwrap(),
            "nothing to reissue"
        );

        let named = Tls::Generated {
            hostnames: vec!["sentinel.example.org".into()],
        };
        let renamed = prepare(&named, &dir, listen, now()).unwrap().unwrap();
        assert_ne!(
            first.ca_cert_pem, renamed.ca_cert_pem,
            "the CA may only sign the names it was made for"
        );
        assert_ne!(
            server_pem,
            std::fs::read(dir.tls_dir().join("server.pem")).unwrap(),
            "new names, new certificate"
        );

        let later = now()
            .plus(SERVER_VALIDITY)
            .minus(Duration::from_secs(86_400));
        let before = std::fs::read(dir.tls_dir().join("server.pem")).unwrap();
        let renewed = prepare(&named, &dir, listen, later).unwrap().unwrap();
        assert_ne!(
            before,
            std::fs::read(dir.tls_dir().join("server.pem")).unwrap(),
            "renewed before expiry"
        );
        assert_eq!(
            renamed.ca_cert_pem, renewed.ca_cert_pem,
            "renewal keeps the CA"
        );
    }

    /// Whether a client trusting only `ca_pem` accepts `leaf` for `name`.
    fn accepted(ca_pem: &str, leaf: &rcgen::Certificate, name: &str) -> bool {
        use rustls::client::danger::ServerCertVerifier;
        use rustls::pki_types::{ServerName, UnixTime};
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
            .unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let server_name = ServerName::try_from(name.to_owned()).unwrap();
        let when = UnixTime::since_unix_epoch(Duration::from_secs(now().unix_seconds() as u64));
        verifier
            .verify_server_cert(leaf.der(), &[], &server_name, &[], when)
            .is_ok()
    }

    #[test]
    fn the_ca_can_vouch_for_this_server_only() {
        let parent = tempfile::tempdir().unwrap();
        let dir = DataDir::open(&parent.path().join("d")).unwrap();
        let tls = Tls::Generated {
            hostnames: vec!["sentinel.example.org".into()],
        };
        let setup = prepare(&tls, &dir, "127.0.0.1:8443".parse().unwrap(), now())
            .unwrap()
            .unwrap();
        let ca_pem = setup.ca_cert_pem.unwrap();
        let ca_key =
            KeyPair::from_pem(&std::fs::read_to_string(dir.tls_dir().join("ca.key")).unwrap())
                .unwrap();
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
        let sign = |name: &str| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
            params.not_before = now().minus(Duration::from_secs(60)).to_offset_datetime();
            params.not_after = now().plus(Duration::from_secs(86_400)).to_offset_datetime();
            params.signed_by(&key, &issuer).unwrap()
        };
        // Someone holding the CA key tries to impersonate another site.
        assert!(!accepted(
            &ca_pem,
            &sign("bank.example.com"),
            "bank.example.com"
        ));
        assert!(!accepted(&ca_pem, &sign("192.0.2.10"), "192.0.2.10"));
        // The names the CA was made for still work.
        assert!(accepted(
            &ca_pem,
            &sign("sentinel.example.org"),
            "sentinel.example.org"
        ));
        assert!(accepted(&ca_pem, &sign("localhost"), "localhost"));
    }

    #[test]
    fn keys_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = DataDir::open(&parent.path().join("d")).unwrap();
        prepare(
            &Tls::Generated { hostnames: vec![] },
            &dir,
            "127.0.0.1:1".parse().unwrap(),
            now(),
        )
        .unwrap();
        for file in ["ca.key", "server.key"] {
            let mode = std::fs::metadata(dir.tls_dir().join(file))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{file}");
        }
    }

    #[test]
    fn names_cover_loopback_and_the_listen_address() {
        let names = certificate_names(
            &["Sentinel.Example.org".into()],
            "10.1.2.3:8443".parse().unwrap(),
        );
        for n in [
            "localhost",
            "127.0.0.1",
            "::1",
            "10.1.2.3",
            "sentinel.example.org",
        ] {
            assert!(names.contains(n), "{n}");
        }
        assert!(!certificate_names(&[], "0.0.0.0:8443".parse().unwrap()).contains("0.0.0.0"));
    }
}
