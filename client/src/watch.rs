//! Watching: epochs and model events as the server commits them, as
//! streams that reconnect with their cursor (so that nothing is missed or
//! received twice across a server restart or a switch of replicas).
//!
//! ```no_run
//! use futures::TryStreamExt;
//! use mlmeta_client::{Client, WatchOptions};
//!
//! # async fn example(client: Client) -> mlmeta_client::Result<()> {
//! let mut batches = client.watch_epochs(&WatchOptions::models(["run-1"]).history(true));
//! while let Some(batch) = batches.try_next().await? {
//!     for epoch in &batch.epochs {
//!         println!("{} {} {:?}", epoch.model_name, epoch.epoch_num, epoch.metrics);
//!     }
//!     // `batch.cursor` resumes a later watch right after this batch.
//! }
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use mlmeta_proto as pb;
use tonic::{Code, Response, Status, Streaming};

use crate::client::{Client, Grpc};
use crate::convert;
use crate::error::{Error, Result};
use crate::filter::ModelFilter;
use crate::types::{Epoch, Model};

/// What a watch follows, and from where.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WatchOptions {
    /// These models; empty: every model matching `filter`.
    pub models: Vec<String>,
    /// Used when `models` is empty (`None`: every live model).
    pub filter: Option<ModelFilter>,
    /// Only these metrics (empty: all; epoch watches only).
    pub metrics: Vec<String>,
    /// Replay stored epochs first (epoch watches only).
    pub history: bool,
    /// Resume after this cursor (from an earlier batch).
    pub cursor: Option<String>,
}

impl WatchOptions {
    /// Watch these models.
    pub fn models<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        Self {
            models: names.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Watch every model matching `filter`, including models that match
    /// later.
    pub fn filter(filter: ModelFilter) -> Self {
        Self {
            filter: Some(filter),
            ..Self::default()
        }
    }

    /// Only these metrics.
    #[must_use]
    pub fn metrics<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.metrics = names.into_iter().map(Into::into).collect();
        self
    }

    /// Replay the stored epochs first.
    #[must_use]
    pub fn history(mut self, history: bool) -> Self {
        self.history = history;
        self
    }

    /// Resume after `cursor`.
    #[must_use]
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }
}

/// One message of an epoch watch: new epochs (none in the first message
/// and in keep-alives) and the cursor after them.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochBatch {
    /// Newly committed epochs; per model in commit order.
    pub epochs: Vec<Epoch>,
    /// Pass to [`WatchOptions::cursor`] to resume after this batch.
    pub cursor: String,
    /// Set once per connection, on the batch (without epochs) that follows
    /// the catch-up: everything committed before the watch (re)connected
    /// has been delivered.
    pub caught_up: bool,
}

/// A kind of change of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelChange {
    /// Created (or first seen since the cursor).
    Created,
    /// Its run status changed.
    Status,
    /// Its tags changed.
    Tags,
    /// Soft-deleted.
    Deleted,
    /// Restored.
    Restored,
    /// Purged.
    Purged,
}

/// A model and what changed about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEvent {
    /// The model's name.
    pub model_name: String,
    /// Its state after the change (`None`: purged).
    pub model: Option<Model>,
    /// What changed (several when committed close together).
    pub changes: Vec<ModelChange>,
}

/// One message of a model watch.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEvents {
    /// The events (none in the first message and in keep-alives).
    pub events: Vec<ModelEvent>,
    /// Pass to [`WatchOptions::cursor`] to resume after these events.
    pub cursor: String,
    /// Set once per connection, after the catch-up.
    pub caught_up: bool,
}

/// Consecutive failed reconnections after which a watch gives up with the
/// last error (about a minute of backoff).
const RECONNECTS: u32 = 40;

type Opening<R> = Pin<Box<dyn Future<Output = std::result::Result<Response<Streaming<R>>, Status>> + Send>>;

/// One kind of watch, for the reconnecting stream.
trait Watch: Send + 'static {
    type Request: Clone + Send + 'static;
    type Response: Send + 'static;
    type Item: Send + 'static;

    fn open(grpc: Grpc, request: tonic::Request<Self::Request>) -> Opening<Self::Response>;
    fn resume(request: &mut Self::Request, cursor: String);
    fn cursor(response: &Self::Response) -> &str;
    fn convert(response: Self::Response) -> Result<Self::Item>;
}

struct Epochs;

impl Watch for Epochs {
    type Request = pb::WatchEpochsRequest;
    type Response = pb::WatchEpochsResponse;
    type Item = EpochBatch;

    fn open(mut grpc: Grpc, request: tonic::Request<Self::Request>) -> Opening<Self::Response> {
        Box::pin(async move { grpc.watch_epochs(request).await })
    }

    fn resume(request: &mut Self::Request, cursor: String) {
        request.cursor = cursor;
    }

    fn cursor(response: &Self::Response) -> &str {
        &response.cursor
    }

    fn convert(response: Self::Response) -> Result<EpochBatch> {
        Ok(EpochBatch {
            epochs: convert::all(response.epochs, convert::epoch)?,
            cursor: response.cursor,
            caught_up: response.caught_up,
        })
    }
}

struct Models;

impl Watch for Models {
    type Request = pb::WatchModelsRequest;
    type Response = pb::WatchModelsResponse;
    type Item = ModelEvents;

    fn open(mut grpc: Grpc, request: tonic::Request<Self::Request>) -> Opening<Self::Response> {
        Box::pin(async move { grpc.watch_models(request).await })
    }

    fn resume(request: &mut Self::Request, cursor: String) {
        request.cursor = cursor;
    }

    fn cursor(response: &Self::Response) -> &str {
        &response.cursor
    }

    fn convert(response: Self::Response) -> Result<ModelEvents> {
        let events = response
            .events
            .into_iter()
            .map(|event| {
                Ok(ModelEvent {
                    model: event.model.map(|m| convert::model(Some(m))).transpose()?,
                    model_name: event.model_name,
                    changes: event.changes.into_iter().filter_map(model_change).collect(),
                })
            })
            .collect::<Result<_>>()?;
        Ok(ModelEvents {
            events,
            cursor: response.cursor,
            caught_up: response.caught_up,
        })
    }
}

fn model_change(value: i32) -> Option<ModelChange> {
    Some(match pb::ModelChange::try_from(value).ok()? {
        pb::ModelChange::Created => ModelChange::Created,
        pb::ModelChange::Status => ModelChange::Status,
        pb::ModelChange::Tags => ModelChange::Tags,
        pb::ModelChange::Deleted => ModelChange::Deleted,
        pb::ModelChange::Restored => ModelChange::Restored,
        pb::ModelChange::Purged => ModelChange::Purged,
        pb::ModelChange::Unspecified => return None,
    })
}

impl Client {
    /// Epochs as they are committed (through any replica of the
    /// database), in batches each carrying the cursor after it. On
    /// UNAVAILABLE, or when the server ends the stream, it reconnects with
    /// the last cursor (with backoff), so nothing is missed or repeated;
    /// other errors (an unknown model: NOT_FOUND) end it. It never ends by
    /// itself: drop it to stop watching.
    pub fn watch_epochs(
        &self,
        options: &WatchOptions,
    ) -> impl Stream<Item = Result<EpochBatch>> + Send + Unpin + 'static + use<> {
        let request = pb::WatchEpochsRequest {
            project: self.project().to_owned(),
            model_names: options.models.clone(),
            filter: options.filter.as_ref().map(convert::model_filter),
            metric_names: options.metrics.clone(),
            cursor: options.cursor.clone().unwrap_or_default(),
            history: options.history,
        };
        self.watch::<Epochs>(request)
    }

    /// Model events (created, status changed, tags changed, deleted,
    /// restored, purged) as they are committed; reconnects like
    /// [`Client::watch_epochs`].
    pub fn watch_models(
        &self,
        options: &WatchOptions,
    ) -> impl Stream<Item = Result<ModelEvents>> + Send + Unpin + 'static + use<> {
        let request = pb::WatchModelsRequest {
            project: self.project().to_owned(),
            model_names: options.models.clone(),
            filter: options.filter.as_ref().map(convert::model_filter),
            cursor: options.cursor.clone().unwrap_or_default(),
        };
        self.watch::<Models>(request)
    }

    fn watch<W: Watch>(&self, request: W::Request) -> Pin<Box<dyn Stream<Item = Result<W::Item>> + Send>> {
        let state = Reconnecting::<W> {
            client: self.clone(),
            request,
            stream: None,
            failures: 0,
            done: false,
        };
        futures::stream::unfold(state, |mut state| async move {
            let item = state.next().await?;
            Some((item, state))
        })
        .boxed()
    }
}

struct Reconnecting<W: Watch> {
    client: Client,
    request: W::Request,
    stream: Option<Streaming<W::Response>>,
    failures: u32,
    done: bool,
}

impl<W: Watch> Reconnecting<W> {
    async fn next(&mut self) -> Option<Result<W::Item>> {
        if self.done {
            return None;
        }
        loop {
            let Some(stream) = self.stream.as_mut() else {
                match self.open().await {
                    Ok(stream) => self.stream = Some(stream),
                    Err(error) => {
                        self.done = true;
                        return Some(Err(error));
                    }
                }
                continue;
            };
            match stream.message().await {
                Ok(Some(response)) => {
                    self.failures = 0;
                    W::resume(&mut self.request, W::cursor(&response).to_owned());
                    return Some(W::convert(response));
                }
                // Ended by the server (shutting down) or broken: resume.
                Ok(None) => self.stream = None,
                Err(status) if status.code() == Code::Unavailable || status.code() == Code::Unknown => {
                    tracing::debug!(%status, "watch interrupted; reconnecting with its cursor");
                    self.stream = None;
                }
                Err(status) => {
                    self.done = true;
                    return Some(Err(Error::from(status)));
                }
            }
        }
    }

    /// Opens the watch again from the last cursor, retrying UNAVAILABLE
    /// with backoff (a restarting server, another replica behind a load
    /// balancer).
    async fn open(&mut self) -> Result<Streaming<W::Response>> {
        loop {
            let mut request = tonic::Request::new(self.request.clone());
            if let Some(token) = self.client.authorization() {
                request.metadata_mut().insert("authorization", token.clone());
            }
            match W::open(self.client.grpc(), request).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) if status.code() == Code::Unavailable && self.failures < RECONNECTS => {
                    self.failures += 1;
                    let delay = Duration::from_millis(50 * u64::from(self.failures.min(40)));
                    tracing::debug!(%status, ?delay, "watch cannot reconnect yet");
                    tokio::time::sleep(delay).await;
                }
                Err(status) => return Err(Error::from(status)),
            }
        }
    }
}
