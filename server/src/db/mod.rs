//! Database connections: the backend is chosen from the URL scheme, pooled
//! with r2d2, set up per connection (SQLite pragmas) and migrated at open.
//! On SQLite, the background checkpointer and the watch on the file's
//! identity (moved or deleted while serving) live here too, beside the
//! connections they concern; [`Probe`] is the health monitor's own
//! connection.

mod checkpoint;
mod migrations;
mod openssl;
mod pool;
mod probe;
pub mod schema;
mod sqlite_file;
mod statements;
mod threads;
mod url;

pub(crate) use checkpoint::{CheckpointStats, Checkpointer};
pub use openssl::skip_openssl_exit_cleanup;
pub use pool::DbConnection;
pub(crate) use pool::{
    DbPool, connect_and_migrate, connection, note_outage, open_existing_sqlite, open_pool,
};
pub(crate) use probe::Probe;
pub(crate) use sqlite_file::SqliteFile;
pub(crate) use statements::statements_on_this_thread;
pub use threads::Threads;
pub use url::{DatabaseUrl, DatabaseUrlParser, InvalidDatabaseUrl};
