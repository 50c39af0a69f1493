//! `WatchEpochs` and `WatchModels`: one task per watcher re-reads from its
//! own cursor whenever the change hub says something it watches may have
//! changed, on a safety-net poll, and sends keep-alives when idle.
//!
//! A watcher that does not read never blocks a writer and never grows the
//! server's memory: its answers wait in a channel of [`BUFFER`] messages,
//! and it reads from the database only once there is room (so a slow
//! watcher is only delayed; it catches up from its cursor). The hub's
//! broadcast is bounded too: a watcher that falls behind it gets `Lagged`
//! and re-reads everything it watches. Reads of all watchers share
//! [`CONCURRENT_READS`] blocking threads, so that watchers never take the
//! pool's connections from writers.

use std::sync::Arc;
use std::time::Duration;

use mlmeta_proto as pb;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::convert;
use crate::error::{Error, Result};
use crate::security::ProjectScope;
use crate::store::Store;
use crate::store::watch::{
    Change, EpochCursor, EpochWatch, EpochWatchSpec, ModelChange, ModelEvent, ModelWatch, ModelsCursor,
    Selection,
};
use crate::validate;

/// Messages waiting for a watcher to read them, at most.
const BUFFER: usize = 8;

/// Epochs per message, at most.
const EPOCHS_PER_MESSAGE: usize = 500;

/// The safety net: a watcher re-reads this often even when told nothing
/// (a lost notification, a revived run).
const POLL: Duration = Duration::from_secs(2);

/// An idle watch gets an empty message this often, so that proxies and
/// load balancers keep the stream open.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// Watch reads running at once, over all watchers of the server.
pub(super) const CONCURRENT_READS: usize = 4;

/// The messages of one watch.
pub(super) type Messages<T> = ReceiverStream<std::result::Result<T, Status>>;

/// What wakes a watcher, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Wake {
    /// Nothing for it.
    None,
    /// Re-read its models.
    Read,
    /// Filter watches: also look for models that match now.
    Rediscover,
}

/// One kind of watch.
trait Watcher: Send + 'static {
    type Message: Send + 'static;

    /// What is new since the cursor (`None`: nothing, the cursor did not
    /// move).
    fn read(&mut self, store: &Store, rediscover: bool) -> Result<Option<Self::Message>>;

    /// A message with nothing new: the first one, and keep-alives.
    fn idle(&self) -> Self::Message;

    /// The message that says the catch-up is done.
    fn caught_up(&self) -> Self::Message;

    /// Whether `change` may concern it (noting what it needs to know).
    fn wakes_on(&mut self, change: &Change) -> Wake;

    /// What is new, from this process's memory alone; `None` when it must
    /// be read from the database ([`Watcher::read`]).
    fn read_from_memory(&mut self, _store: &Store) -> Option<Option<Self::Message>> {
        None
    }
}

impl Watcher for EpochWatch {
    type Message = pb::WatchEpochsResponse;

    fn read(&mut self, store: &Store, rediscover: bool) -> Result<Option<Self::Message>> {
        let before = self.cursor();
        let epochs = store.read_watched_epochs(self, rediscover, EPOCHS_PER_MESSAGE)?;
        let cursor = self.cursor();
        if epochs.is_empty() && cursor == before {
            return Ok(None);
        }
        Ok(Some(pb::WatchEpochsResponse {
            epochs: epochs.into_iter().map(convert::epoch).collect(),
            cursor,
            caught_up: false,
        }))
    }

    fn idle(&self) -> Self::Message {
        pb::WatchEpochsResponse {
            epochs: Vec::new(),
            cursor: self.cursor(),
            caught_up: false,
        }
    }

    fn caught_up(&self) -> Self::Message {
        pb::WatchEpochsResponse {
            caught_up: true,
            ..self.idle()
        }
    }

    fn wakes_on(&mut self, change: &Change) -> Wake {
        match change {
            Change::Epochs(ids) if self.concerns(ids) => {
                self.hint(ids);
                Wake::Read
            }
            Change::Models if self.follows_filter() => Wake::Rediscover,
            Change::Any => Wake::Rediscover,
            Change::Epochs(_) | Change::Models => Wake::None,
        }
    }

    fn read_from_memory(&mut self, store: &Store) -> Option<Option<Self::Message>> {
        let before = self.cursor();
        let epochs = store.read_watched_epochs_from_memory(self, EPOCHS_PER_MESSAGE)?;
        let cursor = self.cursor();
        if epochs.is_empty() && cursor == before {
            return Some(None);
        }
        Some(Some(pb::WatchEpochsResponse {
            epochs: epochs.into_iter().map(convert::epoch).collect(),
            cursor,
            caught_up: false,
        }))
    }
}

/// A model watch and the project its models are in.
struct Models {
    watch: ModelWatch,
    project: String,
}

impl Watcher for Models {
    type Message = pb::WatchModelsResponse;

    fn read(&mut self, store: &Store, _rediscover: bool) -> Result<Option<Self::Message>> {
        let before = self.watch.cursor();
        let events = store.read_model_events(&mut self.watch)?;
        let cursor = self.watch.cursor();
        if events.is_empty() && cursor == before {
            return Ok(None);
        }
        Ok(Some(pb::WatchModelsResponse {
            events: events
                .into_iter()
                .map(|e| model_event(e, &self.project))
                .collect(),
            cursor,
            caught_up: false,
        }))
    }

    fn idle(&self) -> Self::Message {
        pb::WatchModelsResponse {
            events: Vec::new(),
            cursor: self.watch.cursor(),
            caught_up: false,
        }
    }

    fn caught_up(&self) -> Self::Message {
        pb::WatchModelsResponse {
            caught_up: true,
            ..self.idle()
        }
    }

    fn wakes_on(&mut self, change: &Change) -> Wake {
        match change {
            Change::Models | Change::Any => Wake::Read,
            Change::Epochs(_) => Wake::None,
        }
    }
}

fn model_event(event: ModelEvent, project: &str) -> pb::ModelEvent {
    pb::ModelEvent {
        model_name: event.name,
        model: event.model.map(|model| convert::model(model, project)),
        changes: event
            .changes
            .into_iter()
            .map(|change| {
                (match change {
                    ModelChange::Created => pb::ModelChange::Created,
                    ModelChange::Status => pb::ModelChange::Status,
                    ModelChange::Tags => pb::ModelChange::Tags,
                    ModelChange::Deleted => pb::ModelChange::Deleted,
                    ModelChange::Restored => pb::ModelChange::Restored,
                    ModelChange::Purged => pb::ModelChange::Purged,
                }) as i32
            })
            .collect(),
    }
}

/// The models a request names, or its filter (not both).
fn selection(model_names: Vec<String>, filter: Option<pb::ModelFilter>) -> Result<Selection> {
    validate::filter_values("model_names", &model_names)?;
    for (index, name) in model_names.iter().enumerate() {
        validate::name(|| format!("model_names[{index}]"), name)?;
    }
    if model_names.is_empty() {
        return Ok(Selection::Filter(convert::model_filter(filter)?));
    }
    if filter.is_some() {
        return Err(Error::invalid(
            "filter",
            "give either model_names or a filter, not both",
        ));
    }
    Ok(Selection::Names(model_names))
}

/// Validates a `WatchEpochs` request into what to watch.
pub(super) fn epoch_spec(request: pb::WatchEpochsRequest) -> Result<EpochWatchSpec> {
    let selection = selection(request.model_names, request.filter)?;
    validate::filter_values("metric_names", &request.metric_names)?;
    for (index, name) in request.metric_names.iter().enumerate() {
        validate::name(|| format!("metric_names[{index}]"), name)?;
    }
    let cursor = match request.cursor.as_str() {
        "" => None,
        text => Some(EpochCursor::decode("cursor", text)?),
    };
    Ok(EpochWatchSpec {
        selection,
        metric_names: request.metric_names,
        cursor,
        history: request.history,
    })
}

/// Validates a `WatchModels` request into what to watch.
pub(super) fn models_spec(request: pb::WatchModelsRequest) -> Result<(Selection, Option<ModelsCursor>)> {
    let selection = selection(request.model_names, request.filter)?;
    let cursor = match request.cursor.as_str() {
        "" => None,
        text => Some(ModelsCursor::decode("cursor", text)?),
    };
    Ok((selection, cursor))
}

/// The running watches' shared limits.
#[derive(Clone)]
pub(super) struct Watches {
    reads: Arc<Semaphore>,
}

impl Watches {
    pub(super) fn new() -> Self {
        Self {
            reads: Arc::new(Semaphore::new(CONCURRENT_READS)),
        }
    }

    /// Starts a `WatchEpochs` watcher (its errors, such as a model that
    /// does not exist, are the call's).
    pub(super) async fn epochs(
        &self,
        store: &Store,
        project: ProjectScope,
        spec: EpochWatchSpec,
        slot: Option<OwnedSemaphorePermit>,
    ) -> Result<Messages<pb::WatchEpochsResponse>> {
        let changes = store.hub().subscribe();
        let opened = store.clone();
        let watch = tokio::task::spawn_blocking(move || opened.watch_epochs(&project, spec)).await??;
        Ok(self.spawn(store.clone(), changes, watch, slot))
    }

    /// Starts a `WatchModels` watcher.
    pub(super) async fn models(
        &self,
        store: &Store,
        project: ProjectScope,
        (selection, cursor): (Selection, Option<ModelsCursor>),
        slot: Option<OwnedSemaphorePermit>,
    ) -> Result<Messages<pb::WatchModelsResponse>> {
        let changes = store.hub().subscribe();
        let opened = store.clone();
        let name = project.name().to_owned();
        let watch =
            tokio::task::spawn_blocking(move || opened.watch_models(&project, selection, cursor)).await??;
        let models = Models { watch, project: name };
        Ok(self.spawn(store.clone(), changes, models, slot))
    }

    fn spawn<W: Watcher>(
        &self,
        store: Store,
        changes: broadcast::Receiver<Change>,
        watcher: W,
        slot: Option<OwnedSemaphorePermit>,
    ) -> Messages<W::Message> {
        let (sender, receiver) = mpsc::channel(BUFFER);
        let reads = Arc::clone(&self.reads);
        tokio::spawn(async move {
            run(store, reads, changes, watcher, sender).await;
            // The watch's `--max-watchers` slot is free once it ended.
            drop(slot);
        });
        ReceiverStream::new(receiver)
    }
}

type Sender<T> = mpsc::Sender<std::result::Result<T, Status>>;

/// What one read of a watcher found, and where.
enum Read<M> {
    /// From this process's recent commits (`None`: nothing new).
    FromMemory(Option<M>),
    /// From the database.
    FromDatabase(Result<Option<M>>),
}

/// One watcher's loop: reads while there is something new and room to
/// send it, then waits for a change, the poll or the keep-alive; ends when
/// the client goes away.
async fn run<W: Watcher>(
    store: Store,
    reads: Arc<Semaphore>,
    mut changes: broadcast::Receiver<Change>,
    mut watcher: W,
    sender: Sender<W::Message>,
) {
    if sender.send(Ok(watcher.idle())).await.is_err() {
        return;
    }
    // The first read catches up (history, or what a cursor missed).
    let mut wake = Wake::Read;
    let mut poll = tokio::time::interval_at(Instant::now() + POLL, POLL);
    // A poll missed while reading is not made up for in a burst.
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sent = Instant::now();
    let mut caught_up = false;
    loop {
        if wake != Wake::None {
            // Room first: a watcher that does not read costs no reads.
            let Ok(permit) = sender.reserve().await else {
                return;
            };
            // What arrived meanwhile is seen by this read.
            loop {
                match changes.try_recv() {
                    Ok(change) => wake = wake.max(watcher.wakes_on(&change)),
                    Err(TryRecvError::Lagged(_)) => wake = Wake::Rediscover,
                    Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                }
            }
            let Ok(_read_slot) = reads.acquire().await else {
                return;
            };
            let rediscover = wake == Wake::Rediscover;
            // This process's own commits come from its memory, once for
            // all watchers, instead of the database. Still within the read
            // slots and off the async threads: a thousand watchers must not
            // take the CPU from the writers' calls.
            let from_memory = wake == Wake::Read && caught_up;
            let reader = store.clone();
            let read = tokio::task::spawn_blocking(move || {
                let result = match from_memory.then(|| watcher.read_from_memory(&reader)).flatten() {
                    Some(message) => Read::FromMemory(message),
                    None => Read::FromDatabase(watcher.read(&reader, rediscover)),
                };
                (watcher, result)
            })
            .await;
            let result;
            (watcher, result) = match read {
                Ok(done) => done,
                Err(error) => {
                    permit.send(Err(Error::from(error).into()));
                    return;
                }
            };
            let result = match result {
                // Everything the tail held went out: nothing more follows.
                Read::FromMemory(message) => {
                    if let Some(message) = message {
                        permit.send(Ok(message));
                        last_sent = Instant::now();
                    }
                    wake = Wake::None;
                    continue;
                }
                Read::FromDatabase(result) => result,
            };
            match result {
                Ok(Some(message)) => {
                    permit.send(Ok(message));
                    last_sent = Instant::now();
                    // More may follow (a message holds a bounded number).
                    wake = Wake::Read;
                }
                Ok(None) if !caught_up => {
                    permit.send(Ok(watcher.caught_up()));
                    caught_up = true;
                    wake = Wake::None;
                }
                Ok(None) => wake = Wake::None,
                Err(error) => {
                    permit.send(Err(error.into()));
                    return;
                }
            }
            continue;
        }
        tokio::select! {
            change = changes.recv() => match change {
                Ok(change) => wake = watcher.wakes_on(&change),
                Err(RecvError::Lagged(_)) => wake = Wake::Rediscover,
                Err(RecvError::Closed) => return,
            },
            _ = poll.tick() => wake = Wake::Rediscover,
            () = tokio::time::sleep_until(last_sent + KEEPALIVE) => {
                // Never waits: a full buffer already keeps the stream busy.
                let _ = sender.try_send(Ok(watcher.idle()));
                last_sent = Instant::now();
            }
            () = sender.closed() => return,
        }
    }
}
