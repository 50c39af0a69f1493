//! Watching: what `WatchEpochs` and `WatchModels` read, and how a server
//! process learns that there is something to read.
//!
//! - [`Hub`] (`hub.rs`): one broadcast per process of which models
//!   changed, fed by the group commit's [`CommitHook`](super::ingest::CommitHook),
//!   by model writes ([`notify_models`]) and, on PostgreSQL, by the
//!   [`Listener`] (`listener.rs`), which hears the other replicas'
//!   commits: every write transaction that matters sends one `pg_notify`
//!   on [`CHANNEL`] (never per row, never from a trigger). Model writes
//!   send it in their transaction; epoch commits, far more frequent, leave
//!   it to the [`Notifier`] (`notifier.rs`), which sends it after the
//!   commit from its own connection so that writers' commits do not queue
//!   on PostgreSQL's notification lock.
//! - Positions (`cursor.rs`): per model, the commit-ordered `epoch_seq` of
//!   `epoch_batches` for epochs; the delivered state for model events.
//! - Reads (`epochs.rs`, `models.rs`): everything after a position.

mod cursor;
mod epochs;
mod hub;
mod listener;
mod models;
mod notifier;
mod tail;

use diesel::RunQueryDsl;

pub use cursor::{EpochCursor, ModelsCursor};
pub use epochs::{EpochWatch, EpochWatchSpec, Selection};
pub use hub::{Change, Hub};
pub(crate) use listener::Listener;
pub use models::{ModelChange, ModelEvent, ModelWatch};
pub(crate) use notifier::Notifier;

use super::Store;
use crate::db::DbConnection;
use crate::error::Result;
use crate::security::ProjectScope;
use crate::store::records::Epoch;

/// The PostgreSQL notification channel of watch changes.
pub const CHANNEL: &str = "mlmeta_watch";

/// In a model-changing transaction: tells the other replicas' watchers
/// (PostgreSQL delivers it at commit, and not at all on rollback). The
/// caller tells this process's hub after the commit.
pub(crate) fn notify_models(conn: &mut DbConnection) -> Result<()> {
    if let DbConnection::Postgres(c) = conn {
        diesel::sql_query("SELECT pg_notify('mlmeta_watch', 'm')").execute(c)?;
    }
    Ok(())
}

impl Store {
    /// The change hub of this server process.
    pub fn hub(&self) -> &std::sync::Arc<Hub> {
        &self.database.hub
    }

    /// Starts watching epochs of `project` (see [`EpochWatchSpec`]).
    pub fn watch_epochs(&self, project: &ProjectScope, spec: EpochWatchSpec) -> Result<EpochWatch> {
        self.read(|conn| epochs::start(conn, &self.project_ids, project, spec))
    }

    /// The next epochs of `watch`, at most `limit` (see `epochs::read`).
    pub fn read_watched_epochs(
        &self,
        watch: &mut EpochWatch,
        rediscover: bool,
        limit: usize,
    ) -> Result<Vec<Epoch>> {
        let remote = self.database.hub.tail().remote();
        let epochs = self.read(|conn| epochs::read(conn, &self.project_ids, watch, rediscover, limit))?;
        watch.read_database_at(remote);
        self.database.hub.count_read(false);
        Ok(epochs)
    }

    /// The next epochs of `watch` from this process's recent commits, at
    /// most `limit`, without touching the database; `None` when they
    /// must be read from it (see `epochs::read_from_tail`).
    pub fn read_watched_epochs_from_memory(
        &self,
        watch: &mut EpochWatch,
        limit: usize,
    ) -> Option<Vec<Epoch>> {
        let epochs = epochs::read_from_tail(watch, self.database.hub.tail(), limit)?;
        self.database.hub.count_read(true);
        Some(epochs)
    }

    /// Starts watching models of `project`.
    pub fn watch_models(
        &self,
        project: &ProjectScope,
        selection: Selection,
        cursor: Option<ModelsCursor>,
    ) -> Result<ModelWatch> {
        self.read(|conn| models::start(conn, &self.project_ids, project, selection, cursor))
    }

    /// The model events of `watch` since its cursor.
    pub fn read_model_events(&self, watch: &mut ModelWatch) -> Result<Vec<ModelEvent>> {
        self.read(|conn| models::read(conn, &self.project_ids, watch))
    }
}
