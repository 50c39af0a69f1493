//! `WriteEpochs`: the acknowledged epoch stream.
//!
//! One task per stream reads batches and answers them in order. Batches
//! are validated as they arrive; those that arrive while the previous ones
//! are being committed wait (a bounded number), then go to the group
//! commit together as one job of several requests, so that they commit in
//! the order sent and share a transaction (with other callers' requests),
//! each with its own outcome. A round ends at a batch that asked to
//! `stop_on_error`, so that nothing sent after it is stored when it fails.
//!
//! Memory per stream is bounded: at most [`MAX_WAITING_BATCHES`] batches
//! (and one message beyond [`MAX_WAITING_EPOCHS`] epochs) wait while a
//! round commits; beyond that the stream is not read (HTTP/2 flow control
//! holds the client back). Answers wait in a channel of the same size: a
//! client that does not read them stops being read itself.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;

use futures::StreamExt as _;
use mlmeta_proto as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::convert;
use crate::error::{Error, Result};
use crate::security::{Caller, ProjectScope};
use crate::store::Store;
use crate::store::records::{InsertCounts, NewEpoch};
use crate::validate::MAX_EPOCHS_PER_REQUEST;

/// Batches received and not yet answered, at most, besides the round
/// being committed.
const MAX_WAITING_BATCHES: usize = 64;

/// Epochs waiting, past which the stream is not read until a round is
/// committed (one full request).
const MAX_WAITING_EPOCHS: usize = MAX_EPOCHS_PER_REQUEST;

/// The answers of a `WriteEpochs` call.
pub(super) type Answers = ReceiverStream<std::result::Result<pb::WriteEpochsResponse, Status>>;

/// Serves one `WriteEpochs` stream: answers each batch of `requests`, in
/// order, once it is committed.
pub(super) fn serve(store: Store, caller: Caller, requests: Streaming<pb::WriteEpochsRequest>) -> Answers {
    let (answers, receiver) = mpsc::channel(MAX_WAITING_BATCHES);
    tokio::spawn(run(store, caller, requests, answers));
    ReceiverStream::new(receiver)
}

/// A batch received: its sequence, whether it ends the stream on failure,
/// and its epochs (or why it was refused before reaching the store).
struct Batch {
    sequence: u64,
    stop_on_error: bool,
    epochs: Result<(ProjectScope, Vec<NewEpoch>)>,
}

impl Batch {
    fn size(&self) -> usize {
        self.epochs.as_ref().map_or(0, |(_, epochs)| epochs.len())
    }
}

type Commit = Pin<Box<dyn Future<Output = Result<Vec<Result<InsertCounts>>>> + Send>>;

/// Batches being committed together, and what to answer for each: a
/// refusal, or (`None`) the next outcome of the commit.
struct Round {
    batches: Vec<(u64, bool, Option<Error>)>,
    commit: Commit,
}

async fn run(
    store: Store,
    caller: Caller,
    mut requests: Streaming<pb::WriteEpochsRequest>,
    answers: mpsc::Sender<std::result::Result<pb::WriteEpochsResponse, Status>>,
) {
    let mut waiting: VecDeque<Batch> = VecDeque::new();
    let mut waiting_epochs = 0;
    let mut round: Option<Round> = None;
    // Once the request stream has ended: `Some(None)` cleanly,
    // `Some(Some(status))` broken (idle, too large, reset).
    let mut ended: Option<Option<Status>> = None;
    loop {
        if round.is_none() && !waiting.is_empty() {
            round = Some(start_round(&store, &mut waiting, &mut waiting_epochs));
        }
        if round.is_none() && ended.is_some() {
            break;
        }
        let read =
            ended.is_none() && waiting.len() < MAX_WAITING_BATCHES && waiting_epochs < MAX_WAITING_EPOCHS;
        tokio::select! {
            message = requests.next(), if read => match message {
                Some(Ok(message)) => {
                    let batch = receive(&caller, message);
                    waiting_epochs += batch.size();
                    waiting.push_back(batch);
                }
                Some(Err(status)) => ended = Some(Some(status)),
                None => ended = Some(None),
            },
            outcomes = committed(&mut round) => {
                let Some(done) = round.take() else { continue };
                if !answer(done.batches, outcomes, &answers).await {
                    return;
                }
            }
        }
    }
    if let Some(Some(status)) = ended {
        let _ = answers.send(Err(status)).await;
    }
}

/// Checks one message: its project (the caller's restriction) and epochs.
fn receive(caller: &Caller, message: pb::WriteEpochsRequest) -> Batch {
    let pb::WriteEpochsRequest {
        sequence,
        epochs,
        project,
        stop_on_error,
        columns,
    } = message;
    let epochs = caller.project("project", &project).and_then(|scope| {
        let epochs = convert::new_epochs(pb::InsertEpochsRequest {
            epochs,
            project,
            columns,
        })?;
        Ok((scope, epochs))
    });
    Batch {
        sequence,
        stop_on_error,
        epochs,
    }
}

/// Hands the waiting batches, up to and including the first that stops
/// the stream on error, to the group commit as one job.
fn start_round(store: &Store, waiting: &mut VecDeque<Batch>, waiting_epochs: &mut usize) -> Round {
    let mut batches = Vec::new();
    let mut requests = Vec::new();
    while let Some(batch) = waiting.pop_front() {
        *waiting_epochs -= batch.size();
        let stop = batch.stop_on_error;
        match batch.epochs {
            Ok(request) => {
                requests.push(request);
                batches.push((batch.sequence, stop, None));
            }
            Err(error) => batches.push((batch.sequence, stop, Some(error))),
        }
        if stop {
            break;
        }
    }
    let store = store.clone();
    Round {
        batches,
        commit: Box::pin(async move { store.insert_epochs_in_order(requests).await }),
    }
}

/// The outcome of the round being committed; never resolves without one.
async fn committed(round: &mut Option<Round>) -> Result<Vec<Result<InsertCounts>>> {
    match round {
        Some(round) => (&mut round.commit).await,
        None => std::future::pending().await,
    }
}

/// Answers the batches of a round in order; `false` when the stream is
/// over (a batch stopped it, the writers stopped, or the client left).
async fn answer(
    batches: Vec<(u64, bool, Option<Error>)>,
    outcomes: Result<Vec<Result<InsertCounts>>>,
    answers: &mpsc::Sender<std::result::Result<pb::WriteEpochsResponse, Status>>,
) -> bool {
    let mut outcomes = match outcomes {
        Ok(outcomes) => outcomes.into_iter(),
        Err(error) => {
            let _ = answers.send(Err(Status::from(error))).await;
            return false;
        }
    };
    for (sequence, stop_on_error, refused) in batches {
        let outcome = match refused {
            Some(error) => Err(error),
            None => outcomes
                .next()
                .unwrap_or_else(|| Err(Error::Task("a batch of the round got no outcome".into()))),
        };
        let answer = match outcome {
            Ok(counts) => Ok(pb::WriteEpochsResponse {
                sequence,
                inserted: counts.inserted,
                skipped: counts.skipped,
                error: None,
            }),
            Err(error) if stop_on_error => {
                let status = Status::from(error);
                let _ = answers
                    .send(Err(Status::new(
                        status.code(),
                        format!(
                            "batch {sequence} (stop_on_error): {}; nothing of it, and nothing sent after it, was stored",
                            status.message()
                        ),
                    )))
                    .await;
                return false;
            }
            Err(error) => Ok(pb::WriteEpochsResponse {
                sequence,
                inserted: 0,
                skipped: 0,
                error: Some(error.into()),
            }),
        };
        if answers.send(answer).await.is_err() {
            return false;
        }
    }
    true
}
