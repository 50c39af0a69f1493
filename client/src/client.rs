//! [`Client`]: connection, puts, bulk epoch inserts, queries and the
//! call plumbing (retries, token, time limit); listings are in `listing.rs`.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mlmeta_proto as pb;
use mlmeta_proto::metadata_service_client::MetadataServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic::{Response, Status};

use crate::builder::ClientBuilder;
use crate::columns::{Chunks, MIN_COLUMN_EPOCHS, to_columns};
use crate::convert;
use crate::error::{Error, Result};
use crate::filter::ModelFilter;
use crate::limits::{MAX_EPOCHS_PER_REQUEST, REQUEST_BYTE_BUDGET, Requests};
use crate::retry::{self, RetryNotice, RetryPolicy};
use crate::types::{
    BestModel, CurrentEpoch, DataBlob, Direction, InsertCounts, Model, ModelTemplate, NewEpoch, Project, Put,
};
use crate::writer::{EpochWriter, WriterOptions};

/// The generated client this one wraps.
pub(crate) type Grpc = MetadataServiceClient<Channel>;

/// A client of an mlmeta server.
///
/// Cheap to clone (clones share one HTTP/2 connection) and usable from
/// many tasks at once: every method takes `&self`. Must be used within a
/// Tokio runtime.
///
/// ```no_run
/// use mlmeta_client::{Client, DataBlob, Direction, Model, ModelFilter, ModelTemplate, NewEpoch};
/// use serde_json::json;
///
/// # async fn example() -> mlmeta_client::Result<()> {
/// let client = Client::connect("http://127.0.0.1:50051").await?;
/// client.put_datablob(&DataBlob::new("mnist", "images", json!({"rows": 60000})), false).await?;
/// client.put_model_template(&ModelTemplate::new("mlp", "dense", json!({"layers": 2})), false).await?;
/// client.put_model(&Model::new("run-1", "Mlp", "mnist", "mlp"), false).await?;
///
/// let epochs = (0..100).map(|i| NewEpoch::new(i, [("loss", 1.0 / (i + 1) as f64)]));
/// let counts = client.insert_epochs("run-1", epochs).await?;
/// assert_eq!(counts.inserted + counts.skipped, 100);
///
/// let best = client.best_model("loss", Direction::Min, &ModelFilter::default()).await?;
/// println!("{} at epoch {}: {}", best.model.name, best.best_epoch.epoch_num, best.metric_value);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// Where its calls go; see [`Client::in_project`].
    project: Arc<str>,
}

struct Inner {
    grpc: Grpc,
    authorization: Option<MetadataValue<Ascii>>,
    timeout: Option<Duration>,
    retry: RetryPolicy,
    on_retry: Option<RetryNotice>,
    page_size: u32,
    /// Set once the server answered a columnar request as if it were empty
    /// (a server that predates columns): bulk writes then go as rows.
    columns_refused: AtomicBool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("timeout", &self.inner.timeout)
            .field("retry", &self.inner.retry)
            .field("page_size", &self.inner.page_size)
            .field("project", &self.project)
            .field("token", &self.inner.authorization.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to the server at `url` (`http://HOST:PORT` or
    /// `https://HOST:PORT`, the latter trusting the system's CAs) with the
    /// default settings (see [`ClientBuilder`]).
    pub async fn connect(url: impl Into<String>) -> Result<Self> {
        ClientBuilder::new(url).connect().await
    }

    /// Settings for a client of the server at `url`.
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(url)
    }

    pub(crate) fn from_parts(
        grpc: Grpc,
        authorization: Option<MetadataValue<Ascii>>,
        timeout: Option<Duration>,
        retry: RetryPolicy,
        on_retry: Option<RetryNotice>,
        page_size: u32,
        project: &str,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                grpc,
                authorization,
                timeout,
                retry,
                on_retry,
                page_size,
                columns_refused: AtomicBool::new(false),
            }),
            project: Arc::from(project),
        }
    }

    /// Stores a datablob. Putting an identical record again succeeds with
    /// `already_existed`; a different record under an existing name is
    /// [`Error::AlreadyExists`] unless `ignore_existing`, which leaves the
    /// stored one untouched and returns it.
    pub async fn put_datablob(&self, datablob: &DataBlob, ignore_existing: bool) -> Result<Put<DataBlob>> {
        let request = pb::PutDataBlobRequest {
            datablob: Some(convert::datablob_to_pb(datablob)?),
            ignore_existing,
            project: self.project().to_owned(),
        };
        let response = self
            .unary(request, |mut grpc, r| async move { grpc.put_data_blob(r).await })
            .await?;
        Ok(Put {
            record: convert::datablob(response.datablob)?,
            already_existed: response.already_existed,
        })
    }

    /// Stores a model template, with the rules of
    /// [`Client::put_datablob`].
    pub async fn put_model_template(
        &self,
        template: &ModelTemplate,
        ignore_existing: bool,
    ) -> Result<Put<ModelTemplate>> {
        let request = pb::PutModelTemplateRequest {
            model_template: Some(convert::template_to_pb(template)?),
            ignore_existing,
            project: self.project().to_owned(),
        };
        let response = self
            .unary(
                request,
                |mut grpc, r| async move { grpc.put_model_template(r).await },
            )
            .await?;
        Ok(Put {
            record: convert::template(response.model_template)?,
            already_existed: response.already_existed,
        })
    }

    /// Stores a model, with the rules of [`Client::put_datablob`]. Its
    /// datablob and template must exist ([`Error::FailedPrecondition`]
    /// otherwise).
    pub async fn put_model(&self, model: &Model, ignore_existing: bool) -> Result<Put<Model>> {
        let request = pb::PutModelRequest {
            model: Some(convert::model_to_pb(model)?),
            ignore_existing,
            project: self.project().to_owned(),
        };
        let response = self
            .unary(request, |mut grpc, r| async move { grpc.put_model(r).await })
            .await?;
        Ok(Put {
            record: convert::model(response.model)?,
            already_existed: response.already_existed,
        })
    }

    /// Stores any number of epochs of model `model_name`, in requests
    /// under the server's limits (at most 100,000 epochs and 16 MiB each),
    /// sent one after the other as `epochs` yields them. Returns the summed
    /// counts: epochs already stored are skipped, never overwritten, so
    /// sending the same epochs again is harmless.
    ///
    /// Requests of several epochs go in the columnar form (one packed
    /// array per metric), which is faster to encode and decode; a server
    /// that predates it is detected (it answers as if the request were
    /// empty) and sent rows instead, by this client from then on.
    ///
    /// Each request is stored all or nothing. If one fails, the error is
    /// returned and the requests before it stay stored; calling again with
    /// the same epochs completes the work (the stored ones count as
    /// skipped). An unknown model is [`Error::NotFound`].
    pub async fn insert_epochs(
        &self,
        model_name: &str,
        epochs: impl IntoIterator<Item = NewEpoch>,
    ) -> Result<InsertCounts> {
        let mut total = InsertCounts::default();
        for chunk in Chunks::new(epochs.into_iter(), MAX_EPOCHS_PER_REQUEST, REQUEST_BYTE_BUDGET) {
            if self.columns_allowed() && chunk.len() >= MIN_COLUMN_EPOCHS {
                let columns = to_columns(model_name, &chunk);
                let counts = self.insert_request(Vec::new(), vec![columns]).await?;
                if counts != InsertCounts::default() {
                    total += counts;
                    continue;
                }
                self.refuse_columns();
            }
            let rows = chunk.into_iter().map(|e| convert::epoch_to_pb(model_name, e));
            for request in Requests::new(rows, MAX_EPOCHS_PER_REQUEST, REQUEST_BYTE_BUDGET) {
                total += self.insert_request(request, Vec::new()).await?;
            }
        }
        Ok(total)
    }

    /// One InsertEpochs request (retried by the client's policy).
    async fn insert_request(
        &self,
        epochs: Vec<pb::Epoch>,
        columns: Vec<pb::EpochColumns>,
    ) -> Result<InsertCounts> {
        let request = pb::InsertEpochsRequest {
            epochs,
            columns,
            project: self.project().to_owned(),
        };
        let response = self
            .unary(request, |mut grpc, r| async move { grpc.insert_epochs(r).await })
            .await?;
        Ok(convert::counts(&response))
    }

    /// Whether bulk writes may use the columnar form (the server has not
    /// shown that it ignores it).
    pub(crate) fn columns_allowed(&self) -> bool {
        !self.inner.columns_refused.load(Ordering::Relaxed)
    }

    /// Notes that the server ignores the columnar form.
    pub(crate) fn refuse_columns(&self) {
        if !self.inner.columns_refused.swap(true, Ordering::Relaxed) {
            tracing::info!("the server does not know columnar epochs; sending rows");
        }
    }

    /// The highest epoch number stored for `model_name`, and whether the
    /// model exists.
    pub async fn current_epoch(&self, model_name: &str) -> Result<CurrentEpoch> {
        let request = pb::GetCurrentEpochRequest {
            model_name: model_name.to_owned(),
            project: self.project().to_owned(),
        };
        let response = self
            .unary(
                request,
                |mut grpc, r| async move { grpc.get_current_epoch(r).await },
            )
            .await?;
        Ok(CurrentEpoch {
            epoch_num: response.current_epoch,
            model_exists: response.model_exists,
        })
    }

    /// The model matching `filter` with the best value of `metric`
    /// (NaN is never best; ties go to the lower epoch number, then the
    /// model name). [`Error::NotFound`] when no matching model has the
    /// metric.
    pub async fn best_model(
        &self,
        metric: &str,
        direction: Direction,
        filter: &ModelFilter,
    ) -> Result<BestModel> {
        self.best_models(metric, direction, filter, 1)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::InvalidResponse("GetBestModel returned no model".into()))
    }

    /// The `top_k` (1 to 1,000) best models by `metric`, best first (see
    /// [`Client::best_model`]); fewer when fewer models have the metric.
    pub async fn best_models(
        &self,
        metric: &str,
        direction: Direction,
        filter: &ModelFilter,
        top_k: u32,
    ) -> Result<Vec<BestModel>> {
        self.best_models_with(metric, direction, filter, top_k, &[]).await
    }

    /// [`Client::best_models`] with summary `columns` (`last(loss)`,
    /// `max(val_accuracy)`, `epochs`, ...) in each model's
    /// [`Model::columns`](crate::Model::columns).
    pub async fn best_models_with(
        &self,
        metric: &str,
        direction: Direction,
        filter: &ModelFilter,
        top_k: u32,
        columns: &[String],
    ) -> Result<Vec<BestModel>> {
        let request = pb::GetBestModelRequest {
            metric_name: metric.to_owned(),
            direction: convert::direction(direction),
            filter: Some(convert::model_filter(filter)),
            top_k,
            project: self.project().to_owned(),
            columns: columns.to_vec(),
        };
        let response = self
            .unary(request, |mut grpc, r| async move { grpc.get_best_model(r).await })
            .await?;
        convert::all(response.models, convert::best_model)
    }

    /// A background writer of epochs of `model_name` with the default
    /// [`WriterOptions`] (see [`EpochWriter`]). Needs a Tokio runtime.
    pub fn epoch_writer(&self, model_name: impl Into<String>) -> Result<EpochWriter> {
        self.epoch_writer_with(model_name, WriterOptions::default())
    }

    /// A background writer of epochs of `model_name` with `options`.
    pub fn epoch_writer_with(
        &self,
        model_name: impl Into<String>,
        options: WriterOptions,
    ) -> Result<EpochWriter> {
        EpochWriter::start(self.clone(), model_name.into(), options)
    }

    /// Starts `model_name`'s run with the context of this process (see
    /// [`Client::start_run`]) and returns a background writer of its
    /// epochs; every stored batch counts as the run's heartbeat. End the
    /// run with [`EpochWriter::finish`].
    pub async fn start_run_writer(
        &self,
        model_name: impl Into<String>,
        heartbeat_timeout_secs: Option<u32>,
        options: WriterOptions,
    ) -> Result<EpochWriter> {
        let model_name = model_name.into();
        // Bad options must not leave a started run behind.
        options.check()?;
        self.start_run(&model_name, heartbeat_timeout_secs).await?;
        EpochWriter::start(self.clone(), model_name, options)
    }

    /// The same client (sharing its connection and settings), making its
    /// calls in project `project` instead (empty: `default`).
    ///
    /// ```no_run
    /// # async fn example(client: mlmeta_client::Client) -> mlmeta_client::Result<()> {
    /// let vision = client.in_project("vision");
    /// let models = vision.list_models(&Default::default()).await?;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn in_project(&self, project: impl AsRef<str>) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            project: Arc::from(project.as_ref()),
        }
    }

    /// The project this client's calls go to (`default` when none was
    /// set).
    pub fn project(&self) -> &str {
        &self.project
    }

    /// Every project the client's token may use, by name.
    pub async fn list_projects(&self) -> Result<Vec<Project>> {
        let mut projects = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = pb::ListProjectsRequest {
                page_size: self.page_size(),
                page_token,
            };
            let response = self
                .unary(request, |mut grpc, r| async move { grpc.list_projects(r).await })
                .await?;
            projects.extend(convert::all(response.projects, convert::project)?);
            if response.next_page_token.is_empty() {
                return Ok(projects);
            }
            page_token = response.next_page_token;
        }
    }

    /// The gRPC client (cheap to clone).
    pub(crate) fn grpc(&self) -> Grpc {
        self.inner.grpc.clone()
    }

    /// The `authorization` metadata the calls carry, if any.
    pub(crate) fn authorization(&self) -> Option<&MetadataValue<Ascii>> {
        self.inner.authorization.as_ref()
    }

    /// Rows asked for per page when following page tokens.
    pub(crate) fn page_size(&self) -> u32 {
        self.inner.page_size
    }

    /// One InsertEpochs call, without retries, with its own time limit
    /// (the writer retries by itself).
    pub(crate) async fn insert_once(
        &self,
        epochs: Vec<pb::Epoch>,
        timeout: Duration,
    ) -> Result<InsertCounts> {
        let mut request = self.request(pb::InsertEpochsRequest {
            epochs,
            project: self.project().to_owned(),
            columns: Vec::new(),
        });
        let limit = self.inner.timeout.map_or(timeout, |t| t.min(timeout));
        request.set_timeout(limit);
        let mut grpc = self.inner.grpc.clone();
        // The transport enforces the deadline; this bounds a call stuck
        // elsewhere (say, in sending the request) too.
        match tokio::time::timeout(limit, grpc.insert_epochs(request)).await {
            Ok(Ok(response)) => Ok(convert::counts(&response.into_inner())),
            Ok(Err(status)) => Err(Error::from(status)),
            Err(_) => Err(Error::DeadlineExceeded {
                message: format!("InsertEpochs took over {limit:?}"),
            }),
        }
    }

    /// Puts the client's token on `request` (for streams, which carry no
    /// time limit: they last as long as their content).
    pub(crate) fn authorize<T>(&self, request: &mut tonic::Request<T>) {
        if let Some(token) = &self.inner.authorization {
            request.metadata_mut().insert("authorization", token.clone());
        }
    }

    /// Opens a WriteEpochs stream sending `batches`; within `timeout`. The
    /// stream carries the client's token but no time limit (it lives as
    /// long as the writer).
    pub(crate) async fn open_write_stream(
        &self,
        batches: futures::channel::mpsc::Receiver<pb::WriteEpochsRequest>,
        timeout: Duration,
    ) -> Result<tonic::Streaming<pb::WriteEpochsResponse>> {
        let mut request = tonic::Request::new(batches);
        if let Some(token) = &self.inner.authorization {
            request.metadata_mut().insert("authorization", token.clone());
        }
        let mut grpc = self.inner.grpc.clone();
        match tokio::time::timeout(timeout, grpc.write_epochs(request)).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(Error::from(status)),
            Err(_) => Err(Error::DeadlineExceeded {
                message: format!("opening a WriteEpochs stream took over {timeout:?}"),
            }),
        }
    }

    /// `message` as a request with the client's token and time limit.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.inner.authorization {
            request.metadata_mut().insert("authorization", token.clone());
        }
        if let Some(timeout) = self.inner.timeout {
            request.set_timeout(timeout);
        }
        request
    }

    /// Makes one call (`call(grpc, request)`), retried by the client's
    /// policy; returns the response message.
    pub(crate) async fn unary<Req, Resp, F, Fut>(&self, message: Req, call: F) -> Result<Resp>
    where
        Req: Clone,
        F: Fn(Grpc, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = std::result::Result<Response<Resp>, Status>>,
    {
        let policy = self.inner.retry;
        // Without retries the message is moved, not copied.
        let mut kept = Some(message);
        retry::run(
            &policy,
            || {
                let message = if policy.retries() {
                    kept.clone()
                } else {
                    kept.take()
                };
                let attempt = message.map(|m| call(self.inner.grpc.clone(), self.request(m)));
                async move {
                    match attempt {
                        Some(attempt) => attempt.await.map(Response::into_inner).map_err(Error::from),
                        None => Err(Error::Config("a call was attempted twice without retries".into())),
                    }
                }
            },
            |error, retry, delay| {
                tracing::debug!(%error, retry, ?delay, "retrying a call");
                if let Some(notice) = &self.inner.on_retry {
                    notice(error, retry, delay);
                }
            },
        )
        .await
    }
}
