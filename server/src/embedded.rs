//! Direct access to an mlmeta database from another program, without the
//! gRPC service: for tools that must write exactly the rows the server
//! writes, such as the benchmark's `raw` floor (`mlmeta-bench --workload
//! raw`), which measures how fast the database alone stores them.
//!
//! Kept deliberately small: a connection opened, set up and migrated the
//! way the server does it, the table definitions, and the encoding of the
//! `epochs.metrics` blob. Nothing here validates, skips stored epochs or
//! maintains `metric_summaries` or `metric_latest`: a caller writing through it must keep the
//! tables consistent itself (see the comments in `migrations/`).

use std::collections::BTreeMap;

pub use crate::db::schema;
pub use crate::db::{DatabaseUrl, DbConnection};
use crate::error::StartupError;

/// Opens one connection to `database_url` with the server's per-connection
/// settings (on SQLite: WAL, `synchronous = NORMAL`, the busy timeout) and
/// applies pending migrations, as a starting server would.
pub fn open(database_url: &DatabaseUrl) -> Result<DbConnection, StartupError> {
    crate::db::connect_and_migrate(database_url)
}

/// The `epochs.metrics` value the server stores for these metrics.
pub fn encode_metrics(metrics: &BTreeMap<String, f64>) -> Vec<u8> {
    crate::store::metrics_codec::encode(metrics)
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;

    use super::*;

    #[test]
    fn opens_a_migrated_sqlite_database() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("e.db").display());
        let DbConnection::Sqlite(mut conn) = open(&DatabaseUrl::parse(&url).unwrap()).unwrap() else {
            panic!("a sqlite:// URL opens SQLite");
        };
        let stored: i64 = schema::epochs::table.count().get_result(&mut conn).unwrap();
        assert_eq!(stored, 0);
    }

    #[test]
    fn encodes_like_the_store() {
        let metrics: BTreeMap<String, f64> = [("loss".to_owned(), 0.5)].into();
        assert_eq!(
            crate::store::metrics_codec::decode(&encode_metrics(&metrics)).unwrap(),
            metrics
        );
    }
}
