//! Plain record types of the API: what callers build and what they get
//! back, independent of the generated protobuf structs.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde_json::Value;

/// Metric name → value of one epoch. Every `f64` is stored exactly,
/// including NaN and ±infinity (only the sign of a zero is lost on the
/// wire: `-0.0` reads back as `0.0`).
pub type Metrics = BTreeMap<String, f64>;

/// Tag key → value of a model, datablob or template.
pub type Tags = BTreeMap<String, String>;

/// A dataset with its hyperparameters.
///
/// ```
/// use mlmeta_client::DataBlob;
/// use serde_json::json;
///
/// let blob = DataBlob::new("mnist-v2", "mnist", json!({"rows": 60000, "normalized": true}));
/// assert_eq!(blob.hyperparams["rows"], 60000);
/// assert!(blob.created_at.is_none()); // set by the server
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct DataBlob {
    /// Unique name, 1 to 255 bytes.
    pub name: String,
    /// Group name, 1 to 255 bytes.
    pub group_name: String,
    /// A JSON object (`Value::Null` is sent as `{}`); integers stay
    /// integers, floats stay floats.
    pub hyperparams: Value,
    /// When the server first stored it; `None` on records built locally.
    pub created_at: Option<SystemTime>,
    /// When the server last changed it; `None` on records built locally.
    pub last_modified_at: Option<SystemTime>,
    /// The project it is stored in; `None` on records built locally (a
    /// put goes to the client's project, see [`Client::in_project`](crate::Client::in_project)).
    pub project: Option<String>,
    /// Tag key → value, as stored; ignored by puts (see
    /// [`Client::update_tags`](crate::Client::update_tags)).
    pub tags: Tags,
    /// Free-text note (markdown), empty when none; ignored by puts (see
    /// [`Client::set_description`](crate::Client::set_description)).
    pub description: String,
    /// When it was soft-deleted (server clock); `None` while live and on
    /// records built locally.
    pub deleted_at: Option<SystemTime>,
}

impl DataBlob {
    /// A datablob to put, without timestamps.
    pub fn new(name: impl Into<String>, group_name: impl Into<String>, hyperparams: Value) -> Self {
        Self {
            name: name.into(),
            group_name: group_name.into(),
            hyperparams,
            created_at: None,
            last_modified_at: None,
            project: None,
            tags: Tags::new(),
            description: String::new(),
            deleted_at: None,
        }
    }
}

/// A model architecture with its hyperparameters (same shape as
/// [`DataBlob`]).
///
/// ```
/// use mlmeta_client::ModelTemplate;
/// use serde_json::json;
///
/// let template = ModelTemplate::new("resnet18", "resnet", json!({"layers": 18}));
/// assert_eq!(template.group_name, "resnet");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ModelTemplate {
    /// Unique name, 1 to 255 bytes.
    pub name: String,
    /// Group name, 1 to 255 bytes.
    pub group_name: String,
    /// A JSON object (`Value::Null` is sent as `{}`).
    pub hyperparams: Value,
    /// When the server first stored it; `None` on records built locally.
    pub created_at: Option<SystemTime>,
    /// When the server last changed it; `None` on records built locally.
    pub last_modified_at: Option<SystemTime>,
    /// The project it is stored in; `None` on records built locally (a
    /// put goes to the client's project, see [`Client::in_project`](crate::Client::in_project)).
    pub project: Option<String>,
    /// Tag key → value, as stored; ignored by puts (see
    /// [`Client::update_tags`](crate::Client::update_tags)).
    pub tags: Tags,
    /// Free-text note (markdown), empty when none; ignored by puts (see
    /// [`Client::set_description`](crate::Client::set_description)).
    pub description: String,
    /// When it was soft-deleted (server clock); `None` while live and on
    /// records built locally.
    pub deleted_at: Option<SystemTime>,
}

impl ModelTemplate {
    /// A model template to put, without timestamps.
    pub fn new(name: impl Into<String>, group_name: impl Into<String>, hyperparams: Value) -> Self {
        Self {
            name: name.into(),
            group_name: group_name.into(),
            hyperparams,
            created_at: None,
            last_modified_at: None,
            project: None,
            tags: Tags::new(),
            description: String::new(),
            deleted_at: None,
        }
    }
}

/// One model template trained on one datablob.
///
/// ```
/// use mlmeta_client::Model;
///
/// let model = Model::new("run-42", "ResNet", "mnist-v2", "resnet18");
/// assert_eq!(model.datablob_name, "mnist-v2");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// Unique name, 1 to 255 bytes.
    pub name: String,
    /// Class of the model (free text, 1 to 255 bytes).
    pub model_class_name: String,
    /// Name of an existing datablob.
    pub datablob_name: String,
    /// Name of an existing model template.
    pub model_template_name: String,
    /// When the server first stored it; `None` on records built locally.
    pub created_at: Option<SystemTime>,
    /// When the server last changed it (epochs arriving move it); `None`
    /// on records built locally.
    pub last_modified_at: Option<SystemTime>,
    /// The project it is stored in; `None` on records built locally (a
    /// put goes to the client's project, see [`Client::in_project`](crate::Client::in_project)).
    pub project: Option<String>,
    /// The run's own parameters (a sweep's `seed`, `lr`): a JSON object
    /// (`Value::Null` is sent as `{}`), set at the put and immutable.
    pub params: Value,
    /// Tag key → value, as stored; ignored by puts (see
    /// [`Client::update_tags`](crate::Client::update_tags)).
    pub tags: Tags,
    /// Free-text note (markdown), empty when none; ignored by puts (see
    /// [`Client::set_description`](crate::Client::set_description)).
    pub description: String,
    /// Its run's status and times; `None` on records built locally.
    pub run: Option<crate::runs::RunInfo>,
    /// How many epochs the server stores for it; 0 on records built
    /// locally.
    pub epoch_count: u64,
    /// Its highest stored epoch_num; `None` without epochs and on records
    /// built locally.
    pub current_epoch: Option<i64>,
    /// When it was soft-deleted (server clock); `None` while live and on
    /// records built locally.
    pub deleted_at: Option<SystemTime>,
    /// The summaries asked for with [`ModelView::columns`] (or the
    /// `columns` of a ranking), in that order; empty otherwise.
    pub columns: Vec<ColumnValue>,
}

/// One requested summary of a model (`max(m)`, `min(m)`, `last(m)`,
/// `count(m)`, `epochs`, `current_epoch`).
#[derive(Debug, Clone, Copy)]
pub enum ColumnValue {
    /// The model lacks it: no epoch carries the metric (or, for max and
    /// min, every value is NaN); no epochs for `current_epoch`.
    Missing,
    /// `count(m)`, `epochs`, `current_epoch`.
    Integer(i64),
    /// `max(m)`, `min(m)`, `last(m)` (`last` may be NaN).
    Number(f64),
}

/// Equal when the same variant holds the same bits (NaN equals NaN).
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

/// How [`Client::list_models_with`](crate::Client::list_models_with)
/// orders models and which summaries it returns with each.
///
/// ```
/// use mlmeta_client::ModelView;
///
/// let view = ModelView::order_by("max(val_accuracy) desc").columns(["last(loss)", "epochs"]);
/// assert_eq!(view.columns.len(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelView {
    /// A field of the filter language and `asc` (default) or `desc`, e.g.
    /// `max(val_accuracy) desc`; ties by name, missing values (and a NaN
    /// `last`) last. Empty: by name.
    pub order_by: String,
    /// Summaries to return in [`Model::columns`].
    pub columns: Vec<String>,
}

impl ModelView {
    /// Sorted by `order_by`.
    pub fn order_by(order_by: impl Into<String>) -> Self {
        Self {
            order_by: order_by.into(),
            columns: Vec::new(),
        }
    }

    /// With these summary columns.
    #[must_use]
    pub fn columns<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.columns = columns.into_iter().map(Into::into).collect();
        self
    }
}

impl Model {
    /// A model to put, without timestamps.
    pub fn new(
        name: impl Into<String>,
        model_class_name: impl Into<String>,
        datablob_name: impl Into<String>,
        model_template_name: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            model_class_name: model_class_name.into(),
            datablob_name: datablob_name.into(),
            model_template_name: model_template_name.into(),
            created_at: None,
            last_modified_at: None,
            project: None,
            params: Value::Null,
            tags: Tags::new(),
            description: String::new(),
            run: None,
            epoch_count: 0,
            current_epoch: None,
            deleted_at: None,
            columns: Vec::new(),
        }
    }

    /// This model with `params` as its parameters (a JSON object).
    #[must_use]
    pub fn with_params(mut self, params: Value) -> Self {
        self.params = params;
        self
    }
}

/// A project: the namespace of datablobs, templates and models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Its name.
    pub name: String,
    /// When the first record was stored in it.
    pub created_at: Option<SystemTime>,
}

/// One stored epoch of a model's training.
#[derive(Debug, Clone, PartialEq)]
pub struct Epoch {
    /// The model it belongs to.
    pub model_name: String,
    /// Chosen by the trainer, `>= 0`, never renumbered.
    pub epoch_num: i64,
    /// Its metrics.
    pub metrics: Metrics,
    /// Training steps in the epoch, if recorded.
    pub steps_per_epoch: Option<i64>,
    /// Validation steps in the epoch, if recorded.
    pub validation_steps_per_epoch: Option<i64>,
    /// When the server stored it.
    pub recorded_at: Option<SystemTime>,
}

/// An epoch to record, for a model named elsewhere (by
/// [`Client::insert_epochs`](crate::Client::insert_epochs) or the
/// [`EpochWriter`](crate::EpochWriter)).
///
/// ```
/// use mlmeta_client::NewEpoch;
///
/// let epoch = NewEpoch::new(3, [("loss", 0.25), ("accuracy", 0.91)]).with_steps(500);
/// assert_eq!(epoch.metrics["loss"], 0.25);
/// assert_eq!(epoch.steps_per_epoch, Some(500));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewEpoch {
    /// Epoch number, `>= 0`. An epoch number already stored for the model
    /// is skipped, never overwritten.
    pub epoch_num: i64,
    /// Metric name (1 to 255 bytes) → value; at most 1,024 metrics.
    pub metrics: Metrics,
    /// Training steps in the epoch, if known.
    pub steps_per_epoch: Option<i64>,
    /// Validation steps in the epoch, if known.
    pub validation_steps_per_epoch: Option<i64>,
}

impl NewEpoch {
    /// Epoch `epoch_num` with `metrics`, without step counts.
    pub fn new<K: Into<String>>(epoch_num: i64, metrics: impl IntoIterator<Item = (K, f64)>) -> Self {
        Self {
            epoch_num,
            metrics: metrics.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            steps_per_epoch: None,
            validation_steps_per_epoch: None,
        }
    }

    /// The same epoch with `steps_per_epoch` set.
    #[must_use]
    pub fn with_steps(mut self, steps: i64) -> Self {
        self.steps_per_epoch = Some(steps);
        self
    }

    /// The same epoch with `validation_steps_per_epoch` set.
    #[must_use]
    pub fn with_validation_steps(mut self, steps: i64) -> Self {
        self.validation_steps_per_epoch = Some(steps);
        self
    }
}

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Higher is better (accuracy).
    Max,
    /// Lower is better (loss).
    Min,
}

/// A model with its best epoch on one metric, and the records it was made
/// from.
#[derive(Debug, Clone, PartialEq)]
pub struct BestModel {
    /// The model.
    pub model: Model,
    /// Its datablob.
    pub datablob: DataBlob,
    /// Its model template.
    pub model_template: ModelTemplate,
    /// Its best epoch on the metric, with all of that epoch's metrics.
    pub best_epoch: Epoch,
    /// The metric's value in `best_epoch`.
    pub metric_value: f64,
}

/// One model's best value of a metric, as a row of a leaderboard.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderboardRow {
    /// The model.
    pub model: Model,
    /// Its datablob.
    pub datablob: DataBlob,
    /// Its model template.
    pub model_template: ModelTemplate,
    /// The epoch with the best value.
    pub best_epoch_num: i64,
    /// The best value.
    pub best_value: f64,
}

/// The answer to a put: the record as stored, and whether it was already
/// there.
#[derive(Debug, Clone, PartialEq)]
pub struct Put<T> {
    /// The stored record: the existing one when `already_existed`.
    pub record: T,
    /// Whether a record with this name was stored before the call (with
    /// `ignore_existing`, possibly a different one, left untouched).
    pub already_existed: bool,
}

/// Epochs written: newly stored, and skipped because their
/// `(model_name, epoch_num)` was already stored (or repeated in the same
/// request; the first occurrence wins).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct InsertCounts {
    /// Epochs newly stored.
    pub inserted: u64,
    /// Epochs already stored, left untouched.
    pub skipped: u64,
}

impl InsertCounts {
    /// Epochs written, stored or skipped.
    pub fn total(&self) -> u64 {
        self.inserted + self.skipped
    }
}

impl std::ops::AddAssign for InsertCounts {
    fn add_assign(&mut self, other: Self) {
        self.inserted += other.inserted;
        self.skipped += other.skipped;
    }
}

/// The highest epoch number stored for a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentEpoch {
    /// Highest `epoch_num` stored; `0` when the model has no epochs or
    /// does not exist (so `0` alone does not tell "epoch 0 stored" from
    /// "nothing stored").
    pub epoch_num: i64,
    /// Whether the model exists.
    pub model_exists: bool,
}
