//! Server configuration: command-line flags, each with an environment
//! variable as fallback.
//!
//! | flag | variable | default |
//! |---|---|---|
//! | `--database-url` | `MLMETA_DATABASE_URL` | `sqlite://mlmeta.db` |
//! | `--listen` | `MLMETA_LISTEN` | `127.0.0.1:50051` |
//! | `--http-listen` | `MLMETA_HTTP_LISTEN` | `127.0.0.1:50080` (`off`: no HTTP listener) |
//! | `--http-probes-token-required` | `MLMETA_HTTP_PROBES_TOKEN_REQUIRED` | off (`/metrics`, `/healthz`, `/readyz` open) |
//! | `--no-grpc-metrics` | `MLMETA_NO_GRPC_METRICS` | off (per-call gRPC metrics recorded) |
//! | `--log-format` | `MLMETA_LOG_FORMAT` | `human` (or `json`: one JSON object per line) |
//! | `--pool-size` | `MLMETA_POOL_SIZE` | `8` |
//! | `--shutdown-grace-secs` | `MLMETA_SHUTDOWN_GRACE_SECS` | `30` |
//! | `--tls-cert` | `MLMETA_TLS_CERT` | none (plain HTTP/2) |
//! | `--tls-key` | `MLMETA_TLS_KEY` | none |
//! | `--tls-client-ca` | `MLMETA_TLS_CLIENT_CA` | none (no client certificates) |
//! | `--auth-tokens` | `MLMETA_AUTH_TOKENS` | none (no tokens asked for) |
//! | `--allow-unauthenticated` | `MLMETA_ALLOW_UNAUTHENTICATED` | off |
//! | `--max-request-bytes` | `MLMETA_MAX_REQUEST_BYTES` | `67108864` (64 MiB) |
//! | `--max-small-request-bytes` | `MLMETA_MAX_SMALL_REQUEST_BYTES` | `1048576` (1 MiB) |
//! | `--max-inflight-request-bytes` | `MLMETA_MAX_INFLIGHT_REQUEST_BYTES` | `536870912` (512 MiB) |
//! | `--call-timeout-secs` | `MLMETA_CALL_TIMEOUT_SECS` | `60` |
//! | `--max-concurrent-calls` | `MLMETA_MAX_CONCURRENT_CALLS` | `1024` |
//! | `--max-concurrent-streams` | `MLMETA_MAX_CONCURRENT_STREAMS` | `16384` |
//! | `--max-watchers` | `MLMETA_MAX_WATCHERS` | `1024` |
//! | `--stream-idle-timeout-secs` | `MLMETA_STREAM_IDLE_TIMEOUT_SECS` | `600` (10 min) |
//! | `--handshake-timeout-secs` | `MLMETA_HANDSHAKE_TIMEOUT_SECS` | `10` |
//! | `--http2-keepalive-secs` | `MLMETA_HTTP2_KEEPALIVE_SECS` | `60` |
//! | `--http2-keepalive-timeout-secs` | `MLMETA_HTTP2_KEEPALIVE_TIMEOUT_SECS` | `20` |
//! | `--tcp-keepalive-secs` | `MLMETA_TCP_KEEPALIVE_SECS` | `60` |
//! | `--heartbeat-timeout-secs` | `MLMETA_HEARTBEAT_TIMEOUT_SECS` | `600` (10 min) |
//! | `--sweep-interval-ms` | `MLMETA_SWEEP_INTERVAL_MS` | `10000` (10 s) |
//! | `--max-artifact-bytes` | `MLMETA_MAX_ARTIFACT_BYTES` | `1073741824` (1 GiB) |
//! | `--artifact-grace-secs` | `MLMETA_ARTIFACT_GRACE_SECS` | `600` (10 min) |
//!
//! Log levels are configured with `RUST_LOG` (default `info`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::TypedValueParser as _;
use clap::{Parser, Subcommand, ValueEnum};

use crate::db::{DatabaseUrl, DatabaseUrlParser};
use crate::security::{CallLimits, Scope, TlsFiles};

/// Default largest request message: fits a full bulk request of 100,000
/// epochs with a dozen metrics each.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// Default largest request message of the methods other than
/// InsertEpochs/StreamEpochs: the largest valid one (a filter of 1,000
/// names of 255 bytes, or 64 KiB of hyperparameters) is well under it.
pub const DEFAULT_MAX_SMALL_REQUEST_BYTES: usize = 1024 * 1024;

/// Default budget of bulk request bytes in flight (charged at their
/// decoded size, 5x their encoding): one 60 MiB request at a time, eight
/// of 12 MiB, and so on.
pub const DEFAULT_MAX_INFLIGHT_REQUEST_BYTES: usize = 512 * 1024 * 1024;

/// Default number of streams open at once: an idle stream costs about
/// 12 KiB of server memory (`mlmeta-bench --workload idle`), so at most
/// about 190 MiB.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: usize = 16_384;

/// Default of [`Config::max_watchers`].
pub const DEFAULT_MAX_WATCHERS: usize = 1024;

/// Default idle timeout of streams, in seconds. A trainer streams one
/// message per epoch, and an epoch of a large model takes minutes: ten
/// minutes keeps the stream of most trainers open from epoch to epoch,
/// while one whose epochs take longer pays a new stream per epoch (one
/// round trip, against an epoch of more than ten minutes). Idle streams do
/// not take unary slots, so the timeout only reclaims the stream slots
/// (and the ~12 KiB each) of clients that went away without closing.
pub const DEFAULT_STREAM_IDLE_TIMEOUT_SECS: u64 = 600;

/// Configuration of one `mlmeta-server` process.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "mlmeta-server",
    version,
    about = "Training-metadata server: datablobs, model templates, models and their epochs over gRPC.",
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  mlmeta-server                                   # SQLite file ./mlmeta.db on 127.0.0.1:50051\n  mlmeta-server --database-url postgres://postgres@127.0.0.1/mlmeta --listen 127.0.0.1:6000\n  mlmeta-server hash-token --name trainer-01 --scope write >> tokens.txt\n  mlmeta-server --listen 0.0.0.0:50051 --auth-tokens tokens.txt --tls-cert server.pem --tls-key server.key"
)]
pub struct Config {
    /// A helper command instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Database to use: `sqlite://PATH` (file created if missing) or
    /// `postgres://USER@HOST:PORT/DB` (also `postgresql://`).
    #[arg(long, env = "MLMETA_DATABASE_URL", default_value = "sqlite://mlmeta.db",
          value_parser = DatabaseUrlParser)]
    pub database_url: DatabaseUrl,

    /// Address to listen on for gRPC.
    #[arg(long, env = "MLMETA_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Address to listen on for HTTP/1.1 and HTTP/2 (`/metrics`,
    /// `/healthz`, `/readyz`), with the TLS settings of gRPC; `off`: none.
    /// Like --listen, a non-loopback address needs --auth-tokens (or
    /// --allow-unauthenticated).
    #[arg(long, env = "MLMETA_HTTP_LISTEN", default_value = "127.0.0.1:50080",
          value_parser = HttpListen::parse)]
    pub http_listen: HttpListen,

    /// With --auth-tokens, `/metrics`, `/healthz` and `/readyz` need a
    /// token too (read scope); without it they are open, as load
    /// balancers and Prometheus usually probe without credentials.
    #[arg(long, env = "MLMETA_HTTP_PROBES_TOKEN_REQUIRED")]
    pub http_probes_token_required: bool,

    /// Do not record the per-call gRPC metrics (`grpc_server_*` on
    /// `/metrics`); for measuring what recording them costs.
    #[arg(long, env = "MLMETA_NO_GRPC_METRICS")]
    pub no_grpc_metrics: bool,

    /// Log format on stderr: `human` (one readable line per event) or
    /// `json` (one JSON object per line, for log collectors).
    #[arg(long, env = "MLMETA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// Maximum number of database connections held open.
    #[arg(long, env = "MLMETA_POOL_SIZE", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub pool_size: u32,

    /// Seconds that in-flight calls get to finish after SIGINT/SIGTERM.
    #[arg(long, env = "MLMETA_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    /// PEM certificate chain: serve TLS (needs --tls-key).
    #[arg(long, env = "MLMETA_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "MLMETA_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA certificate(s): require clients to present a certificate
    /// signed by one of them (mutual TLS; needs --tls-cert).
    #[arg(long, env = "MLMETA_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// Tokens file: every call (but health checks) must carry
    /// `authorization: Bearer <token>` of a token listed in it. One token
    /// per line: `NAME read|write sha256:HEX` (see `hash-token`). SIGHUP
    /// reloads it.
    #[arg(long, env = "MLMETA_AUTH_TOKENS")]
    pub auth_tokens: Option<PathBuf>,

    /// Serve a non-loopback address without --auth-tokens (anyone who can
    /// reach it may read and write).
    #[arg(long, env = "MLMETA_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,

    /// Largest InsertEpochs request (and StreamEpochs message) in bytes;
    /// larger ones are refused with RESOURCE_EXHAUSTED before they are read.
    #[arg(long, env = "MLMETA_MAX_REQUEST_BYTES", default_value_t = DEFAULT_MAX_REQUEST_BYTES,
          value_parser = clap::value_parser!(u32).range(1024..).map(|n| n as usize))]
    pub max_request_bytes: usize,

    /// Largest request message of every other method, in bytes; larger ones
    /// are refused with RESOURCE_EXHAUSTED before they are read.
    #[arg(long, env = "MLMETA_MAX_SMALL_REQUEST_BYTES", default_value_t = DEFAULT_MAX_SMALL_REQUEST_BYTES,
          value_parser = clap::value_parser!(u32).range(1024..).map(|n| n as usize))]
    pub max_small_request_bytes: usize,

    /// Memory that InsertEpochs requests and StreamEpochs messages may hold
    /// at once, in bytes. Each is charged 5x its encoded size (what its
    /// decoded epochs take) from when its length arrives until its handler
    /// is done with it; one larger than the budget takes all of it. Others
    /// wait unread (HTTP/2 flow control holds their senders) for at most
    /// half of --call-timeout-secs, then get RESOURCE_EXHAUSTED.
    #[arg(long, env = "MLMETA_MAX_INFLIGHT_REQUEST_BYTES", default_value_t = DEFAULT_MAX_INFLIGHT_REQUEST_BYTES,
          value_parser = clap::value_parser!(u64).range(1024..).map(|n| usize::try_from(n).unwrap_or(usize::MAX)))]
    pub max_inflight_request_bytes: usize,

    /// Seconds a unary call may take before it fails with
    /// DEADLINE_EXCEEDED (StreamEpochs is exempt: it lasts as long as the
    /// trainer sends).
    #[arg(long, env = "MLMETA_CALL_TIMEOUT_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub call_timeout_secs: u64,

    /// Unary calls in progress at once; more are refused with
    /// RESOURCE_EXHAUSTED. Streams do not count here (see
    /// --max-concurrent-streams), nor do health checks.
    #[arg(long, env = "MLMETA_MAX_CONCURRENT_CALLS", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    pub max_concurrent_calls: usize,

    /// Streams (StreamEpochs, reflection) open at once; more are refused
    /// with RESOURCE_EXHAUSTED. An idle stream costs about 12 KiB, so the
    /// default bounds idle streams to about 190 MiB.
    #[arg(long, env = "MLMETA_MAX_CONCURRENT_STREAMS", default_value_t = DEFAULT_MAX_CONCURRENT_STREAMS,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    pub max_concurrent_streams: usize,

    /// Watches (WatchEpochs, WatchModels) open at once; more are refused
    /// with RESOURCE_EXHAUSTED. They have a budget of their own, so that
    /// watchers never take the slots of unary calls or of write streams.
    #[arg(long, env = "MLMETA_MAX_WATCHERS", default_value_t = DEFAULT_MAX_WATCHERS,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    pub max_watchers: usize,

    /// Seconds a stream may go without completing a message before the
    /// server ends it with UNAVAILABLE, saying that everything it sent
    /// before was committed (a client opens a new stream and goes on).
    #[arg(long, env = "MLMETA_STREAM_IDLE_TIMEOUT_SECS", default_value_t = DEFAULT_STREAM_IDLE_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub stream_idle_timeout_secs: u64,
    /// Seconds a new connection gets to finish its TLS handshake and send
    /// the HTTP/2 preface; connections still silent then are closed, so
    /// that idle sockets cannot use up the open-files limit.
    #[arg(long, env = "MLMETA_HANDSHAKE_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub handshake_timeout_secs: u64,

    /// Seconds of silence on a connection after which the server sends an
    /// HTTP/2 PING; a client that does not answer within
    /// --http2-keepalive-timeout-secs is disconnected. Every HTTP/2 client
    /// answers PINGs by itself, so idle clients are not affected.
    #[arg(long, env = "MLMETA_HTTP2_KEEPALIVE_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub http2_keepalive_secs: u64,

    /// Seconds a client has to answer an HTTP/2 keepalive PING.
    #[arg(long, env = "MLMETA_HTTP2_KEEPALIVE_TIMEOUT_SECS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http2_keepalive_timeout_secs: u64,

    /// Seconds a connection may be idle before the kernel starts TCP
    /// keepalive probes (then every 10 s; 3 unanswered probes close it),
    /// which reaps peers that vanished without closing. At most 32767
    /// (Linux's limit).
    #[arg(long, env = "MLMETA_TCP_KEEPALIVE_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=32767))]
    pub tcp_keepalive_secs: u64,

    /// Seconds a RUNNING model may go without a heartbeat (a Heartbeat
    /// call, a StartRun or an epoch) before the sweeper marks it CRASHED;
    /// a run started with its own `heartbeat_timeout_secs` uses that one.
    #[arg(long, env = "MLMETA_HEARTBEAT_TIMEOUT_SECS", default_value_t = DEFAULT_HEARTBEAT_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=MAX_HEARTBEAT_TIMEOUT_SECS))]
    pub heartbeat_timeout_secs: u64,

    /// Milliseconds between two sweeps for silent runs. Every replica
    /// sweeps; sweeps racing on the same models mark each crash once.
    #[arg(long, env = "MLMETA_SWEEP_INTERVAL_MS", default_value_t = DEFAULT_SWEEP_INTERVAL_MS,
          value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub sweep_interval_ms: u64,

    /// Largest artifact content one UploadArtifact may store, in bytes;
    /// larger uploads fail with RESOURCE_EXHAUSTED (before any byte when
    /// the upload says its size).
    #[arg(long, env = "MLMETA_MAX_ARTIFACT_BYTES", default_value_t = DEFAULT_MAX_ARTIFACT_BYTES,
          value_parser = clap::value_parser!(u64).range(1..=i64::MAX as u64))]
    pub max_artifact_bytes: u64,

    /// Seconds uploaded content may sit unreferenced (a broken upload gone
    /// idle, or content whose last artifact was deleted or replaced) before
    /// the sweeper removes it.
    #[arg(long, env = "MLMETA_ARTIFACT_GRACE_SECS", default_value_t = DEFAULT_ARTIFACT_GRACE_SECS,
          value_parser = clap::value_parser!(u64).range(1..=MAX_HEARTBEAT_TIMEOUT_SECS))]
    pub artifact_grace_secs: u64,
}

/// Default `--max-artifact-bytes`: 1 GiB.
pub const DEFAULT_MAX_ARTIFACT_BYTES: u64 = 1 << 30;

/// Default `--artifact-grace-secs`.
pub const DEFAULT_ARTIFACT_GRACE_SECS: u64 = 600;

/// `--http-listen`: an address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpListen {
    /// No HTTP listener.
    Off,
    /// Listen on this address.
    On(SocketAddr),
}

impl HttpListen {
    /// The default `127.0.0.1:50080`.
    pub const DEFAULT: Self = Self::On(SocketAddr::new(
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        50080,
    ));

    /// `off`, or a socket address.
    fn parse(text: &str) -> Result<Self, String> {
        if text.eq_ignore_ascii_case("off") {
            return Ok(Self::Off);
        }
        text.parse()
            .map(Self::On)
            .map_err(|error| format!("{error}: expected HOST:PORT (such as 127.0.0.1:50080) or `off`"))
    }

    /// The address, unless `off`.
    pub fn addr(self) -> Option<SocketAddr> {
        match self {
            Self::Off => None,
            Self::On(addr) => Some(addr),
        }
    }
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`).
    Json,
}

/// Default `--heartbeat-timeout-secs`.
pub const DEFAULT_HEARTBEAT_TIMEOUT_SECS: u64 = 600;

/// Largest heartbeat timeout, server-wide or per run: 30 days.
pub const MAX_HEARTBEAT_TIMEOUT_SECS: u64 = 30 * 24 * 3600;

/// Default `--sweep-interval-ms`.
pub const DEFAULT_SWEEP_INTERVAL_MS: u64 = 10_000;

/// Helper commands of `mlmeta-server`.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Make a new random token (or hash one read from stdin) and print its
    /// line for the tokens file. The token itself goes to stderr, once.
    HashToken {
        /// Name of the token, shown in the server log.
        #[arg(long)]
        name: String,
        /// What the token may do: `read`, or `write` (includes read).
        #[arg(long, value_enum)]
        scope: ScopeArg,
        /// Hash the token read from stdin instead of making one.
        #[arg(long)]
        stdin: bool,
    },
    /// Copy the SQLite database of `--database-url` to a new file, online:
    /// the server may keep running and writing. The copy is consistent (the
    /// database as of one commit), synced, checked with
    /// `PRAGMA integrity_check`, and appears at its path only when complete.
    /// For PostgreSQL, use pg_dump.
    #[command(
        after_help = "Example:\n  mlmeta-server backup --database-url sqlite://mlmeta.db --to backups/mlmeta-$(date +%F).db\n\nServe a backup with `mlmeta-server --database-url sqlite://THE-COPY`."
    )]
    Backup {
        /// The database to copy, as the server's `--database-url`.
        #[arg(long, env = "MLMETA_DATABASE_URL", default_value = "sqlite://mlmeta.db",
              value_parser = DatabaseUrlParser)]
        database_url: DatabaseUrl,
        /// The new file (must not exist).
        #[arg(long, value_name = "FILE")]
        to: std::path::PathBuf,
    },
}

/// `--scope` of `hash-token`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScopeArg {
    /// List and query calls.
    Read,
    /// Puts and epoch inserts, and reads.
    Write,
}

impl From<ScopeArg> for Scope {
    fn from(scope: ScopeArg) -> Self {
        match scope {
            ScopeArg::Read => Scope::Read,
            ScopeArg::Write => Scope::Write,
        }
    }
}

impl Config {
    /// Default configuration for the given database (what the binary uses
    /// with no flags besides `--database-url`).
    pub fn for_database(database_url: DatabaseUrl) -> Self {
        Self {
            command: None,
            database_url,
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            http_listen: HttpListen::DEFAULT,
            http_probes_token_required: false,
            no_grpc_metrics: false,
            log_format: LogFormat::Human,
            pool_size: 8,
            shutdown_grace_secs: 30,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            auth_tokens: None,
            allow_unauthenticated: false,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_small_request_bytes: DEFAULT_MAX_SMALL_REQUEST_BYTES,
            max_inflight_request_bytes: DEFAULT_MAX_INFLIGHT_REQUEST_BYTES,
            call_timeout_secs: 60,
            max_concurrent_calls: 1024,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            max_watchers: DEFAULT_MAX_WATCHERS,
            stream_idle_timeout_secs: DEFAULT_STREAM_IDLE_TIMEOUT_SECS,
            handshake_timeout_secs: 10,
            http2_keepalive_secs: 60,
            http2_keepalive_timeout_secs: 20,
            tcp_keepalive_secs: 60,
            heartbeat_timeout_secs: DEFAULT_HEARTBEAT_TIMEOUT_SECS,
            sweep_interval_ms: DEFAULT_SWEEP_INTERVAL_MS,
            max_artifact_bytes: DEFAULT_MAX_ARTIFACT_BYTES,
            artifact_grace_secs: DEFAULT_ARTIFACT_GRACE_SECS,
        }
    }

    /// The TLS files, when TLS is configured.
    pub fn tls_files(&self) -> Option<TlsFiles> {
        Some(TlsFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
            client_ca: self.tls_client_ca.clone(),
        })
    }

    /// The limits every call is held to.
    pub fn call_limits(&self) -> CallLimits {
        CallLimits {
            call_timeout: Duration::from_secs(self.call_timeout_secs),
            max_concurrent_calls: self.max_concurrent_calls,
            max_concurrent_streams: self.max_concurrent_streams,
            max_watchers: self.max_watchers,
            stream_idle_timeout: Duration::from_secs(self.stream_idle_timeout_secs),
            max_request_bytes: self.max_request_bytes,
            max_small_request_bytes: self.max_small_request_bytes,
            max_inflight_request_bytes: self.max_inflight_request_bytes,
            http_probes_token_required: self.http_probes_token_required,
        }
    }

    /// How long a new connection may take to finish its TLS handshake and
    /// send the HTTP/2 preface.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout_secs)
    }

    /// Silence on a connection after which the server pings the client.
    pub fn http2_keepalive_interval(&self) -> Duration {
        Duration::from_secs(self.http2_keepalive_secs)
    }

    /// How long a client may take to answer a keepalive ping.
    pub fn http2_keepalive_timeout(&self) -> Duration {
        Duration::from_secs(self.http2_keepalive_timeout_secs)
    }

    /// Idle time before the first TCP keepalive probe.
    pub fn tcp_keepalive(&self) -> Duration {
        Duration::from_secs(self.tcp_keepalive_secs)
    }

    /// How long in-flight calls may run on after shutdown was asked for.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ones() {
        let config = Config::try_parse_from(["mlmeta-server"]).unwrap();
        assert_eq!(config.database_url.sqlite_path(), Some("mlmeta.db"));
        assert_eq!(config.listen.to_string(), "127.0.0.1:50051");
        assert_eq!(config.pool_size, 8);
        assert_eq!(
            config.http_listen.addr().map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:50080")
        );
        assert_eq!(config.log_format, LogFormat::Human);
        let defaults = Config::for_database(DatabaseUrl::parse("sqlite://mlmeta.db").unwrap());
        assert_eq!(config.max_request_bytes, defaults.max_request_bytes);
        assert_eq!(config.call_timeout_secs, defaults.call_timeout_secs);
        assert_eq!(config.max_concurrent_calls, defaults.max_concurrent_calls);
        assert_eq!(config.max_small_request_bytes, defaults.max_small_request_bytes);
        assert_eq!(
            config.max_inflight_request_bytes,
            defaults.max_inflight_request_bytes
        );
        assert_eq!(config.max_concurrent_streams, defaults.max_concurrent_streams);
        assert_eq!(config.stream_idle_timeout_secs, defaults.stream_idle_timeout_secs);
        assert_eq!(config.max_small_request_bytes, 1 << 20);
        assert_eq!(config.max_inflight_request_bytes, 512 << 20);
        assert_eq!(config.max_concurrent_streams, 16_384);
        assert_eq!(config.stream_idle_timeout_secs, 600);
        assert_eq!(config.handshake_timeout_secs, defaults.handshake_timeout_secs);
        assert_eq!(config.http2_keepalive_secs, defaults.http2_keepalive_secs);
        assert_eq!(
            config.http2_keepalive_timeout_secs,
            defaults.http2_keepalive_timeout_secs
        );
        assert_eq!(config.tcp_keepalive_secs, defaults.tcp_keepalive_secs);
        assert_eq!(config.http_listen, defaults.http_listen);
        assert_eq!(
            config.http_probes_token_required,
            defaults.http_probes_token_required
        );
        assert_eq!(config.no_grpc_metrics, defaults.no_grpc_metrics);
        assert_eq!(config.log_format, defaults.log_format);
        assert!(config.auth_tokens.is_none() && config.tls_files().is_none());
        assert!(!config.allow_unauthenticated && config.command.is_none());
    }

    #[test]
    fn database_url_is_parsed_once_and_its_password_never_shows() {
        let url = "postgres://mlmeta:hunter2-secret@db.example:5432/mlmeta?password=hunter2-secret";
        let config = Config::try_parse_from(["mlmeta-server", "--database-url", url]).unwrap();
        assert!(config.database_url.is_postgres());
        assert_eq!(config.database_url.expose_secret(), url);
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(
            debug.contains("postgres://mlmeta:***@db.example:5432/mlmeta"),
            "{debug}"
        );
        assert!(!config.database_url.to_string().contains("hunter2"));

        let refused = Config::try_parse_from(["mlmeta-server", "--database-url", "mysql://u:hunter2@h/db"])
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("--database-url") && refused.contains("sqlite://PATH"),
            "{refused}"
        );
        assert!(!refused.contains("hunter2"), "{refused}");
    }

    #[test]
    fn tls_key_and_cert_come_together() {
        assert!(Config::try_parse_from(["mlmeta-server", "--tls-cert", "c.pem"]).is_err());
        assert!(Config::try_parse_from(["mlmeta-server", "--tls-client-ca", "ca.pem"]).is_err());
        let both = Config::try_parse_from(["mlmeta-server", "--tls-cert", "c", "--tls-key", "k"]).unwrap();
        assert!(both.tls_files().is_some());
    }

    #[test]
    fn http_listen_takes_an_address_or_off() {
        let parse = |value: &str| Config::try_parse_from(["mlmeta-server", "--http-listen", value]);
        assert_eq!(parse("off").unwrap().http_listen, HttpListen::Off);
        assert_eq!(parse("OFF").unwrap().http_listen, HttpListen::Off);
        assert_eq!(
            parse("0.0.0.0:8080").unwrap().http_listen.addr(),
            Some(SocketAddr::from(([0, 0, 0, 0], 8080)))
        );
        let refused = parse("nowhere").unwrap_err().to_string();
        assert!(
            refused.contains("--http-listen") && refused.contains("`off`"),
            "{refused}"
        );
        let json = Config::try_parse_from(["mlmeta-server", "--log-format", "json"]).unwrap();
        assert_eq!(json.log_format, LogFormat::Json);
    }

    #[test]
    fn hash_token_is_a_subcommand() {
        let config =
            Config::try_parse_from(["mlmeta-server", "hash-token", "--name", "a", "--scope", "read"])
                .unwrap();
        assert!(matches!(
            config.command,
            Some(Command::HashToken { stdin: false, .. })
        ));
    }
}
