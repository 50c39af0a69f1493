//! The JSON Lines format of `mlmeta export` and `mlmeta import`: one
//! record per line, the first line the header with the format version.
//!
//! Each line is an object with one key naming the record kind (`header`,
//! `datablob`, `model_template`, `model`, `artifact`, `artifact_chunk`,
//! `epoch`) whose value holds the record's fields, keys in alphabetical
//! order (maps too), so that the same records always give the same bytes.
//! Values are exact: hyperparameters and params are the stored JSON text
//! itself (big integers and every digit kept), metric values the shortest
//! decimal that reads back as the same `f64`, with `"NaN"`, `"Infinity"`
//! and `"-Infinity"` as strings, times RFC 3339 in UTC with microseconds
//! (the server's precision), artifact content base64.
//!
//! The server streams typed protobuf records ([`ExportRecord`]); this
//! module is the one place that turns them into lines and back, one
//! epoch per line (the server's epoch batches are split, and consecutive
//! epoch lines of one model are batched again on import).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use mlmeta_client::{EXPORT_FORMAT_VERSION, ExportRecord, ExportRecordKind as Kind};
use mlmeta_proto as pb;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// One line of an export.
// Lines live one (or a queue of a few) at a time: boxing the large
// variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Line {
    /// The first line.
    Header(HeaderLine),
    /// A datablob.
    Datablob(ComponentLine),
    /// A model template.
    ModelTemplate(ComponentLine),
    /// A model, with its run and status history.
    Model(ModelLine),
    /// An artifact of the model before it.
    Artifact(ArtifactLine),
    /// A piece of the content of the artifact before it.
    ArtifactChunk(ChunkLine),
    /// One epoch of the model before it.
    Epoch(EpochLine),
}

/// The header line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderLine {
    /// When the export started.
    pub exported_at: String,
    /// The format version (1).
    pub format_version: u32,
    /// The `--model` selection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_names: Vec<String>,
    /// The project exported.
    pub project: String,
    /// The exporting server's version.
    pub server_version: String,
    /// The `--where` selection.
    #[serde(default, rename = "where", skip_serializing_if = "String::is_empty")]
    pub where_expr: String,
    /// Whether artifact content is included.
    #[serde(default)]
    pub with_artifacts: bool,
}

/// A datablob or model template.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentLine {
    created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deleted_at: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    description: String,
    group_name: String,
    hyperparams: Box<RawValue>,
    last_modified_at: String,
    name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    tags: BTreeMap<String, String>,
}

/// A model.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelLine {
    created_at: String,
    datablob: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deleted_at: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ended_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    heartbeat_timeout_secs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_heartbeat_at: Option<String>,
    last_modified_at: String,
    model_class_name: String,
    model_template: String,
    /// The model's name.
    pub name: String,
    params: Box<RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run_context: Option<RunContextLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    started_at: Option<String>,
    status: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    status_changes: Vec<StatusChangeLine>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunContextLine {
    command_line: Vec<String>,
    git_commit: String,
    host: String,
    pid: u32,
    user: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusChangeLine {
    cause: String,
    changed_at: String,
    from: String,
    to: String,
}

/// An artifact reference.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactLine {
    #[serde(default)]
    content_stored: bool,
    created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    model: String,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size_bytes: Option<u64>,
    uri: String,
}

/// A piece of artifact content.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkLine {
    artifact: String,
    /// Base64 (standard alphabet, padded).
    data: String,
    model: String,
}

/// One epoch.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochLine {
    epoch_num: i64,
    metrics: BTreeMap<String, Metric>,
    /// The model's name.
    pub model: String,
    /// When it was first stored (absent in files written before it was
    /// exported: the import's time then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recorded_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    steps_per_epoch: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    validation_steps_per_epoch: Option<i64>,
}

/// A metric value: a JSON number, or `"NaN"`, `"Infinity"`, `"-Infinity"`.
#[derive(Debug, Clone, Copy)]
struct Metric(f64);

impl Serialize for Metric {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        if x.is_nan() {
            serializer.serialize_str("NaN")
        } else if x == f64::INFINITY {
            serializer.serialize_str("Infinity")
        } else if x == f64::NEG_INFINITY {
            serializer.serialize_str("-Infinity")
        } else {
            serializer.serialize_f64(x)
        }
    }
}

impl<'de> Deserialize<'de> for Metric {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Through a Value: with arbitrary precision a number keeps its text,
        // and parsing that text is correctly rounded.
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::Number(n) => n
                .as_f64()
                .map(Metric)
                .ok_or_else(|| serde::de::Error::custom(format!("metric value {n} is not a double"))),
            serde_json::Value::String(s) => match s.as_str() {
                "NaN" => Ok(Metric(f64::NAN)),
                "Infinity" => Ok(Metric(f64::INFINITY)),
                "-Infinity" => Ok(Metric(f64::NEG_INFINITY)),
                other => Err(serde::de::Error::custom(format!(
                    "metric value {other:?} is not a number, \"NaN\", \"Infinity\" or \"-Infinity\""
                ))),
            },
            other => Err(serde::de::Error::custom(format!(
                "metric value {other} is not a number, \"NaN\", \"Infinity\" or \"-Infinity\""
            ))),
        }
    }
}

/// Why a record cannot become a line, or a line a record.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

fn bad(message: impl Into<String>) -> FormatError {
    FormatError(message.into())
}

/// RFC 3339, UTC, microseconds.
fn time(timestamp: Option<&prost_types::Timestamp>) -> Result<String, FormatError> {
    let t = timestamp.ok_or_else(|| bad("a record lacks a time"))?;
    let since = u64::try_from(t.seconds)
        .ok()
        .zip(u32::try_from(t.nanos).ok())
        .map(|(secs, nanos)| Duration::new(secs, nanos))
        .ok_or_else(|| bad(format!("time {}s before 1970 cannot be exported", t.seconds)))?;
    Ok(humantime::format_rfc3339_micros(UNIX_EPOCH + since).to_string())
}

fn optional_time(timestamp: Option<&prost_types::Timestamp>) -> Result<Option<String>, FormatError> {
    timestamp.map(|t| time(Some(t))).transpose()
}

fn parse_time(field: &str, text: &str) -> Result<prost_types::Timestamp, FormatError> {
    let at = humantime::parse_rfc3339(text)
        .map_err(|e| bad(format!("{field}: {text:?} is not an RFC 3339 time in UTC: {e}")))?;
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| bad(format!("{field}: {text:?} is before 1970")))?;
    Ok(prost_types::Timestamp {
        seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since.subsec_nanos()).unwrap_or(0),
    })
}

fn parse_optional_time(
    field: &str,
    text: Option<&str>,
) -> Result<Option<prost_types::Timestamp>, FormatError> {
    text.map(|t| parse_time(field, t)).transpose()
}

/// The stored JSON text as a raw value (on one line).
fn raw(field: &str, text: &str) -> Result<Box<RawValue>, FormatError> {
    let text = if text.is_empty() { "{}" } else { text };
    if text.contains(['\n', '\r']) {
        // Re-encoded compactly; with arbitrary precision no number changes.
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("{field} is not JSON: {e}")))?;
        return RawValue::from_string(value.to_string()).map_err(|e| bad(format!("{field}: {e}")));
    }
    RawValue::from_string(text.to_owned()).map_err(|e| bad(format!("{field} is not JSON: {e}")))
}

fn status_name(value: i32) -> String {
    pb::RunStatus::try_from(value)
        .map(|s| s.as_str_name().trim_start_matches("RUN_STATUS_").to_owned())
        .unwrap_or_else(|_| value.to_string())
}

fn parse_status(field: &str, name: &str) -> Result<i32, FormatError> {
    pb::RunStatus::from_str_name(&format!("RUN_STATUS_{name}"))
        .filter(|s| *s != pb::RunStatus::Unspecified)
        .map(i32::from)
        .ok_or_else(|| {
            bad(format!(
                "{field}: {name:?} is not a run status (CREATED, RUNNING, FINISHED, FAILED, KILLED, CRASHED)"
            ))
        })
}

/// The lines of one record (an epoch batch gives one line per epoch).
pub fn lines(record: ExportRecord) -> Result<Vec<Line>, FormatError> {
    let record = record
        .record
        .ok_or_else(|| bad("the server sent an empty record"))?;
    Ok(match record {
        Kind::Header(h) => vec![Line::Header(HeaderLine {
            exported_at: time(h.exported_at.as_ref())?,
            format_version: h.format_version,
            model_names: h.model_names,
            project: h.project,
            server_version: h.server_version,
            where_expr: h.r#where,
            with_artifacts: h.with_artifacts,
        })],
        Kind::Datablob(c) => vec![Line::Datablob(component(c)?)],
        Kind::ModelTemplate(c) => vec![Line::ModelTemplate(component(c.into())?)],
        Kind::Model(exported) => {
            let m = exported
                .model
                .ok_or_else(|| bad("a model record lacks its model"))?;
            vec![Line::Model(ModelLine {
                created_at: time(m.created_at.as_ref())?,
                datablob: m.datablob_name,
                deleted_at: optional_time(m.deleted_at.as_ref())?,
                description: m.description,
                ended_at: optional_time(m.ended_at.as_ref())?,
                heartbeat_timeout_secs: m.heartbeat_timeout_secs,
                last_heartbeat_at: optional_time(m.last_heartbeat_at.as_ref())?,
                last_modified_at: time(m.last_modified_at.as_ref())?,
                model_class_name: m.model_class_name,
                model_template: m.model_template_name,
                params: raw("params", &m.params_json)?,
                run_context: m.run_context.map(|c| RunContextLine {
                    command_line: c.command_line,
                    git_commit: c.git_commit,
                    host: c.host,
                    pid: c.pid,
                    user: c.user,
                }),
                started_at: optional_time(m.started_at.as_ref())?,
                status: status_name(m.status),
                status_changes: exported
                    .status_changes
                    .into_iter()
                    .map(|c| {
                        Ok(StatusChangeLine {
                            cause: c.cause,
                            changed_at: time(c.changed_at.as_ref())?,
                            from: status_name(c.from),
                            to: status_name(c.to),
                        })
                    })
                    .collect::<Result<_, FormatError>>()?,
                tags: m.tags,
                name: m.name,
            })]
        }
        Kind::Artifact(exported) => {
            let a = exported
                .artifact
                .ok_or_else(|| bad("an artifact record lacks its artifact"))?;
            vec![Line::Artifact(ArtifactLine {
                content_stored: a.content_stored,
                created_at: time(a.created_at.as_ref())?,
                media_type: a.media_type,
                model: exported.model_name,
                name: a.name,
                sha256: a.sha256,
                size_bytes: a.size_bytes,
                uri: a.uri,
            })]
        }
        Kind::ArtifactChunk(chunk) => vec![Line::ArtifactChunk(ChunkLine {
            artifact: chunk.artifact_name,
            data: base64::engine::general_purpose::STANDARD.encode(&chunk.data),
            model: chunk.model_name,
        })],
        Kind::Epochs(batch) => batch
            .epochs
            .into_iter()
            .map(|e| {
                Ok(Line::Epoch(EpochLine {
                    epoch_num: e.epoch_num,
                    metrics: e.metrics.into_iter().map(|(k, v)| (k, Metric(v))).collect(),
                    model: e.model_name,
                    recorded_at: optional_time(e.recorded_at.as_ref())?,
                    steps_per_epoch: e.steps_per_epoch,
                    validation_steps_per_epoch: e.validation_steps_per_epoch,
                }))
            })
            .collect::<Result<_, FormatError>>()?,
    })
}

/// The line of a datablob (or of a template, converted into one).
fn component(c: pb::DataBlob) -> Result<ComponentLine, FormatError> {
    Ok(ComponentLine {
        created_at: time(c.created_at.as_ref())?,
        deleted_at: optional_time(c.deleted_at.as_ref())?,
        description: c.description,
        group_name: c.group_name,
        hyperparams: raw("hyperparams", &c.hyperparams_json)?,
        last_modified_at: time(c.last_modified_at.as_ref())?,
        name: c.name,
        tags: c.tags,
    })
}

/// Checks the header line's version.
pub fn check_header(header: &HeaderLine) -> Result<(), FormatError> {
    if header.format_version != EXPORT_FORMAT_VERSION {
        return Err(bad(format!(
            "format version {} is not supported: this mlmeta reads version {EXPORT_FORMAT_VERSION}",
            header.format_version
        )));
    }
    Ok(())
}

/// The record of a line other than an epoch (epochs are batched by the
/// caller with [`epoch`]).
pub fn record(line: Line) -> Result<ExportRecord, FormatError> {
    let record = match line {
        Line::Header(h) => Kind::Header(pb::ExportHeader {
            format_version: h.format_version,
            exported_at: Some(parse_time("header.exported_at", &h.exported_at)?),
            server_version: h.server_version,
            project: h.project,
            model_names: h.model_names,
            r#where: h.where_expr,
            with_artifacts: h.with_artifacts,
        }),
        Line::Datablob(c) => Kind::Datablob(parse_component("datablob", c)?),
        Line::ModelTemplate(c) => Kind::ModelTemplate(parse_component("model_template", c)?.into()),
        Line::Model(m) => Kind::Model(pb::ExportedModel {
            status_changes: m
                .status_changes
                .into_iter()
                .enumerate()
                .map(|(i, c)| {
                    let field = format!("model.status_changes[{i}]");
                    Ok(pb::StatusChange {
                        changed_at: Some(parse_time(&format!("{field}.changed_at"), &c.changed_at)?),
                        from: parse_status(&format!("{field}.from"), &c.from)?,
                        to: parse_status(&format!("{field}.to"), &c.to)?,
                        cause: c.cause,
                    })
                })
                .collect::<Result<_, FormatError>>()?,
            model: Some(pb::Model {
                name: m.name,
                model_class_name: m.model_class_name,
                datablob_name: m.datablob,
                model_template_name: m.model_template,
                created_at: Some(parse_time("model.created_at", &m.created_at)?),
                last_modified_at: Some(parse_time("model.last_modified_at", &m.last_modified_at)?),
                deleted_at: parse_optional_time("model.deleted_at", m.deleted_at.as_deref())?,
                params_json: m.params.get().to_owned(),
                tags: m.tags,
                description: m.description,
                status: parse_status("model.status", &m.status)?,
                started_at: parse_optional_time("model.started_at", m.started_at.as_deref())?,
                ended_at: parse_optional_time("model.ended_at", m.ended_at.as_deref())?,
                last_heartbeat_at: parse_optional_time(
                    "model.last_heartbeat_at",
                    m.last_heartbeat_at.as_deref(),
                )?,
                heartbeat_timeout_secs: m.heartbeat_timeout_secs,
                run_context: m.run_context.map(|c| pb::RunContext {
                    host: c.host,
                    pid: c.pid,
                    user: c.user,
                    command_line: c.command_line,
                    git_commit: c.git_commit,
                }),
                ..pb::Model::default()
            }),
        }),
        Line::Artifact(a) => Kind::Artifact(pb::ExportedArtifact {
            model_name: a.model,
            artifact: Some(pb::Artifact {
                name: a.name,
                uri: a.uri,
                sha256: a.sha256,
                size_bytes: a.size_bytes,
                media_type: a.media_type,
                created_at: Some(parse_time("artifact.created_at", &a.created_at)?),
                content_stored: a.content_stored,
            }),
        }),
        Line::ArtifactChunk(c) => Kind::ArtifactChunk(pb::ArtifactChunk {
            model_name: c.model,
            artifact_name: c.artifact,
            data: base64::engine::general_purpose::STANDARD
                .decode(c.data.as_bytes())
                .map_err(|e| bad(format!("artifact_chunk.data is not base64: {e}")))?,
        }),
        Line::Epoch(e) => Kind::Epochs(pb::EpochBatch {
            epochs: vec![epoch(e)?],
        }),
    };
    Ok(ExportRecord { record: Some(record) })
}

/// A datablob or template line as a DataBlob (a template converts from it).
fn parse_component(field: &str, c: ComponentLine) -> Result<pb::DataBlob, FormatError> {
    Ok(pb::DataBlob {
        name: c.name,
        group_name: c.group_name,
        hyperparams_json: c.hyperparams.get().to_owned(),
        created_at: Some(parse_time(&format!("{field}.created_at"), &c.created_at)?),
        last_modified_at: Some(parse_time(
            &format!("{field}.last_modified_at"),
            &c.last_modified_at,
        )?),
        deleted_at: parse_optional_time(&format!("{field}.deleted_at"), c.deleted_at.as_deref())?,
        tags: c.tags,
        description: c.description,
        project: String::new(),
    })
}

/// The epoch of an epoch line.
pub fn epoch(e: EpochLine) -> Result<pb::Epoch, FormatError> {
    Ok(pb::Epoch {
        recorded_at: parse_optional_time("epoch.recorded_at", e.recorded_at.as_deref())?,
        model_name: e.model,
        epoch_num: e.epoch_num,
        metrics: e.metrics.into_iter().map(|(k, v)| (k, v.0)).collect(),
        steps_per_epoch: e.steps_per_epoch,
        validation_steps_per_epoch: e.validation_steps_per_epoch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_exact_and_non_finite_values_are_strings() {
        for (x, text) in [
            (0.1, "0.1"),
            (1e300, "1e+300"),
            (f64::NAN, "\"NaN\""),
            (f64::INFINITY, "\"Infinity\""),
            (f64::NEG_INFINITY, "\"-Infinity\""),
            (5e-324, "5e-324"),
        ] {
            let encoded = serde_json::to_string(&Metric(x)).unwrap();
            assert_eq!(encoded, text);
            let back: Metric = serde_json::from_str(&encoded).unwrap();
            assert!(
                back.0.to_bits() == x.to_bits() || (x.is_nan() && back.0.is_nan()),
                "{x}"
            );
        }
        assert!(serde_json::from_str::<Metric>("\"nan\"").is_err());
    }

    #[test]
    fn times_keep_microseconds() {
        let t = prost_types::Timestamp {
            seconds: 1_796_000_000,
            nanos: 123_456_000,
        };
        let text = time(Some(&t)).unwrap();
        assert_eq!(text, "2026-11-30T00:53:20.123456Z");
        assert_eq!(parse_time("t", &text).unwrap(), t);
    }

    #[test]
    fn hyperparams_keep_their_text() {
        let text = r#"{"big":123456789012345678901234567890,"x":1.000000000000000000001}"#;
        assert_eq!(raw("h", text).unwrap().get(), text);
    }
}
