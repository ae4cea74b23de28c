//! TLS for STARTTLS and direct TLS: the configured certificate, or a self-signed one for development.

use std::path::Path;
use std::sync::Arc;

use confab_core::{Error, Result};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// Builds the acceptor from PEM files, or generates a self-signed certificate for `names` when no
/// files are configured (fine for development and tests; clients must be told to accept it).
pub fn acceptor(cert: Option<&Path>, key: Option<&Path>, names: &[String]) -> Result<TlsAcceptor> {
    let (certs, key) = match (cert, key) {
        (Some(c), Some(k)) => {
            let certs = CertificateDer::pem_file_iter(c)
                .map_err(Error::internal)?
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(Error::internal)?;
            let key = PrivateKeyDer::from_pem_file(k).map_err(Error::internal)?;
            (certs, key)
        }
        (None, None) => {
            let ck = rcgen::generate_simple_self_signed(names.to_vec()).map_err(Error::internal)?;
            tracing::info!(names = ?names, "no TLS certificate configured; using a self-signed one");
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
            (vec![ck.cert.der().clone()], key)
        }
        _ => {
            return Err(Error::bad_request(
                "tls_cert_path and tls_key_path must be set together",
            ))
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::internal)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(Error::internal)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
