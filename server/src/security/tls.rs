//! TLS settings of the server, read from the PEM files named in the
//! configuration.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::error::StartupError;

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
    /// Reads the files into tonic's (rustls) server TLS configuration.
    pub fn load(&self) -> Result<ServerTlsConfig, StartupError> {
        let cert = read("--tls-cert", &self.cert)?;
        let key = read("--tls-key", &self.key)?;
        let mut config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
        if let Some(path) = &self.client_ca {
            config = config.client_ca_root(Certificate::from_pem(read("--tls-client-ca", path)?));
        }
        Ok(config)
    }
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, StartupError> {
    std::fs::read(path).map_err(|source| StartupError::TlsFile {
        flag,
        path: path.display().to_string(),
        source,
    })
}
