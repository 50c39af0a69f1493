//! The change hub: one per server process, telling its watchers that
//! something changed (never what: they re-read from their own cursors, so
//! a lost or coalesced notification costs latency, never data).

use std::sync::Arc;

use tokio::sync::broadcast;

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
}

impl Hub {
    /// A hub without watchers.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            sender: broadcast::channel(CAPACITY).0,
        })
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
        if !committed.models.is_empty() {
            let ids: Arc<[i64]> = committed.models.iter().map(|m| m.model_id).collect();
            self.send(Change::Epochs(ids));
        }
        if committed.models.iter().any(|m| m.revived) {
            self.send(Change::Models);
        }
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
