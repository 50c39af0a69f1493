//! The records of the `json` format: their field names are a public
//! contract, so they are spelled here, apart from the client's types.
//! Field names follow the gRPC API (`group_name`, `epoch_num`, ...).

use std::collections::BTreeMap;

use mlmeta_client::{ColumnValue, DataBlob, Epoch, Metrics, Model, ModelTemplate, Project, Tags};
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::format_time;

/// A metric value: a JSON number when finite, else `"NaN"`, `"inf"` or
/// `"-inf"` (JSON has no such numbers, and `null` would lose which one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricValue(pub f64);

impl Serialize for MetricValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.is_finite() {
            serializer.serialize_f64(self.0)
        } else {
            serializer.serialize_str(&super::format_f64(self.0))
        }
    }
}

/// Metrics as a JSON object of [`MetricValue`]s.
pub fn metrics(metrics: &Metrics) -> BTreeMap<&str, MetricValue> {
    metrics
        .iter()
        .map(|(k, v)| (k.as_str(), MetricValue(*v)))
        .collect()
}

/// A datablob or a model template.
#[derive(Debug, Serialize)]
pub struct GroupedJson<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its group.
    pub group_name: &'a str,
    /// Its hyperparameters, as stored.
    pub hyperparams: &'a Value,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub last_modified_at: String,
    /// Its tags, key → value.
    pub tags: &'a Tags,
    /// Its description, empty when none.
    pub description: &'a str,
}

impl<'a> From<&'a DataBlob> for GroupedJson<'a> {
    fn from(b: &'a DataBlob) -> Self {
        Self {
            name: &b.name,
            group_name: &b.group_name,
            hyperparams: &b.hyperparams,
            created_at: format_time(b.created_at),
            last_modified_at: format_time(b.last_modified_at),
            tags: &b.tags,
            description: &b.description,
        }
    }
}

impl<'a> From<&'a ModelTemplate> for GroupedJson<'a> {
    fn from(t: &'a ModelTemplate) -> Self {
        Self {
            name: &t.name,
            group_name: &t.group_name,
            hyperparams: &t.hyperparams,
            created_at: format_time(t.created_at),
            last_modified_at: format_time(t.last_modified_at),
            tags: &t.tags,
            description: &t.description,
        }
    }
}

/// A project.
#[derive(Debug, Serialize)]
pub struct ProjectJson<'a> {
    /// Its name.
    pub name: &'a str,
    /// RFC 3339, UTC.
    pub created_at: String,
}

impl<'a> From<&'a Project> for ProjectJson<'a> {
    fn from(p: &'a Project) -> Self {
        Self {
            name: &p.name,
            created_at: format_time(p.created_at),
        }
    }
}

/// A model.
#[derive(Debug, Serialize)]
pub struct ModelJson<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its class.
    pub model_class_name: &'a str,
    /// Its datablob's name.
    pub datablob_name: &'a str,
    /// Its template's name.
    pub model_template_name: &'a str,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub last_modified_at: String,
    /// The run's own parameters, as stored.
    pub params: &'a Value,
    /// Its tags, key → value.
    pub tags: &'a Tags,
    /// Its description, empty when none.
    pub description: &'a str,
    /// Its run's status: `created`, `running`, `finished`, `failed`,
    /// `killed` or `crashed`.
    pub status: &'static str,
    /// RFC 3339, UTC, or empty when it never started.
    pub started_at: String,
    /// RFC 3339, UTC, or empty while it has not ended.
    pub ended_at: String,
    /// RFC 3339, UTC, or empty.
    pub last_heartbeat_at: String,
    /// The project it is stored in.
    pub project: &'a str,
    /// How many epochs it has.
    pub epoch_count: u64,
    /// Its highest epoch_num, or `null` without epochs.
    pub current_epoch: Option<i64>,
    /// RFC 3339, UTC, when the model was soft-deleted; `null` while live.
    pub deleted_at: Option<String>,
    /// The `--columns` asked for, by their text: a number (NaN and the
    /// infinities as strings, like metrics), `null` when the model lacks
    /// it; absent without `--columns`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<&'a str, Value>,
}

impl<'a> ModelJson<'a> {
    /// With the values of the `names` columns (`m.columns`, in order).
    #[must_use]
    pub fn with_columns(mut self, names: &'a [String], values: &[ColumnValue]) -> Self {
        self.columns = names
            .iter()
            .zip(values)
            .map(|(name, value)| {
                let json = match value {
                    ColumnValue::Missing => Value::Null,
                    ColumnValue::Integer(int) => Value::from(*int),
                    ColumnValue::Number(number) => {
                        serde_json::to_value(MetricValue(*number)).unwrap_or(Value::Null)
                    }
                };
                (name.as_str(), json)
            })
            .collect();
        self
    }
}

impl<'a> From<&'a Model> for ModelJson<'a> {
    fn from(m: &'a Model) -> Self {
        Self {
            name: &m.name,
            model_class_name: &m.model_class_name,
            datablob_name: &m.datablob_name,
            model_template_name: &m.model_template_name,
            created_at: format_time(m.created_at),
            last_modified_at: format_time(m.last_modified_at),
            params: &m.params,
            tags: &m.tags,
            description: &m.description,
            status: status_name(m),
            started_at: format_time(m.run.as_ref().and_then(|r| r.started_at)),
            ended_at: format_time(m.run.as_ref().and_then(|r| r.ended_at)),
            last_heartbeat_at: format_time(m.run.as_ref().and_then(|r| r.last_heartbeat_at)),
            project: m.project.as_deref().unwrap_or_default(),
            epoch_count: m.epoch_count,
            current_epoch: m.current_epoch,
            deleted_at: m.deleted_at.map(|t| format_time(Some(t))),
            columns: BTreeMap::new(),
        }
    }
}

/// The model's run status, lower case (`created` when the server sent none).
pub fn status_name(m: &Model) -> &'static str {
    m.run.as_ref().map_or("created", |r| r.status.as_str())
}

/// An epoch.
#[derive(Debug, Serialize)]
pub struct EpochJson<'a> {
    /// Its model's name.
    pub model_name: &'a str,
    /// Its number.
    pub epoch_num: i64,
    /// Its metrics.
    pub metrics: BTreeMap<&'a str, MetricValue>,
    /// Training steps, or `null`.
    pub steps_per_epoch: Option<i64>,
    /// Validation steps, or `null`.
    pub validation_steps_per_epoch: Option<i64>,
    /// RFC 3339, UTC.
    pub recorded_at: String,
}

impl<'a> From<&'a Epoch> for EpochJson<'a> {
    fn from(e: &'a Epoch) -> Self {
        Self {
            model_name: &e.model_name,
            epoch_num: e.epoch_num,
            metrics: metrics(&e.metrics),
            steps_per_epoch: e.steps_per_epoch,
            validation_steps_per_epoch: e.validation_steps_per_epoch,
            recorded_at: format_time(e.recorded_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_metrics_are_strings() {
        let values: Metrics = [
            ("a".to_owned(), 0.1),
            ("b".to_owned(), f64::NAN),
            ("c".to_owned(), f64::INFINITY),
            ("d".to_owned(), f64::NEG_INFINITY),
            ("e".to_owned(), 1.0),
        ]
        .into_iter()
        .collect();
        let text = serde_json::to_string(&metrics(&values)).unwrap();
        assert_eq!(text, r#"{"a":0.1,"b":"NaN","c":"inf","d":"-inf","e":1.0}"#);
    }
}

/// An artifact reference in JSON output: absent digest, size or media type
/// are `null`.
#[derive(Debug, Serialize)]
pub struct ArtifactJson<'a> {
    /// Its name, unique within its model.
    pub name: &'a str,
    /// Where the file is.
    pub uri: &'a str,
    /// The file's SHA-256, lower-case hex.
    pub sha256: Option<&'a str>,
    /// The file's size in bytes.
    pub size_bytes: Option<u64>,
    /// The file's media type, lower case.
    pub media_type: Option<&'a str>,
    /// RFC 3339, UTC: when the record was stored.
    pub created_at: String,
    /// The server holds the bytes (`mlmeta artifact download` fetches them).
    pub content_stored: bool,
}

impl<'a> From<&'a mlmeta_client::Artifact> for ArtifactJson<'a> {
    fn from(a: &'a mlmeta_client::Artifact) -> Self {
        Self {
            name: &a.name,
            uri: &a.uri,
            sha256: a.sha256.as_deref(),
            size_bytes: a.size_bytes,
            media_type: a.media_type.as_deref(),
            created_at: format_time(a.created_at),
            content_stored: a.content_stored,
        }
    }
}
