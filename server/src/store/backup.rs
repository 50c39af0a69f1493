//! `mlmeta-server backup`: an online, consistent copy of a SQLite
//! database while the server keeps writing to it.
//!
//! `VACUUM INTO` copies inside one read transaction, so the copy is the
//! database as of one commit (WAL readers never block the writer, nor it
//! them). SQLite neither syncs the file it writes nor makes it appear
//! atomically, so the copy is made under a hidden name beside the
//! target, synced, checked (`PRAGMA integrity_check` and the mlmeta tables
//! readable), and only then renamed into place: a backup interrupted at
//! any point leaves no file that looks complete.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Text};
use diesel::{QueryableByName, RunQueryDsl, SqliteConnection, connection::SimpleConnection};

use crate::db::{DatabaseUrl, open_existing_sqlite};

/// How long the copy waits for a lock the server holds (a checkpoint,
/// a migration) before giving up.
const BUSY_TIMEOUT_MS: u32 = 10_000;

/// What a finished backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// Where the copy is.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Models in it (deleted ones included).
    pub models: i64,
    /// Epochs in it.
    pub epochs: i64,
    /// Time the copy and its checks took.
    pub elapsed: Duration,
}

/// Why a backup was not made. Nothing is left at the target path then.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// PostgreSQL has its own online backup.
    #[error(
        "a PostgreSQL database is backed up with pg_dump, which copies online and consistently: \
         `pg_dump --format=custom --file=mlmeta.dump 'postgres://…'`, restored with pg_restore"
    )]
    Postgres,
    /// The target exists: a backup never overwrites.
    #[error("--to {0}: already exists; a backup never overwrites (remove it or choose another path)")]
    TargetExists(PathBuf),
    /// The target path is not UTF-8 (SQLite takes the name as text).
    #[error("--to {0}: the path must be valid UTF-8")]
    TargetNotUtf8(PathBuf),
    /// No database at the configured path.
    #[error("no SQLite database at {0} (a backup never creates one)")]
    NoDatabase(PathBuf),
    /// SQLite refused a step.
    #[error("{step}: {message}")]
    Sqlite {
        /// What was being done.
        step: &'static str,
        /// SQLite's message.
        message: String,
    },
    /// The copy is not a sound database.
    #[error("the copy failed PRAGMA integrity_check: {0}")]
    Integrity(String),
    /// A file operation failed.
    #[error("{step} {path}: {source}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Copies the SQLite database of `url` to `to` (which must not exist).
pub fn backup(url: &DatabaseUrl, to: &Path) -> Result<BackupReport, BackupError> {
    let Some(source) = url.sqlite_file() else {
        return Err(BackupError::Postgres);
    };
    if to.exists() {
        return Err(BackupError::TargetExists(to.to_owned()));
    }
    if !source.is_file() {
        return Err(BackupError::NoDatabase(source.to_owned()));
    }
    let partial = partial_path(to)?;
    let started = Instant::now();
    let result = copy_and_check(source, &partial).and_then(|(models, epochs)| {
        std::fs::rename(&partial, to).map_err(io("renaming the copy to", to))?;
        sync_parent(to)?;
        let bytes = std::fs::metadata(to).map_err(io("reading", to))?.len();
        Ok(BackupReport {
            path: to.to_owned(),
            bytes,
            models,
            epochs,
            elapsed: started.elapsed(),
        })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// `.<name>.partial-<pid>` beside `to`: same directory, so the rename is
/// atomic; hidden, so nobody takes it for a backup.
fn partial_path(to: &Path) -> Result<PathBuf, BackupError> {
    let name = to
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| BackupError::TargetNotUtf8(to.to_owned()))?;
    Ok(to.with_file_name(format!(".{name}.partial-{}", std::process::id())))
}

fn copy_and_check(source: &Path, partial: &Path) -> Result<(i64, i64), BackupError> {
    let target = partial
        .to_str()
        .ok_or_else(|| BackupError::TargetNotUtf8(partial.to_owned()))?;
    let _ = std::fs::remove_file(partial); // a leftover of a killed backup of this pid
    let mut conn = open(source, "opening the database")?;
    diesel::sql_query("VACUUM INTO ?")
        .bind::<Text, _>(target)
        .execute(&mut conn)
        .map_err(sqlite("VACUUM INTO"))?;
    drop(conn);
    File::open(partial)
        .and_then(|f| f.sync_all())
        .map_err(io("syncing", partial))?;
    let mut copy = open(partial, "opening the copy")?;
    check_integrity(&mut copy)?;
    let models = count(&mut copy, "SELECT count(*) AS n FROM models")?;
    let epochs = count(&mut copy, "SELECT count(*) AS n FROM epochs")?;
    Ok((models, epochs))
}

fn open(path: &Path, step: &'static str) -> Result<SqliteConnection, BackupError> {
    let mut conn = open_existing_sqlite(path).map_err(sqlite(step))?;
    // Not `query_only`: SQLite counts VACUUM INTO as a write, although
    // it writes only the new file.
    conn.batch_execute(&format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS};"))
        .map_err(sqlite(step))?;
    Ok(conn)
}

#[derive(QueryableByName)]
struct IntegrityRow {
    #[diesel(sql_type = Text)]
    integrity_check: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn check_integrity(conn: &mut SqliteConnection) -> Result<(), BackupError> {
    let rows: Vec<IntegrityRow> = diesel::sql_query("PRAGMA integrity_check")
        .load(conn)
        .map_err(sqlite("PRAGMA integrity_check"))?;
    match rows.as_slice() {
        [row] if row.integrity_check == "ok" => Ok(()),
        rows => Err(BackupError::Integrity(
            rows.iter()
                .take(5)
                .map(|r| r.integrity_check.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        )),
    }
}

fn count(conn: &mut SqliteConnection, query: &'static str) -> Result<i64, BackupError> {
    diesel::sql_query(query)
        .get_result::<Count>(conn)
        .map(|c| c.n)
        .map_err(sqlite("reading the copy (is it an mlmeta database?)"))
}

/// Makes the rename durable.
fn sync_parent(path: &Path) -> Result<(), BackupError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing the directory of", path))
}

fn sqlite<E: std::fmt::Display>(step: &'static str) -> impl FnOnce(E) -> BackupError {
    move |e| BackupError::Sqlite {
        step,
        message: e.to_string(),
    }
}

fn io(step: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BackupError {
    let path = path.to_owned();
    move |source| BackupError::Io { step, path, source }
}
