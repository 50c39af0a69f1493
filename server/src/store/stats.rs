//! [`StoreStats`]: what the storage layer reports on `/metrics`, read at
//! each scrape.

use std::sync::Arc;

use super::Store;
use super::ingest::IngestStats;
use super::sweeper::SweepStats;
use crate::db::CheckpointStats;

/// A snapshot of the store's gauges, with its counters.
#[derive(Debug)]
pub(crate) struct StoreStats {
    /// Connections the pool holds (busy and idle).
    pub pool_connections: u32,
    /// Of those, idle ones.
    pub pool_idle: u32,
    /// The most the pool opens (`--pool-size`).
    pub pool_max: u32,
    /// Epochs queued for or being written by the group commit.
    pub queued_epochs: usize,
    /// The group commit's counters.
    pub ingest: Arc<IngestStats>,
    /// The run sweeper's counters.
    pub sweeps: Arc<SweepStats>,
    /// SQLite: the checkpointer's counters.
    pub checkpoints: Option<Arc<CheckpointStats>>,
    /// SQLite: the size of the `-wal` file now (0 when there is none).
    pub wal_bytes: Option<u64>,
    /// Watch streams (WatchEpochs, WatchModels) open now.
    pub watchers: usize,
    /// Epoch-watch reads so far: (from this process's memory, from the
    /// database).
    pub watch_reads: (u64, u64),
}

impl Store {
    /// The store's metrics now. Cheap (a pool lock, one `stat` of the WAL
    /// file): runs on the scrape's task.
    pub(crate) fn stats(&self) -> StoreStats {
        let pool = self.database.pool.state();
        let wal_bytes = self.database.sqlite_file.as_ref().map(|file| {
            let mut wal = file.path().as_os_str().to_owned();
            wal.push("-wal");
            std::fs::metadata(wal).map_or(0, |meta| meta.len())
        });
        StoreStats {
            pool_connections: pool.connections,
            pool_idle: pool.idle_connections,
            pool_max: self.database.pool.max_size(),
            queued_epochs: self.epoch_writers.queued_epochs(),
            ingest: Arc::clone(&self.ingest_stats),
            sweeps: Arc::clone(&self.sweeper.stats),
            checkpoints: self.checkpointer.as_ref().map(|c| c.stats()),
            wal_bytes,
            watchers: self.hub().watchers(),
            watch_reads: self.hub().reads(),
        }
    }
}
