//! Server configuration: command-line flags, each with an environment
//! variable as fallback.
//!
//! | flag | variable | default |
//! |---|---|---|
//! | `--database-url` | `MLMETA_DATABASE_URL` | `sqlite://mlmeta.db` |
//! | `--listen` | `MLMETA_LISTEN` | `127.0.0.1:50051` |
//! | `--pool-size` | `MLMETA_POOL_SIZE` | `8` |
//! | `--shutdown-grace-secs` | `MLMETA_SHUTDOWN_GRACE_SECS` | `30` |
//! | `--tls-cert` | `MLMETA_TLS_CERT` | none (plain HTTP/2) |
//! | `--tls-key` | `MLMETA_TLS_KEY` | none |
//! | `--tls-client-ca` | `MLMETA_TLS_CLIENT_CA` | none (no client certificates) |
//! | `--auth-tokens` | `MLMETA_AUTH_TOKENS` | none (no tokens asked for) |
//! | `--allow-unauthenticated` | `MLMETA_ALLOW_UNAUTHENTICATED` | off |
//! | `--max-request-bytes` | `MLMETA_MAX_REQUEST_BYTES` | `67108864` (64 MiB) |
//! | `--call-timeout-secs` | `MLMETA_CALL_TIMEOUT_SECS` | `60` |
//! | `--max-concurrent-calls` | `MLMETA_MAX_CONCURRENT_CALLS` | `1024` |
//!
//! Logging is configured with `RUST_LOG` (default `info`).

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

    /// Largest request message in bytes; larger ones are refused with
    /// RESOURCE_EXHAUSTED.
    #[arg(long, env = "MLMETA_MAX_REQUEST_BYTES", default_value_t = DEFAULT_MAX_REQUEST_BYTES,
          value_parser = clap::value_parser!(u32).range(1024..).map(|n| n as usize))]
    pub max_request_bytes: usize,

    /// Seconds a unary call may take before it fails with
    /// DEADLINE_EXCEEDED (StreamEpochs is exempt: it lasts as long as the
    /// trainer sends).
    #[arg(long, env = "MLMETA_CALL_TIMEOUT_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub call_timeout_secs: u64,

    /// Calls in progress at once; more are refused with RESOURCE_EXHAUSTED.
    #[arg(long, env = "MLMETA_MAX_CONCURRENT_CALLS", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    pub max_concurrent_calls: usize,
}

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
            pool_size: 8,
            shutdown_grace_secs: 30,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            auth_tokens: None,
            allow_unauthenticated: false,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            call_timeout_secs: 60,
            max_concurrent_calls: 1024,
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
        }
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
        let defaults = Config::for_database(DatabaseUrl::parse("sqlite://mlmeta.db").unwrap());
        assert_eq!(config.max_request_bytes, defaults.max_request_bytes);
        assert_eq!(config.call_timeout_secs, defaults.call_timeout_secs);
        assert_eq!(config.max_concurrent_calls, defaults.max_concurrent_calls);
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
