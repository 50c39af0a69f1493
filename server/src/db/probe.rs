//! [`Probe`]: the health monitor's look at the database, on a connection of
//! its own so that a busy pool cannot starve it (nor it the pool).

use std::sync::Arc;

use diesel::Connection as _;
use diesel::connection::SimpleConnection as _;
use diesel::pg::PgConnection;

use super::pool::open_existing_sqlite;
use super::{DatabaseUrl, DbConnection, SqliteFile};
use crate::error::{Error, StorageFault};

/// What the probe runs: a query that needs the server to answer (and, on
/// SQLite, reads the schema page of the file).
const PROBE_SQL_POSTGRES: &str = "SELECT 1";
const PROBE_SQL_SQLITE: &str = "SELECT count(*) FROM sqlite_schema";

/// One connection for health checks, reopened after a failure.
pub(crate) struct Probe {
    url: DatabaseUrl,
    sqlite_file: Option<Arc<SqliteFile>>,
    conn: Option<DbConnection>,
}

impl Probe {
    /// A probe of `url`; on SQLite it also checks that `sqlite_file` is
    /// still at its path. Connects at the first [`Probe::check`].
    pub(crate) fn new(url: DatabaseUrl, sqlite_file: Option<Arc<SqliteFile>>) -> Self {
        Self {
            url,
            sqlite_file,
            conn: None,
        }
    }

    /// Another probe of the same database, not yet connected.
    pub(crate) fn fresh(&self) -> Self {
        Self::new(self.url.clone(), self.sqlite_file.clone())
    }

    /// Whether the database is usable now: the SQLite file is where it was
    /// opened and answers a query, or PostgreSQL answers one. Blocking.
    pub(crate) fn check(&mut self) -> Result<(), Error> {
        if let Some(file) = &self.sqlite_file {
            file.check()?;
        }
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(self.connect()?),
        };
        let sql = match conn {
            DbConnection::Postgres(_) => PROBE_SQL_POSTGRES,
            DbConnection::Sqlite(_) => PROBE_SQL_SQLITE,
        };
        conn.batch_execute(sql).map_err(|error| {
            // Reconnect next time: libpq does not, and a SQLite connection
            // that failed may hold a stale file.
            self.conn = None;
            Error::from(error)
        })
    }

    /// Woken when the SQLite file goes away or comes back (`None` on
    /// PostgreSQL), so that health changes at once rather than at the next
    /// probe.
    pub(crate) fn file_changes(&self) -> Option<Arc<tokio::sync::Notify>> {
        self.sqlite_file.as_ref().map(|file| file.changed())
    }

    fn connect(&self) -> Result<DbConnection, Error> {
        let unreachable =
            |error: diesel::ConnectionError| Error::storage(StorageFault::Unreachable, error.to_string());
        match self.url.sqlite_file() {
            Some(path) => {
                let mut conn = open_existing_sqlite(path).map_err(unreachable)?;
                // Never wait long for a lock: a probe that waits reports late.
                conn.batch_execute("PRAGMA busy_timeout = 1000;")?;
                Ok(DbConnection::Sqlite(conn))
            }
            None => PgConnection::establish(self.url.expose_secret())
                .map(DbConnection::Postgres)
                .map_err(unreachable),
        }
    }
}
