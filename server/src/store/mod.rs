//! The storage layer: every SQL statement of the server lives below this
//! module, and it is the only place that tells the backends apart.
//!
//! [`Store`] methods are synchronous (diesel is): callers on the async
//! runtime run them on blocking threads. The exception is
//! [`Store::insert_epochs`], which hands its work to the group-commit
//! writer threads and waits for their answer asynchronously.

mod artifact_content;
mod artifacts;
pub mod backup;
mod columns;
mod components;
mod curve_cache;
mod deletion;
mod epochs;
pub(crate) mod filter;
pub(crate) mod ingest;
mod latest;
mod metric_report;
pub(crate) mod metrics_codec;
mod models;
mod page_token;
mod planner_stats;
mod projects;
pub mod records;
mod runs;
mod stats;
mod summaries;
mod sweeper;
mod tags;
pub mod transfer;
pub mod watch;
pub mod web;

use std::sync::{Arc, Mutex, PoisonError};

use diesel::connection::{AnsiTransactionManager, Connection, TransactionManager};

use crate::config::Config;
use crate::db::{
    Checkpointer, DatabaseUrl, DbConnection, DbPool, Probe, SqliteFile, Threads, connection, note_outage,
    open_pool,
};
use crate::error::{Error, Result, StartupError};
use crate::security::{ProjectScope, Projects};
use ingest::{CommitHook, CommitHooks, GroupCommit, IngestStats, TraceHook};
use projects::ProjectIds;
use records::{
    BestModel, Component, ComponentKind, Direction, Epoch, EpochFilter, Field, GroupedFilter, InsertCounts,
    LeaderboardRow, Model, ModelDetail, ModelFilter, ModelView, NewComponent, NewEpoch, NewModel, Page,
    PageRequest, Project, PurgeCounts, Put, RecordKind, RunStatus, StartRun,
};

pub use artifact_content::{CONTENT_URI_PREFIX, Uploaded};
pub use deletion::Changed;

/// Runs `$body` with `$c` bound to the concrete connection of whichever
/// backend `$conn` holds; for statements the multi-backend connection does
/// not support (upserts, bulk inserts). Both arms share the same code.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            crate::db::DbConnection::Sqlite($c) => $body,
            crate::db::DbConnection::Postgres($c) => $body,
        }
    };
}
use on_backend;

/// How often a PostgreSQL write transaction that lost a deadlock or
/// serialization race is retried before the error reaches the caller.
const CONFLICT_RETRIES: u32 = 5;

/// Compares of at least this many models read their curves in two halves
/// at once.
const PARALLEL_CURVES_FROM: usize = 4;

/// Handle to the database; cheap to clone (it holds a connection pool and
/// the queue of the epoch writers).
#[derive(Clone)]
pub struct Store {
    database: Database,
    project_ids: Arc<ProjectIds>,
    url: DatabaseUrl,
    epoch_writers: Arc<GroupCommit>,
    /// `--max-artifact-bytes`.
    max_artifact_bytes: u64,
    /// What the epoch writers did (for `/metrics`).
    ingest_stats: Arc<IngestStats>,
    /// SQLite only: copies the WAL into the database file in the
    /// background; stops with the last clone of the store.
    checkpointer: Option<Arc<Checkpointer>>,
    /// Marks silent runs CRASHED; stops with the last clone of the store.
    sweeper: Arc<sweeper::Sweeper>,
    /// PostgreSQL only: hears the other replicas' commits for the
    /// watchers; stops with the last clone of the store.
    _listener: Option<Arc<watch::Listener>>,
    /// Decoded curves of recently read models (web pages).
    curves: Arc<curve_cache::CurveCache>,
    /// Counts the threads above (writers, sweeper, checkpointer, watch).
    threads: Threads,
}

/// The connection pool and the way to run reads and writes on it.
#[derive(Clone)]
pub(crate) struct Database {
    pool: DbPool,
    /// Serializes this process's SQLite writers: SQLite admits one writer at
    /// a time anyway, and waiting here is fair and immediate where waiting
    /// in SQLite's busy handler means sleeping and polling.
    /// `None` on PostgreSQL, which takes concurrent writers.
    sqlite_writer: Option<Arc<Mutex<()>>>,
    /// SQLite: the file opened; writes are refused, and never acknowledged,
    /// once it is no longer at its path.
    sqlite_file: Option<Arc<SqliteFile>>,
    /// Tells this process's watchers what changed.
    hub: Arc<watch::Hub>,
}

impl Store {
    /// Opens the configured database, applying pending migrations.
    pub fn open(config: &Config) -> Result<Self, StartupError> {
        Self::open_with_hook(config, Arc::new(CommitHooks::new().with(Arc::new(TraceHook))))
    }

    /// Like [`Store::open`], telling `hook` what each committed epoch
    /// transaction stored (see [`CommitHook`]); the watchers' hub is told
    /// first, whatever `hook` is.
    pub fn open_with_hook(config: &Config, hook: Arc<dyn CommitHook>) -> Result<Self, StartupError> {
        let (pool, sqlite_file) = open_pool(config)?;
        let threads = Threads::default();
        let is_sqlite = sqlite_file.is_some();
        let hub = watch::Hub::new();
        let database = Database {
            pool,
            sqlite_writer: is_sqlite.then(Arc::default),
            sqlite_file,
            hub: Arc::clone(&hub),
        };
        let listener = if is_sqlite {
            None
        } else {
            Some(Arc::new(
                watch::Listener::start(config.database_url.clone(), Arc::clone(&hub), &threads).map_err(
                    |e| StartupError::Task(format!("cannot start the watch listener thread: {e}")),
                )?,
            ))
        };
        let mut hooks = CommitHooks::new().with(Arc::clone(&hub) as Arc<dyn CommitHook>);
        if !is_sqlite {
            hooks = hooks.with(Arc::new(
                watch::Notifier::start(config.database_url.clone(), Arc::clone(&hub), &threads).map_err(
                    |e| StartupError::Task(format!("cannot start the watch notifier thread: {e}")),
                )?,
            ));
        }
        let hook: Arc<dyn CommitHook> = Arc::new(hooks.with(hook));
        let checkpointer = match (&database.sqlite_writer, &database.sqlite_file) {
            (Some(writer), Some(file)) => Some(Arc::new(Checkpointer::start(
                Arc::clone(file),
                Arc::clone(writer),
                &threads,
            )?)),
            _ => None,
        };
        // SQLite has one writer at a time anyway; PostgreSQL overlaps the
        // commits (WAL flushes) of a few, leaving most connections to readers.
        let writers = if is_sqlite {
            1
        } else {
            (config.pool_size as usize / 2).clamp(1, 4)
        };
        // Records stored before the typed index of the filter language get
        // their rows now, a batch per transaction.
        while database
            .write(|conn| filter::index::backfill(conn, 500))
            .map_err(|e| {
                StartupError::Task(format!("cannot index stored hyperparameters for filters: {e}"))
            })?
            > 0
        {}
        // Models with epochs stored before `metric_latest` get its rows
        // now, computed from their epochs, a batch per transaction.
        while database
            .write(|conn| latest::backfill(conn, 100))
            .map_err(|e| StartupError::Task(format!("cannot summarise stored epochs (count, last): {e}")))?
            > 0
        {}
        let project_ids = Arc::new(ProjectIds::default());
        let ingest_stats = Arc::new(IngestStats::default());
        let epoch_writers = GroupCommit::start(
            database.clone(),
            Arc::clone(&project_ids),
            writers,
            hook,
            Arc::clone(&ingest_stats),
            &threads,
        )
        .map_err(|e| StartupError::Task(format!("cannot start the epoch writer threads: {e}")))?;
        let sweeper = sweeper::Sweeper::start(
            database.clone(),
            std::time::Duration::from_millis(config.sweep_interval_ms),
            i64::try_from(config.heartbeat_timeout_secs).unwrap_or(i64::MAX),
            i64::try_from(config.artifact_grace_secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX),
            &threads,
        )
        .map_err(|e| StartupError::Task(format!("cannot start the run sweeper thread: {e}")))?;
        Ok(Self {
            database,
            project_ids,
            url: config.database_url.clone(),
            epoch_writers: Arc::new(epoch_writers),
            max_artifact_bytes: config.max_artifact_bytes,
            ingest_stats,
            checkpointer,
            sweeper: Arc::new(sweeper),
            _listener: listener,
            curves: Arc::default(),
            threads,
        })
    }

    /// The background threads; they finish once every clone of the store
    /// is dropped.
    pub fn threads(&self) -> Threads {
        self.threads.clone()
    }

    /// The most content one artifact upload may store (`--max-artifact-bytes`).
    pub fn max_artifact_bytes(&self) -> u64 {
        self.max_artifact_bytes
    }

    /// A probe of the database for the health monitor, with a connection
    /// of its own (opened at its first check).
    pub(crate) fn probe(&self) -> Probe {
        Probe::new(self.url.clone(), self.database.sqlite_file.clone())
    }

    /// Stores a datablob or model template in `project`.
    pub fn put_component(
        &self,
        project: &ProjectScope,
        kind: ComponentKind,
        new: &NewComponent,
        ignore_existing: bool,
    ) -> Result<Put<Component>> {
        self.write(|conn| {
            let project_id = self.project_ids.find_or_create(conn, project)?;
            components::put(conn, project_id, kind, new, ignore_existing)
        })
    }

    /// Stores a model in `project` (where its datablob and template must be).
    pub fn put_model(
        &self,
        project: &ProjectScope,
        new: &NewModel,
        ignore_existing: bool,
    ) -> Result<Put<Model>> {
        self.write_models(|conn| {
            let project_id = self.project_ids.find_or_create(conn, project)?;
            models::put(conn, project_id, new, ignore_existing)
        })
    }

    /// Inserts epochs of models of `project`, all or nothing, skipping
    /// stored (model, epoch_num); returns once they are committed (group
    /// commit: see `ingest/group_commit.rs`).
    pub async fn insert_epochs(&self, project: ProjectScope, epochs: Vec<NewEpoch>) -> Result<InsertCounts> {
        self.epoch_writers.insert(project, epochs).await
    }

    /// Inserts several all-or-nothing requests of epochs, in this order
    /// and in one transaction, each with its own outcome (see
    /// `GroupCommit::insert_in_order`); returns once they are committed.
    /// The outer `Err` means none was stored.
    pub async fn insert_epochs_in_order(
        &self,
        requests: Vec<(ProjectScope, Vec<NewEpoch>)>,
    ) -> Result<Vec<Result<InsertCounts>>> {
        self.epoch_writers.insert_in_order(requests).await
    }

    /// Lists the projects `allowed` names, by name.
    pub fn list_projects(&self, allowed: &Projects, page: &PageRequest) -> Result<Page<Project>> {
        self.read(|conn| projects::list(conn, allowed, page))
    }

    /// Lists datablobs or model templates of `project` by name.
    pub fn list_components(
        &self,
        project: &ProjectScope,
        kind: ComponentKind,
        filter: &GroupedFilter,
        page: &PageRequest,
    ) -> Result<Page<Component>> {
        self.read_in(project, Page::empty, |conn, project_id| {
            components::list(conn, (project_id, project.name()), kind, filter, page)
        })
    }

    /// Lists models of `project` in the order of `view` (by name by
    /// default), with the summary columns it asks for.
    pub fn list_models(
        &self,
        project: &ProjectScope,
        filter: &ModelFilter,
        view: &ModelView,
        page: &PageRequest,
    ) -> Result<Page<Model>> {
        self.read_in(project, Page::empty, |conn, project_id| {
            models::list(conn, (project_id, project.name()), filter, view, page)
        })
    }

    /// Lists epochs of models of `project` by model name, then epoch_num.
    pub fn list_epochs(
        &self,
        project: &ProjectScope,
        filter: &EpochFilter,
        page: &PageRequest,
    ) -> Result<Page<Epoch>> {
        self.read(|conn| {
            let Some(project_id) = self.project_ids.find(conn, project)? else {
                // No model is stored there: named ones do not exist.
                epochs::require_models(conn, -1, &filter.model_names)?;
                return Ok(Page::empty());
            };
            epochs::list(conn, (project_id, project.name()), filter, page)
        })
    }

    /// Highest stored epoch_num of a model (`None` when the model does not
    /// exist, `Some(0)` when it has no epochs).
    pub fn current_epoch(&self, project: &ProjectScope, model_name: &str) -> Result<Option<i64>> {
        self.read_in(
            project,
            || None,
            |conn, project_id| epochs::current(conn, project_id, model_name),
        )
    }

    /// The `top_k` best models of `project` by one metric, best first.
    pub fn best_models(
        &self,
        project: &ProjectScope,
        metric_name: &str,
        direction: Direction,
        filter: &ModelFilter,
        top_k: usize,
        columns: &[Field],
    ) -> Result<Vec<BestModel>> {
        self.read(|conn| {
            // An unknown project has no model with the metric: the same
            // NOT_FOUND as an empty one.
            let project_id = self.project_ids.find(conn, project)?.unwrap_or(-1);
            let ranking = summaries::Ranking {
                metric_name,
                direction,
                filter,
                columns,
            };
            summaries::best_models(conn, project_id, &ranking, top_k)
        })
    }

    /// Every matching model's best value of one metric, best first.
    pub fn leaderboard(
        &self,
        project: &ProjectScope,
        metric_name: &str,
        direction: Direction,
        filter: &ModelFilter,
        columns: &[Field],
        page: &PageRequest,
    ) -> Result<Page<LeaderboardRow>> {
        self.read_in(project, Page::empty, |conn, project_id| {
            let ranking = summaries::Ranking {
                metric_name,
                direction,
                filter,
                columns,
            };
            summaries::leaderboard(conn, (project_id, project.name()), &ranking, page)
        })
    }

    /// Starts the run of a model of `project` (see `runs::start`).
    pub fn start_run(&self, project: &ProjectScope, start: &StartRun) -> Result<ModelDetail> {
        self.write_in(project, &start.model_name, |conn, project_id| {
            runs::start(conn, project_id, start)
        })
    }

    /// A heartbeat of a model's run (see `runs::heartbeat`).
    pub fn heartbeat(&self, project: &ProjectScope, model_name: &str) -> Result<ModelDetail> {
        // Not a model event (too frequent to notify every replica of);
        // a heartbeat reviving a CRASHED run is seen by the watchers'
        // safety-net poll.
        self.write(|conn| match self.project_ids.find(conn, project)? {
            Some(project_id) => runs::heartbeat(conn, project_id, model_name),
            None => Err(Error::NotFound(format!(
                "model_name: model {model_name:?} does not exist"
            ))),
        })
    }

    /// Ends a model's run with `status` (see `runs::end`).
    pub fn end_run(
        &self,
        project: &ProjectScope,
        model_name: &str,
        status: RunStatus,
    ) -> Result<ModelDetail> {
        self.write_in(project, model_name, |conn, project_id| {
            runs::end(conn, project_id, model_name, status)
        })
    }

    /// A model of `project` with its status history and its artifacts.
    pub fn get_model(&self, project: &ProjectScope, model_name: &str) -> Result<ModelDetail> {
        self.read(|conn| {
            let project_id = self.project_ids.find(conn, project)?.unwrap_or(-1);
            let mut detail = runs::get(conn, project_id, model_name)?;
            detail.artifacts = artifacts::list(conn, project_id, model_name)?;
            Ok(detail)
        })
    }

    /// One page of the web page's models table of `project` (see
    /// [`web::table`]); NOT_FOUND when nothing was ever stored there.
    pub fn web_table(&self, project: &ProjectScope, request: &web::TableRequest) -> Result<web::Table> {
        self.read_in_existing(project, |conn, project_id| web::table(conn, project_id, request))
    }

    /// One model of `project` for its web page (see [`web::model`]).
    pub fn web_model(&self, project: &ProjectScope, model_name: &str) -> Result<web::ModelView> {
        self.read_in_existing(project, |conn, project_id| {
            web::model(conn, project_id, model_name)
        })
    }

    /// Metric curves of models of `project` (see [`web::curves`]).
    pub fn web_curves(
        &self,
        project: &ProjectScope,
        model_names: &[String],
        metric_names: &[String],
    ) -> Result<Vec<web::Curve>> {
        let read = |names: &[String]| {
            self.read_in_existing(project, |conn, project_id| {
                web::curves(conn, project_id, names, metric_names, &self.curves)
            })
        };
        // A compare reads every epoch of every model: two halves on two
        // connections at once (the models need no common snapshot; each
        // is read by one statement), which nearly halves its time.
        if model_names.len() < PARALLEL_CURVES_FROM {
            return read(model_names);
        }
        let (first, second) = model_names.split_at(model_names.len() / 2);
        let (first, second) = std::thread::scope(|scope| {
            let second = scope.spawn(|| read(second));
            (read(first), second.join())
        });
        let mut curves = first?;
        curves.extend(second.map_err(|_| Error::Task("a curves read panicked".to_owned()))??);
        Ok(curves)
    }

    /// Soft-deletes a model, datablob or template of `project` (see
    /// `deletion.rs`); deleting a deleted record changes nothing.
    pub fn delete_record(&self, project: &ProjectScope, kind: RecordKind, name: &str) -> Result<Changed> {
        self.write_in_as(project, kind, name, |conn, project_id| {
            deletion::delete(conn, project_id, kind, name)
        })
    }

    /// Restores a deleted model, datablob or template of `project`;
    /// restoring a live one changes nothing.
    pub fn restore_record(&self, project: &ProjectScope, kind: RecordKind, name: &str) -> Result<Changed> {
        self.write_in_as(project, kind, name, |conn, project_id| {
            deletion::restore(conn, project_id, kind, name)
        })
    }

    /// Removes for good the deleted models of `project` (only `model_name`
    /// when given) with their epochs, and, when purging all, the deleted
    /// datablobs and templates no model uses. Many short transactions:
    /// see `deletion.rs`.
    pub fn purge(&self, project: &ProjectScope, model_name: Option<&str>) -> Result<PurgeCounts> {
        let mut counts = PurgeCounts::default();
        let project_id = match self.read(|conn| self.project_ids.find(conn, project))? {
            Some(project_id) => project_id,
            None if model_name.is_some() => {
                return Err(Error::NotFound(format!(
                    "model_name: model {:?} does not exist",
                    model_name.unwrap_or_default()
                )));
            }
            None => return Ok(counts),
        };
        loop {
            let purged = self.write_models(|conn| deletion::purge_models(conn, project_id, model_name))?;
            counts.models += purged;
            if purged == 0 || model_name.is_some() {
                break;
            }
        }
        while let Some(epochs) = self.write(|conn| deletion::purge_epochs(conn, project_id))? {
            counts.epochs += epochs;
        }
        if model_name.is_none() {
            let (datablobs, model_templates) =
                self.write(|conn| deletion::purge_components(conn, project_id))?;
            counts.datablobs = datablobs;
            counts.model_templates = model_templates;
        }
        Ok(counts)
    }

    /// Like `write_in`, naming a record of `kind` when the project is empty.
    fn write_in_as<T>(
        &self,
        project: &ProjectScope,
        kind: RecordKind,
        name: &str,
        f: impl Fn(&mut DbConnection, i64) -> Result<T>,
    ) -> Result<T> {
        self.write_models(|conn| match self.project_ids.find(conn, project)? {
            Some(project_id) => f(conn, project_id),
            None => Err(Error::NotFound(format!(
                "target.name: {} {name:?} does not exist",
                kind.label()
            ))),
        })
    }

    /// Runs the write `f` with the id of `project`; NOT_FOUND naming
    /// `model_name` when nothing was ever stored there.
    fn write_in<T>(
        &self,
        project: &ProjectScope,
        model_name: &str,
        f: impl Fn(&mut DbConnection, i64) -> Result<T>,
    ) -> Result<T> {
        self.write_models(|conn| match self.project_ids.find(conn, project)? {
            Some(project_id) => f(conn, project_id),
            None => Err(Error::NotFound(format!(
                "model_name: model {model_name:?} does not exist"
            ))),
        })
    }

    /// Runs `f` with the id of `project`; `nothing()` when nothing was ever
    /// stored in it.
    fn read_in<T>(
        &self,
        project: &ProjectScope,
        nothing: impl FnOnce() -> T,
        f: impl FnOnce(&mut DbConnection, i64) -> Result<T>,
    ) -> Result<T> {
        self.read(|conn| match self.project_ids.find(conn, project)? {
            Some(project_id) => f(conn, project_id),
            None => Ok(nothing()),
        })
    }

    /// Like `read_in`, with NOT_FOUND for a project never stored in.
    fn read_in_existing<T>(
        &self,
        project: &ProjectScope,
        f: impl FnOnce(&mut DbConnection, i64) -> Result<T>,
    ) -> Result<T> {
        self.read(|conn| match self.project_ids.find(conn, project)? {
            Some(project_id) => f(conn, project_id),
            None => Err(Error::NotFound(format!(
                "project: project {:?} does not exist",
                project.name()
            ))),
        })
    }

    fn read<T>(&self, f: impl FnOnce(&mut DbConnection) -> Result<T>) -> Result<T> {
        self.database.read(f)
    }

    fn write<T>(&self, f: impl Fn(&mut DbConnection) -> Result<T>) -> Result<T> {
        self.database.write(f)
    }

    fn write_models<T>(&self, f: impl Fn(&mut DbConnection) -> Result<T>) -> Result<T> {
        self.database.write_models(f)
    }
}

impl Database {
    /// A write that changes models (created, run status, tags, deleted,
    /// restored, purged): tells the watchers of every replica once it
    /// committed (see `watch`).
    fn write_models<T>(&self, f: impl Fn(&mut DbConnection) -> Result<T>) -> Result<T> {
        let value = self.write(|conn| {
            let value = f(conn)?;
            watch::notify_models(conn)?;
            Ok(value)
        })?;
        self.hub.send(watch::Change::Models);
        Ok(value)
    }

    fn read<T>(&self, f: impl FnOnce(&mut DbConnection) -> Result<T>) -> Result<T> {
        let mut conn = connection(&self.pool)?;
        note_outage(f(&mut conn))
    }

    fn write<T>(&self, f: impl Fn(&mut DbConnection) -> Result<T>) -> Result<T> {
        if let Some(writer) = &self.sqlite_writer {
            // A poisoned lock only means another writer panicked; the
            // database itself is consistent (its transaction rolled back).
            let _writer = writer.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(file) = &self.sqlite_file {
                file.refuse_if_moved()?;
            }
            let mut conn = connection(&self.pool)?;
            let value = write_transaction(&mut conn, &f)?;
            // Acknowledge only what went into the file that still has its
            // name: one `stat` per transaction (about a microsecond). A
            // move after this check leaves the commit in the moved file.
            if let Some(file) = &self.sqlite_file {
                file.check()?;
            }
            return Ok(value);
        }
        let mut conn = connection(&self.pool)?;
        let mut attempt = 0;
        loop {
            match write_transaction(&mut conn, &f) {
                Err(error) if error.is_transient_conflict() && attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    tracing::debug!(%error, attempt, "retrying write transaction");
                }
                result => return note_outage(result),
            }
        }
    }
}

impl Database {
    /// PostgreSQL: runs `f` on a connection outside any transaction, so
    /// that each of its statements commits on its own (one round trip for
    /// a write that is one statement), retrying transient conflicts like
    /// [`Database::write`]. SQLite, whose writes must hold the write lock
    /// from the start: the same as `write`.
    fn write_autocommit<T>(&self, f: impl Fn(&mut DbConnection) -> Result<T>) -> Result<T> {
        if self.sqlite_writer.is_some() {
            return self.write(f);
        }
        let mut conn = connection(&self.pool)?;
        let mut attempt = 0;
        loop {
            match f(&mut conn) {
                Err(error) if error.is_transient_conflict() && attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    tracing::debug!(%error, attempt, "retrying write statement");
                }
                result => return note_outage(result),
            }
        }
    }

    /// Whether this is a PostgreSQL database.
    fn is_postgres(&self) -> bool {
        self.sqlite_writer.is_none()
    }
}

/// Runs `f` in one transaction. On SQLite it starts with `BEGIN IMMEDIATE`:
/// taking the write lock up front means a read-then-write transaction never
/// fails with "database is locked" halfway (other writers wait on
/// `busy_timeout` instead).
fn write_transaction<T>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T>,
) -> Result<T> {
    match conn {
        DbConnection::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?,
        DbConnection::Postgres(c) => AnsiTransactionManager::begin_transaction(c)?,
    }
    type Manager = <DbConnection as Connection>::TransactionManager;
    match f(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            if let Err(rollback_error) = Manager::rollback_transaction(conn) {
                tracing::warn!(%rollback_error, "rollback failed");
            }
            Err(error)
        }
    }
}

/// Turns `size + 1` rows fetched for a page into the page: the extra row
/// only tells that another page follows, whose token is the last kept row's
/// sort key.
fn into_page<R, T>(
    mut rows: Vec<R>,
    size: usize,
    token_of: impl Fn(&R) -> String,
    convert: impl FnOnce(Vec<R>) -> Result<Vec<T>>,
) -> Result<Page<T>> {
    let next_token = if rows.len() > size {
        rows.truncate(size);
        rows.last().map(token_of).unwrap_or_default()
    } else {
        String::new()
    };
    Ok(Page {
        items: convert(rows)?,
        next_token,
    })
}

/// `LIMIT` for a page: one row more than asked, to know if another follows.
fn page_limit(page: &PageRequest) -> i64 {
    i64::try_from(page.size).unwrap_or(i64::MAX - 1) + 1
}

/// Most values bound in one `IN (...)` list: within SQLite's 32,766
/// parameters with room for the rest of the statement.
const MAX_BINDS_PER_LIST: usize = 10_000;

fn corrupt(what: &str, error: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("{what}: {error}"))
}
