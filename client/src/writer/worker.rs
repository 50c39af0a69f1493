//! The background task of an [`EpochWriter`](crate::EpochWriter): takes
//! batches from the buffer and stores them, one request at a time,
//! retrying transient failures.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::buffer::{Buffer, Next};
use super::options::WriterOptions;
use crate::client::Client;
use crate::convert;
use crate::error::Result;
use crate::limits::{MAX_EPOCHS_PER_REQUEST, Requests};
use crate::retry;
use crate::types::{InsertCounts, NewEpoch};

/// What the background task has done so far, for `flush`, `close` and
/// `stats`.
#[derive(Debug, Clone, Default)]
pub(super) struct Progress {
    /// Every epoch logged up to this count is stored.
    pub stored: u64,
    /// Counts summed over the stored batches.
    pub counts: InsertCounts,
    /// Attempts that failed transiently and were retried.
    pub retries: u64,
    /// The permanent error that stopped the writer.
    pub failed: Option<crate::Error>,
}

/// The background task: runs until the writer is closed (or dropped) and
/// everything is sent, or until a batch fails for good.
pub(super) async fn run(
    buffer: Arc<Buffer>,
    client: Client,
    model_name: String,
    options: WriterOptions,
    progress: watch::Sender<Progress>,
) -> Result<InsertCounts> {
    let mut ticker =
        tokio::time::interval_at(Instant::now() + options.flush_interval, options.flush_interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut counts = InsertCounts::default();
    loop {
        match buffer.next(MAX_EPOCHS_PER_REQUEST) {
            Next::Send(batch) => {
                let size = batch.epochs.len();
                match send(&client, &model_name, batch.epochs, &options, &progress).await {
                    Ok(stored) => {
                        counts += stored;
                        progress.send_modify(|p| {
                            p.stored = batch.end;
                            p.counts = counts;
                        });
                        buffer.room.add_permits(size);
                    }
                    Err(error) => {
                        tracing::warn!(%error, model = %model_name, "epoch writer stopped; buffered epochs dropped");
                        buffer.fail(error.clone());
                        progress.send_modify(|p| p.failed = Some(error.clone()));
                        return Err(error);
                    }
                }
            }
            Next::Finish => return Ok(counts),
            Next::Wait => {
                tokio::select! {
                    () = buffer.wake.notified() => {}
                    _ = ticker.tick() => buffer.tick(),
                }
            }
        }
    }
}

/// Stores one batch, in as many requests as the size limits need, each
/// retried by the writer's policy.
async fn send(
    client: &Client,
    model_name: &str,
    epochs: Vec<NewEpoch>,
    options: &WriterOptions,
    progress: &watch::Sender<Progress>,
) -> Result<InsertCounts> {
    let messages = epochs.into_iter().map(|e| convert::epoch_to_pb(model_name, e));
    let mut total = InsertCounts::default();
    for request in Requests::new(messages, MAX_EPOCHS_PER_REQUEST, options.max_request_bytes) {
        let stored = retry::run(
            &options.retry,
            || client.insert_once(request.clone(), options.attempt_timeout),
            |error, retry, delay| {
                progress.send_modify(|p| p.retries += 1);
                tracing::warn!(%error, retry, ?delay, model = %model_name, "storing epochs failed; retrying");
            },
        )
        .await?;
        total += stored;
    }
    Ok(total)
}
