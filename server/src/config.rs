//! Server configuration: command-line flags, each with an environment
//! variable as fallback.
//!
//! | flag | variable | default |
//! |---|---|---|
//! | `--database-url` | `MLMETA_DATABASE_URL` | `sqlite://mlmeta.db` |
//! | `--listen` | `MLMETA_LISTEN` | `127.0.0.1:50051` |
//! | `--pool-size` | `MLMETA_POOL_SIZE` | `8` |
//! | `--shutdown-grace-secs` | `MLMETA_SHUTDOWN_GRACE_SECS` | `30` |
//!
//! Logging is configured with `RUST_LOG` (default `info`).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

/// Configuration of one `mlmeta-server` process.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "mlmeta-server",
    version,
    about = "Training-metadata server: datablobs, model templates, models and their epochs over gRPC.",
    after_help = "Examples:\n  mlmeta-server                                   # SQLite file ./mlmeta.db on 127.0.0.1:50051\n  mlmeta-server --database-url postgres://postgres@127.0.0.1/mlmeta --listen 127.0.0.1:6000"
)]
pub struct Config {
    /// Database to use: `sqlite://PATH` (file created if missing) or
    /// `postgres://USER@HOST:PORT/DB` (also `postgresql://`).
    #[arg(long, env = "MLMETA_DATABASE_URL", default_value = "sqlite://mlmeta.db")]
    pub database_url: String,

    /// Address to listen on for gRPC.
    #[arg(long, env = "MLMETA_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Maximum number of database connections held open.
    #[arg(long, env = "MLMETA_POOL_SIZE", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub pool_size: u32,

    /// Seconds that in-flight calls get to finish after SIGINT/SIGTERM.
    #[arg(long, env = "MLMETA_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,
}

impl Config {
    /// Default configuration for the given database URL (what the binary
    /// uses with no flags besides `--database-url`).
    pub fn for_database(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            pool_size: 8,
            shutdown_grace_secs: 30,
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
        assert_eq!(config.database_url, "sqlite://mlmeta.db");
        assert_eq!(config.listen.to_string(), "127.0.0.1:50051");
        assert_eq!(config.pool_size, 8);
    }
}
