//! The after-commit hook of the group commit: the ingest path's one exit.

use std::sync::Arc;

use crate::security::ProjectScope;
use crate::store::records::Epoch;

/// What one committed transaction of the group commit stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Committed {
    /// The models that received new epochs, in model-id order; empty when
    /// the transaction stored none (every epoch was a duplicate, or every
    /// request of it was refused).
    pub models: Vec<CommittedModel>,
}

/// The new epochs of one model in a committed transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct CommittedModel {
    /// The project of the model.
    pub project: ProjectScope,
    /// The model's id (stable: ids are never reused).
    pub model_id: i64,
    /// The model's name within its project.
    pub model_name: String,
    /// The epoch numbers stored, ascending (never empty).
    pub epoch_nums: Vec<i64>,
    /// The highest of `epoch_nums`.
    pub max_epoch_num: i64,
    /// The model's run was CRASHED and these epochs made it RUNNING again
    /// (a status change, which watchers of models care about).
    pub revived: bool,
    /// The model's `epoch_seq` after this transaction: the commit-ordered
    /// number of its batch, as watch cursors count them.
    pub seq: i64,
    /// The stored epochs themselves, in `epoch_nums` order, when a hook
    /// asked for them ([`CommitHook::wants_epochs`]): the watchers of this
    /// process get them from memory instead of each reading them back.
    pub epochs: Option<Arc<[Epoch]>>,
}

/// Told, after each committed transaction of the group commit, what it
/// stored.
///
/// [`CommitHook::committed`] runs on the writer thread, after the commit
/// and before the callers whose epochs it stored are answered, once per
/// committed transaction and never for one that rolled back (or whose
/// commit the server could not acknowledge, such as a SQLite file moved
/// away meanwhile). It must not block: every writer waits for it. Hand the
/// news on (a `tokio::sync::broadcast`, an atomic counter) and return.
pub trait CommitHook: Send + Sync + 'static {
    /// `committed` was just committed.
    fn committed(&self, committed: &Committed);

    /// Whether [`CommittedModel::epochs`] should carry the epochs (a copy
    /// of each: asked for only while someone will read them).
    fn wants_epochs(&self) -> bool {
        false
    }
}

impl<F: Fn(&Committed) + Send + Sync + 'static> CommitHook for F {
    fn committed(&self, committed: &Committed) {
        self(committed);
    }
}

/// The hook of a server without watchers: logs each model's new epochs
/// at `trace` level (`RUST_LOG=mlmeta_server::store::ingest=trace`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceHook;

impl CommitHook for TraceHook {
    fn committed(&self, committed: &Committed) {
        for model in &committed.models {
            tracing::trace!(
                project = model.project.name(),
                model = %model.model_name,
                model_id = model.model_id,
                epochs = model.epoch_nums.len(),
                first_epoch = model.epoch_nums.first().copied().unwrap_or_default(),
                max_epoch = model.max_epoch_num,
                "epochs committed"
            );
        }
    }
}

/// Several hooks behind the one exit, told in order (watch notifications,
/// metrics, tracing each add theirs).
#[derive(Clone, Default)]
pub struct CommitHooks(Vec<std::sync::Arc<dyn CommitHook>>);

impl CommitHooks {
    /// No hooks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `hook` after the ones already here.
    #[must_use]
    pub fn with(mut self, hook: std::sync::Arc<dyn CommitHook>) -> Self {
        self.0.push(hook);
        self
    }
}

impl std::fmt::Debug for CommitHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitHooks")
            .field("hooks", &self.0.len())
            .finish()
    }
}

impl CommitHook for CommitHooks {
    fn committed(&self, committed: &Committed) {
        for hook in &self.0 {
            hook.committed(committed);
        }
    }

    fn wants_epochs(&self) -> bool {
        self.0.iter().any(|hook| hook.wants_epochs())
    }
}
