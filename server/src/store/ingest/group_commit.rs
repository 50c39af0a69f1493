//! Group commit of epoch inserts.
//!
//! Every `InsertEpochs` request (and every `StreamEpochs` message) joins
//! one queue. Writer threads take whatever has queued up and store it in
//! one transaction, then answer each caller. Under many concurrent trainers
//! one commit (the expensive part: the lock hand-over on SQLite, the WAL
//! flush on PostgreSQL) then serves dozens of requests instead of one.
//! Callers are answered only after their transaction has committed, and
//! after the [`CommitHook`] has been told what it stored.
//!
//! Memory is bounded: a caller first takes room for its epochs in the
//! queue and waits while there is none (backpressure), so the server never
//! holds more than [`QUEUED_EPOCHS`] epochs that are not yet stored.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use tokio::sync::{Semaphore, mpsc, oneshot};

use super::hook::CommitHook;
use super::insert::{self, Capture, Inserted, Plan};
use super::model_ids::ModelIds;
use super::stats::IngestStats;
use crate::db::{Threads, statements_on_this_thread};
use crate::error::{Error, Result};
use crate::security::ProjectScope;
use crate::store::Database;
use crate::store::projects::ProjectIds;
use crate::store::records::{InsertCounts, NewEpoch};

/// Epochs queued or being written, at most; more callers wait for room.
/// About 100 MB at 8 metrics per epoch (about 700 MB at 32, measured),
/// which is ample: one transaction takes [`BATCH_EPOCHS`].
pub const QUEUED_EPOCHS: usize = 200_000;

/// Epochs a writer gathers into one transaction before committing (more
/// only when a single request is larger). Large enough to amortise a
/// commit over many requests, small enough to keep latency low.
const BATCH_EPOCHS: usize = 20_000;

/// Requests waiting for a writer, stored in one transaction in this
/// order (one `InsertEpochs` call, or the batches of a `WriteEpochs`
/// stream that arrived while its previous ones committed).
struct Job {
    requests: Vec<(ProjectScope, Vec<NewEpoch>)>,
    /// One outcome per request, in order.
    reply: oneshot::Sender<Vec<Result<InsertCounts>>>,
}

impl Job {
    fn epochs(&self) -> usize {
        self.requests.iter().map(|(_, epochs)| epochs.len()).sum()
    }
}

/// The queue in front of the writer threads; dropping it stops them once
/// the queue is empty.
pub(crate) struct GroupCommit {
    jobs: mpsc::UnboundedSender<Job>,
    room: Arc<Semaphore>,
}

impl GroupCommit {
    /// Starts `writers` threads writing into `database`; `hook` is told
    /// what each committed transaction stored, `stats` counts them.
    pub(crate) fn start(
        database: Database,
        project_ids: Arc<ProjectIds>,
        writers: usize,
        hook: Arc<dyn CommitHook>,
        stats: Arc<IngestStats>,
        threads: &Threads,
    ) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::unbounded_channel();
        let queue = Arc::new(Mutex::new(queue));
        let shared = Arc::new(Shared {
            projects: project_ids,
            models: ModelIds::default(),
            hook,
            stats,
        });
        for number in 0..writers.max(1) {
            let (queue, database, shared) = (Arc::clone(&queue), database.clone(), Arc::clone(&shared));
            threads.spawn(format!("epoch-writer-{number}"), move || {
                write_batches(&queue, &database, &shared);
            })?;
        }
        Ok(Self {
            jobs,
            room: Arc::new(Semaphore::new(QUEUED_EPOCHS)),
        })
    }

    /// Epochs queued or being written now (at most [`QUEUED_EPOCHS`]).
    pub(crate) fn queued_epochs(&self) -> usize {
        QUEUED_EPOCHS.saturating_sub(self.room.available_permits())
    }

    /// Stores `epochs` as one all-or-nothing request; returns once they are
    /// committed.
    pub(crate) async fn insert(&self, project: ProjectScope, epochs: Vec<NewEpoch>) -> Result<InsertCounts> {
        self.insert_in_order(vec![(project, epochs)])
            .await?
            .pop()
            .unwrap_or(Ok(InsertCounts::default()))
    }

    /// Stores several all-or-nothing requests, in this order and in the
    /// same transaction (shared with other callers' requests), each with
    /// its own outcome; returns once they are committed. The outer `Err`
    /// means none was stored (the writers stopped).
    ///
    /// A later request never commits before an earlier one: an epoch that
    /// two of them carry is stored from the first, and counted as skipped
    /// in the other.
    pub(crate) async fn insert_in_order(
        &self,
        requests: Vec<(ProjectScope, Vec<NewEpoch>)>,
    ) -> Result<Vec<Result<InsertCounts>>> {
        let job_epochs: usize = requests.iter().map(|(_, epochs)| epochs.len()).sum();
        if job_epochs == 0 {
            return Ok(requests.iter().map(|_| Ok(InsertCounts::default())).collect());
        }
        // A job larger than the whole queue waits until it is empty.
        let cost = u32::try_from(job_epochs.min(QUEUED_EPOCHS)).unwrap_or(u32::MAX);
        let _room = self.room.acquire_many(cost).await.map_err(|_| stopped())?;
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { requests, reply }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())
    }
}

fn stopped() -> Error {
    Error::Unavailable("the epoch writer has stopped; the server is shutting down".to_owned())
}

/// What the writers share: the id caches, the commit hook, the counters.
struct Shared {
    projects: Arc<ProjectIds>,
    models: ModelIds,
    hook: Arc<dyn CommitHook>,
    stats: Arc<IngestStats>,
}

/// A writer thread: takes the next batch off the queue, stores it, answers.
fn write_batches(queue: &Mutex<mpsc::UnboundedReceiver<Job>>, database: &Database, shared: &Shared) {
    while let Some(batch) = next_batch(queue) {
        let requests: Vec<(&ProjectScope, &[NewEpoch])> = batch
            .iter()
            .flat_map(|job| {
                job.requests
                    .iter()
                    .map(|(project, epochs)| (project, epochs.as_slice()))
            })
            .collect();
        let outcomes = match write_fresh(database, shared, &requests) {
            Ok(outcomes) => outcomes,
            Err(error) if requests.len() == 1 => vec![Err(error)],
            // One request may have caused the failure: store each on its
            // own (in order), so that only that request fails.
            Err(error) => {
                tracing::debug!(%error, requests = requests.len(), "batch failed; writing its requests one by one");
                requests
                    .iter()
                    .map(|&request| {
                        write_fresh(database, shared, &[request])
                            .and_then(|mut outcomes| outcomes.pop().unwrap_or(Ok(InsertCounts::default())))
                    })
                    .collect()
            }
        };
        drop(requests);
        let mut outcomes = outcomes.into_iter();
        for job in batch {
            let answers: Vec<Result<InsertCounts>> = outcomes.by_ref().take(job.requests.len()).collect();
            // The caller may have gone (cancelled); its epochs are stored anyway.
            let _ = job.reply.send(answers);
        }
    }
}

/// Stale model ids caught in the transaction: see `ModelIds`. Each retry
/// looks the dropped names up again, so one is nearly always enough.
const STALE_ID_RETRIES: u32 = 3;

/// Writes `requests` in one transaction, again (after the cache dropped
/// the stale ids) when it met a model deleted or purged meanwhile. On
/// PostgreSQL `Database::write` retries conflicts itself too. Once the
/// transaction is committed, tells the hook what it stored.
fn write_fresh(
    database: &Database,
    shared: &Shared,
    requests: &[(&ProjectScope, &[NewEpoch])],
) -> Result<Vec<Result<InsertCounts>>> {
    let epochs: usize = requests.iter().map(|(_, epochs)| epochs.len()).sum();
    // Imported epochs (`NewEpoch::recorded_at`) always take the
    // transaction: the one statement stores live epochs only.
    let plan = if database.is_postgres()
        && epochs <= insert::ONE_STATEMENT_MAX_EPOCHS
        && requests
            .iter()
            .all(|(_, epochs)| epochs.iter().all(|e| e.recorded_at.is_none()))
    {
        Plan::OneStatement
    } else {
        Plan::Transaction
    };
    let capture = if shared.hook.wants_epochs() {
        Capture::Epochs
    } else {
        Capture::Keys
    };
    let mut attempt = 0;
    loop {
        let started = std::time::Instant::now();
        let statements = statements_on_this_thread();
        let outcome = if plan == Plan::OneStatement {
            database.write_autocommit(|conn| {
                insert::insert(conn, &shared.projects, &shared.models, requests, plan, capture)
            })
        } else {
            database
                .write(|conn| insert::insert(conn, &shared.projects, &shared.models, requests, plan, capture))
        };
        shared.stats.statements(statements_on_this_thread() - statements);
        match outcome {
            Err(error) if error.is_transient_conflict() && attempt < STALE_ID_RETRIES => attempt += 1,
            Err(error) => return Err(error),
            Ok(Inserted { outcomes, committed }) => {
                shared.stats.committed(epochs, started.elapsed(), &outcomes);
                shared.hook.committed(&committed);
                return Ok(outcomes);
            }
        }
    }
}

/// How long a writer polls for the next job before it sleeps. A trainer
/// reporting epoch after epoch sends its next call about one round trip
/// after its answer; a writer that slept meanwhile is woken by the kernel,
/// which on an idle (virtual) CPU costs tens of microseconds per call.
/// The cost is bounded: only the writer holding the queue lock polls, and
/// an idle server stops polling 300 µs after its last request.
const SPIN: std::time::Duration = std::time::Duration::from_micros(300);

/// Polls the queue for up to [`SPIN`], yielding the CPU between polls so
/// that other threads (the callers) run on it.
fn spin_recv(queue: &mut mpsc::UnboundedReceiver<Job>) -> Option<Job> {
    let start = std::time::Instant::now();
    loop {
        match queue.try_recv() {
            Ok(job) => return Some(job),
            Err(mpsc::error::TryRecvError::Disconnected) => return None,
            Err(mpsc::error::TryRecvError::Empty) if start.elapsed() < SPIN => thread::yield_now(),
            Err(mpsc::error::TryRecvError::Empty) => return None,
        }
    }
}

/// Waits for a job, then takes every job queued behind it up to
/// [`BATCH_EPOCHS`] epochs. `None` once the queue is closed and empty.
fn next_batch(queue: &Mutex<mpsc::UnboundedReceiver<Job>>) -> Option<Vec<Job>> {
    // Writers take turns at gathering; a poisoned lock only means another
    // writer panicked, and the queue itself is intact.
    let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
    let first = match spin_recv(&mut queue) {
        Some(job) => job,
        None => queue.blocking_recv()?,
    };
    let mut epochs = first.epochs();
    let mut batch = vec![first];
    while epochs < BATCH_EPOCHS {
        match queue.try_recv() {
            Ok(job) => {
                epochs += job.epochs();
                batch.push(job);
            }
            Err(_) => break,
        }
    }
    Some(batch)
}
