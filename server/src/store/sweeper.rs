//! The sweeper thread: every `--sweep-interval-ms`, marks CRASHED the
//! RUNNING models whose trainers went silent past their heartbeat timeout.
//!
//! Every replica runs one. Sweeps are idempotent when they race (each batch
//! is a compare-and-set on the status, see `runs::sweep_batch`) and use the
//! database's clock, so replicas with skewed clocks mark the same runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::{Database, artifact_content, planner_stats, runs};
use crate::db::Threads;
use crate::error::Result;

/// The running sweeper; dropping it (with the last `Store`) stops the
/// thread.
pub(super) struct Sweeper {
    _stop: mpsc::Sender<()>,
    pub(super) stats: Arc<SweepStats>,
}

/// What the sweeper did, for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct SweepStats {
    /// Sweeps run (each every `--sweep-interval-ms`).
    pub runs: AtomicU64,
    /// Sweeps that failed (retried on the next tick).
    pub failures: AtomicU64,
    /// Runs marked CRASHED by this process's sweeper.
    pub crashed: AtomicU64,
}

impl Sweeper {
    /// Starts the thread sweeping `database` every `interval`.
    pub(super) fn start(
        database: Database,
        interval: Duration,
        default_timeout_secs: i64,
        artifact_grace_micros: i64,
        threads: &Threads,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let stats = Arc::new(SweepStats::default());
        let counted = Arc::clone(&stats);
        threads.spawn("run-sweeper".to_owned(), move || {
                let mut last_statistics = Instant::now();
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    let started = Instant::now();
                    let outcome = sweep(&database, default_timeout_secs);
                    counted.runs.fetch_add(1, Ordering::Relaxed);
                    match &outcome {
                        Ok(marked) => counted.crashed.fetch_add(*marked as u64, Ordering::Relaxed),
                        Err(_) => counted.failures.fetch_add(1, Ordering::Relaxed),
                    };
                    match outcome {
                        Ok(0) => {}
                        Ok(marked) => {
                            tracing::info!(marked, elapsed = ?started.elapsed(), "runs marked CRASHED (heartbeat timeout)");
                        }
                        // Retried on the next tick: a missed sweep only
                        // marks a crash later.
                        Err(error) => tracing::warn!(%error, "run sweep failed"),
                    }
                    match collect_artifact_garbage(&database, artifact_grace_micros) {
                        Ok(0) => {}
                        Ok(removed) => tracing::info!(removed, "unreferenced artifact content removed"),
                        Err(error) => tracing::warn!(%error, "artifact content sweep failed"),
                    }
                    if last_statistics.elapsed() >= STATISTICS_EVERY {
                        last_statistics = Instant::now();
                        refresh_planner_statistics(&database);
                    }
                }
            })?;
        Ok(Self { _stop: stop, stats })
    }
}

/// How often the sweeper looks for tables whose planner statistics are
/// stale (PostgreSQL; see `planner_stats`).
const STATISTICS_EVERY: Duration = Duration::from_secs(5);

fn refresh_planner_statistics(database: &Database) {
    let started = Instant::now();
    match database.read(planner_stats::refresh) {
        Ok(tables) if tables.is_empty() => {}
        Ok(tables) => tracing::debug!(?tables, elapsed = ?started.elapsed(), "planner statistics refreshed"),
        // Retried on the next check: stale statistics only slow queries.
        Err(error) => tracing::warn!(%error, "refreshing planner statistics failed"),
    }
}

/// Sweeps in batches of one write transaction each, until a batch comes
/// back short: other writers get the lock between batches.
pub(super) fn sweep(database: &Database, default_timeout_secs: i64) -> Result<usize> {
    let mut total = 0;
    loop {
        let marked = database.write(|conn| {
            let marked = runs::sweep_batch(conn, default_timeout_secs)?;
            if marked > 0 {
                super::watch::notify_models(conn)?;
            }
            Ok(marked)
        })?;
        if marked > 0 {
            database.hub.send(super::watch::Change::Models);
        }
        total += marked;
        if marked < usize::try_from(runs::SWEEP_BATCH).unwrap_or(usize::MAX) {
            return Ok(total);
        }
    }
}

/// Removes unreferenced artifact content (broken uploads, content whose
/// last artifact went) in batches of one write transaction each.
fn collect_artifact_garbage(database: &Database, grace_micros: i64) -> Result<usize> {
    let mut total = 0;
    loop {
        let removed = database.write(|conn| artifact_content::collect_garbage(conn, grace_micros))?;
        total += removed;
        if removed == 0 {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use diesel::RunQueryDsl;

    use super::*;
    use crate::config::Config;
    use crate::db::DbConnection;
    use crate::store::Store;

    const MODELS: i64 = 100_000;

    /// Fills the store with `MODELS` RUNNING models whose last heartbeat was
    /// `age_secs` ago (database clock), each model's own id-th row.
    fn fill(store: &Store, age_secs: i64) {
        store
            .database
            .write(|conn| {
                let now = runs::db_now(conn)?;
                let beat = now - age_secs * 1_000_000;
                let series = |n: i64| match conn {
                    DbConnection::Sqlite(_) => format!(
                        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) SELECT i FROM s"
                    ),
                    DbConnection::Postgres(_) => format!("SELECT generate_series(1, {n}) AS i"),
                };
                let statements = [
                    "INSERT INTO projects (id, name, created_at) VALUES (1, 'default', 0) ON CONFLICT DO NOTHING".to_owned(),
                    "INSERT INTO components (id, kind, name, group_name, hyperparams, created_at, last_modified_at, project_id) \
                     VALUES (1, 'datablob', 'd', 'g', '{}', 0, 0, 1), (2, 'model_template', 't', 'g', '{}', 0, 0, 1)".to_owned(),
                    format!(
                        "INSERT INTO models (name, model_class_name, datablob_id, model_template_id, created_at, last_modified_at, project_id, status, started_at, last_heartbeat_at) \
                         SELECT 'm' || i, 'C', 1, 2, 0, 0, 1, 'RUNNING', {beat}, {beat} FROM ({}) AS series",
                        series(MODELS)
                    ),
                ];
                for statement in statements {
                    diesel::sql_query(statement).execute(conn)?;
                }
                Ok(())
            })
            .unwrap();
    }

    /// Times sweeps over `MODELS` RUNNING models: heartbeats 0 s old (none
    /// in the index range), 30 s old (all in the range, none stale on the
    /// 600 s default), and all stale (every model marked, in batches).
    /// A measurement, not a test: run with
    /// `MLMETA_SWEEP_BENCH_POSTGRES=postgres://… cargo test --release -p mlmeta-server sweep_of_100k -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement; run by hand"]
    fn sweep_of_100k_running_models() {
        let dir = tempfile::tempdir().unwrap();
        let mut urls = vec![format!("sqlite://{}", dir.path().join("sweep.db").display())];
        urls.extend(std::env::var("MLMETA_SWEEP_BENCH_POSTGRES").ok());
        for url in urls {
            for (age, timeout, label) in [(0, 600, "fresh"), (30, 600, "30 s old"), (30, 10, "all stale")] {
                let mut config = Config::for_database(crate::db::DatabaseUrl::parse(&url).unwrap());
                config.sweep_interval_ms = 3_600_000;
                let store = Store::open(&config).unwrap();
                store
                    .database
                    .write(|conn| {
                        diesel::sql_query("DELETE FROM status_changes").execute(conn)?;
                        diesel::sql_query("DELETE FROM models").execute(conn)?;
                        diesel::sql_query("DELETE FROM components").execute(conn)?;
                        Ok(())
                    })
                    .unwrap();
                fill(&store, age);
                if url.starts_with("postgres") {
                    store
                        .database
                        .write(|conn| Ok(diesel::sql_query("ANALYZE models").execute(conn)?))
                        .unwrap();
                }
                let mut times = Vec::new();
                let mut marked = 0;
                for _ in 0..5 {
                    let started = Instant::now();
                    marked += sweep(&store.database, timeout).unwrap();
                    times.push(started.elapsed());
                }
                let backend = url.split(':').next().unwrap_or_default();
                println!(
                    "{backend}: {MODELS} RUNNING, heartbeats {label}: sweeps took {times:?}, marked {marked}"
                );
            }
        }
    }
}
