//! Fresh planner statistics on PostgreSQL: the sweeper runs `ANALYZE` on
//! the tables that changed much since they were last analyzed.
//!
//! Autovacuum does the same, but checks only once a minute
//! (`autovacuum_naptime`), and until it has run on a freshly loaded table
//! the planner guesses its size: `best --where` over 10,000 just-imported
//! models took 180 ms with those guesses and 11 ms after `ANALYZE`. The
//! check is one read of `pg_stat_user_tables`; `ANALYZE` samples a fixed
//! number of rows and does not block writers (it takes SHARE UPDATE
//! EXCLUSIVE). Replicas racing here only analyze a table twice.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::db::DbConnection;
use crate::error::Result;

/// The tables the filter, listing and best queries plan over.
const TABLES: &[&str] = &[
    "models",
    "components",
    "tags",
    "epochs",
    "metric_summaries",
    "metric_latest",
    "json_values",
    "epoch_batches",
];

/// Rows changed since the last analyze, beyond which a table is analyzed:
/// this many plus [`STALE_FRACTION`] of its rows (autovacuum's defaults
/// are 50 and 0.1; a higher floor spares small tables).
const STALE_ROWS: i64 = 500;
const STALE_FRACTION: f64 = 0.1;

#[derive(QueryableByName)]
struct Stale {
    #[diesel(sql_type = Text)]
    relname: String,
}

/// Analyzes the stale tables of [`TABLES`]; returns their names. SQLite:
/// nothing (its planner uses the indexes as they are).
pub(super) fn refresh(conn: &mut DbConnection) -> Result<Vec<&'static str>> {
    let DbConnection::Postgres(pg) = conn else {
        return Ok(Vec::new());
    };
    let stale: Vec<Stale> = diesel::sql_query(
        "SELECT relname::TEXT AS relname FROM pg_stat_user_tables \
         WHERE schemaname = current_schema() AND relname = ANY($1) \
         AND (last_analyze IS NULL AND last_autoanalyze IS NULL AND n_live_tup + n_mod_since_analyze > 0 \
              OR n_mod_since_analyze > $2 + $3 * n_live_tup)",
    )
    .bind::<diesel::sql_types::Array<Text>, _>(TABLES)
    .bind::<BigInt, _>(STALE_ROWS)
    .bind::<diesel::sql_types::Double, _>(STALE_FRACTION)
    .load(pg)?;
    let mut analyzed = Vec::with_capacity(stale.len());
    for found in stale {
        // The statement names only tables of the fixed list.
        let Some(table) = TABLES.iter().find(|table| **table == found.relname) else {
            continue;
        };
        diesel::sql_query(format!("ANALYZE {table}")).execute(pg)?;
        analyzed.push(*table);
    }
    Ok(analyzed)
}
