//! Embedded migrations, applied at start-up under a lock so that several
//! servers starting at once on a fresh database run them exactly once.

use diesel::RunQueryDsl as _;
use diesel::connection::SimpleConnection;
use diesel::migration::MigrationVersion;
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use tracing::info;

use crate::error::StartupError;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

/// Key of the PostgreSQL advisory lock held while migrating ("mlmeta").
const POSTGRES_MIGRATION_LOCK: i64 = 0x6d6c_6d65_7461;

/// Runs pending SQLite migrations inside one `BEGIN IMMEDIATE` transaction:
/// the write lock makes a second server wait, then find nothing to do.
///
/// Foreign keys are off meanwhile and checked before the commit: SQLite
/// changes a table's constraints only by rebuilding it, and dropping the
/// old copy of a table others refer to would otherwise fail (SQLite's own
/// procedure for "making other kinds of table schema changes").
pub fn run_sqlite(conn: &mut SqliteConnection) -> Result<(), StartupError> {
    let pragma = |conn: &mut SqliteConnection, sql: &str| {
        conn.batch_execute(sql)
            .map_err(|e| StartupError::Migration(format!("{sql}: {e}")))
    };
    pragma(conn, "PRAGMA foreign_keys = OFF")?;
    let applied = conn.immediate_transaction(|conn| {
        let applied = conn
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|versions| names(&versions))
            .map_err(|e| StartupError::Migration(e.to_string()))?;
        let broken: Vec<ForeignKeyProblem> = diesel::sql_query("PRAGMA foreign_key_check")
            .load(conn)
            .map_err(|e| StartupError::Migration(format!("PRAGMA foreign_key_check: {e}")))?;
        if let Some(problem) = broken.first() {
            return Err(StartupError::Migration(format!(
                "a migration left {} rows referring to missing rows (first: table {})",
                broken.len(),
                problem.table
            )));
        }
        Ok(applied)
    });
    pragma(conn, "PRAGMA foreign_keys = ON")?;
    report("SQLite", &applied?);
    Ok(())
}

/// One row of `PRAGMA foreign_key_check`.
#[derive(diesel::QueryableByName)]
struct ForeignKeyProblem {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table: String,
}

/// Runs pending PostgreSQL migrations while holding a session advisory
/// lock; `conn` must not come from the pool (the lock is per session).
pub fn run_postgres(conn: &mut PgConnection) -> Result<(), StartupError> {
    conn.batch_execute(&format!("SELECT pg_advisory_lock({POSTGRES_MIGRATION_LOCK})"))
        .map_err(|e| StartupError::Migration(format!("taking the migration lock: {e}")))?;
    let result = conn
        .run_pending_migrations(POSTGRES_MIGRATIONS)
        .map(|versions| names(&versions))
        .map_err(|e| StartupError::Migration(e.to_string()));
    let unlocked = conn
        .batch_execute(&format!("SELECT pg_advisory_unlock({POSTGRES_MIGRATION_LOCK})"))
        .map_err(|e| StartupError::Migration(format!("releasing the migration lock: {e}")));
    let applied = result?;
    unlocked?;
    report("PostgreSQL", &applied);
    Ok(())
}

fn names(versions: &[MigrationVersion<'_>]) -> Vec<String> {
    versions.iter().map(ToString::to_string).collect()
}

/// Says what was done to the schema: "up to date, applied=1" on a brand-new
/// database read as if nothing had happened.
fn report(backend: &str, applied: &[String]) {
    if applied.is_empty() {
        info!("{backend} schema up to date: no migration pending");
    } else {
        info!(
            "{backend} schema migrated: applied {} migration{} ({})",
            applied.len(),
            if applied.len() == 1 { "" } else { "s" },
            applied.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    fn folders(backend: &str) -> BTreeSet<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../migrations")
            .join(backend);
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn both_backends_have_the_same_migrations() {
        let sqlite = folders("sqlite");
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, folders("postgres"));
        for name in &sqlite {
            for backend in ["sqlite", "postgres"] {
                for file in ["up.sql", "down.sql"] {
                    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("../migrations")
                        .join(backend)
                        .join(name)
                        .join(file);
                    assert!(path.is_file(), "{} is missing", path.display());
                }
            }
        }
    }
}
