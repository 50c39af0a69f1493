//! The sweeper thread: every `--sweep-interval-ms`, marks CRASHED the
//! RUNNING models whose trainers went silent past their heartbeat timeout.
//!
//! Every replica runs one. Sweeps are idempotent when they race (each batch
//! is a compare-and-set on the status, see `runs::sweep_batch`) and use the
//! database's clock, so replicas with skewed clocks mark the same runs.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use super::{Database, runs};
use crate::error::Result;

/// The running sweeper; dropping it (with the last `Store`) stops the
/// thread.
pub(super) struct Sweeper {
    _stop: mpsc::Sender<()>,
}

impl Sweeper {
    /// Starts the thread sweeping `database` every `interval`.
    pub(super) fn start(
        database: Database,
        interval: Duration,
        default_timeout_secs: i64,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        thread::Builder::new()
            .name("run-sweeper".to_owned())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    let started = Instant::now();
                    match sweep(&database, default_timeout_secs) {
                        Ok(0) => {}
                        Ok(marked) => {
                            tracing::info!(marked, elapsed = ?started.elapsed(), "runs marked CRASHED (heartbeat timeout)");
                        }
                        // Retried on the next tick: a missed sweep only
                        // marks a crash later.
                        Err(error) => tracing::warn!(%error, "run sweep failed"),
                    }
                }
            })?;
        Ok(Self { _stop: stop })
    }
}

/// Sweeps in batches of one write transaction each, until a batch comes
/// back short: other writers get the lock between batches.
pub(super) fn sweep(database: &Database, default_timeout_secs: i64) -> Result<usize> {
    let mut total = 0;
    loop {
        let marked = database.write(|conn| runs::sweep_batch(conn, default_timeout_secs))?;
        total += marked;
        if marked < usize::try_from(runs::SWEEP_BATCH).unwrap_or(usize::MAX) {
            return Ok(total);
        }
    }
}
