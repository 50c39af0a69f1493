//! TLS settings of the server, read from the PEM files named in the
//! configuration.
//!
//! The server does its TLS handshakes itself (see `crate::net`) rather than
//! through tonic, with the settings tonic would use: rustls with the ring
//! provider, ALPN `h2`, client certificates checked against
//! `--tls-client-ca` when it is set. The HTTP listener uses the same
//! settings but also offers ALPN `http/1.1`, for HTTP/1.1 clients (curl,
//! Prometheus, load balancers' probes).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::RootCertStore;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;

use crate::error::StartupError;

/// ALPN protocol of HTTP/2; tonic's clients insist on it.
const ALPN_H2: &[u8] = b"h2";

/// ALPN protocol of HTTP/1.1, offered on the HTTP listener only.
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The acceptors of the two listeners, from the same files.
#[derive(Clone)]
pub struct TlsAcceptors {
    /// gRPC: ALPN `h2` only.
    pub grpc: TlsAcceptor,
    /// HTTP: ALPN `h2`, then `http/1.1`.
    pub http: TlsAcceptor,
}

/// The TLS files named in the configuration.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain of the server (`--tls-cert`).
    pub cert: PathBuf,
    /// PEM private key of the server (`--tls-key`).
    pub key: PathBuf,
    /// PEM CA certificates that client certificates must chain to
    /// (`--tls-client-ca`); when set, clients without one are refused.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// Reads the files into the acceptor of the server's TLS handshakes.
    pub fn load(&self) -> Result<TlsAcceptor, StartupError> {
        Ok(self.load_both()?.grpc)
    }

    /// Reads the files into the acceptors of both listeners.
    pub fn load_both(&self) -> Result<TlsAcceptors, StartupError> {
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let chain = certificates("--tls-cert", &self.cert)?;
        let key = PrivateKeyDer::from_pem_slice(&read("--tls-key", &self.key)?).map_err(|error| {
            StartupError::Tls(format!(
                "--tls-key {}: no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {error}",
                self.key.display()
            ))
        })?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| StartupError::Tls(error.to_string()))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let verifier = client_verifier(path, provider)?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|error| {
            StartupError::Tls(format!(
                "--tls-cert {} with --tls-key {}: {error}",
                self.cert.display(),
                self.key.display()
            ))
        })?;
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        let mut http = config.clone();
        http.alpn_protocols.push(ALPN_HTTP1.to_vec());
        Ok(TlsAcceptors {
            grpc: TlsAcceptor::from(Arc::new(config)),
            http: TlsAcceptor::from(Arc::new(http)),
        })
    }
}

/// Checks client certificates against the CA certificates in `path`.
fn client_verifier(
    path: &Path,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn tokio_rustls::rustls::server::danger::ClientCertVerifier>, StartupError> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(certificates("--tls-client-ca", path)?);
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|error| StartupError::Tls(format!("--tls-client-ca {}: {error}", path.display())))
}

/// The PEM certificates in `path` (at least one).
fn certificates(flag: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, StartupError> {
    let pem = read(flag, path)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| StartupError::Tls(format!("{flag} {}: {error}", path.display())))?;
    if certificates.is_empty() {
        return Err(StartupError::Tls(format!(
            "{flag} {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
            path.display()
        )));
    }
    Ok(certificates)
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, StartupError> {
    std::fs::read(path).map_err(|source| StartupError::TlsFile {
        flag,
        path: path.display().to_string(),
        source,
    })
}
