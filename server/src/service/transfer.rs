//! `Export` and `Import` (issue 18): a project's records out as a stream of
//! typed records, and back in.
//!
//! The export runs on one blocking thread that reads the store in pages
//! (datablobs, templates and models 100 at a time, epochs
//! [`EPOCHS_PER_BATCH`] at a time by keyset pagination, artifact content
//! one stored chunk at a time) and hands each record to a bounded channel:
//! memory stays a few pages whatever the project's size, and a slow client
//! slows the reads down.
//!
//! The import applies each record as it arrives, in its own short write
//! (epochs through the group commit, as InsertEpochs, but as imported
//! epochs: with their recorded_at, not a heartbeat), keeping only the
//! model being imported and the artifact whose content is arriving. A
//! model is stored with its exported run state before its epochs, so an
//! import cut off anywhere leaves its status the exported one.

use futures::StreamExt as _;
use mlmeta_proto as pb;
use mlmeta_proto::export_record::Record;
use prost_types::Timestamp;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::{MetadataApi, Reply, artifacts, caller_of, convert, runs, watch_slot};
use crate::error::{Error, Result};
use crate::security::ProjectScope;
use crate::store::records::{
    ComponentKind, Deletion, EpochFilter, GroupedFilter, ModelFilter, ModelView, NewArtifact, PageRequest,
    RunState, RunStatus, StatusChange, Tags,
};
use crate::store::transfer::{ExportedMeta, ImportComponent, ImportModel, Imported};
use crate::store::{CONTENT_URI_PREFIX, Store};
use crate::validate::{self, artifacts as rules};

/// The version of the record format this server writes and reads.
pub(super) const FORMAT_VERSION: u32 = 1;

/// Epochs per `epochs` record (and per page read).
const EPOCHS_PER_BATCH: usize = 10_000;

/// Datablobs, templates or models per page read.
const RECORDS_PER_PAGE: usize = 100;

/// Records the export reads ahead of the client.
const EXPORT_AHEAD: usize = 8;

/// Conflicts listed in the answer (all are counted).
const MAX_LISTED_CONFLICTS: usize = 1_000;

/// The answer stream of Export.
pub(super) type Records = ReceiverStream<std::result::Result<pb::ExportRecord, Status>>;

/// What an export selects.
struct Selection {
    project: ProjectScope,
    filter: ModelFilter,
    /// Models named or a `where`: only their datablobs and templates.
    narrowed: bool,
    request: pb::ExportRequest,
}

pub(super) async fn export(api: &MetadataApi, request: Request<pb::ExportRequest>) -> Reply<Records> {
    let project = caller_of(&request)?.project("project", &request.get_ref().project)?;
    // Held by the reading thread: an export counts against --max-watchers
    // while it streams, like a download.
    let slot = watch_slot(&request);
    let request = request.into_inner();
    validate::filter_values("model_names", &request.model_names)?;
    for (i, name) in request.model_names.iter().enumerate() {
        validate::name(|| format!("model_names[{i}]"), name)?;
    }
    let mut filter = convert::model_filter(Some(pb::ModelFilter {
        names: request.model_names.clone(),
        r#where: request.r#where.clone(),
        ..pb::ModelFilter::default()
    }))?;
    // A full backup carries everything: deleted records too, as deleted.
    filter.deletion = Deletion::All;
    let selection = Selection {
        project,
        narrowed: !request.model_names.is_empty() || !request.r#where.trim().is_empty(),
        filter,
        request,
    };
    // A bad `where` fails the call itself, not its first record.
    let (check, check_filter) = (selection.project.clone(), selection.filter.clone());
    api.run(move |store| {
        store.list_models(
            &check,
            &check_filter,
            &ModelView::default(),
            &page(1, String::new()),
        )
    })
    .await?;
    let (sender, receiver) = mpsc::channel(EXPORT_AHEAD);
    let store = api.store.clone();
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let out = Out(&sender);
        match produce(&store, &selection, &out) {
            Ok(()) | Err(Stop::Gone) => {}
            Err(Stop::Failed(error)) => {
                let _ = sender.blocking_send(Err(error.into()));
            }
        }
    });
    Ok(Response::new(ReceiverStream::new(receiver)))
}

/// Why an export stopped early.
enum Stop {
    /// The client went away.
    Gone,
    /// A read failed.
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(error: Error) -> Self {
        Self::Failed(error)
    }
}

struct Out<'a>(&'a mpsc::Sender<std::result::Result<pb::ExportRecord, Status>>);

impl Out<'_> {
    fn send(&self, record: Record) -> std::result::Result<(), Stop> {
        self.0
            .blocking_send(Ok(pb::ExportRecord { record: Some(record) }))
            .map_err(|_| Stop::Gone)
    }
}

fn page(size: usize, token: String) -> PageRequest {
    PageRequest { size, token }
}

/// Reads every page of a listing, sending each item.
fn each_page<T>(
    mut read: impl FnMut(&PageRequest) -> Result<crate::store::records::Page<T>>,
    mut each: impl FnMut(T) -> std::result::Result<(), Stop>,
    size: usize,
) -> std::result::Result<(), Stop> {
    let mut token = String::new();
    loop {
        let page = read(&page(size, std::mem::take(&mut token)))?;
        for item in page.items {
            each(item)?;
        }
        if page.next_token.is_empty() {
            return Ok(());
        }
        token = page.next_token;
    }
}

fn produce(store: &Store, selection: &Selection, out: &Out<'_>) -> std::result::Result<(), Stop> {
    let project = &selection.project;
    let request = &selection.request;
    out.send(Record::Header(pb::ExportHeader {
        format_version: FORMAT_VERSION,
        exported_at: convert::timestamp(crate::store::records::now_micros()),
        server_version: env!("CARGO_PKG_VERSION").to_owned(),
        project: project.name().to_owned(),
        model_names: request.model_names.clone(),
        r#where: request.r#where.clone(),
        with_artifacts: request.with_artifacts,
    }))?;
    for kind in [ComponentKind::DataBlob, ComponentKind::ModelTemplate] {
        let record = |c| match kind {
            ComponentKind::DataBlob => Record::Datablob(convert::datablob(c, project.name())),
            ComponentKind::ModelTemplate => Record::ModelTemplate(convert::model_template(c, project.name())),
        };
        if selection.narrowed {
            // The names the selected models use, in order (one name per
            // model at most: as many as the models, never their epochs).
            let mut names = std::collections::BTreeSet::new();
            each_page(
                |page| store.list_models(project, &selection.filter, &ModelView::default(), page),
                |model| {
                    names.insert(match kind {
                        ComponentKind::DataBlob => model.datablob_name,
                        ComponentKind::ModelTemplate => model.model_template_name,
                    });
                    Ok(())
                },
                RECORDS_PER_PAGE,
            )?;
            let names: Vec<String> = names.into_iter().collect();
            for chunk in names.chunks(validate::MAX_FILTER_VALUES) {
                let mut filter = GroupedFilter::default().names(chunk.iter().cloned());
                filter.deletion = Deletion::All;
                each_page(
                    |page| store.list_components(project, kind, &filter, page),
                    |c| out.send(record(c)),
                    RECORDS_PER_PAGE,
                )?;
            }
        } else {
            let filter = GroupedFilter {
                deletion: Deletion::All,
                ..GroupedFilter::default()
            };
            each_page(
                |page| store.list_components(project, kind, &filter, page),
                |c| out.send(record(c)),
                RECORDS_PER_PAGE,
            )?;
        }
    }
    each_page(
        |page| store.list_models(project, &selection.filter, &ModelView::default(), page),
        |model| export_model(store, project, &model.name, request.with_artifacts, out),
        RECORDS_PER_PAGE,
    )
}

/// One model: its record, its artifacts (with content when asked), its
/// epochs in batches.
fn export_model(
    store: &Store,
    project: &ProjectScope,
    name: &str,
    with_artifacts: bool,
    out: &Out<'_>,
) -> std::result::Result<(), Stop> {
    let detail = match store.get_model(project, name) {
        Ok(detail) => detail,
        // Deleted or purged since the page was read: not part of it.
        Err(Error::NotFound(_)) => return Ok(()),
        Err(error) => return Err(error.into()),
    };
    let deleted = detail.model.deleted_at.is_some();
    let artifacts = detail.artifacts;
    out.send(Record::Model(pb::ExportedModel {
        model: Some(convert::model(detail.model, project.name())),
        status_changes: detail
            .status_changes
            .into_iter()
            .map(runs::status_change)
            .collect(),
    }))?;
    for artifact in artifacts {
        // (The content of a deleted model's artifacts cannot be read.)
        let content = with_artifacts && artifact.content_stored && !deleted;
        let artifact_name = artifact.name.clone();
        out.send(Record::Artifact(pb::ExportedArtifact {
            model_name: name.to_owned(),
            artifact: Some(artifacts::artifact(artifact)),
        }))?;
        if content {
            let download = store.open_download(project, name, &artifact_name)?;
            for seq in 0..download.chunks {
                let data = store.read_content_chunk(download.blob_id, seq)?;
                out.send(Record::ArtifactChunk(pb::ArtifactChunk {
                    model_name: name.to_owned(),
                    artifact_name: artifact_name.clone(),
                    data,
                }))?;
            }
        }
    }
    let filter = EpochFilter {
        model_names: vec![name.to_owned()],
        include_deleted: true,
        ..EpochFilter::default()
    };
    let mut token = String::new();
    loop {
        let page = store.list_epochs(
            project,
            &filter,
            &page(EPOCHS_PER_BATCH, std::mem::take(&mut token)),
        )?;
        if !page.items.is_empty() {
            out.send(Record::Epochs(pb::EpochBatch {
                epochs: page.items.into_iter().map(convert::epoch).collect(),
            }))?;
        }
        if page.next_token.is_empty() {
            return Ok(());
        }
        token = page.next_token;
    }
}

// --- Import ------------------------------------------------------------------

pub(super) async fn import(
    api: &MetadataApi,
    request: Request<Streaming<pb::ImportRequest>>,
) -> Reply<pb::ImportResponse> {
    let caller = caller_of(&request)?.clone();
    let mut stream = request.into_inner();
    let mut importer: Option<Importer<'_>> = None;
    let mut index: u64 = 0;
    while let Some(message) = stream.next().await {
        let message = message.map_err(|status| {
            Status::new(
                status.code(),
                format!(
                    "the import stream broke off after {index} records (those stay stored; importing again skips them): {}",
                    status.message()
                ),
            )
        })?;
        let importer = match &mut importer {
            Some(importer) => importer,
            None => importer.insert(Importer::new(
                api,
                caller.project("project", &message.project)?,
                message.overwrite_mutable,
            )),
        };
        for record in message.records {
            importer
                .apply(index, record)
                .await
                .map_err(|error| at_record(index, error))?;
            index += 1;
        }
    }
    let Some(mut importer) = importer else {
        return Err(Error::invalid("records", "an import needs at least the header record").into());
    };
    importer.finish().await.map_err(|error| at_record(index, error))?;
    importer.answer.records = index;
    Ok(Response::new(importer.answer))
}

/// `error` about record `index`, with its code.
fn at_record(index: u64, error: Error) -> Status {
    let status = Status::from(error);
    Status::new(
        status.code(),
        format!(
            "records[{index}]: {} (the records before it stay stored; importing again skips them)",
            status.message()
        ),
    )
}

/// What became of the model whose records are arriving.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ModelOutcome {
    /// This import stored it (with its run state).
    Inserted,
    /// It was stored already (identically or with its tags replaced).
    Present,
    /// Stored with other content: its artifacts and epochs are skipped.
    Conflict,
}

struct CurrentModel {
    record: ImportModel,
    outcome: ModelOutcome,
}

/// An artifact whose content is arriving.
struct Pending {
    model_name: String,
    new: NewArtifact,
    created_at: i64,
    /// Of the artifact record, for a conflict.
    index: u64,
    state: PendingState,
}

enum PendingState {
    /// Its model is a conflict: its chunks are skipped.
    Skip,
    Content {
        blob_id: i64,
        hasher: Sha256,
        received: i64,
        size: i64,
        /// The target holds this content already: only hash the chunks.
        discard: bool,
        seq: i64,
    },
}

struct Importer<'a> {
    api: &'a MetadataApi,
    project: ProjectScope,
    overwrite_mutable: bool,
    header_seen: bool,
    model: Option<CurrentModel>,
    pending: Option<Pending>,
    answer: pb::ImportResponse,
}

fn micros(field: &str, timestamp: Option<Timestamp>) -> Result<i64> {
    let timestamp = timestamp.ok_or_else(|| Error::invalid(field, "is required in an exported record"))?;
    optional_micros(field, Some(timestamp)).map(|t| t.unwrap_or_default())
}

fn optional_micros(field: &str, timestamp: Option<Timestamp>) -> Result<Option<i64>> {
    timestamp
        .map(|t| {
            t.seconds
                .checked_mul(1_000_000)
                .and_then(|s| s.checked_add(i64::from(t.nanos / 1_000)))
                .filter(|_| (0..1_000_000_000).contains(&t.nanos))
                .ok_or_else(|| Error::invalid(field, "is not a valid timestamp"))
        })
        .transpose()
}

fn run_status(field: &str, value: i32) -> Result<RunStatus> {
    pb::RunStatus::try_from(value)
        .ok()
        .and_then(|status| RunStatus::from_column(status.as_str_name().trim_start_matches("RUN_STATUS_")))
        .ok_or_else(|| Error::invalid(field, format!("is not a run status: {value}")))
}

fn tags(field: &str, tags: Tags) -> Result<Tags> {
    if tags.len() > validate::MAX_TAGS {
        return Err(Error::invalid(
            field,
            format!("holds more than {} tags", validate::MAX_TAGS),
        ));
    }
    for (key, value) in &tags {
        validate::name(|| format!("{field}[{}] (key)", validate::echo(key)), key)?;
        validate::tag_value(|| format!("{field}[{}]", validate::echo(key)), value)?;
    }
    Ok(tags)
}

fn description(field: &str, description: String) -> Result<String> {
    validate::description(field, &description)?;
    Ok(description)
}

impl Importer<'_> {
    fn new(api: &MetadataApi, project: ProjectScope, overwrite_mutable: bool) -> Importer<'_> {
        Importer {
            api,
            project,
            overwrite_mutable,
            header_seen: false,
            model: None,
            pending: None,
            answer: pb::ImportResponse {
                datablobs: Some(pb::ImportCounts::default()),
                model_templates: Some(pb::ImportCounts::default()),
                models: Some(pb::ImportCounts::default()),
                artifacts: Some(pb::ImportCounts::default()),
                epochs: Some(pb::ImportCounts::default()),
                ..pb::ImportResponse::default()
            },
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Store, &ProjectScope) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.api.run_in(&self.project, call).await
    }

    /// Counts `outcome` of a record of `kind` named `name` at `index`.
    fn count(&mut self, index: u64, kind: &str, name: &str, outcome: Imported) {
        let answer = &mut self.answer;
        let counts = match kind {
            "datablob" => &mut answer.datablobs,
            "model template" => &mut answer.model_templates,
            "model" => &mut answer.models,
            _ => &mut answer.artifacts,
        }
        .get_or_insert_default();
        match outcome {
            Imported::Inserted => counts.inserted += 1,
            Imported::Skipped => counts.skipped += 1,
            Imported::Updated => counts.updated += 1,
            Imported::Conflict(message) => {
                counts.conflicts += 1;
                if answer.conflicts.len() < MAX_LISTED_CONFLICTS {
                    answer.conflicts.push(pb::ImportConflict {
                        record_index: index,
                        kind: kind.to_owned(),
                        name: name.to_owned(),
                        message,
                    });
                }
            }
        }
    }

    async fn apply(&mut self, index: u64, record: pb::ExportRecord) -> Result<()> {
        let record = record
            .record
            .ok_or_else(|| Error::invalid("record", "is empty (no record kind set)"))?;
        if !self.header_seen {
            let Record::Header(header) = record else {
                return Err(Error::invalid("record", "the first record must be the header"));
            };
            if header.format_version != FORMAT_VERSION {
                return Err(Error::invalid(
                    "header.format_version",
                    format!(
                        "this server reads format version {FORMAT_VERSION}, not {}",
                        header.format_version
                    ),
                ));
            }
            self.header_seen = true;
            return Ok(());
        }
        if !matches!(record, Record::ArtifactChunk(_)) {
            self.settle_pending().await?;
        }
        if !matches!(
            record,
            Record::Artifact(_) | Record::ArtifactChunk(_) | Record::Epochs(_)
        ) {
            self.finish_model();
        }
        match record {
            Record::Header(_) => Err(Error::invalid("header", "only the first record is the header")),
            Record::Datablob(c) => {
                let record = component("datablob", c)?;
                self.component(index, ComponentKind::DataBlob, record).await
            }
            Record::ModelTemplate(c) => {
                let record = component("model_template", c.into())?;
                self.component(index, ComponentKind::ModelTemplate, record).await
            }
            Record::Model(model) => self.model(index, model).await,
            Record::Artifact(artifact) => self.artifact(index, artifact).await,
            Record::ArtifactChunk(chunk) => self.chunk(chunk).await,
            Record::Epochs(batch) => self.epochs(batch).await,
        }
    }

    async fn component(&mut self, index: u64, kind: ComponentKind, record: ImportComponent) -> Result<()> {
        let name = record.new.name.clone();
        let overwrite = self.overwrite_mutable;
        let outcome = self
            .run(move |store, project| store.import_component(project, kind, &record, overwrite))
            .await?;
        self.count(index, kind.label(), &name, outcome);
        Ok(())
    }

    async fn model(&mut self, index: u64, exported: pb::ExportedModel) -> Result<()> {
        let pb::ExportedModel {
            model,
            status_changes,
        } = exported;
        let model = convert::required("model.model", model)?;
        let meta = ExportedMeta {
            created_at: micros("model.created_at", model.created_at)?,
            last_modified_at: micros("model.last_modified_at", model.last_modified_at)?,
            tags: tags("model.tags", model.tags.clone())?,
            description: description("model.description", model.description.clone())?,
            deleted_at: optional_micros("model.deleted_at", model.deleted_at)?,
        };
        if let Some(secs) = model.heartbeat_timeout_secs
            && !(1..=crate::config::MAX_HEARTBEAT_TIMEOUT_SECS).contains(&u64::from(secs))
        {
            return Err(Error::invalid(
                "model.heartbeat_timeout_secs",
                format!("out of range: {secs}"),
            ));
        }
        let run = RunState {
            status: run_status("model.status", model.status)?,
            started_at: optional_micros("model.started_at", model.started_at)?,
            ended_at: optional_micros("model.ended_at", model.ended_at)?,
            last_heartbeat_at: optional_micros("model.last_heartbeat_at", model.last_heartbeat_at)?,
            heartbeat_timeout_secs: model.heartbeat_timeout_secs.map(i64::from),
            run_context: model.run_context.as_ref().map(runs::context_json),
        };
        let status_changes = status_changes
            .into_iter()
            .enumerate()
            .map(|(i, change)| {
                Ok(StatusChange {
                    changed_at: micros(&format!("status_changes[{i}].changed_at"), change.changed_at)?,
                    from: run_status(&format!("status_changes[{i}].from"), change.from)?,
                    to: run_status(&format!("status_changes[{i}].to"), change.to)?,
                    cause: change.cause,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let record = ImportModel {
            new: convert::new_model(model)?,
            meta,
            run,
            status_changes,
        };
        let name = record.new.name.clone();
        let overwrite = self.overwrite_mutable;
        let (outcome, record) = self
            .run(move |store, project| {
                store
                    .import_model(project, &record, overwrite)
                    .map(|outcome| (outcome, record))
            })
            .await?;
        let state = match outcome {
            Imported::Inserted => ModelOutcome::Inserted,
            Imported::Conflict(_) => ModelOutcome::Conflict,
            Imported::Skipped | Imported::Updated => ModelOutcome::Present,
        };
        self.count(index, "model", &name, outcome);
        self.model = Some(CurrentModel {
            record,
            outcome: state,
        });
        Ok(())
    }

    /// The model whose records follow; INVALID_ARGUMENT when `named` is
    /// not it.
    fn current(&self, field: &str, named: &str) -> Result<&CurrentModel> {
        match &self.model {
            Some(current) if current.record.new.name == named => Ok(current),
            Some(current) => Err(Error::invalid(
                field,
                format!(
                    "names model {:?}, but the records before it are of model {:?} (an export lists a model's artifacts and epochs right after it)",
                    validate::echo(named),
                    current.record.new.name
                ),
            )),
            None => Err(Error::invalid(
                field,
                format!(
                    "names model {:?}, but no model record came before it",
                    validate::echo(named)
                ),
            )),
        }
    }

    /// The model before is complete.
    fn finish_model(&mut self) {
        self.model = None;
    }

    async fn epochs(&mut self, batch: pb::EpochBatch) -> Result<()> {
        let Some(first) = batch.epochs.first() else {
            return Ok(());
        };
        let name = first.model_name.clone();
        let outcome = self.current("epochs.epochs[0].model_name", &name)?.outcome;
        if let Some((i, other)) = batch
            .epochs
            .iter()
            .enumerate()
            .find(|(_, e)| e.model_name != name)
        {
            return Err(Error::invalid(
                format!("epochs.epochs[{i}].model_name"),
                format!(
                    "names model {:?}: an epochs record holds epochs of one model",
                    validate::echo(&other.model_name)
                ),
            ));
        }
        let count = batch.epochs.len() as u64;
        // Imported epochs keep the time they were first stored (one that
        // lacks it, from an export written before it was carried, gets the
        // import's time).
        let now = crate::store::records::now_micros();
        let recorded_at = batch
            .epochs
            .iter()
            .enumerate()
            .map(|(i, e)| {
                optional_micros(&format!("epochs.epochs[{i}].recorded_at"), e.recorded_at)
                    .map(|t| t.unwrap_or(now))
            })
            .collect::<Result<Vec<i64>>>()?;
        let mut epochs = convert::new_epochs(pb::InsertEpochsRequest {
            epochs: batch.epochs,
            ..Default::default()
        })?;
        for (epoch, at) in epochs.iter_mut().zip(recorded_at) {
            epoch.recorded_at = Some(at);
        }
        if outcome == ModelOutcome::Conflict {
            self.answer.epochs_of_conflicts += count;
            return Ok(());
        }
        let counts = self.api.store.insert_epochs(self.project.clone(), epochs).await?;
        let answer = self.answer.epochs.get_or_insert_default();
        answer.inserted += counts.inserted;
        answer.skipped += counts.skipped;
        Ok(())
    }

    async fn artifact(&mut self, index: u64, exported: pb::ExportedArtifact) -> Result<()> {
        let model_name = exported.model_name;
        let current = self.current("artifact.model_name", &model_name)?;
        let (outcome, model_deleted) = (current.outcome, current.record.meta.deleted_at.is_some());
        let artifact = convert::required("artifact.artifact", exported.artifact)?;
        let created_at = micros("artifact.artifact.created_at", artifact.created_at)?;
        let content_stored = artifact.content_stored;
        let full_name = format!("{model_name}/{}", artifact.name);
        let new = if content_stored {
            let sha256 = rules::sha256(
                "artifact.artifact.sha256",
                artifact.sha256.as_deref().unwrap_or_default(),
            )?;
            validate::name("artifact.artifact.name", &artifact.name)?;
            NewArtifact {
                name: artifact.name,
                uri: format!("{CONTENT_URI_PREFIX}{sha256}"),
                sha256: Some(sha256.clone()),
                size_bytes: Some(rules::size_bytes(
                    "artifact.artifact.size_bytes",
                    artifact.size_bytes.unwrap_or_default(),
                )?),
                media_type: artifact
                    .media_type
                    .as_deref()
                    .map(|media_type| rules::media_type("artifact.artifact.media_type", media_type))
                    .transpose()?,
                content_sha256: Some(sha256),
            }
        } else {
            artifacts::new_artifact(artifact).map_err(|error| match error {
                Error::InvalidArgument(message) => Error::InvalidArgument(format!("artifact.{message}")),
                other => other,
            })?
        };
        if content_stored && model_deleted {
            // An export carries no content of deleted models' artifacts.
            self.count(
                index,
                "artifact",
                &full_name,
                Imported::Conflict(
                    "an artifact with uploaded content of a deleted model: its content is not exported"
                        .to_owned(),
                ),
            );
            return Ok(());
        }
        if outcome == ModelOutcome::Conflict {
            // Skipped with its model (and its content with it).
            self.answer.artifacts.get_or_insert_default().skipped += 1;
            if content_stored {
                self.pending = Some(Pending {
                    model_name,
                    new,
                    created_at,
                    index,
                    state: PendingState::Skip,
                });
            }
            return Ok(());
        }
        if !content_stored {
            let outcome = self
                .run(move |store, project| store.import_artifact(project, &model_name, &new, created_at))
                .await?;
            self.count(index, "artifact", &full_name, outcome);
            return Ok(());
        }
        let size = new.size_bytes.unwrap_or_default();
        if size.unsigned_abs() > self.api.store.max_artifact_bytes() {
            return Err(Error::ResourceExhausted(format!(
                "artifact.artifact.size_bytes: {size} bytes is more than this server's --max-artifact-bytes ({})",
                self.api.store.max_artifact_bytes()
            )));
        }
        let (model, sha256) = (model_name.clone(), new.content_sha256.clone().unwrap_or_default());
        let (blob_id, discard) = self
            .run(move |store, project| {
                let discard = store.content_exists(&sha256)?;
                Ok((store.begin_upload(project, &model)?, discard))
            })
            .await?;
        self.pending = Some(Pending {
            model_name,
            new,
            created_at,
            index,
            state: PendingState::Content {
                blob_id,
                hasher: Sha256::new(),
                received: 0,
                size,
                discard,
                seq: 0,
            },
        });
        if size == 0 {
            self.settle_pending().await?;
        }
        Ok(())
    }

    async fn chunk(&mut self, chunk: pb::ArtifactChunk) -> Result<()> {
        let Some(pending) = &mut self.pending else {
            return Err(Error::invalid(
                "artifact_chunk",
                "content must follow its artifact record (with content_stored) directly",
            ));
        };
        if pending.model_name != chunk.model_name || pending.new.name != chunk.artifact_name {
            return Err(Error::invalid(
                "artifact_chunk",
                format!(
                    "is content of artifact {:?} of model {:?}, but the artifact before it is {:?} of {:?}",
                    validate::echo(&chunk.artifact_name),
                    validate::echo(&chunk.model_name),
                    pending.new.name,
                    pending.model_name
                ),
            ));
        }
        let PendingState::Content {
            blob_id,
            hasher,
            received,
            size,
            discard,
            seq,
        } = &mut pending.state
        else {
            return Ok(());
        };
        *received += i64::try_from(chunk.data.len()).unwrap_or(i64::MAX);
        if *received > *size {
            return Err(Error::invalid(
                "artifact_chunk.data",
                format!("the content is longer than the artifact's size_bytes ({size})"),
            ));
        }
        hasher.update(&chunk.data);
        if !*discard {
            let (blob_id, at) = (*blob_id, *seq);
            self.api
                .run(move |store| store.append_upload(blob_id, at, &chunk.data))
                .await?;
        }
        *seq += 1;
        if *received == *size {
            self.settle_pending().await?;
        }
        Ok(())
    }

    /// Finishes the artifact whose content was arriving: stored when all
    /// of it came (or none came and the server holds it already), a
    /// conflict when none came, an error when only part came.
    async fn settle_pending(&mut self) -> Result<()> {
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        let PendingState::Content {
            blob_id,
            hasher,
            received,
            size,
            discard,
            ..
        } = pending.state
        else {
            return Ok(());
        };
        let full_name = format!("{}/{}", pending.model_name, pending.new.name);
        let expected = pending.new.content_sha256.clone().unwrap_or_default();
        let settled = if received == size {
            let sha256 = hex::encode(hasher.finalize());
            if sha256 == expected {
                Ok(discard)
            } else {
                Err(Error::invalid(
                    "artifact_chunk.data",
                    format!(
                        "the content of artifact {full_name:?} has SHA-256 {sha256}, not {expected}: nothing of it was stored"
                    ),
                ))
            }
        } else if received == 0 && discard {
            // Not in the export, but the server holds content with this
            // digest: the reference can point at it.
            Ok(true)
        } else if received == 0 {
            Err(Error::NotFound(String::new()))
        } else {
            Err(Error::invalid(
                "artifact_chunk",
                format!("the content of artifact {full_name:?} ended after {received} of its {size} bytes"),
            ))
        };
        let finished = match settled {
            Ok(discarded) => {
                let (model, new, created_at) = (
                    pending.model_name.clone(),
                    pending.new.clone(),
                    pending.created_at,
                );
                self.run(move |store, project| {
                    let uploaded = store.finish_upload(project, &model, blob_id, &new, false, discarded)?;
                    if !uploaded.put.already_existed {
                        store.set_artifact_created_at(project, &model, &new.name, created_at)?;
                    }
                    Ok(uploaded)
                })
                .await
            }
            Err(error) => Err(error),
        };
        let outcome = match finished {
            Ok(uploaded) => {
                self.answer.artifact_bytes += size.unsigned_abs();
                if uploaded.put.already_existed {
                    Imported::Skipped
                } else {
                    Imported::Inserted
                }
            }
            Err(error) => {
                let _ = self.api.run(move |store| store.abandon_upload(blob_id)).await;
                match error {
                    Error::AlreadyExists(message) => Imported::Conflict(message),
                    Error::NotFound(message) if message.is_empty() => Imported::Conflict(
                        "its content is not in the export and this server does not hold it (export with with_artifacts)"
                            .to_owned(),
                    ),
                    other => return Err(other),
                }
            }
        };
        self.count(pending.index, "artifact", &full_name, outcome);
        Ok(())
    }

    /// After the last record.
    async fn finish(&mut self) -> Result<()> {
        if !self.header_seen {
            return Err(Error::invalid(
                "records",
                "an import needs at least the header record",
            ));
        }
        self.settle_pending().await?;
        self.finish_model();
        Ok(())
    }
}

/// An exported datablob (or template, converted into one) to import.
fn component(field: &str, c: pb::DataBlob) -> Result<ImportComponent> {
    Ok(ImportComponent {
        new: convert::new_component(field, &c.name, &c.group_name, &c.hyperparams_json)?,
        meta: ExportedMeta {
            created_at: micros(&format!("{field}.created_at"), c.created_at)?,
            last_modified_at: micros(&format!("{field}.last_modified_at"), c.last_modified_at)?,
            tags: tags(&format!("{field}.tags"), c.tags)?,
            description: description(&format!("{field}.description"), c.description)?,
            deleted_at: optional_micros(&format!("{field}.deleted_at"), c.deleted_at)?,
        },
    })
}
