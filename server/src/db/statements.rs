//! Counts the statements each thread sends to the database, so that the
//! ingest path can report (and a test can pin) how many statements, and on
//! PostgreSQL how many round trips, one write costs.
//!
//! A thread-local count, not a per-connection one: a writer thread takes
//! whichever pooled connection is free, and a thread runs one statement at
//! a time, so the difference of its count around a write is exactly that
//! write's statements.

use std::cell::Cell;

use diesel::connection::{Instrumentation, InstrumentationEvent};

thread_local! {
    static STATEMENTS: Cell<u64> = const { Cell::new(0) };
}

/// Statements (queries, `BEGIN`, `COMMIT`, …) sent to the database by the
/// calling thread since it started.
pub(crate) fn statements_on_this_thread() -> u64 {
    STATEMENTS.with(Cell::get)
}

/// The instrumentation every pooled connection carries: counts each
/// statement it starts on the thread that runs it.
#[derive(Debug, Default)]
pub(super) struct CountStatements;

impl Instrumentation for CountStatements {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { .. } = event {
            STATEMENTS.with(|count| count.set(count.get() + 1));
        }
    }
}
