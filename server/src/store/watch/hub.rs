//! The change hub: one per server process, telling its watchers that
//! something changed (never what: they re-read from their own cursors, so
//! a lost or coalesced notification costs latency, never data).

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use tokio::sync::broadcast;

use super::tail::Tail;
use crate::store::ingest::hook::{CommitHook, Committed};

/// Notifications buffered per hub; a watcher that falls further behind
/// gets `Lagged` and re-reads everything it watches.
const CAPACITY: usize = 1024;

/// What a watcher learns from the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// New epochs were committed for these models.
    Epochs(Arc<[i64]>),
    /// Models were created, changed status or tags, were deleted,
    /// restored or purged (which ones, a watcher finds out by re-reading).
    Models,
    /// Anything may have changed: a notification that named no ids (too
    /// many, or a run revived), or the listener reconnected (notifications
    /// may have been lost meanwhile).
    Any,
}

impl Change {
    /// Parses the payload of a PostgreSQL notification on
    /// [`super::CHANNEL`]: `e` with comma-separated model ids (none:
    /// any), or `m`.
    pub fn from_payload(payload: &str) -> Self {
        if payload == "m" {
            return Self::Models;
        }
        match payload.strip_prefix('e') {
            Some(ids) if !ids.is_empty() => {
                let parsed: Option<Vec<i64>> = ids.split(',').map(|id| id.parse().ok()).collect();
                parsed.map_or(Self::Any, |ids| Self::Epochs(ids.into()))
            }
            _ => Self::Any,
        }
    }
}

/// The broadcast of changes of one server process; fed by the group
/// commit's hook, by model writes, and on PostgreSQL by the listener (the
/// other replicas' commits).
#[derive(Debug)]
pub struct Hub {
    sender: broadcast::Sender<Change>,
    /// This process's recent commits, for its watchers to read from memory.
    tail: Tail,
    /// PostgreSQL: the backend pid of this process's notifier connection
    /// (0: none yet), whose notifications the listener leaves out: this
    /// process's watchers heard of those commits from the hook already.
    notifier_pid: AtomicI32,
    /// Epoch-watch reads answered from the tail, and from the database.
    reads_from_memory: AtomicU64,
    reads_from_database: AtomicU64,
}

impl Hub {
    /// A hub without watchers.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            sender: broadcast::channel(CAPACITY).0,
            tail: Tail::default(),
            notifier_pid: AtomicI32::new(0),
            reads_from_memory: AtomicU64::new(0),
            reads_from_database: AtomicU64::new(0),
        })
    }

    /// The recent commits of this process.
    pub(crate) fn tail(&self) -> &Tail {
        &self.tail
    }

    /// Counts an epoch-watch read, from memory or from the database.
    pub(crate) fn count_read(&self, from_memory: bool) {
        let counter = if from_memory {
            &self.reads_from_memory
        } else {
            &self.reads_from_database
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Epoch-watch reads so far: (from memory, from the database).
    pub(crate) fn reads(&self) -> (u64, u64) {
        (
            self.reads_from_memory.load(Ordering::Relaxed),
            self.reads_from_database.load(Ordering::Relaxed),
        )
    }

    /// The notifier connected with backend `pid`.
    pub(crate) fn set_notifier_pid(&self, pid: i32) {
        self.notifier_pid.store(pid, Ordering::Release);
    }

    /// A notification sent by backend `pid` arrived: hands it on, unless it
    /// is this process's own notifier's.
    pub(crate) fn relay(&self, pid: i32, payload: &str) {
        let change = Change::from_payload(payload);
        if matches!(change, Change::Epochs(_)) && pid == self.notifier_pid.load(Ordering::Acquire) {
            return;
        }
        if matches!(change, Change::Epochs(_) | Change::Any) {
            self.tail.remote_commit();
        }
        self.send(change);
    }

    /// A new watcher's receiver.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.sender.subscribe()
    }

    /// Watch streams subscribed now (for `/metrics`).
    pub fn watchers(&self) -> usize {
        self.sender.receiver_count()
    }

    /// Tells every watcher; never blocks (without watchers it does nothing).
    pub fn send(&self, change: Change) {
        let _ = self.sender.send(change);
    }
}

impl CommitHook for Hub {
    fn committed(&self, committed: &Committed) {
        // Into the tail first: a watcher told of a batch finds it there.
        for model in &committed.models {
            if let Some(epochs) = &model.epochs {
                self.tail.push(model.model_id, model.seq, Arc::clone(epochs));
            }
        }
        if !committed.models.is_empty() {
            let ids: Arc<[i64]> = committed.models.iter().map(|m| m.model_id).collect();
            self.send(Change::Epochs(ids));
        }
        if committed.models.iter().any(|m| m.revived) {
            self.send(Change::Models);
        }
    }

    fn wants_epochs(&self) -> bool {
        self.watchers() > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_to_changes() {
        assert_eq!(Change::from_payload("e1,22"), Change::Epochs([1, 22].into()));
        assert_eq!(Change::from_payload("e"), Change::Any);
        assert_eq!(Change::from_payload("e1,x"), Change::Any);
        assert_eq!(Change::from_payload("m"), Change::Models);
        assert_eq!(Change::from_payload(""), Change::Any);
        assert_eq!(Change::from_payload("zz"), Change::Any);
    }
}
