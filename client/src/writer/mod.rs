//! [`EpochWriter`]: epochs logged from a training loop at next to no cost,
//! stored in batches by a background task.

mod buffer;
mod options;
mod worker;

use std::sync::Arc;

use tokio::sync::{TryAcquireError, watch};
use tokio::task::JoinHandle;

pub use self::options::{WhenFull, WriterOptions};

use self::buffer::Buffer;
use self::worker::Progress;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::limits::check_epoch;
use crate::types::{InsertCounts, NewEpoch};

/// A background writer of one model's epochs, for trainers.
///
/// [`log`](EpochWriter::log) checks the epoch and appends it to a buffer;
/// a background task sends the buffer in batches: as soon as
/// [`batch_size`](WriterOptions::batch_size) epochs are waiting, and
/// otherwise every [`flush_interval`](WriterOptions::flush_interval).
/// Batches go over one `WriteEpochs` stream, a few in flight at a time
/// (batches that piled up meanwhile go together in the next one); the
/// server acknowledges each once it is committed, so
/// [`stats`](EpochWriter::stats)`.stored` is exactly what is durable. After
/// the stream breaks (a server restart, a load balancer switching
/// replicas) the writer reconnects and resends only the batches not yet
/// acknowledged. On a server without `WriteEpochs` (an older release: it
/// answers UNIMPLEMENTED) the writer falls back to `InsertEpochs` calls,
/// one at a time.
///
/// **Bounded memory.** At most [`max_buffered`](WriterOptions::max_buffered)
/// epochs are logged but not yet stored. When the server is slow or away
/// and that many are waiting, `log` waits for room or fails with
/// [`Error::BufferFull`], as [`when_full`](WriterOptions::when_full) says.
///
/// **Retries.** A transient failure (the server unreachable or restarting,
/// UNAVAILABLE, a broken connection, DEADLINE_EXCEEDED, ABORTED) is retried
/// with exponential backoff and jitter for up to
/// [`retry`](WriterOptions::retry)`.max_elapsed` (per request, or since the
/// last acknowledgement on the stream). Re-sending epochs that were stored
/// but whose answer was lost is harmless: the server skips them. Any other failure (an unknown model is NOT_FOUND), or
/// running out of retry time, stops the writer for good: the epochs it
/// buffered are dropped, and every later `log`, `flush` and `close`
/// returns that error. Epochs the server would refuse (negative numbers,
/// bad metric names, over 1,024 metrics) are refused by `log` itself with
/// [`Error::InvalidArgument`], without stopping the writer.
///
/// **Counts.** [`close`](EpochWriter::close) returns how many epochs were
/// newly stored and how many skipped as already stored (an epoch number
/// logged twice, or a batch stored by an attempt whose answer was lost and
/// then sent again). Each logged epoch is counted exactly once.
///
/// **Dropping without `close`.** The epochs buffered so far are still
/// sent by the background task, with the same retries, as long as the Tokio
/// runtime runs; nobody learns the outcome (a failure is only logged with
/// `tracing`). If the runtime shuts down first (say, `main` returns), the
/// epochs not yet stored are lost. Call [`close`](EpochWriter::close) to
/// know that everything was stored.
///
/// ```no_run
/// use mlmeta_client::Client;
///
/// # async fn train() -> mlmeta_client::Result<()> {
/// let client = Client::connect("http://127.0.0.1:50051").await?;
/// let writer = client.epoch_writer("run-1")?;
/// for epoch in 0..10_000 {
///     let loss = 1.0 / (epoch + 1) as f64;
///     writer.log(epoch, [("loss", loss), ("accuracy", 1.0 - loss)]).await?;
/// }
/// let counts = writer.close().await?;
/// assert_eq!(counts.inserted + counts.skipped, 10_000);
/// # Ok(())
/// # }
/// ```
///
/// A trainer that wants its run's status kept starts the run with the
/// writer ([`Client::start_run_writer`] records this process's host, pid,
/// user, command line and git commit) and ends it with
/// [`finish`](EpochWriter::finish):
///
/// ```no_run
/// use mlmeta_client::{Client, RunStatus, WriterOptions};
///
/// # async fn train() -> mlmeta_client::Result<()> {
/// let client = Client::connect("http://127.0.0.1:50051").await?;
/// let writer = client.start_run_writer("run-1", None, WriterOptions::default()).await?;
/// for epoch in 0..100 {
///     writer.log(epoch, [("loss", 1.0 / (epoch + 1) as f64)]).await?;
/// }
/// writer.finish(RunStatus::Finished).await?;
/// # Ok(())
/// # }
/// ```
pub struct EpochWriter {
    client: Client,
    buffer: Arc<Buffer>,
    progress: watch::Receiver<Progress>,
    task: Option<JoinHandle<Result<InsertCounts>>>,
    model_name: String,
    when_full: WhenFull,
    capacity: usize,
}

/// A snapshot of what an [`EpochWriter`] has done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Epochs accepted by `log` so far.
    pub logged: u64,
    /// Epochs stored (or skipped as already stored) so far.
    pub stored: u64,
    /// Counts summed over the stored batches.
    pub counts: InsertCounts,
    /// Attempts that failed transiently and were retried.
    pub retries: u64,
}

impl std::fmt::Debug for EpochWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpochWriter")
            .field("model_name", &self.model_name)
            .field("when_full", &self.when_full)
            .field("capacity", &self.capacity)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl EpochWriter {
    pub(crate) fn start(client: Client, model_name: String, options: WriterOptions) -> Result<Self> {
        options.check()?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Config("an epoch writer must be started within a Tokio runtime".into()))?;
        let buffer = Arc::new(Buffer::new(options.batch_size, options.max_buffered));
        let (progress_tx, progress) = watch::channel(Progress::default());
        let when_full = options.when_full;
        let capacity = options.max_buffered;
        let task = runtime.spawn(worker::run(
            buffer.clone(),
            client.clone(),
            model_name.clone(),
            options,
            progress_tx,
        ));
        Ok(Self {
            client,
            buffer,
            progress,
            task: Some(task),
            model_name,
            when_full,
            capacity,
        })
    }

    /// The model whose epochs this writer stores.
    pub fn model_name(&self) -> &str {
        &self.model_name
    }

    /// Logs epoch `epoch_num` with `metrics` (see
    /// [`EpochWriter::log_epoch`]).
    pub async fn log<K: Into<String>>(
        &self,
        epoch_num: i64,
        metrics: impl IntoIterator<Item = (K, f64)>,
    ) -> Result<()> {
        self.log_epoch(NewEpoch::new(epoch_num, metrics)).await
    }

    /// Logs `epoch`: checks it, appends it to the buffer and returns. It
    /// waits only when the buffer is full and the policy is
    /// [`WhenFull::Wait`].
    ///
    /// Fails with [`Error::InvalidArgument`] for an epoch the server would
    /// refuse (nothing is buffered), with [`Error::BufferFull`] when full
    /// under [`WhenFull::Fail`], and with the writer's error once it has
    /// stopped.
    pub async fn log_epoch(&self, epoch: NewEpoch) -> Result<()> {
        check_epoch(&epoch)?;
        match self.when_full {
            WhenFull::Wait => match self.buffer.room.acquire().await {
                Ok(permit) => permit.forget(),
                Err(_) => return Err(self.buffer.failure()),
            },
            WhenFull::Fail => self.take_room()?,
        }
        self.buffer.push(epoch)
    }

    /// Logs `epoch` without ever waiting: [`Error::BufferFull`] when the
    /// buffer is full, whatever the [`WhenFull`] policy. Usable outside
    /// async code.
    pub fn try_log_epoch(&self, epoch: NewEpoch) -> Result<()> {
        check_epoch(&epoch)?;
        self.take_room()?;
        self.buffer.push(epoch)
    }

    /// Logs `epoch` from a thread that is not running async code (a plain
    /// training thread), blocking it while the buffer is full under
    /// [`WhenFull::Wait`]. Fails with [`Error::Config`] when called from
    /// within a Tokio runtime, where blocking could stall the writer
    /// itself: use [`EpochWriter::log_epoch`] there.
    pub fn blocking_log_epoch(&self, epoch: NewEpoch) -> Result<()> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Config(
                "blocking_log_epoch was called within a Tokio runtime; use log_epoch(..).await".into(),
            ));
        }
        futures::executor::block_on(self.log_epoch(epoch))
    }

    fn take_room(&self) -> Result<()> {
        match self.buffer.room.try_acquire() {
            Ok(permit) => {
                permit.forget();
                Ok(())
            }
            Err(TryAcquireError::NoPermits) => Err(Error::BufferFull {
                capacity: self.capacity,
            }),
            Err(TryAcquireError::Closed) => Err(self.buffer.failure()),
        }
    }

    /// Sends what is buffered now and waits until every epoch logged
    /// before this call is stored (acknowledged by the server as
    /// committed). Fails with the writer's error if it
    /// stopped before that.
    pub async fn flush(&self) -> Result<()> {
        let target = self.buffer.flush()?;
        let mut progress = self.progress.clone();
        let reached = progress
            .wait_for(|p| p.stored >= target || p.failed.is_some())
            .await;
        match reached {
            Ok(p) if p.stored >= target => Ok(()),
            Ok(p) => Err(p.failed.clone().unwrap_or(Error::WriterStopped)),
            Err(_) => Err(self.buffer.failure()),
        }
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> WriterStats {
        let logged = self.buffer.logged();
        let progress = self.progress.borrow();
        WriterStats {
            logged,
            stored: progress.stored,
            counts: progress.counts,
            retries: progress.retries,
        }
    }

    /// Sends everything logged, waits until it is stored and stops the
    /// background task; returns the counts of the whole run (inserted plus
    /// skipped is the number of epochs logged). Fails with the writer's
    /// error if it stopped before everything was stored.
    pub async fn close(mut self) -> Result<InsertCounts> {
        self.buffer.close();
        let Some(task) = self.task.take() else {
            return Err(Error::WriterStopped);
        };
        task.await.map_err(|_| Error::WriterStopped)?
    }

    /// [`close`](EpochWriter::close), then ends the model's run with
    /// `status` (see [`Client::end_run`]). When the close fails, the run is
    /// left as it is and the error returned: the caller decides whether
    /// that run failed.
    pub async fn finish(self, status: crate::RunStatus) -> Result<InsertCounts> {
        let client = self.client.clone();
        let model_name = self.model_name.clone();
        let counts = self.close().await?;
        client.end_run(&model_name, status).await?;
        Ok(counts)
    }
}

impl Drop for EpochWriter {
    /// Lets the background task send what is buffered and finish (see
    /// "Dropping without `close`" above).
    fn drop(&mut self) {
        if self.task.take().is_some() {
            self.buffer.close();
        }
    }
}
