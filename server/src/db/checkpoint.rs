//! Background WAL checkpoints for SQLite.
//!
//! With SQLite's automatic checkpoints the connection whose commit pushes
//! the WAL past its limit copies the WAL back into the database file (and
//! fsyncs both) inside that commit, while this process's writer lock is
//! held: every epoch writer waits for it. Pooled connections therefore have
//! `wal_autocheckpoint = 0`, and this thread checkpoints on a connection of
//! its own instead:
//!
//! - every [`INTERVAL`], a PASSIVE checkpoint without the writer lock: it
//!   copies what is committed so far while the writer keeps committing;
//! - when the WAL has grown past [`RESTART_FRAMES`], a PASSIVE checkpoint
//!   of the (short) rest while holding the writer lock, so that the WAL is
//!   fully copied when the next writer starts, which then rewinds it to the
//!   start (SQLite does that itself): the WAL file stays bounded under
//!   continuous writes;
//! - after [`IDLE_TICKS`] ticks without new commits, a TRUNCATE checkpoint,
//!   which also shrinks the WAL file to zero bytes.
//!
//! Durability does not change: a commit is in the WAL (the operating
//! system's page cache) before it is acknowledged, which is what survives a
//! crash or SIGKILL of the process; checkpoints only move committed pages
//! into the database file, fsyncing as `synchronous = NORMAL` prescribes.
//!
//! Every tick also checks that the database file is still at its path
//! ([`SqliteFile`]). When it is found gone, a last FULL checkpoint under the
//! writer lock copies every acknowledged commit from the WAL into the file
//! (through the descriptor SQLite holds, so into the moved file even when
//! its `-wal` stayed behind at the old path).
//!
//! A checkpoint that fails (a full disk, a read-only file) is retried every
//! tick, but logged once per [`FAILURE_LOG_INTERVAL`] with a count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::Integer;
use diesel::sqlite::SqliteConnection;

use super::pool::sqlite_checkpointer_connection;
use super::{SqliteFile, Threads};
use crate::error::StartupError;
use crate::log_limit::LogLimiter;
use crate::metrics::{AtomicHistogram, SECONDS};

/// How often the WAL is copied back into the database file.
const INTERVAL: Duration = Duration::from_millis(50);

/// WAL frames (pages) beyond which the checkpointer briefly holds the
/// writer lock to let the WAL rewind: about 40 MB at 4 KiB pages, the limit
/// the automatic checkpoints had.
const RESTART_FRAMES: i32 = 10_000;

/// Ticks without a new commit after which the WAL file is truncated.
const IDLE_TICKS: u32 = 20;

/// How often a checkpoint that keeps failing is logged.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The running checkpointer; dropping it (with the last `Store`) stops the
/// thread after a final checkpoint.
pub(crate) struct Checkpointer {
    _stop: mpsc::Sender<()>,
    stats: Arc<CheckpointStats>,
}

/// What the checkpointer did, for `/metrics`.
#[derive(Debug)]
pub(crate) struct CheckpointStats {
    /// Time each checkpoint took (every mode; most are the PASSIVE ones of
    /// each tick).
    pub seconds: AtomicHistogram,
    /// Checkpoints that failed.
    pub failures: AtomicU64,
}

/// One row of `PRAGMA wal_checkpoint`.
#[derive(QueryableByName, Debug, Clone, Copy, PartialEq, Eq)]
struct CheckpointResult {
    /// 1 when the checkpoint could not run to completion (readers, locks).
    #[diesel(sql_type = Integer)]
    busy: i32,
    /// Frames in the WAL.
    #[diesel(sql_type = Integer)]
    log: i32,
    /// Frames copied into the database file.
    #[diesel(sql_type = Integer)]
    checkpointed: i32,
}

impl Checkpointer {
    /// Opens the checkpointer's connection to the SQLite `file` and starts
    /// its thread. `writer` is the lock the epoch writers hold while they
    /// write.
    pub(crate) fn start(
        file: Arc<SqliteFile>,
        writer: Arc<Mutex<()>>,
        threads: &Threads,
    ) -> Result<Self, StartupError> {
        let conn = sqlite_checkpointer_connection(file.path())?;
        let (stop, stopped) = mpsc::channel();
        let stats = Arc::new(CheckpointStats {
            seconds: AtomicHistogram::seconds(SECONDS),
            failures: AtomicU64::new(0),
        });
        let counted = Arc::clone(&stats);
        threads
            .spawn("sqlite-checkpointer".to_owned(), move || {
                let mut thread = Thread {
                    conn,
                    failures: LogLimiter::new(FAILURE_LOG_INTERVAL),
                    failed_in_a_row: 0,
                    stats: counted,
                };
                thread.run(&file, &writer, &stopped);
            })
            .map_err(|e| StartupError::Task(format!("cannot start the checkpointer thread: {e}")))?;
        Ok(Self { _stop: stop, stats })
    }

    /// Its counters.
    pub(crate) fn stats(&self) -> Arc<CheckpointStats> {
        Arc::clone(&self.stats)
    }
}

/// The checkpointer thread's state.
struct Thread {
    conn: SqliteConnection,
    /// Limits the warnings of a checkpoint that keeps failing.
    failures: LogLimiter,
    /// Checkpoints failed since the last that succeeded.
    failed_in_a_row: u64,
    stats: Arc<CheckpointStats>,
}

impl Thread {
    fn run(&mut self, file: &SqliteFile, writer: &Mutex<()>, stopped: &mpsc::Receiver<()>) {
        let mut last_log = 0;
        let mut idle_ticks = 0;
        let mut moved = false;
        loop {
            match stopped.recv_timeout(INTERVAL) {
                Err(RecvTimeoutError::Timeout) => {}
                // The store is gone: a last checkpoint, so the file is complete.
                Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                    let _writer = writer.lock().unwrap_or_else(PoisonError::into_inner);
                    let _ = self.checkpoint("TRUNCATE");
                    return;
                }
            }
            let was_moved = std::mem::replace(&mut moved, file.check().is_err());
            if moved && !was_moved {
                // Writers acknowledge nothing committed after the move (they
                // check the file after each commit) and start none once it
                // is known: what was acknowledged is in the WAL now. Copy it
                // all into the file that was ours, wherever it went.
                let _writer = writer.lock().unwrap_or_else(PoisonError::into_inner);
                let _ = self.checkpoint("FULL");
            }
            let Some(result) = self.checkpoint("PASSIVE") else {
                continue;
            };
            if result.log != last_log {
                idle_ticks = 0;
                last_log = result.log;
            } else if result.log > 0 {
                idle_ticks += 1;
            }
            if idle_ticks >= IDLE_TICKS {
                // Only when no writer of this process is busy: TRUNCATE waits
                // for readers, and waiting here would hold writers up. One that
                // readers kept busy is tried again after another idle spell,
                // not on every tick.
                if let Ok(_writer) = writer.try_lock() {
                    let truncated = self.checkpoint("TRUNCATE").is_some_and(|r| r.busy == 0);
                    idle_ticks = 0;
                    if truncated {
                        last_log = 0;
                    }
                }
            } else if result.log >= RESTART_FRAMES {
                // A poisoned lock only means a writer panicked; its transaction
                // rolled back.
                let _writer = writer.lock().unwrap_or_else(PoisonError::into_inner);
                let _ = self.checkpoint("PASSIVE");
            }
        }
    }

    /// Runs one checkpoint in `mode`; failures are logged (rate-limited) and
    /// retried on the next tick (a checkpoint that does not run leaves the WAL
    /// longer, never loses data).
    fn checkpoint(&mut self, mode: &str) -> Option<CheckpointResult> {
        let started = std::time::Instant::now();
        let outcome = diesel::sql_query(format!("PRAGMA wal_checkpoint({mode})"))
            .get_result::<CheckpointResult>(&mut self.conn);
        self.stats.seconds.observe_duration(started.elapsed());
        match outcome {
            Ok(result) => {
                let failed = std::mem::take(&mut self.failed_in_a_row);
                if failed > 0 {
                    self.failures.reset();
                    tracing::info!(failed, "WAL checkpoints succeed again");
                }
                Some(result)
            }
            Err(error) => {
                self.failed_in_a_row += 1;
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                if let Some(suppressed) = self.failures.allow() {
                    tracing::warn!(
                        %error,
                        mode,
                        suppressed,
                        "WAL checkpoint failed; retrying every {INTERVAL:?}, logging once per {FAILURE_LOG_INTERVAL:?}"
                    );
                }
                None
            }
        }
    }
}
