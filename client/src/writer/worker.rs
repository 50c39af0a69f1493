//! The background task of an [`EpochWriter`](crate::EpochWriter): takes
//! batches from the buffer and stores them through a WriteEpochs stream,
//! several in flight, each acknowledged once committed; after a broken
//! stream it reconnects (with backoff) and resends only what was not
//! acknowledged. Falls back to InsertEpochs, one request at a time, on a
//! server without WriteEpochs.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::channel::mpsc;
use mlmeta_proto as pb;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tonic::Streaming;

use super::buffer::{Batch, Buffer, Next};
use super::options::WriterOptions;
use crate::client::Client;
use crate::columns::{Chunks, Payload};
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

/// Requests sent on a WriteEpochs stream and not yet acknowledged, at
/// most: the server stores the next ones while earlier ones commit.
const MAX_UNACKNOWLEDGED: usize = 8;

/// The background task: runs until the writer is closed (or dropped) and
/// everything is sent, or until a batch fails for good. It writes through
/// a WriteEpochs stream, and through InsertEpochs calls when the server
/// does not know WriteEpochs (an older server).
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
    let mut acked = Acknowledged {
        client: &client,
        model_name: &model_name,
        options: &options,
        progress: &progress,
        buffer: &buffer,
        counts: InsertCounts::default(),
        pending: VecDeque::new(),
        next_sequence: 1,
        session: None,
        failing_since: None,
        retry: 0,
    };
    let outcome = acked.run(&mut ticker).await;
    let mut counts = acked.counts;
    let result = match outcome {
        Ok(()) => Ok(counts),
        Err(Stop::Unimplemented(pending)) => {
            tracing::info!(model = %model_name, "the server has no WriteEpochs; storing epochs with InsertEpochs");
            insert_all(
                &buffer,
                &client,
                &model_name,
                &options,
                &progress,
                &mut ticker,
                &mut counts,
                pending,
            )
            .await
            .map(|()| counts)
        }
        Err(Stop::Failed(error)) => Err(error),
    };
    if let Err(error) = &result {
        tracing::warn!(%error, model = %model_name, "epoch writer stopped; buffered epochs dropped");
        buffer.fail(error.clone());
        progress.send_modify(|p| p.failed = Some(error.clone()));
    }
    result
}

/// Why the stream writer stopped before the end.
enum Stop {
    /// The server answered UNIMPLEMENTED: the requests not acknowledged yet.
    Unimplemented(VecDeque<Piece>),
    /// A permanent failure, or retries ran out.
    Failed(crate::Error),
}

/// One request of a batch: the epochs (as columns when there are several
/// and the server knows columns), its sequence on the stream and,
/// for the last request of a batch, the batch's `end` (see `Batch`).
struct Piece {
    sequence: u64,
    payload: Payload,
    end: Option<u64>,
}

/// An open WriteEpochs stream: where to send, where the answers come
/// from, and how many of the pending pieces went out on it.
struct Session {
    batches: mpsc::Sender<pb::WriteEpochsRequest>,
    answers: Streaming<pb::WriteEpochsResponse>,
    sent: usize,
    /// When the oldest unacknowledged piece must be answered by.
    deadline: Option<Instant>,
}

/// The stream writer's state.
struct Acknowledged<'a> {
    client: &'a Client,
    model_name: &'a str,
    options: &'a WriterOptions,
    progress: &'a watch::Sender<Progress>,
    buffer: &'a Buffer,
    counts: InsertCounts,
    /// Sent (or to send) and not yet acknowledged, in order: after a
    /// reconnect exactly these are sent again.
    pending: VecDeque<Piece>,
    next_sequence: u64,
    session: Option<Session>,
    /// Since when attempts fail transiently (reset by each answer).
    failing_since: Option<Instant>,
    retry: u32,
}

/// What woke the stream writer up.
enum Event {
    Answer(std::result::Result<Option<pb::WriteEpochsResponse>, tonic::Status>),
    Deadline,
    Woken,
}

impl Acknowledged<'_> {
    async fn run(&mut self, ticker: &mut tokio::time::Interval) -> std::result::Result<(), Stop> {
        loop {
            if self.pending.len() < MAX_UNACKNOWLEDGED {
                match self.buffer.next(MAX_EPOCHS_PER_REQUEST) {
                    Next::Send(batch) => {
                        self.split(batch);
                        continue;
                    }
                    Next::Finish if self.pending.is_empty() => return Ok(()),
                    Next::Finish | Next::Wait => {}
                }
            }
            if !self.pending.is_empty() {
                self.send_pending().await?;
            }
            let event = match &mut self.session {
                Some(session) => {
                    let deadline = session.deadline;
                    tokio::select! {
                        answer = session.answers.message() => Event::Answer(answer),
                        () = sleep_until(deadline) => Event::Deadline,
                        () = self.buffer.wake.notified() => Event::Woken,
                        _ = ticker.tick() => {
                            self.buffer.tick();
                            Event::Woken
                        }
                    }
                }
                None => {
                    tokio::select! {
                        () = self.buffer.wake.notified() => {}
                        _ = ticker.tick() => self.buffer.tick(),
                    }
                    Event::Woken
                }
            };
            match event {
                Event::Woken => {}
                Event::Answer(Ok(Some(answer))) => self.acknowledged(answer).await?,
                Event::Answer(Ok(None)) => {
                    self.broken(crate::Error::Unavailable {
                        message: "the server ended the WriteEpochs stream".into(),
                    })
                    .await?;
                }
                Event::Answer(Err(status)) => self.broken(crate::Error::from(status)).await?,
                Event::Deadline => {
                    let message = format!(
                        "no answer to a WriteEpochs batch within {:?}",
                        self.options.attempt_timeout
                    );
                    self.broken(crate::Error::DeadlineExceeded { message }).await?;
                }
            }
        }
    }

    /// Queues `batch` as requests within the size limits.
    fn split(&mut self, batch: Batch) {
        let max_bytes = self.options.max_request_bytes;
        let payloads: Vec<Payload> = if self.client.columns_allowed() {
            Chunks::new(batch.epochs.into_iter(), MAX_EPOCHS_PER_REQUEST, max_bytes)
                .map(|chunk| Payload::new(self.model_name, chunk, true))
                .collect()
        } else {
            let rows = batch
                .epochs
                .into_iter()
                .map(|e| convert::epoch_to_pb(self.model_name, e));
            Requests::new(rows, MAX_EPOCHS_PER_REQUEST, max_bytes)
                .map(Payload::Rows)
                .collect()
        };
        let mut pieces: Vec<Piece> = payloads
            .into_iter()
            .map(|payload| {
                let sequence = self.next_sequence;
                self.next_sequence += 1;
                Piece {
                    sequence,
                    payload,
                    end: None,
                }
            })
            .collect();
        match pieces.last_mut() {
            Some(last) => last.end = Some(batch.end),
            // No epochs (cannot happen: batches are never empty).
            None => self.progress.send_modify(|p| p.stored = p.stored.max(batch.end)),
        }
        self.pending.extend(pieces);
    }

    /// Opens a stream if there is none, and sends the pending pieces it
    /// has not carried yet.
    async fn send_pending(&mut self) -> std::result::Result<(), Stop> {
        loop {
            if self.session.is_none() {
                let (batches, requests) = mpsc::channel(MAX_UNACKNOWLEDGED);
                match self
                    .client
                    .open_write_stream(requests, self.options.attempt_timeout)
                    .await
                {
                    Ok(answers) => {
                        self.session = Some(Session {
                            batches,
                            answers,
                            sent: 0,
                            deadline: None,
                        });
                    }
                    Err(error) => {
                        self.broken(error).await?;
                        continue;
                    }
                }
            }
            let Some(session) = &mut self.session else {
                continue;
            };
            let mut closed = false;
            for piece in self.pending.iter().skip(session.sent) {
                let (epochs, columns) = piece.payload.clone().into_parts();
                let request = pb::WriteEpochsRequest {
                    sequence: piece.sequence,
                    epochs,
                    columns,
                    project: self.client.project().to_owned(),
                    stop_on_error: false,
                };
                if session.batches.try_send(request).is_err() {
                    closed = true;
                    break;
                }
                session.sent += 1;
                if session.deadline.is_none() {
                    session.deadline = Some(Instant::now() + self.options.attempt_timeout);
                }
            }
            if !closed {
                return Ok(());
            }
            self.broken(crate::Error::Unavailable {
                message: "the WriteEpochs stream closed".into(),
            })
            .await?;
        }
    }

    /// Takes the answer to the oldest pending piece.
    async fn acknowledged(&mut self, answer: pb::WriteEpochsResponse) -> std::result::Result<(), Stop> {
        let Some(front) = self.pending.front() else {
            return self
                .broken(crate::Error::InvalidResponse("an answer to no batch".into()))
                .await;
        };
        if answer.sequence != front.sequence {
            let message = format!(
                "the answer for batch {} came while batch {} was expected",
                answer.sequence, front.sequence
            );
            return Err(Stop::Failed(crate::Error::InvalidResponse(message)));
        }
        if let Some(error) = answer.error {
            let code = tonic::Code::from_i32(error.code);
            let error = crate::Error::from(tonic::Status::new(code, error.message));
            return self.broken(error).await;
        }
        if front.payload.is_columns() && answer.inserted == 0 && answer.skipped == 0 {
            // A server that predates columns ignores them (the request
            // looks empty to it): nothing of the columnar pieces is stored.
            self.resend_as_rows();
            return Ok(());
        }
        let Some(piece) = self.pending.pop_front() else {
            return Ok(());
        };
        self.failing_since = None;
        self.retry = 0;
        if let Some(session) = &mut self.session {
            session.sent = session.sent.saturating_sub(1);
            session.deadline = (session.sent > 0).then(|| Instant::now() + self.options.attempt_timeout);
        }
        self.counts += InsertCounts {
            inserted: answer.inserted,
            skipped: answer.skipped,
        };
        let counts = self.counts;
        self.progress.send_modify(|p| {
            if let Some(end) = piece.end {
                p.stored = end;
            }
            p.counts = counts;
        });
        self.buffer.room.add_permits(piece.payload.len());
        Ok(())
    }

    /// Turns every pending piece into rows (within the size limit, so one
    /// piece may become several, renumbered in order) and drops the
    /// stream, so that the next send reconnects and sends them all again.
    fn resend_as_rows(&mut self) {
        self.client.refuse_columns();
        self.session = None;
        let pending = std::mem::take(&mut self.pending);
        for piece in pending {
            let requests = piece.payload.into_row_requests(self.options.max_request_bytes);
            let last = requests.len().saturating_sub(1);
            for (k, rows) in requests.into_iter().enumerate() {
                let sequence = self.next_sequence;
                self.next_sequence += 1;
                self.pending.push_back(Piece {
                    sequence,
                    payload: Payload::Rows(rows),
                    end: if k == last { piece.end } else { None },
                });
            }
        }
    }

    /// The stream failed with `error`: drops it, and unless that is for
    /// good, waits (backoff) so that the next send reconnects and resends
    /// every pending piece.
    async fn broken(&mut self, error: crate::Error) -> std::result::Result<(), Stop> {
        self.session = None;
        if error.code() == Some(tonic::Code::Unimplemented) {
            return Err(Stop::Unimplemented(std::mem::take(&mut self.pending)));
        }
        if self.pending.is_empty() && error.is_transient() {
            // Nothing was waiting (the server ended an idle stream, say):
            // reconnect when there is something to send.
            return Ok(());
        }
        if !error.is_transient() {
            return Err(Stop::Failed(error));
        }
        let since = *self.failing_since.get_or_insert_with(Instant::now);
        let left = self.options.retry.max_elapsed.saturating_sub(since.elapsed());
        if left.is_zero() {
            return Err(Stop::Failed(error));
        }
        let delay = self.options.retry.delay(self.retry).min(left);
        self.progress.send_modify(|p| p.retries += 1);
        tracing::warn!(%error, retry = self.retry, ?delay, model = %self.model_name, "storing epochs failed; reconnecting");
        self.retry = self.retry.saturating_add(1);
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

/// Sleeps until `deadline`; forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The writer on a server without WriteEpochs: stores `pending` (the
/// stream's unacknowledged requests), then every batch, one InsertEpochs
/// request at a time.
#[allow(clippy::too_many_arguments)]
async fn insert_all(
    buffer: &Buffer,
    client: &Client,
    model_name: &str,
    options: &WriterOptions,
    progress: &watch::Sender<Progress>,
    ticker: &mut tokio::time::Interval,
    counts: &mut InsertCounts,
    pending: VecDeque<Piece>,
) -> Result<()> {
    for piece in pending {
        let size = piece.payload.len();
        for request in piece.payload.into_row_requests(options.max_request_bytes) {
            *counts += insert_retrying(client, model_name, request, options, progress).await?;
        }
        let total = *counts;
        progress.send_modify(|p| {
            if let Some(end) = piece.end {
                p.stored = end;
            }
            p.counts = total;
        });
        buffer.room.add_permits(size);
    }
    loop {
        match buffer.next(MAX_EPOCHS_PER_REQUEST) {
            Next::Send(batch) => {
                let size = batch.epochs.len();
                *counts += send(client, model_name, batch.epochs, options, progress).await?;
                let total = *counts;
                progress.send_modify(|p| {
                    p.stored = batch.end;
                    p.counts = total;
                });
                buffer.room.add_permits(size);
            }
            Next::Finish => return Ok(()),
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
        total += insert_retrying(client, model_name, request, options, progress).await?;
    }
    Ok(total)
}

/// One InsertEpochs request, retried by the writer's policy.
async fn insert_retrying(
    client: &Client,
    model_name: &str,
    request: Vec<pb::Epoch>,
    options: &WriterOptions,
    progress: &watch::Sender<Progress>,
) -> Result<InsertCounts> {
    retry::run(
        &options.retry,
        || client.insert_once(request.clone(), options.attempt_timeout),
        |error, retry, delay| {
            progress.send_modify(|p| p.retries += 1);
            tracing::warn!(%error, retry, ?delay, model = %model_name, "storing epochs failed; retrying");
        },
    )
    .await
}
