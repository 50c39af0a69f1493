//! The connection type over both backends and its r2d2 pool. The variant
//! is built from the URL scheme (never by trial), and SQLite connections
//! get their pragmas when they are created.

use std::fs::OpenOptions;
use std::path::Path;
use std::time::Duration;

use diesel::connection::{SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{Error as R2d2Error, ManageConnection, Pool};
use diesel::sql_types::Integer;
use diesel::sqlite::SqliteConnection;
use tracing::info;

use super::{DatabaseUrl, migrations};
use crate::config::Config;
use crate::error::StartupError;

/// How long a caller waits for a pooled connection before the call fails
/// with UNAVAILABLE.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// How long SQLite waits for another writer's lock before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 30_000;

/// A connection to either backend. Queries written with diesel's DSL run on
/// it directly; backend-specific statements match the variant.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// PostgreSQL.
    Postgres(PgConnection),
    /// SQLite.
    Sqlite(SqliteConnection),
}

/// The pool every request takes its connection from.
pub type DbPool = Pool<DbConnectionManager>;

/// Opens connections of the backend named by the database URL.
#[derive(Debug)]
pub struct DbConnectionManager {
    url: DatabaseUrl,
}

impl ManageConnection for DbConnectionManager {
    type Connection = DbConnection;
    type Error = R2d2Error;

    fn connect(&self) -> Result<DbConnection, R2d2Error> {
        match self.url.sqlite_path() {
            Some(path) => {
                let mut conn = SqliteConnection::establish(path).map_err(R2d2Error::ConnectionError)?;
                set_sqlite_pragmas(&mut conn).map_err(R2d2Error::QueryError)?;
                // The checkpointer thread copies the WAL back in the
                // background (db/checkpoint.rs), off the writers' path.
                conn.batch_execute("PRAGMA wal_autocheckpoint = 0;")
                    .map_err(R2d2Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
            None => PgConnection::establish(self.url.expose_secret())
                .map(DbConnection::Postgres)
                .map_err(R2d2Error::ConnectionError),
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), R2d2Error> {
        conn.batch_execute("SELECT 1").map_err(R2d2Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        <DbConnection as Connection>::TransactionManager::is_broken_transaction_manager(conn)
    }
}

/// Connects to the database named in `config`, applies pending migrations
/// (once, even when several servers start together) and builds the pool.
pub fn open_pool(config: &Config) -> Result<DbPool, StartupError> {
    let url = &config.database_url;
    let connect_error = |message: String| StartupError::Connect {
        url: url.to_string(),
        message,
    };
    // A connection of its own: the PostgreSQL migration lock is per session.
    drop(connect_and_migrate(url)?);
    let pool = Pool::builder()
        .max_size(config.pool_size)
        .min_idle(Some(1))
        .connection_timeout(CONNECTION_TIMEOUT)
        // No `SELECT 1` round trip per checkout: a connection that broke
        // mid-transaction is caught by `has_broken`, one that dropped while
        // idle fails its next call with UNAVAILABLE and is replaced.
        .test_on_check_out(false)
        .build(DbConnectionManager { url: url.clone() })
        .map_err(|e| connect_error(e.to_string()))?;
    info!(%url, pool_size = config.pool_size, "database ready");
    Ok(pool)
}

/// Opens one connection to `url`, set up as the pool's are (SQLite
/// pragmas, WAL), and applies pending migrations on it (once, even when
/// several processes start together). A SQLite file the server could not
/// write is refused here, naming it.
pub(crate) fn connect_and_migrate(url: &DatabaseUrl) -> Result<DbConnection, StartupError> {
    let connect_error = |message: String| StartupError::Connect {
        url: url.to_string(),
        message,
    };
    match url.sqlite_path() {
        Some(path) => {
            check_files_writable(Path::new(path))?;
            let mut conn = SqliteConnection::establish(path).map_err(|e| connect_error(e.to_string()))?;
            set_sqlite_pragmas(&mut conn).map_err(|e| connect_error(e.to_string()))?;
            enable_wal(&mut conn).map_err(|e| connect_error(e.to_string()))?;
            migrations::run_sqlite(&mut conn)?;
            check_sqlite_writes(&mut conn, Path::new(path))?;
            Ok(DbConnection::Sqlite(conn))
        }
        None => {
            let mut conn =
                PgConnection::establish(url.expose_secret()).map_err(|e| connect_error(e.to_string()))?;
            migrations::run_postgres(&mut conn)?;
            Ok(DbConnection::Postgres(conn))
        }
    }
}

/// The connection of the SQLite checkpointer thread (db/checkpoint.rs):
/// the pool's settings, but a short busy timeout, because a checkpoint that
/// waits for readers may be holding the writers' lock; one that gives up
/// is retried later.
pub(super) fn sqlite_checkpointer_connection(path: &str) -> Result<SqliteConnection, StartupError> {
    let connect_error = |message: String| StartupError::Connect {
        url: format!("sqlite://{path}"),
        message,
    };
    let mut conn = SqliteConnection::establish(path).map_err(|e| connect_error(e.to_string()))?;
    set_sqlite_pragmas(&mut conn).map_err(|e| connect_error(e.to_string()))?;
    conn.batch_execute("PRAGMA busy_timeout = 100;")
        .map_err(|e| connect_error(e.to_string()))?;
    Ok(conn)
}

/// Refuses, before SQLite opens it, a database file (or an existing
/// `-wal`/`-shm` file) that cannot be opened for writing: SQLite would open
/// it read-only without a word, and whether the server then started
/// depended on whether the `-wal`/`-shm` files were there.
fn check_files_writable(path: &Path) -> Result<(), StartupError> {
    let mut files = vec![path.to_owned()];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        files.push(name.into());
    }
    for file in files {
        match OpenOptions::new().read(true).write(true).open(&file) {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(StartupError::NotWritable {
                    path: file.display().to_string(),
                    reason: error.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Commits one write (the header's `user_version`, rewritten unchanged) so
/// that a database SQLite can only read is refused at start rather than at
/// the first call.
fn check_sqlite_writes(conn: &mut SqliteConnection, path: &Path) -> Result<(), StartupError> {
    #[derive(QueryableByName)]
    struct UserVersion {
        #[diesel(sql_type = Integer)]
        user_version: i32,
    }
    conn.immediate_transaction(|conn| {
        let version = diesel::sql_query("PRAGMA user_version").get_result::<UserVersion>(conn)?;
        conn.batch_execute(&format!("PRAGMA user_version = {}", version.user_version))
    })
    .map_err(|error| StartupError::NotWritable {
        path: path.display().to_string(),
        reason: error.to_string(),
    })
}

/// WAL lets readers run beside the writer. The setting persists in the
/// file; switching needs a moment without other connections, so a server
/// starting beside others retries briefly.
fn enable_wal(conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
    let mut attempt = 0;
    loop {
        match conn.batch_execute("PRAGMA journal_mode = WAL;") {
            Ok(()) => return Ok(()),
            Err(error) if attempt < 50 => {
                attempt += 1;
                tracing::debug!(%error, attempt, "retrying PRAGMA journal_mode = WAL");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(error) => return Err(error),
        }
    }
}

/// Per-connection SQLite settings (they do not persist in the file).
fn set_sqlite_pragmas(conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
    // synchronous = NORMAL in WAL mode: a committed transaction survives a
    // crash of the process (it is in the WAL file); only a power loss or OS
    // crash can lose the last transactions before a checkpoint.
    // wal_autocheckpoint: checkpoint every ~40 MB of WAL instead of 4 MB
    // (for connections outside the pool; pooled ones turn it off and leave
    // checkpoints to db/checkpoint.rs). Busy pages (summaries, the tail
    // of each model's epochs) are written by almost every commit; a longer
    // interval copies each to the database file once instead of ten times.
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS};
         PRAGMA foreign_keys = ON;
         PRAGMA synchronous = NORMAL;
         PRAGMA cache_size = -8192;
         PRAGMA temp_store = MEMORY;
         PRAGMA wal_autocheckpoint = 10000;"
    ))
}
