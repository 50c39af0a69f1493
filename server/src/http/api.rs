//! The JSON API of the page, under `/api/v1/`:
//!
//! | Path | What |
//! |---|---|
//! | `projects` | the projects the caller may read |
//! | `projects/{p}/models?sort=&order=&where=&offset=&limit=&metrics=` | one page of the models table |
//! | `projects/{p}/models/{name}` | one model: params, hyperparameters, tags, artifacts, status history, metric summaries |
//! | `projects/{p}/models/{name}/metrics?metrics=&points=&exact=` | its curves |
//! | `projects/{p}/models/{name}/events` | server-sent events: `epoch` for each new epoch, `status` when the run's status changes |
//! | `projects/{p}/curves?models=a,b&metrics=m&points=&exact=` | curves of several models (compare) |
//!
//! Handlers are thin: parse and check the query (a bad one is 400 with
//! `{"error": "<parameter>: <rule>"}`), one store call on a blocking
//! thread, JSON from `json.rs`. The guard has checked the token; the
//! project restriction is applied here through [`Caller::project`]. An
//! events stream holds the `--max-watchers` slot the guard took for it
//! ([`WatchSlot`]) until its client goes away.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::json::{self as to_json, Sampling};
use crate::error::Error;
use crate::security::{Caller, Projects, WatchSlot};
use crate::store::Store;
use crate::store::records::{ModelFilter, PageRequest, RunStatus};
use crate::store::watch::{Change, EpochWatch, EpochWatchSpec, Selection};
use crate::store::web::{MetricAgg, SortKey, TableRequest};

/// Rows per page when `limit` is not given, and the most allowed.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1_000;
/// Points per curve when `points` is not given, and the bounds.
const DEFAULT_POINTS: usize = 2_000;
const POINTS_RANGE: (usize, usize) = (10, 100_000);
/// Most models one compare request may name, and metric columns per table.
const MAX_MODELS: usize = 50;
const MAX_METRICS: usize = 20;
/// How often an events stream re-reads without a notification (the
/// safety net for a lost one, and when status changes are looked for).
const EVENTS_POLL: Duration = Duration::from_secs(2);

/// `/api/v1/...` over `store`.
pub(super) fn router(store: Store) -> Router {
    Router::new()
        .route("/api/v1/projects", get(projects))
        .route("/api/v1/projects/{project}/models", get(models))
        .route("/api/v1/projects/{project}/models/{name}", get(model))
        .route(
            "/api/v1/projects/{project}/models/{name}/metrics",
            get(model_curves),
        )
        .route("/api/v1/projects/{project}/models/{name}/events", get(events))
        .route("/api/v1/projects/{project}/curves", get(compare_curves))
        .with_state(store)
}

/// An error as the API answers it: the HTTP status of its gRPC code and
/// `{"error": message}`.
pub(super) struct ApiError(Error);

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        Self(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let plain = self.0.into_http_response();
        let status = plain.status();
        let message = plain.body().trim_end().to_owned();
        (status, Json(json!({ "error": message }))).into_response()
    }
}

type Answer = Result<Json<Value>, ApiError>;
type Params = Query<HashMap<String, String>>;

/// Runs a store read off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::error::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task(format!("a page read task failed: {e}")))?
        .map_err(ApiError)
}

fn invalid(parameter: &str, rule: impl std::fmt::Display) -> ApiError {
    ApiError(Error::InvalidArgument(format!("{parameter}: {rule}")))
}

/// Refuses parameters the endpoint does not take (a typo would silently
/// do nothing otherwise).
fn only(params: &HashMap<String, String>, known: &[&str]) -> Result<(), ApiError> {
    match params.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err(invalid(
            key,
            format!("unknown parameter (this endpoint takes: {})", known.join(", ")),
        )),
        None => Ok(()),
    }
}

/// A comma-separated list of names, each checked like a name of a
/// record; empty items are skipped.
fn names(params: &HashMap<String, String>, parameter: &str, most: usize) -> Result<Vec<String>, ApiError> {
    let Some(text) = params.get(parameter) else {
        return Ok(Vec::new());
    };
    let names: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect();
    if names.len() > most {
        return Err(invalid(
            parameter,
            format!("at most {most} names, got {}", names.len()),
        ));
    }
    for name in &names {
        crate::validate::name(parameter, name).map_err(ApiError)?;
    }
    Ok(names)
}

fn integer(
    params: &HashMap<String, String>,
    parameter: &str,
    default: i64,
    (low, high): (i64, i64),
) -> Result<i64, ApiError> {
    let Some(text) = params.get(parameter) else {
        return Ok(default);
    };
    let value: i64 = text
        .parse()
        .map_err(|_| invalid(parameter, format!("must be an integer, got {text:?}")))?;
    if !(low..=high).contains(&value) {
        return Err(invalid(
            parameter,
            format!("must be between {low} and {high}, got {value}"),
        ));
    }
    Ok(value)
}

/// `points` and `exact`.
fn sampling(params: &HashMap<String, String>) -> Result<Sampling, ApiError> {
    let exact = match params.get("exact").map(String::as_str) {
        None | Some("0" | "false") => false,
        Some("1" | "true") => true,
        Some(other) => return Err(invalid("exact", format!("must be 1 or 0, got {other:?}"))),
    };
    let (low, high) = POINTS_RANGE;
    let points = integer(params, "points", DEFAULT_POINTS as i64, (low as i64, high as i64))?;
    Ok(if exact {
        Sampling::Exact
    } else {
        Sampling::About(usize::try_from(points).unwrap_or(DEFAULT_POINTS))
    })
}

/// `sort` and `order`: `name`, `created`, `status`, `epochs`, or
/// `max(m)`, `min(m)`, `last(m)` of a metric `m`; `asc` or `desc`.
fn sort(params: &HashMap<String, String>) -> Result<(SortKey, bool), ApiError> {
    let text = params.get("sort").map_or("name", String::as_str);
    let key = match text {
        "name" => SortKey::Name,
        "created" => SortKey::Created,
        "status" => SortKey::Status,
        "epochs" => SortKey::Epochs,
        _ => {
            let metric = |prefix: &str| text.strip_prefix(prefix).and_then(|rest| rest.strip_suffix(')'));
            let (agg, metric) = [("max(", MetricAgg::Max), ("min(", MetricAgg::Min), ("last(", MetricAgg::Last)]
                .into_iter()
                .find_map(|(prefix, agg)| metric(prefix).map(|m| (agg, m)))
                .ok_or_else(|| {
                    invalid(
                        "sort",
                        format!("must be name, created, status, epochs, max(METRIC), min(METRIC) or last(METRIC), got {text:?}"),
                    )
                })?;
            crate::validate::name("sort", metric).map_err(ApiError)?;
            SortKey::Metric(agg, metric.to_owned())
        }
    };
    let descending = match params.get("order").map(String::as_str) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => return Err(invalid("order", format!("must be asc or desc, got {other:?}"))),
    };
    Ok((key, descending))
}

/// `where`: parsed here so that its error names the parameter; compiled
/// by the store.
fn where_filter(params: &HashMap<String, String>) -> Result<ModelFilter, ApiError> {
    let text = params
        .get("where")
        .map(|text| text.trim())
        .filter(|text| !text.is_empty());
    if let Some(text) = text {
        if text.len() > mlmeta_proto::filter::MAX_WHERE_BYTES {
            return Err(invalid(
                "where",
                format!("at most {} bytes", mlmeta_proto::filter::MAX_WHERE_BYTES),
            ));
        }
        mlmeta_proto::where_lang::parse(text).map_err(|error| invalid("where", error))?;
    }
    Ok(ModelFilter {
        where_expr: text.map(str::to_owned),
        ..ModelFilter::default()
    })
}

/// `GET /api/v1/projects`: the projects the caller may read, by name.
async fn projects(
    State(store): State<Store>,
    Extension(caller): Extension<Caller>,
    Query(params): Params,
) -> Answer {
    only(&params, &[])?;
    let allowed: Projects = caller.projects.clone();
    let projects = blocking(move || {
        let mut all = Vec::new();
        let mut page = PageRequest {
            size: 1_000,
            token: String::new(),
        };
        loop {
            let listed = store.list_projects(&allowed, &page)?;
            all.extend(listed.items);
            if listed.next_token.is_empty() {
                return Ok(all);
            }
            page.token = listed.next_token;
        }
    })
    .await?;
    let projects: Vec<Value> = projects
        .iter()
        .map(|project| json!({"name": project.name, "created_at": project.created_at}))
        .collect();
    Ok(Json(json!({ "projects": projects })))
}

/// `GET /api/v1/projects/{p}/models`: one page of the table.
async fn models(
    State(store): State<Store>,
    Extension(caller): Extension<Caller>,
    Path(project): Path<String>,
    Query(params): Params,
) -> Answer {
    only(&params, &["sort", "order", "where", "offset", "limit", "metrics"])?;
    let project = caller.project("project", &project)?;
    let (sort, descending) = sort(&params)?;
    let request = TableRequest {
        filter: where_filter(&params)?,
        sort,
        descending,
        offset: integer(&params, "offset", 0, (0, i64::from(i32::MAX)))?,
        limit: integer(&params, "limit", DEFAULT_LIMIT, (1, MAX_LIMIT))?,
        metrics: names(&params, "metrics", MAX_METRICS)?,
    };
    let table = blocking(move || store.web_table(&project, &request)).await?;
    Ok(Json(to_json::table(&table)))
}

/// `GET /api/v1/projects/{p}/models/{name}`.
async fn model(
    State(store): State<Store>,
    Extension(caller): Extension<Caller>,
    Path((project, name)): Path<(String, String)>,
    Query(params): Params,
) -> Answer {
    only(&params, &[])?;
    let project = caller.project("project", &project)?;
    let view = blocking(move || store.web_model(&project, &name)).await?;
    Ok(Json(to_json::model(&view)))
}

/// `GET /api/v1/projects/{p}/models/{name}/metrics`: one model's curves.
async fn model_curves(
    State(store): State<Store>,
    Extension(caller): Extension<Caller>,
    Path((project, name)): Path<(String, String)>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    only(&params, &["metrics", "points", "exact"])?;
    let project = caller.project("project", &project)?;
    let metrics = names(&params, "metrics", usize::MAX)?;
    let sampling = sampling(&params)?;
    let curves = blocking(move || store.web_curves(&project, &[name], &metrics)).await?;
    curves_answer(&curves, sampling)
}

/// Curves as JSON, serialized straight from the records (200,000 points
/// of a compare with `exact=1` never become `Value`s).
fn curves_answer(curves: &[crate::store::web::Curve], sampling: Sampling) -> Result<Response, ApiError> {
    Ok(Json(to_json::curves(curves, sampling)).into_response())
}

/// `GET /api/v1/projects/{p}/curves?models=...`: curves of several models.
async fn compare_curves(
    State(store): State<Store>,
    Extension(caller): Extension<Caller>,
    Path(project): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    only(&params, &["models", "metrics", "points", "exact"])?;
    let project = caller.project("project", &project)?;
    let models = names(&params, "models", MAX_MODELS)?;
    if models.is_empty() {
        return Err(invalid("models", "name at least one model (models=a,b)"));
    }
    let metrics = names(&params, "metrics", usize::MAX)?;
    let sampling = sampling(&params)?;
    let curves = blocking(move || store.web_curves(&project, &models, &metrics)).await?;
    curves_answer(&curves, sampling)
}

type Events = Sse<KeepAliveStream<ReceiverStream<Result<Event, Infallible>>>>;

/// `GET /api/v1/projects/{p}/models/{name}/events`: server-sent events
/// for a model's page. `epoch` (data: `{"epoch": N, "metrics": {...}}`)
/// for every epoch committed after the stream opened, `status` (data:
/// `{"status": "RUNNING"}`) first and whenever the status changes. Fed by
/// the watch hub; re-reads every [`EVENTS_POLL`] in case a notification
/// was lost.
async fn events(
    State(store): State<Store>,
    Extension(caller): Extension<Caller>,
    Extension(slot): Extension<WatchSlot>,
    Path((project, name)): Path<(String, String)>,
    Query(params): Params,
) -> Result<Events, ApiError> {
    // Taken first: an answer refused below frees it on return.
    let slot = slot.take();
    only(&params, &[])?;
    let project = caller.project("project", &project)?;
    let changes = store.hub().subscribe();
    let opened = store.clone();
    let spec = EpochWatchSpec {
        selection: Selection::Names(vec![name.clone()]),
        metric_names: Vec::new(),
        cursor: None,
        history: false,
    };
    let watch_project = project.clone();
    let watch = blocking(move || opened.watch_epochs(&watch_project, spec)).await?;
    let status_store = store.clone();
    let (status_project, status_name) = (project.clone(), name.clone());
    let status = blocking(move || status_store.web_model(&status_project, &status_name))
        .await?
        .detail
        .model
        .run
        .status;
    let (sender, receiver) = mpsc::channel(64);
    let feed = EventFeed {
        store,
        project,
        name,
        watch: Some(watch),
        status,
        sender,
        _slot: slot,
    };
    tokio::spawn(feed.run(changes));
    Ok(Sse::new(ReceiverStream::new(receiver)).keep_alive(KeepAlive::default()))
}

/// One events stream's state.
struct EventFeed {
    store: Store,
    project: crate::security::ProjectScope,
    name: String,
    /// Taken while a blocking read has it.
    watch: Option<EpochWatch>,
    status: RunStatus,
    sender: mpsc::Sender<Result<Event, Infallible>>,
    /// The guard's `--max-watchers` slot, freed when the feed ends.
    _slot: Option<OwnedSemaphorePermit>,
}

impl EventFeed {
    /// Sends until the client goes away (or the store fails).
    async fn run(mut self, mut changes: broadcast::Receiver<Change>) {
        if !self.send_status().await {
            return;
        }
        loop {
            // A client that went away ends the feed (and frees its
            // slot) at once, not at the next change or poll.
            let change = tokio::select! {
                change = tokio::time::timeout(EVENTS_POLL, changes.recv()) => change,
                () = self.sender.closed() => return,
            };
            let (epochs, models) = match change {
                Ok(Ok(Change::Epochs(ids))) => (self.watch.as_ref().is_some_and(|w| w.concerns(&ids)), false),
                Ok(Ok(Change::Models)) => (false, true),
                // Lagged, any change, or the poll: re-read both.
                Ok(Ok(Change::Any) | Err(broadcast::error::RecvError::Lagged(_))) | Err(_) => (true, true),
                Ok(Err(broadcast::error::RecvError::Closed)) => return,
            };
            if self.sender.is_closed() {
                return;
            }
            if epochs && !self.send_epochs().await {
                return;
            }
            if models && !self.send_status_if_changed().await {
                return;
            }
        }
    }

    /// Sends the epochs committed since the last read; `false` when the
    /// stream is over.
    async fn send_epochs(&mut self) -> bool {
        loop {
            let Some(mut watch) = self.watch.take() else {
                return false;
            };
            let store = self.store.clone();
            let read = tokio::task::spawn_blocking(move || {
                let epochs = store.read_watched_epochs(&mut watch, false, 1_000);
                (watch, epochs)
            })
            .await;
            let Ok((watch, Ok(epochs))) = read else {
                return false;
            };
            self.watch = Some(watch);
            if epochs.is_empty() {
                return true;
            }
            for epoch in &epochs {
                let metrics: serde_json::Map<String, Value> = epoch
                    .metrics
                    .iter()
                    .map(|(name, &value)| (name.clone(), to_json::number(value)))
                    .collect();
                let data = json!({ "epoch": epoch.epoch_num, "metrics": metrics }).to_string();
                if self
                    .sender
                    .send(Ok(Event::default().event("epoch").data(data)))
                    .await
                    .is_err()
                {
                    return false;
                }
            }
        }
    }

    async fn send_status_if_changed(&mut self) -> bool {
        let store = self.store.clone();
        let (project, name) = (self.project.clone(), self.name.clone());
        let read = tokio::task::spawn_blocking(move || store.web_model(&project, &name)).await;
        match read {
            Ok(Ok(view)) if view.detail.model.run.status != self.status => {
                self.status = view.detail.model.run.status;
                self.send_status().await
            }
            Ok(Ok(_)) => true,
            _ => false,
        }
    }

    async fn send_status(&self) -> bool {
        let data = json!({ "status": self.status.as_column() }).to_string();
        self.sender
            .send(Ok(Event::default().event("status").data(data)))
            .await
            .is_ok()
    }
}
