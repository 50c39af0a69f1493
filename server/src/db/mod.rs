//! Database connections: the backend is chosen from the URL scheme, pooled
//! with r2d2, set up per connection (SQLite pragmas) and migrated at open.
//! SQLite's background checkpointer lives here too, beside the connections
//! it concerns.

mod checkpoint;
mod migrations;
mod pool;
pub mod schema;
mod url;

pub(crate) use checkpoint::Checkpointer;
pub(crate) use pool::connect_and_migrate;
pub use pool::{DbConnection, DbPool, open_pool};
pub use url::{DatabaseUrl, DatabaseUrlParser, InvalidDatabaseUrl};
