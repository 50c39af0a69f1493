//! [`ClientBuilder`]: the connection settings of a [`Client`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mlmeta_proto::metadata_service_client::MetadataServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::limits::{MAX_MESSAGE_BYTES, MAX_PAGE_SIZE};

/// The project of a client that names none.
pub const DEFAULT_PROJECT: &str = "default";
use crate::retry::{RetryNotice, RetryPolicy};

/// Rows asked for per page when following page tokens, unless set.
pub const DEFAULT_PAGE_SIZE: u32 = 1_000;
/// Time a connection attempt may take, unless set.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Interval of HTTP/2 keep-alive pings on an open connection, which
/// notice a peer that vanished without closing it.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// Time a keep-alive ping may go unanswered before the connection counts
/// as broken.
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of a [`Client`]: TLS, a bearer token, timeouts, retries and
/// paging.
///
/// An `https://` URL connects with TLS, trusting the system's CA
/// certificates unless [`ca_certificate_file`](Self::ca_certificate_file)
/// names the CA to trust instead. Every connection has `TCP_NODELAY` set
/// and accepts and sends messages up to the server's 64 MiB limit.
///
/// ```
/// use std::time::Duration;
/// use mlmeta_client::{Client, RetryPolicy};
///
/// # async fn example() -> Result<(), mlmeta_client::Error> {
/// let client = Client::builder("http://127.0.0.1:50051")
///     .connect_timeout(Duration::from_secs(2))
///     .timeout(Duration::from_secs(30))
///     .retry(RetryPolicy::for_duration(Duration::from_secs(60)))
///     .page_size(5_000)
///     .connect_lazy()?; // connects on first use
/// # let _ = client;
/// # Ok(())
/// # }
/// # tokio::runtime::Runtime::new().unwrap().block_on(example()).unwrap();
/// ```
///
/// A server with TLS (a private CA) and tokens:
///
/// ```no_run
/// # async fn example() -> Result<(), mlmeta_client::Error> {
/// let client = mlmeta_client::Client::builder("https://mlmeta.example.com:50051")
///     .ca_certificate_file("/etc/mlmeta/ca.pem")
///     .token(std::env::var("MLMETA_TOKEN").unwrap_or_default())
///     .connect()
///     .await?;
/// # let _ = client;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ClientBuilder {
    url: String,
    connect_timeout: Duration,
    timeout: Option<Duration>,
    bearer_token: Option<String>,
    ca_certificate: Option<PemSource>,
    identity: Option<(PemSource, PemSource)>,
    tls_domain: Option<String>,
    retry: RetryPolicy,
    on_retry: Option<RetryNotice>,
    page_size: u32,
    project: String,
}

/// PEM data given inline or as a file read at connect time.
#[derive(Clone)]
enum PemSource {
    Inline(Vec<u8>),
    File(PathBuf),
}

impl PemSource {
    fn read(&self, what: &str) -> Result<Vec<u8>> {
        match self {
            Self::Inline(pem) => Ok(pem.clone()),
            Self::File(path) => std::fs::read(path)
                .map_err(|e| Error::Config(format!("cannot read the {what} {}: {e}", path.display()))),
        }
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &self.url)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("token", &self.bearer_token.as_ref().map(|_| "<redacted>"))
            .field("ca_certificate", &self.ca_certificate.is_some())
            .field("identity", &self.identity.as_ref().map(|_| "<redacted>"))
            .field("tls_domain", &self.tls_domain)
            .field("retry", &self.retry)
            .field("on_retry", &self.on_retry.is_some())
            .field("page_size", &self.page_size)
            .field("project", &self.project)
            .finish()
    }
}

impl ClientBuilder {
    /// Settings for the server at `url` (`http://HOST:PORT`, or
    /// `https://HOST:PORT` for TLS; a bare `HOST:PORT` means
    /// `http://HOST:PORT`), all others at their defaults.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: None,
            bearer_token: None,
            ca_certificate: None,
            identity: None,
            tls_domain: None,
            retry: RetryPolicy::none(),
            on_retry: None,
            page_size: DEFAULT_PAGE_SIZE,
            project: DEFAULT_PROJECT.to_owned(),
        }
    }

    /// Time a connection attempt may take. Default 5 s.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time each call may take (each page of a listing, each request of a
    /// bulk insert) before it fails with [`Error::DeadlineExceeded`].
    /// Default: no limit. The [`EpochWriter`](crate::EpochWriter) has its
    /// own limit per attempt.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends `authorization: Bearer <token>` with every call, for a
    /// server started with `--auth-tokens`. The token is marked sensitive
    /// and never shown by `Debug`.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.bearer_token = Some(token.into());
        self
    }

    /// Trusts only the CA certificate(s) in this PEM data for an
    /// `https://` server, instead of the system's CAs.
    #[must_use]
    pub fn ca_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certificate = Some(PemSource::Inline(pem.into()));
        self
    }

    /// Like [`ca_certificate`](Self::ca_certificate), from a PEM file read
    /// when connecting.
    #[must_use]
    pub fn ca_certificate_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_certificate = Some(PemSource::File(path.into()));
        self
    }

    /// Presents this client certificate and key (PEM) to a server that
    /// requires client certificates (mutual TLS).
    #[must_use]
    pub fn identity(mut self, cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        self.identity = Some((
            PemSource::Inline(cert_pem.into()),
            PemSource::Inline(key_pem.into()),
        ));
        self
    }

    /// Like [`identity`](Self::identity), from PEM files read when
    /// connecting.
    #[must_use]
    pub fn identity_files(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.identity = Some((PemSource::File(cert.into()), PemSource::File(key.into())));
        self
    }

    /// The name the server's certificate must carry, when it differs from
    /// the URL's host (say, connecting by IP address).
    #[must_use]
    pub fn tls_domain(mut self, name: impl Into<String>) -> Self {
        self.tls_domain = Some(name.into());
        self
    }

    /// How calls retry transient failures. Default [`RetryPolicy::none`]:
    /// each call is made once and its error returned. Every call is safe
    /// to retry (writes are idempotent), but a put retried after its first
    /// attempt was stored reports `already_existed = true`.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Calls `notice(error, retry, delay)` before each retry of a call
    /// (`retry` counts from 0): for a program that wants to tell its user
    /// that it is waiting for the server.
    #[must_use]
    pub fn on_retry(mut self, notice: impl Fn(&Error, u32, Duration) + Send + Sync + 'static) -> Self {
        self.on_retry = Some(Arc::new(notice));
        self
    }

    /// The project calls go to. Default `default`. One client can also
    /// make calls in other projects: [`Client::in_project`].
    #[must_use]
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.project = project.into();
        self
    }

    /// Rows asked for per page when following page tokens (1 to 10,000).
    /// Default 1,000. A listing stream holds at most one page in memory.
    #[must_use]
    pub fn page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size;
        self
    }

    /// Connects now; fails with [`Error::Unavailable`] when the server
    /// cannot be reached. The connection is re-established by itself if it
    /// breaks later.
    pub async fn connect(self) -> Result<Client> {
        let endpoint = self.endpoint()?;
        let channel = endpoint.connect().await?;
        self.finish(channel)
    }

    /// A client that connects on its first call (and reconnects after
    /// failures), so it can be made before the server is up. Needs a Tokio
    /// runtime.
    pub fn connect_lazy(self) -> Result<Client> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Config(
                "connect_lazy must be called within a Tokio runtime".into(),
            ));
        }
        let channel = self.endpoint()?.connect_lazy();
        self.finish(channel)
    }

    fn endpoint(&self) -> Result<Endpoint> {
        let url = if self.url.contains("://") {
            self.url.clone()
        } else {
            format!("http://{}", self.url)
        };
        let https = url.starts_with("https://");
        if !https && !url.starts_with("http://") {
            return Err(Error::Config(format!(
                "server URL {:?}: use http://HOST:PORT or https://HOST:PORT",
                self.url
            )));
        }
        let tls_settings =
            self.ca_certificate.is_some() || self.identity.is_some() || self.tls_domain.is_some();
        if !https && tls_settings {
            return Err(Error::Config(format!(
                "server URL {:?}: a CA certificate, client identity or TLS domain needs an https:// URL",
                self.url
            )));
        }
        let mut endpoint = Endpoint::from_shared(url)
            .map_err(|e| Error::Config(format!("server URL {:?}: {e}", self.url)))?
            .user_agent(concat!("mlmeta-client/", env!("CARGO_PKG_VERSION")))
            .map_err(|e| Error::Config(format!("user agent: {e}")))?;
        if https {
            endpoint = endpoint
                .tls_config(self.tls_config()?)
                .map_err(|e| Error::Config(format!("TLS settings: {}", crate::error::chain(&e))))?;
        }
        Ok(endpoint
            .tcp_nodelay(true)
            .connect_timeout(self.connect_timeout)
            .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(KEEP_ALIVE_TIMEOUT))
    }

    fn tls_config(&self) -> Result<ClientTlsConfig> {
        let mut config = ClientTlsConfig::new();
        config = match &self.ca_certificate {
            Some(source) => config.ca_certificate(Certificate::from_pem(source.read("CA certificate")?)),
            None => config.with_native_roots(),
        };
        if let Some((cert, key)) = &self.identity {
            let identity = Identity::from_pem(cert.read("client certificate")?, key.read("client key")?);
            config = config.identity(identity);
        }
        if let Some(domain) = &self.tls_domain {
            config = config.domain_name(domain.clone());
        }
        Ok(config)
    }

    fn finish(self, channel: Channel) -> Result<Client> {
        if self.page_size == 0 || self.page_size > MAX_PAGE_SIZE {
            return Err(Error::Config(format!(
                "page_size must be 1 to {MAX_PAGE_SIZE}, got {}",
                self.page_size
            )));
        }
        let authorization = self
            .bearer_token
            .map(|token| {
                let mut value: MetadataValue<Ascii> = format!("Bearer {token}")
                    .parse()
                    .map_err(|_| Error::Config("the bearer token must be printable ASCII".into()))?;
                value.set_sensitive(true);
                Ok::<_, Error>(value)
            })
            .transpose()?;
        let grpc = MetadataServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Client::from_parts(
            grpc,
            authorization,
            self.timeout,
            self.retry,
            self.on_retry,
            self.page_size,
            &self.project,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_settings_are_config_errors() {
        let ftp = ClientBuilder::new("ftp://example.invalid:443").connect_lazy();
        assert!(matches!(ftp, Err(Error::Config(m)) if m.contains("https://")));
        let ca_on_http = ClientBuilder::new("http://127.0.0.1:1")
            .ca_certificate_file("ca.pem")
            .connect_lazy();
        assert!(matches!(ca_on_http, Err(Error::Config(m)) if m.contains("needs an https:// URL")));
        let missing_ca = ClientBuilder::new("https://127.0.0.1:1")
            .ca_certificate_file("/nonexistent/ca.pem")
            .connect_lazy();
        assert!(matches!(missing_ca, Err(Error::Config(m)) if m.contains("/nonexistent/ca.pem")));
        let garbage = ClientBuilder::new("http://exa mple").connect_lazy();
        assert!(matches!(garbage, Err(Error::Config(_))));
        let page = ClientBuilder::new("http://127.0.0.1:1")
            .page_size(10_001)
            .connect_lazy();
        assert!(matches!(page, Err(Error::Config(m)) if m.contains("page_size")));
        let token = ClientBuilder::new("http://127.0.0.1:1")
            .token("a\nb")
            .connect_lazy();
        assert!(matches!(token, Err(Error::Config(m)) if m.contains("token")));
    }

    #[tokio::test]
    async fn a_bare_address_means_http() {
        assert!(ClientBuilder::new("127.0.0.1:50051").connect_lazy().is_ok());
    }

    #[test]
    fn lazy_connection_needs_a_runtime() {
        let outside = ClientBuilder::new("http://127.0.0.1:1").connect_lazy();
        assert!(matches!(outside, Err(Error::Config(m)) if m.contains("Tokio")));
    }

    #[test]
    fn debug_hides_the_token() {
        let text = format!("{:?}", ClientBuilder::new("x").token("secret"));
        assert!(!text.contains("secret") && text.contains("redacted"));
    }

    #[tokio::test]
    async fn connecting_to_nothing_is_unavailable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let result = ClientBuilder::new(format!("http://127.0.0.1:{port}"))
            .connect_timeout(Duration::from_secs(1))
            .connect()
            .await;
        assert!(matches!(result, Err(Error::Unavailable { .. })), "{result:?}");
    }
}
