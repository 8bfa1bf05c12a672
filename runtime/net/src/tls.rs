//! TLS for `tls:` listeners: a certificate and key from PEM files, or a self-signed
//! certificate generated at start-up for development.

use rustls_pki_types::pem::PemObject;
pub use rustls_pki_types::CertificateDer;
use rustls_pki_types::PrivateKeyDer;
use std::sync::Arc;
use tokio_rustls::rustls;
use tokio_rustls::{TlsAcceptor, TlsConnector};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read certificate {path}: {why}")]
    Certificate { path: String, why: String },
    #[error("cannot read private key {path}: {why}")]
    Key { path: String, why: String },
    #[error("cannot generate a development certificate: {0}")]
    Generate(String),
    #[error("TLS configuration rejected: {0}")]
    Config(String),
}

/// A certificate chain and its private key, as PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub certificate: std::path::PathBuf,
    pub private_key: std::path::PathBuf,
}

/// The certificate a listener serves, replaceable while it runs: `sma serve` reloads the PEM
/// files on SIGHUP (a renewed certificate without a restart); connections already up keep
/// the one they were set up with.
#[derive(Debug)]
pub struct ServedCertificate {
    current: std::sync::RwLock<Arc<rustls::sign::CertifiedKey>>,
    files: Option<TlsFiles>,
}

impl ServedCertificate {
    /// Reads the PEM files again; the certificate in service stays if they cannot be used.
    /// `Ok(false)`: nothing to reload (a generated development certificate).
    pub fn reload(&self) -> Result<bool, TlsError> {
        let Some(files) = &self.files else {
            return Ok(false);
        };
        let (certs, key) = read_files(files)?;
        let key = certified(certs, key)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(key);
        Ok(true)
    }
}

impl rustls::server::ResolvesServerCert for ServedCertificate {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

/// The certificates of a PEM file; none is an error.
fn read_certificates(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect())
        .map_err(|e| TlsError::Certificate {
            path: path.display().to_string(),
            why: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Certificate {
            path: path.display().to_string(),
            why: "no certificate in the file".into(),
        });
    }
    Ok(certs)
}

/// Trusts the certificates of a PEM file.
fn add_roots(roots: &mut rustls::RootCertStore, path: &std::path::Path) -> Result<(), TlsError> {
    for cert in read_certificates(path)? {
        roots.add(cert).map_err(|e| TlsError::Certificate {
            path: path.display().to_string(),
            why: e.to_string(),
        })?;
    }
    Ok(())
}

fn read_files(
    s: &TlsFiles,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let certs = read_certificates(&s.certificate)?;
    let key = PrivateKeyDer::from_pem_file(&s.private_key).map_err(|e| TlsError::Key {
        path: s.private_key.display().to_string(),
        why: e.to_string(),
    })?;
    Ok((certs, key))
}

/// The chain with its signing key, checked to belong together.
fn certified(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<rustls::sign::CertifiedKey, TlsError> {
    rustls::sign::CertifiedKey::from_der(certs, key, &provider())
        .map_err(|e| TlsError::Config(e.to_string()))
}

/// The acceptor (TLS 1.2 and 1.3 only), the certificate it serves, and for a generated
/// certificate its PEM (so tests and clients can trust it).
pub fn acceptor(
    section: Option<&TlsFiles>,
) -> Result<(TlsAcceptor, Arc<ServedCertificate>, Option<String>), TlsError> {
    let (certs, key, generated) = match section {
        Some(s) => {
            let (certs, key) = read_files(s)?;
            (certs, key, None)
        }
        None => {
            let generated = rcgen::generate_simple_self_signed(vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                "::1".to_string(),
            ])
            .map_err(|e| TlsError::Generate(e.to_string()))?;
            let pem = generated.cert.pem();
            let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
                .map_err(|e| TlsError::Generate(e.to_string()))?;
            (vec![generated.cert.der().clone()], key, Some(pem))
        }
    };
    let served = Arc::new(ServedCertificate {
        current: std::sync::RwLock::new(Arc::new(certified(certs, key)?)),
        files: section.cloned(),
    });
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(Arc::new(OptionalClientCertificate::new()))
        .with_cert_resolver(served.clone());
    Ok((TlsAcceptor::from(Arc::new(config)), served, generated))
}

/// Asks every TLS client for a certificate without requiring one, and checks only that the
/// client holds the key of the certificate it sent. Whether the chain is trusted depends on
/// the voice connector the call is for, which is known only once the INVITE arrives: the
/// endpoint checks it then with that connector's [`ClientTrust`].
#[derive(Debug)]
struct OptionalClientCertificate {
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl OptionalClientCertificate {
    fn new() -> OptionalClientCertificate {
        OptionalClientCertificate {
            algorithms: provider().signature_verification_algorithms,
        }
    }
}

impl rustls::server::danger::ClientCertVerifier for OptionalClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        // Trust is decided per voice connector (ClientTrust::verify), after the handshake.
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The certificate authorities a voice connector trusts for its PBXs' client certificates
/// (mutual TLS): a call through the connector must come over TLS from a client whose
/// certificate chains to one of them.
#[derive(Debug, Clone)]
pub struct ClientTrust {
    verifier: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    source: String,
}

impl ClientTrust {
    /// Trusts the CA certificates in a PEM file.
    pub fn from_pem_file(path: &std::path::Path) -> Result<ClientTrust, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        add_roots(&mut roots, path)?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(provider()),
        )
        .build()
        .map_err(|e| TlsError::Certificate {
            path: path.display().to_string(),
            why: e.to_string(),
        })?;
        Ok(ClientTrust {
            verifier,
            source: path.display().to_string(),
        })
    }

    /// Whether `chain` (the client's certificate first) is trusted now; the error says why
    /// not.
    pub fn verify(&self, chain: &[CertificateDer<'static>]) -> Result<(), String> {
        let Some((end_entity, intermediates)) = chain.split_first() else {
            return Err("the client sent no certificate".into());
        };
        self.verifier
            .verify_client_cert(end_entity, intermediates, rustls_pki_types::UnixTime::now())
            .map(|_| ())
            .map_err(|e| format!("client certificate not trusted by {}: {e}", self.source))
    }
}

/// The name a TLS peer at host `name` must prove.
pub fn server_name(name: &str) -> Result<rustls_pki_types::ServerName<'static>, String> {
    rustls_pki_types::ServerName::try_from(name.to_owned())
        .map_err(|e| format!("{name} is not a TLS server name: {e}"))
}

/// The name a TLS peer dialed by IP address must prove (an IP SAN).
pub fn ip_name(ip: std::net::IpAddr) -> rustls_pki_types::ServerName<'static> {
    rustls_pki_types::ServerName::IpAddress(ip.into())
}

/// The client side of `sma serve` (origination routes and carriers over TLS): the system's
/// trust anchors, plus the certificates in `extra_ca` (PEM) when given, for peers with a
/// private CA or a self-signed certificate. TLS 1.2 and 1.3 only.
pub fn client(extra_ca: Option<&std::path::Path>) -> Result<TlsConnector, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, "system trust anchors loaded for outbound TLS");
    if let Some(ca_file) = extra_ca {
        add_roots(&mut roots, ca_file)?;
    }
    client_trusting(roots)
}

/// A client-side TLS configuration trusting the certificates in `ca_file` (PEM): the
/// server's own certificate (e.g. `sma serve --tls-dev-cert-out`) or the CA that signed it.
/// With `identity`, that certificate is presented when the server asks for one (a voice
/// connector with mutual TLS).
pub fn connector(
    ca_file: &std::path::Path,
    identity: Option<&TlsFiles>,
) -> Result<TlsConnector, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    add_roots(&mut roots, ca_file)?;
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots);
    let config = match identity {
        Some(files) => {
            let (certs, key) = read_files(files)?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| TlsError::Config(e.to_string()))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

/// A TLS 1.2/1.3 client trusting `roots`.
fn client_trusting(roots: rustls::RootCertStore) -> Result<TlsConnector, TlsError> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}
