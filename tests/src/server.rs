//! [`TestServer`]: the real server, in-process, on a fresh database.

use std::time::Duration;

use mlmeta_proto::metadata_service_client::MetadataServiceClient;
use std::net::SocketAddr;

use mlmeta_server::{Config, DatabaseUrl, HttpListen, Listeners, MAX_MESSAGE_BYTES};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::calls::Client;
use crate::postgres::TestDatabase;

/// How long a server may take to start (open its database, migrate) and
/// report SERVING.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Name under which the server reports the metadata service's health.
pub const SERVICE_NAME: &str = "mlmeta.v1.MetadataService";

/// The database behind a [`TestServer`], kept alive as long as it (only
/// its `Drop` matters: removing the directory or the database).
#[derive(Debug)]
#[allow(dead_code)]
enum Backing {
    Sqlite(TempDir),
    Postgres(TestDatabase),
}

/// Which database a [`TestServer`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file in a temporary directory.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

/// A running in-process mlmeta server on its own fresh database.
///
/// Dropping it asks the server to stop and removes its database (the
/// temporary directory of SQLite, or the PostgreSQL database).
#[derive(Debug)]
pub struct TestServer {
    url: String,
    database_url: DatabaseUrl,
    channel: Channel,
    /// The HTTP listener's address, when the test asked for one.
    http_addr: Option<SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    // Dropped after the fields above (declaration order): server first.
    backing: Backing,
}

impl TestServer {
    /// A server on `sqlite://<fresh temp dir>/mlmeta.db`.
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let database_url = sqlite_url(&dir);
        Self::start(database_url, Backing::Sqlite(dir)).await
    }

    /// A server on a fresh PostgreSQL database (see
    /// [`TestDatabase::create`]); `None` when PostgreSQL is unreachable
    /// and not required.
    pub async fn postgres() -> Option<Self> {
        let database = TestDatabase::create().await?;
        Some(Self::on_postgres(database).await)
    }

    /// A server on the given (fresh) PostgreSQL database, dropped with the
    /// server.
    pub async fn on_postgres(database: TestDatabase) -> Self {
        let database_url = parse_url(database.url());
        Self::start(database_url, Backing::Postgres(database)).await
    }

    /// A server on a fresh database of `backend`, its [`Config`] changed
    /// by `configure` first. The HTTP listener is off unless `configure`
    /// sets `http_listen` (to `127.0.0.1:0` for an ephemeral port: see
    /// [`TestServer::http_url`]). With `tls` (the server must then be configured
    /// for TLS), the harness's own channel connects over
    /// `https://127.0.0.1:PORT` with it. `None` when PostgreSQL is
    /// unreachable and not required.
    pub async fn with(
        backend: Backend,
        configure: impl FnOnce(&mut Config),
        tls: Option<ClientTlsConfig>,
    ) -> Option<Self> {
        let (database_url, backing) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("create a temporary directory");
                (sqlite_url(&dir), Backing::Sqlite(dir))
            }
            Backend::Postgres => {
                let database = TestDatabase::create().await?;
                (parse_url(database.url()), Backing::Postgres(database))
            }
        };
        Some(Self::start_configured(database_url, backing, configure, tls).await)
    }

    async fn start(database_url: DatabaseUrl, backing: Backing) -> Self {
        Self::start_configured(database_url, backing, |_| {}, None).await
    }

    async fn start_configured(
        database_url: DatabaseUrl,
        backing: Backing,
        configure: impl FnOnce(&mut Config),
        tls: Option<ClientTlsConfig>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral loopback port");
        let addr = listener.local_addr().expect("local address of the listener");
        let mut config = Config::for_database(database_url.clone());
        config.listen = addr;
        config.shutdown_grace_secs = 1;
        // Many servers run at once: none on the fixed default port.
        config.http_listen = HttpListen::Off;
        configure(&mut config);
        let http = match config.http_listen.addr() {
            Some(http_addr) => Some(
                TcpListener::bind(http_addr)
                    .await
                    .expect("bind the HTTP listener"),
            ),
            None => None,
        };
        let http_addr = http
            .as_ref()
            .map(|l| l.local_addr().expect("local address of the HTTP listener"));
        let listeners = Listeners { grpc: listener, http };
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.await;
            };
            if let Err(error) = mlmeta_server::serve_on(config, listeners, stopped).await {
                panic!("the server on {addr} failed: {error}");
            }
        });
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{addr}");
        let mut endpoint = Endpoint::from_shared(url.clone())
            .expect("a valid endpoint URL")
            .connect_timeout(Duration::from_secs(5));
        if let Some(tls) = tls {
            endpoint = endpoint
                .tls_config(tls)
                .expect("a usable client TLS configuration");
        }
        let channel = endpoint.connect_lazy();
        let mut server = Self {
            url,
            database_url,
            channel,
            http_addr,
            shutdown: Some(shutdown),
            task: Some(task),
            backing,
        };
        server.wait_until_ready().await;
        server
    }

    async fn wait_until_ready(&mut self) {
        let channel = self.channel.clone();
        let task = self.task.as_mut().expect("server task");
        tokio::select! {
            ready = wait_healthy(channel, STARTUP_TIMEOUT) => {
                if let Err(error) = ready {
                    panic!("server on {} ({}) not ready: {error}", self.url, self.database_url);
                }
            }
            ended = task => {
                let why = match ended {
                    Ok(()) => "it stopped".to_owned(),
                    Err(error) => error.to_string(),
                };
                panic!("server on {} ({}) ended before it was ready: {why}", self.url, self.database_url);
            }
        }
    }

    /// A client of the server, with message size limits raised to
    /// [`MAX_MESSAGE_BYTES`] both ways. Clients share one HTTP/2
    /// connection; each may be used concurrently with the others.
    pub fn client(&self) -> Client {
        MetadataServiceClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// The channel behind [`TestServer::client`], for raw calls (see
    /// [`crate::wire`]).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The server's address as an `http://127.0.0.1:PORT` URL
    /// (`https://` when started with TLS).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A server on a fresh database of `backend` with its HTTP listener on
    /// an ephemeral loopback port, `configure` applied after that.
    pub async fn with_http(backend: Backend, configure: impl FnOnce(&mut Config)) -> Option<Self> {
        Self::with(
            backend,
            |config| {
                config.http_listen = HttpListen::On(SocketAddr::from(([127, 0, 0, 1], 0)));
                configure(config);
            },
            None,
        )
        .await
    }

    /// The HTTP listener's address, when the server was started with one.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// `http://127.0.0.1:PORT` of the HTTP listener (`https://` with TLS
    /// on); panics when the server was started without one.
    pub fn http_url(&self) -> String {
        let addr = self
            .http_addr
            .expect("the server was started without --http-listen");
        let scheme = if self.url.starts_with("https") {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{addr}")
    }

    /// The database the server was started on.
    pub fn database_url(&self) -> &DatabaseUrl {
        &self.database_url
    }

    /// Whether this server runs on PostgreSQL (else SQLite).
    pub fn is_postgres(&self) -> bool {
        matches!(self.backing, Backing::Postgres(_))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            // Stop at once rather than after the grace period: the database
            // goes away right after this.
            task.abort();
        }
    }
}

/// `sqlite://<dir>/mlmeta.db`.
fn sqlite_url(dir: &TempDir) -> DatabaseUrl {
    parse_url(&format!("sqlite://{}", dir.path().join("mlmeta.db").display()))
}

fn parse_url(url: &str) -> DatabaseUrl {
    DatabaseUrl::parse(url).unwrap_or_else(|error| panic!("test database URL {url:?}: {error}"))
}

/// Waits until the gRPC health service on `channel` reports the metadata
/// service SERVING, retrying while the server is still starting.
///
/// Returns the last error seen when `limit` runs out first.
pub async fn wait_healthy(channel: Channel, limit: Duration) -> Result<(), String> {
    let mut health = HealthClient::new(channel);
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let request = HealthCheckRequest {
            service: SERVICE_NAME.to_owned(),
        };
        let attempt = tokio::time::timeout(Duration::from_secs(5), health.check(request)).await;
        let last = match attempt {
            Ok(Ok(response)) => {
                let status = response.into_inner().status;
                if status == ServingStatus::Serving as i32 {
                    return Ok(());
                }
                format!("health status {status}")
            }
            Ok(Err(status)) => format!("health check failed: {status}"),
            Err(_) => "health check timed out".to_owned(),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("not SERVING within {limit:?}: {last}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
