//! TLS for `tls:` listeners: a certificate and key from PEM files, or a self-signed
//! certificate generated at start-up for development.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
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

/// The acceptor, and for a generated certificate its PEM (so tests and clients can trust it).
pub fn acceptor(section: Option<&TlsFiles>) -> Result<(TlsAcceptor, Option<String>), TlsError> {
    let (certs, key, generated) = match section {
        Some(s) => {
            let path = s.certificate.display().to_string();
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&s.certificate)
                .and_then(|iter| iter.collect())
                .map_err(|e| TlsError::Certificate {
                    path: path.clone(),
                    why: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(TlsError::Certificate {
                    path,
                    why: "no certificate in the file".into(),
                });
            }
            let key = PrivateKeyDer::from_pem_file(&s.private_key).map_err(|e| TlsError::Key {
                path: s.private_key.display().to_string(),
                why: e.to_string(),
            })?;
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
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsError::Config(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok((TlsAcceptor::from(Arc::new(config)), generated))
}

/// A client-side TLS configuration trusting the certificates in `ca_file` (PEM): the
/// server's own certificate (e.g. `sma serve --tls-dev-cert-out`) or the CA that signed it.
pub fn connector(ca_file: &std::path::Path) -> Result<TlsConnector, TlsError> {
    let path = ca_file.display().to_string();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca_file)
        .and_then(|iter| iter.collect())
        .map_err(|e| TlsError::Certificate {
            path: path.clone(),
            why: e.to_string(),
        })?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| TlsError::Certificate {
            path: path.clone(),
            why: e.to_string(),
        })?;
    }
    if roots.is_empty() {
        return Err(TlsError::Certificate {
            path,
            why: "no certificate in the file".into(),
        });
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsError::Config(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}
