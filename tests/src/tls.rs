//! [`TestPki`]: a throwaway certificate authority with one server and one
//! client certificate, written to PEM files for the server's flags.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tempfile::TempDir;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// A CA, a server certificate for `localhost` and `127.0.0.1`, and a client
/// certificate, all signed by the CA; PEM text and files. The files go
/// away when this is dropped.
#[derive(Debug)]
pub struct TestPki {
    /// The CA certificate (PEM).
    pub ca_pem: String,
    /// The server's certificate (PEM).
    pub server_cert_pem: String,
    /// The server's private key (PEM).
    pub server_key_pem: String,
    /// The client's certificate (PEM).
    pub client_cert_pem: String,
    /// The client's private key (PEM).
    pub client_key_pem: String,
    dir: TempDir,
}

impl TestPki {
    /// Makes new keys and certificates (named after `label`, so that two
    /// authorities can be told apart).
    pub fn generate(label: &str) -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("mlmeta test CA {label}"));
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |names: Vec<String>, common_name: &str| {
            let mut params = CertificateParams::new(names).unwrap();
            params.distinguished_name.push(DnType::CommonName, common_name);
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert_pem, server_key_pem) =
            leaf(vec!["localhost".into(), "127.0.0.1".into()], "mlmeta test server");
        let (client_cert_pem, client_key_pem) = leaf(vec!["trainer.test".into()], "mlmeta test client");
        let pki = Self {
            ca_pem: ca_cert.pem(),
            server_cert_pem,
            server_key_pem,
            client_cert_pem,
            client_key_pem,
            dir: tempfile::tempdir().unwrap(),
        };
        for (name, text) in [
            ("ca.pem", &pki.ca_pem),
            ("server.pem", &pki.server_cert_pem),
            ("server.key", &pki.server_key_pem),
            ("client.pem", &pki.client_cert_pem),
            ("client.key", &pki.client_key_pem),
        ] {
            std::fs::write(pki.dir.path().join(name), text).unwrap();
        }
        pki
    }

    /// Path of one of the PEM files: `ca.pem`, `server.pem`, `server.key`,
    /// `client.pem` or `client.key`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Client TLS settings trusting this CA, without a client certificate.
    pub fn client_tls(&self) -> ClientTlsConfig {
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem))
    }

    /// [`client_tls`](Self::client_tls) presenting the client certificate.
    pub fn client_tls_with_identity(&self) -> ClientTlsConfig {
        self.client_tls()
            .identity(Identity::from_pem(&self.client_cert_pem, &self.client_key_pem))
    }

    /// A bare TLS connector trusting this CA and offering ALPN `h2`, for
    /// tests that drive the TLS handshake themselves.
    pub fn raw_connector(&self) -> tokio_rustls::TlsConnector {
        self.connector_offering(&[b"h2"])
    }

    /// A bare TLS connector trusting this CA and offering the ALPN
    /// protocols `alpn` (`h2`, `http/1.1`), in this order of preference.
    pub fn connector_offering(&self, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
        use std::sync::Arc;
        use tokio_rustls::rustls::pki_types::CertificateDer;
        use tokio_rustls::rustls::pki_types::pem::PemObject as _;
        use tokio_rustls::rustls::{ClientConfig, RootCertStore};

        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}
