//! The connection type over both backends and its r2d2 pool. The variant
//! is built from the URL scheme (never by trial), and SQLite connections
//! get their pragmas when they are created.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::{SimpleConnection, TransactionManager};

use super::statements::CountStatements;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{Error as R2d2Error, HandleError, ManageConnection, Pool};
use diesel::result::ConnectionError;
use diesel::sql_types::Integer;
use diesel::sqlite::SqliteConnection;
use tracing::info;

use super::{DatabaseUrl, SqliteFile, migrations};
use crate::config::Config;
use crate::error::{Error, StartupError, StorageFault};
use crate::log_limit::LogLimiter;

/// How long a call waits for a free pooled connection while the pool
/// holds some (all busy: the server is overloaded) before it fails with
/// UNAVAILABLE.
const BUSY_WAIT: Duration = Duration::from_secs(10);

/// How long a call waits for a connection while the pool holds none (its
/// connections were lost and reconnecting fails: the database is down).
/// Long enough for a reconnect that is under way, short enough that a
/// client learns of the outage at once instead of after [`BUSY_WAIT`].
const UNREACHABLE_WAIT: Duration = Duration::from_millis(500);

/// r2d2's `connection_timeout`: how long opening the pool waits for its
/// first connection; r2d2 also retries failed connection attempts with a
/// backoff capped at half of it, so that the pool reconnects within a
/// second of the database's return.
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long SQLite waits for another writer's lock before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 30_000;

/// How long after a call found the database unreachable every checked-out
/// and returned connection is tested with `SELECT 1` (see [`Outage`]).
const OUTAGE_WINDOW: Duration = Duration::from_secs(30);

/// When a call last found the database unreachable. A PostgreSQL restart
/// kills every pooled session, but the pool does not test connections
/// (no round trip per checkout), and a connection that failed outside a
/// transaction is not always marked broken by diesel: the pool's dead
/// sessions failed one call after another for about 8 s after the
/// database was back. For [`OUTAGE_WINDOW`] after such a failure the pool
/// tests connections as it hands them out and takes them back, and drops
/// the dead ones; outside it, checkouts cost nothing.
#[derive(Debug)]
struct Outage {
    epoch: Instant,
    /// Milliseconds after `epoch` of the last unreachable call, plus one
    /// (0: never).
    last_ms: AtomicU64,
}

impl Outage {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Notes that a call found the database unreachable.
    fn note(&self) {
        self.last_ms
            .store(self.now_ms().saturating_add(1), Ordering::Relaxed);
    }

    /// Whether connections should be tested now.
    fn recent(&self) -> bool {
        let last = self.last_ms.load(Ordering::Relaxed);
        let window = u64::try_from(OUTAGE_WINDOW.as_millis()).unwrap_or(u64::MAX);
        last != 0 && self.now_ms().saturating_add(1).saturating_sub(last) < window
    }
}

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
pub(crate) type DbPool = Pool<DbConnectionManager>;

/// A connection checked out of the [`DbPool`].
pub(crate) type PooledConnection = diesel::r2d2::PooledConnection<DbConnectionManager>;

/// Opens connections of the backend named by the database URL.
#[derive(Debug)]
pub(crate) struct DbConnectionManager {
    url: DatabaseUrl,
    /// SQLite: the file opened at start; a connection to another file at
    /// its path (it was replaced) is refused.
    sqlite_file: Option<Arc<SqliteFile>>,
}

/// The outage of this process's pools. One for all (r2d2 does not hand
/// out its manager): a server has one pool, and a test process with
/// several only tests connections of the others for a while too.
static OUTAGE: std::sync::LazyLock<Outage> = std::sync::LazyLock::new(Outage::new);

impl ManageConnection for DbConnectionManager {
    type Connection = DbConnection;
    type Error = R2d2Error;

    fn connect(&self) -> Result<DbConnection, R2d2Error> {
        match &self.sqlite_file {
            Some(file) => {
                let mut conn = open_existing_sqlite(file.path()).map_err(R2d2Error::ConnectionError)?;
                set_sqlite_pragmas(&mut conn).map_err(R2d2Error::QueryError)?;
                // The checkpointer thread copies the WAL back in the
                // background (db/checkpoint.rs), off the writers' path.
                conn.batch_execute("PRAGMA wal_autocheckpoint = 0;")
                    .map_err(R2d2Error::QueryError)?;
                // Opened by path: make sure it is still the server's file.
                file.check().map_err(|error| {
                    R2d2Error::ConnectionError(ConnectionError::BadConnection(error.to_string()))
                })?;
                conn.set_instrumentation(CountStatements);
                Ok(DbConnection::Sqlite(conn))
            }
            None => {
                let mut conn =
                    PgConnection::establish(self.url.expose_secret()).map_err(R2d2Error::ConnectionError)?;
                conn.set_instrumentation(CountStatements);
                Ok(DbConnection::Postgres(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), R2d2Error> {
        conn.batch_execute("SELECT 1").map_err(R2d2Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        <DbConnection as Connection>::TransactionManager::is_broken_transaction_manager(conn)
            || (OUTAGE.recent() && self.is_valid(conn).is_err())
    }
}

/// How often the pool's failed connection attempts are logged while they
/// keep failing (r2d2 retries about every second while the database is
/// down, for each connection it misses).
const CONNECT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// Logs the pool's failed connection attempts: the first at once, then
/// one line per [`CONNECT_ERROR_LOG_INTERVAL`] with a count.
#[derive(Debug)]
struct ConnectErrorLog(LogLimiter);

impl HandleError<R2d2Error> for ConnectErrorLog {
    fn handle_error(&self, error: R2d2Error) {
        if let Some(suppressed) = self.0.allow() {
            tracing::warn!(%error, suppressed, "cannot open a database connection; retrying");
        }
    }
}

/// Connects to the database named in `config`, applies pending migrations
/// (once, even when several servers start together) and builds the pool.
/// On SQLite, also returns the file the pool's connections must stay on.
pub(crate) fn open_pool(config: &Config) -> Result<(DbPool, Option<Arc<SqliteFile>>), StartupError> {
    let url = &config.database_url;
    super::skip_openssl_exit_cleanup();
    let connect_error = |message: String| StartupError::Connect {
        url: url.to_string(),
        message,
    };
    // A connection of its own: the PostgreSQL migration lock is per session.
    // Kept open until the pool is up: SQLite then does not close its last
    // connection in between (which checkpoints and deletes -wal and -shm).
    let migrated = connect_and_migrate(url)?;
    let sqlite_file = url
        .sqlite_file()
        .map(|path| {
            SqliteFile::at(path)
                .map(Arc::new)
                .map_err(|e| connect_error(format!("cannot stat {}: {e}", path.display())))
        })
        .transpose()?;
    let pool = Pool::builder()
        .max_size(config.pool_size)
        .min_idle(Some(1))
        .connection_timeout(RECONNECT_TIMEOUT)
        .error_handler(Box::new(ConnectErrorLog(LogLimiter::new(
            CONNECT_ERROR_LOG_INTERVAL,
        ))))
        // No `SELECT 1` round trip per checkout: a connection that broke
        // mid-transaction is caught by `has_broken`, one that dropped while
        // idle fails its next call with UNAVAILABLE and is dropped then
        // (diesel marks a PostgreSQL connection broken once libpq's
        // transaction status turns unknown, as on a lost session).
        .test_on_check_out(false)
        .build(DbConnectionManager {
            url: url.clone(),
            sqlite_file: sqlite_file.clone(),
        })
        .map_err(|e| connect_error(e.to_string()))?;
    drop(migrated);
    info!(%url, pool_size = config.pool_size, "database ready");
    Ok((pool, sqlite_file))
}

/// A connection from `pool`: waits up to [`BUSY_WAIT`] for one to be free,
/// but only [`UNREACHABLE_WAIT`] while the pool has none at all (the
/// database is down), so that calls fail fast then.
/// Shortly after an outage ([`Outage`]) each connection is tested first,
/// and a dead one is dropped for the next (at most the pool's size of
/// them: then the database is down again and the call says so).
pub(crate) fn connection(pool: &DbPool) -> Result<PooledConnection, Error> {
    if !OUTAGE.recent() {
        return checkout(pool);
    }
    for _ in 0..pool.max_size() {
        let mut conn = checkout(pool)?;
        if conn.batch_execute("SELECT 1").is_ok() {
            return Ok(conn);
        }
        // Back to the pool, whose `has_broken` test drops it.
        drop(conn);
    }
    Err(Error::storage(
        StorageFault::Unreachable,
        "every pooled connection failed SELECT 1",
    ))
}

/// Notes an outage when `result` says the database was unreachable, so
/// that the pool tests its connections for a while ([`Outage`]).
pub(crate) fn note_outage<T>(result: Result<T, Error>) -> Result<T, Error> {
    if let Err(error) = &result
        && error.is_unreachable()
    {
        OUTAGE.note();
    }
    result
}

fn checkout(pool: &DbPool) -> Result<PooledConnection, Error> {
    let wait = if pool.state().connections == 0 {
        UNREACHABLE_WAIT
    } else {
        BUSY_WAIT
    };
    pool.get_timeout(wait).map_err(|error| {
        if pool.state().connections == 0 {
            Error::storage(StorageFault::Unreachable, format!("no database connection: {error}"))
        } else {
            Error::Unavailable(format!(
                "no database connection free within {wait:?} (all {} in use): the server is overloaded; retry later",
                pool.max_size()
            ))
        }
    })
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
    match url.sqlite_file() {
        Some(path) => {
            check_files_writable(path)?;
            let mut conn = SqliteConnection::establish(&sqlite_uri(path, "rwc"))
                .map_err(|e| connect_error(e.to_string()))?;
            set_sqlite_pragmas(&mut conn).map_err(|e| connect_error(e.to_string()))?;
            enable_wal(&mut conn).map_err(|e| connect_error(e.to_string()))?;
            migrations::run_sqlite(&mut conn)?;
            check_sqlite_writes(&mut conn, path)?;
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

/// Opens the existing SQLite file at `path` (never creating one: a file
/// deleted while serving must not come back empty).
pub(crate) fn open_existing_sqlite(path: &Path) -> ConnectionResult<SqliteConnection> {
    SqliteConnection::establish(&sqlite_uri(path, "rw"))
}

/// The connection of the SQLite checkpointer thread (db/checkpoint.rs):
/// the pool's settings, but a short busy timeout, because a checkpoint that
/// waits for readers may be holding the writers' lock; one that gives up
/// is retried later.
pub(super) fn sqlite_checkpointer_connection(path: &Path) -> Result<SqliteConnection, StartupError> {
    let connect_error = |message: String| StartupError::Connect {
        url: format!("sqlite://{}", path.display()),
        message,
    };
    let mut conn = open_existing_sqlite(path).map_err(|e| connect_error(e.to_string()))?;
    set_sqlite_pragmas(&mut conn).map_err(|e| connect_error(e.to_string()))?;
    conn.batch_execute("PRAGMA busy_timeout = 100;")
        .map_err(|e| connect_error(e.to_string()))?;
    Ok(conn)
}

/// A SQLite URI filename for `path` with open `mode` (`rw`: the file must
/// exist; `rwc`: created if missing). diesel opens with `SQLITE_OPEN_URI`.
fn sqlite_uri(path: &Path, mode: &str) -> String {
    let text = path.to_string_lossy();
    let mut uri = String::from(if path.is_absolute() { "file://" } else { "file:" });
    for c in text.chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?mode=");
    uri.push_str(mode);
    uri
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_uris_name_the_path_as_given_and_rw_never_creates() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["plain.db", "odd ?#%20 name.db"] {
            let path = dir.path().join(name);
            let mut conn = SqliteConnection::establish(&sqlite_uri(&path, "rwc")).unwrap();
            conn.batch_execute("CREATE TABLE t (x INTEGER)").unwrap();
            assert!(path.is_file(), "{name}: created at its path");
            let mut again = open_existing_sqlite(&path).unwrap();
            again.batch_execute("INSERT INTO t VALUES (1)").unwrap();
        }
        let missing = dir.path().join("missing.db");
        assert!(open_existing_sqlite(&missing).is_err());
        assert!(!missing.exists(), "mode=rw does not create the file");
    }
}
