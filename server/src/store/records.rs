//! Plain records that the store reads and writes: validated inputs come in,
//! records with server-set timestamps go out. No protobuf or SQL types.

use std::collections::BTreeMap;

/// Metric name → value.
pub type Metrics = BTreeMap<String, f64>;

/// Tag key → value.
pub type Tags = BTreeMap<String, String>;

/// Datablobs and model templates have one shape; this tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentKind {
    /// A dataset.
    DataBlob,
    /// A model architecture.
    ModelTemplate,
}

impl ComponentKind {
    /// Value of the `components.kind` column.
    pub fn as_column(self) -> &'static str {
        match self {
            Self::DataBlob => "datablob",
            Self::ModelTemplate => "model_template",
        }
    }

    /// Name for messages.
    pub fn label(self) -> &'static str {
        match self {
            Self::DataBlob => "datablob",
            Self::ModelTemplate => "model template",
        }
    }
}

/// A project (namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub name: String,
    /// Microseconds since the Unix epoch.
    pub created_at: i64,
}

/// A datablob or model template to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewComponent {
    pub name: String,
    pub group_name: String,
    /// Canonical JSON text of an object (keys sorted).
    pub hyperparams: String,
}

/// A stored datablob or model template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub name: String,
    pub group_name: String,
    /// Canonical JSON text of an object.
    pub hyperparams: String,
    /// Microseconds since the Unix epoch.
    pub created_at: i64,
    /// Microseconds since the Unix epoch.
    pub last_modified_at: i64,
    pub tags: Tags,
    /// Empty when none was set.
    pub description: String,
    /// When it was soft-deleted (database clock, microseconds since the
    /// Unix epoch); `None`: live.
    pub deleted_at: Option<i64>,
}

/// A model to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewModel {
    pub name: String,
    pub model_class_name: String,
    pub datablob_name: String,
    pub model_template_name: String,
    /// Canonical JSON text of an object (keys sorted).
    pub params: String,
}

/// A stored model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    pub name: String,
    pub model_class_name: String,
    pub datablob_name: String,
    pub model_template_name: String,
    /// Microseconds since the Unix epoch.
    pub created_at: i64,
    /// Microseconds since the Unix epoch; moves when epochs arrive.
    pub last_modified_at: i64,
    /// Canonical JSON text of an object.
    pub params: String,
    pub tags: Tags,
    /// Empty when none was set.
    pub description: String,
    /// Where the run is in its life, with its times.
    pub run: RunState,
    /// How many epochs are stored.
    pub epoch_count: i64,
    /// The highest epoch_num stored; `None` without epochs.
    pub current_epoch: Option<i64>,
    /// When it was soft-deleted (database clock, microseconds since the
    /// Unix epoch); `None`: live.
    pub deleted_at: Option<i64>,
    /// The summaries a listing or ranking was asked for
    /// ([`ModelView::columns`]), in that order; empty otherwise.
    pub columns: Vec<ColumnValue>,
}

/// One requested summary of a model.
#[derive(Debug, Clone, Copy)]
pub enum ColumnValue {
    /// The model lacks it.
    Missing,
    /// count, epochs, current_epoch.
    Integer(i64),
    /// max, min, last (last may be NaN).
    Number(f64),
}

/// Equal when the same variant holds the same bits (so NaN equals NaN and
/// records stay `Eq`).
impl PartialEq for ColumnValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Missing, Self::Missing) => true,
            (Self::Integer(a), Self::Integer(b)) => a == b,
            (Self::Number(a), Self::Number(b)) => a.to_bits() == b.to_bits(),
            _ => false,
        }
    }
}

impl Eq for ColumnValue {}

/// A field of the filter language used as a sort key or a summary column.
pub use mlmeta_proto::where_lang::{Field, OrderBy};

/// How listed models are ordered, and which summaries come with them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelView {
    /// `None`: by name.
    pub order_by: Option<OrderBy>,
    /// Summary fields (`Field::is_summary`), returned in
    /// [`Model::columns`].
    pub columns: Vec<Field>,
}

/// A model's run lifecycle status (shared with the clients).
pub use mlmeta_proto::filter::RunStatus;

/// A model's run status and times (database clock, microseconds since the
/// Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunState {
    pub status: RunStatus,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub last_heartbeat_at: Option<i64>,
    /// The run's own heartbeat timeout; `None`: the server's default.
    pub heartbeat_timeout_secs: Option<i64>,
    /// Canonical JSON object text of the context the run started from.
    pub run_context: Option<String>,
}

impl Default for RunState {
    fn default() -> Self {
        Self {
            status: RunStatus::Created,
            started_at: None,
            ended_at: None,
            last_heartbeat_at: None,
            heartbeat_timeout_secs: None,
            run_context: None,
        }
    }
}

/// A start of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRun {
    pub model_name: String,
    /// Overrides the server's `--heartbeat-timeout-secs` for this run.
    pub heartbeat_timeout_secs: Option<i64>,
    /// Canonical JSON object text (host, pid, user, command line, git commit).
    pub run_context: String,
    /// The same context as system tags (keys of [`RUN_CONTEXT_TAGS`]);
    /// a start that changes the status replaces all of them.
    pub context_tags: Tags,
}

/// The system tags a start records the run context in.
pub const RUN_CONTEXT_TAGS: [&str; 5] = [
    "mlmeta.host",
    "mlmeta.pid",
    "mlmeta.user",
    "mlmeta.command_line",
    "mlmeta.git_commit",
];

/// One transition of a model's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// Database clock, microseconds since the Unix epoch.
    pub changed_at: i64,
    pub from: RunStatus,
    pub to: RunStatus,
    /// Why: "start", "end", "heartbeat after crash", "heartbeat timeout",
    /// "epoch after crash".
    pub cause: String,
}

/// A model with its status history, oldest change first.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDetail {
    pub model: Model,
    pub status_changes: Vec<StatusChange>,
    /// Its artifact references, by name (filled by `Store::get_model`
    /// only; empty in the answers of run transitions).
    pub artifacts: Vec<Artifact>,
    /// Per metric, by name; filled only where asked for (`get_model`),
    /// empty in the replies of run transitions.
    pub metrics: Vec<MetricSummary>,
}

/// What one model's epochs say about one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSummary {
    pub metric_name: String,
    /// Epochs carrying the metric, NaN included.
    pub count: u64,
    /// Of those, epochs where it is NaN.
    pub nan_count: u64,
    /// Lowest non-NaN value with the lowest epoch_num reaching it:
    /// `(epoch_num, value)`; `None` when every value is NaN.
    pub min: Option<(i64, f64)>,
    /// Highest non-NaN value, like `min`.
    pub max: Option<(i64, f64)>,
    /// The value at the highest epoch_num carrying the metric (maybe NaN).
    pub last: (i64, f64),
}

impl MetricSummary {
    /// A summary of a metric not seen yet.
    pub fn empty(metric_name: &str) -> Self {
        Self {
            metric_name: metric_name.to_owned(),
            count: 0,
            nan_count: 0,
            min: None,
            max: None,
            last: (0, f64::NAN),
        }
    }
}

/// The outcome of a put: the stored record, and whether it was there before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Put<T> {
    pub record: T,
    pub already_existed: bool,
}

/// An epoch to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEpoch {
    pub model_name: String,
    pub epoch_num: i64,
    pub metrics: Metrics,
    pub steps_per_epoch: Option<i64>,
    pub validation_steps_per_epoch: Option<i64>,
    /// `None`: a live epoch, stored with the time it is stored, and its
    /// model's heartbeat (a CRASHED run is RUNNING again). `Some`: an
    /// imported epoch (Import), stored with this time (microseconds since
    /// the Unix epoch) and not a heartbeat: its model's run state,
    /// heartbeat and last change time stay as they are.
    pub recorded_at: Option<i64>,
}

/// A stored epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Epoch {
    pub model_name: String,
    pub epoch_num: i64,
    pub metrics: Metrics,
    pub steps_per_epoch: Option<i64>,
    pub validation_steps_per_epoch: Option<i64>,
    /// Microseconds since the Unix epoch.
    pub recorded_at: i64,
}

/// What an epoch insert did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InsertCounts {
    pub inserted: u64,
    pub skipped: u64,
}

impl std::ops::AddAssign for InsertCounts {
    fn add_assign(&mut self, other: Self) {
        self.inserted += other.inserted;
        self.skipped += other.skipped;
    }
}

/// The filters of listings and rankings: one domain type shared with the
/// clients (see `mlmeta_proto::filter`), compiled to SQL in `models.rs`.
pub use mlmeta_proto::filter::{Deletion, GroupedFilter, ModelFilter};

/// The kind of record a tag or description belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Model,
    Component(ComponentKind),
}

impl RecordKind {
    /// Value of the `tags.target_kind` column.
    pub fn as_column(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::Component(kind) => kind.as_column(),
        }
    }

    /// Name for messages.
    pub fn label(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::Component(kind) => kind.label(),
        }
    }
}

/// What a purge removed for good.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeCounts {
    pub models: u64,
    pub epochs: u64,
    pub datablobs: u64,
    pub model_templates: u64,
}

/// A change of one record's tags: keys to set (or overwrite) and keys to
/// remove, disjoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagUpdate {
    pub set: Tags,
    pub unset: Vec<String>,
}

/// Which epochs to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct EpochFilter {
    /// All models when empty.
    pub model_names: Vec<String>,
    pub min_epoch_num: Option<i64>,
    pub max_epoch_num: Option<i64>,
    /// Epochs of deleted models too (an export); otherwise a deleted
    /// model named is FAILED_PRECONDITION.
    pub include_deleted: bool,
}

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Higher is better.
    Max,
    /// Lower is better.
    Min,
}

/// Which page of a listing to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Rows per page, already validated.
    pub size: usize,
    /// Token from the previous page; empty for the first page.
    pub token: String,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Empty on the last page.
    pub next_token: String,
}

impl<T> Page<T> {
    /// No items, and no page after.
    pub fn empty() -> Self {
        Self {
            items: Vec::new(),
            next_token: String::new(),
        }
    }
}

/// A model with its best epoch on one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct BestModel {
    pub model: Model,
    pub datablob: Component,
    pub model_template: Component,
    pub best_epoch: Epoch,
    pub metric_value: f64,
}

/// One model's best value of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderboardRow {
    pub model: Model,
    pub datablob: Component,
    pub model_template: Component,
    pub best_epoch_num: i64,
    pub best_value: f64,
}

/// Now, in microseconds since the Unix epoch.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// An artifact reference to store: validated, `sha256` and `media_type`
/// already in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewArtifact {
    pub name: String,
    pub uri: String,
    pub sha256: Option<String>,
    /// At most `i64::MAX` (the column is a signed 64-bit integer).
    pub size_bytes: Option<i64>,
    pub media_type: Option<String>,
    /// The digest of content the server holds (an upload); `None` for a
    /// plain reference.
    pub content_sha256: Option<String>,
}

/// A stored artifact reference of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub name: String,
    pub uri: String,
    pub sha256: Option<String>,
    pub size_bytes: Option<i64>,
    pub media_type: Option<String>,
    /// Database clock, microseconds since the Unix epoch.
    pub created_at: i64,
    /// The server holds the bytes (uploaded).
    pub content_stored: bool,
}

/// The outcome of an artifact put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutArtifact {
    /// The record as stored now.
    pub artifact: Artifact,
    /// Whether a record with the name was stored before.
    pub already_existed: bool,
    /// Whether `overwrite` replaced a different record.
    pub replaced: bool,
}
