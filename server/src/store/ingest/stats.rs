//! What the group commit did, for `/metrics`: counters the writer threads
//! add to after each committed transaction (atomics only: every writer
//! passes here).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::metrics::{AtomicHistogram, EPOCHS, SECONDS};
use crate::store::records::InsertCounts;

/// Counters of the group commit since the store opened.
#[derive(Debug)]
pub(crate) struct IngestStats {
    /// Epochs stored.
    pub inserted: AtomicU64,
    /// Epochs skipped (already stored, or repeated in the batch).
    pub skipped: AtomicU64,
    /// Committed transactions.
    pub transactions: AtomicU64,
    /// Epochs per committed transaction (stored and skipped).
    pub batch_epochs: AtomicHistogram,
    /// Time of each committed transaction, from BEGIN to COMMIT.
    pub commit_seconds: AtomicHistogram,
    /// Statements the writers sent to the database (on PostgreSQL each
    /// one a round trip), retries and failed writes included.
    pub statements: AtomicU64,
}

impl Default for IngestStats {
    fn default() -> Self {
        Self {
            inserted: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
            batch_epochs: AtomicHistogram::counts(EPOCHS),
            commit_seconds: AtomicHistogram::seconds(SECONDS),
            statements: AtomicU64::new(0),
        }
    }
}

impl IngestStats {
    /// A write (committed or not) sent `count` statements.
    pub(crate) fn statements(&self, count: u64) {
        self.statements.fetch_add(count, Ordering::Relaxed);
    }

    /// A transaction of `epochs` committed in `took`, with these outcomes.
    pub(crate) fn committed<'a>(
        &self,
        epochs: usize,
        took: Duration,
        outcomes: impl IntoIterator<Item = &'a crate::error::Result<InsertCounts>>,
    ) {
        let (mut inserted, mut skipped) = (0, 0);
        for counts in outcomes.into_iter().flatten() {
            inserted += counts.inserted;
            skipped += counts.skipped;
        }
        self.inserted.fetch_add(inserted, Ordering::Relaxed);
        self.skipped.fetch_add(skipped, Ordering::Relaxed);
        self.transactions.fetch_add(1, Ordering::Relaxed);
        self.batch_epochs.observe(epochs as u64);
        self.commit_seconds.observe_duration(took);
    }
}
