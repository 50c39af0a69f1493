//! The JSON of `/api/v1/`: built from the store's records here, in one
//! place, so that field names (a public contract of the API) are spelled
//! once. Times are microseconds since the Unix epoch (integers); NaN and
//! ±infinity, which JSON cannot carry, are the strings `"NaN"`, `"inf"`
//! and `"-inf"`.

use serde_json::{Map, Value, json};

use super::lttb;
use crate::store::records::{Artifact, Component, MetricSummary, Model, StatusChange};
use crate::store::web::{Curve, MetricCells, ModelView, Table};

/// A metric value: a number, or `"NaN"`, `"inf"`, `"-inf"`.
pub(crate) fn number(value: f64) -> Value {
    if value.is_nan() {
        Value::from("NaN")
    } else if value == f64::INFINITY {
        Value::from("inf")
    } else if value == f64::NEG_INFINITY {
        Value::from("-inf")
    } else {
        serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
    }
}

fn optional(value: Option<f64>) -> Value {
    value.map_or(Value::Null, number)
}

/// Stored JSON text (params, hyperparameters) as JSON; text that does not
/// parse (never written by the server) is passed as a string.
fn stored_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::from(text))
}

/// A model as a row of the table (no params).
pub(crate) fn model_row(model: &Model) -> Value {
    json!({
        "name": model.name,
        "status": model.run.status.as_column(),
        "datablob": model.datablob_name,
        "template": model.model_template_name,
        "model_class_name": model.model_class_name,
        "created_at": model.created_at,
        "last_modified_at": model.last_modified_at,
        "epoch_count": model.epoch_count,
        "current_epoch": model.current_epoch,
        "tags": model.tags,
        "deleted": model.deleted_at.is_some(),
    })
}

fn cells(cells: &MetricCells) -> Value {
    json!({
        "min": optional(cells.min),
        "max": optional(cells.max),
        "last": optional(cells.last),
        "last_epoch": cells.last_epoch,
    })
}

/// A page of the models table.
pub(crate) fn table(table: &Table) -> Value {
    let rows: Vec<Value> = table
        .rows
        .iter()
        .map(|row| {
            let mut value = model_row(&row.model);
            let metrics: Map<String, Value> = row
                .metrics
                .iter()
                .map(|(name, values)| (name.clone(), cells(values)))
                .collect();
            value["metrics"] = Value::Object(metrics);
            value
        })
        .collect();
    json!({ "total": table.total, "next_offset": table.next_offset, "models": rows })
}

fn component(component: &Component) -> Value {
    json!({
        "name": component.name,
        "group_name": component.group_name,
        "hyperparams": stored_json(&component.hyperparams),
        "description": component.description,
        "tags": component.tags,
        "created_at": component.created_at,
        "last_modified_at": component.last_modified_at,
        "deleted": component.deleted_at.is_some(),
    })
}

fn artifact(artifact: &Artifact) -> Value {
    json!({
        "name": artifact.name,
        "uri": artifact.uri,
        "sha256": artifact.sha256,
        "size_bytes": artifact.size_bytes,
        "media_type": artifact.media_type,
        "created_at": artifact.created_at,
        "content_stored": artifact.content_stored,
    })
}

fn status_change(change: &StatusChange) -> Value {
    json!({
        "changed_at": change.changed_at,
        "from": change.from.as_column(),
        "to": change.to.as_column(),
        "cause": change.cause,
    })
}

fn metric_summary(summary: &MetricSummary) -> Value {
    let at = |point: Option<(i64, f64)>| {
        point.map(|(epoch, value)| json!({"epoch": epoch, "value": number(value)}))
    };
    json!({
        "name": summary.metric_name,
        "count": summary.count,
        "nan_count": summary.nan_count,
        "min": at(summary.min),
        "max": at(summary.max),
        "last": at(Some(summary.last)),
    })
}

/// One model for its page.
pub(crate) fn model(view: &ModelView) -> Value {
    let detail = &view.detail;
    let model = &detail.model;
    let mut value = model_row(model);
    let extra = json!({
        "params": stored_json(&model.params),
        "description": model.description,
        "run": {
            "started_at": model.run.started_at,
            "ended_at": model.run.ended_at,
            "last_heartbeat_at": model.run.last_heartbeat_at,
            "heartbeat_timeout_secs": model.run.heartbeat_timeout_secs,
            "context": model.run.run_context.as_deref().map(stored_json),
        },
        "datablob_detail": component(&view.datablob),
        "template_detail": component(&view.template),
        "artifacts": detail.artifacts.iter().map(artifact).collect::<Vec<_>>(),
        "status_history": detail.status_changes.iter().map(status_change).collect::<Vec<_>>(),
        "metrics": detail.metrics.iter().map(metric_summary).collect::<Vec<_>>(),
    });
    if let (Value::Object(target), Value::Object(more)) = (&mut value, extra) {
        target.extend(more);
    }
    value
}

/// How curves are sent.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sampling {
    /// About this many points per curve (see [`lttb::downsample`]).
    About(usize),
    /// Every point.
    Exact,
}

/// A metric value that serializes as a JSON number, or as `"NaN"`,
/// `"inf"`, `"-inf"` (without going through a `Value`, which with
/// serde_json's arbitrary precision allocates a string per number).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Number(pub f64);

impl serde::Serialize for Number {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = self.0;
        if value.is_finite() {
            serializer.serialize_f64(value)
        } else if value.is_nan() {
            serializer.serialize_str("NaN")
        } else if value > 0.0 {
            serializer.serialize_str("inf")
        } else {
            serializer.serialize_str("-inf")
        }
    }
}

/// One curve as sent.
#[derive(Debug, serde::Serialize)]
pub(crate) struct CurveJson<'a> {
    model: &'a str,
    metric: &'a str,
    total_points: usize,
    downsampled: bool,
    epochs: Vec<i64>,
    values: Vec<Number>,
}

/// The answer of the curve endpoints.
#[derive(Debug, serde::Serialize)]
pub(crate) struct CurvesJson<'a> {
    curves: Vec<CurveJson<'a>>,
}

/// Curves, each downsampled as asked.
pub(crate) fn curves(curves: &[Curve], sampling: Sampling) -> CurvesJson<'_> {
    let curves = curves
        .iter()
        .map(|curve| {
            let total = curve.epochs.len();
            let (epochs, values) = match sampling {
                Sampling::Exact => (
                    curve.epochs.to_vec(),
                    curve.values.iter().map(|&v| Number(v)).collect(),
                ),
                Sampling::About(points) => {
                    // Epoch numbers are far below 2^53: exact as f64.
                    #[allow(clippy::cast_precision_loss)]
                    let xs: Vec<f64> = curve.epochs.iter().map(|&e| e as f64).collect();
                    let kept = lttb::downsample(&xs, &curve.values, points);
                    (
                        kept.iter().map(|&i| curve.epochs[i]).collect(),
                        kept.iter().map(|&i| Number(curve.values[i])).collect(),
                    )
                }
            };
            CurveJson {
                model: &curve.model,
                metric: &curve.metric,
                total_points: total,
                downsampled: epochs.len() < total,
                epochs,
                values,
            }
        })
        .collect();
    CurvesJson { curves }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_serialize_like_values() {
        for value in [0.1, -1e300, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 3.0] {
            assert_eq!(
                serde_json::to_value(Number(value)).unwrap(),
                number(value),
                "{value}"
            );
        }
    }

    #[test]
    fn non_finite_numbers_are_strings() {
        assert_eq!(number(f64::NAN), Value::from("NaN"));
        assert_eq!(number(f64::INFINITY), Value::from("inf"));
        assert_eq!(number(f64::NEG_INFINITY), Value::from("-inf"));
        assert_eq!(number(0.1).to_string(), "0.1");
        // serde_json writes exponents with a sign; JSON (and JavaScript) read it.
        assert_eq!(number(-1e300).to_string(), "-1e+300");
    }

    #[test]
    fn exact_curves_keep_every_point() {
        let curve = Curve {
            model: "m".into(),
            metric: "loss".into(),
            epochs: std::sync::Arc::new((1..=5000).collect()),
            values: std::sync::Arc::new((1..=5000).map(|i| 1.0 / f64::from(i)).collect()),
        };
        let to_value = |c: CurvesJson<'_>| serde_json::to_value(c).unwrap();
        let exact = to_value(curves(std::slice::from_ref(&curve), Sampling::Exact));
        assert_eq!(exact["curves"][0]["epochs"].as_array().map(Vec::len), Some(5000));
        assert_eq!(exact["curves"][0]["downsampled"], false);
        let small = to_value(curves(&[curve], Sampling::About(100)));
        let kept = small["curves"][0]["epochs"].as_array().map_or(0, Vec::len);
        assert!(kept <= 100 && kept > 30, "{kept}");
        assert_eq!(small["curves"][0]["downsampled"], true);
        assert_eq!(small["curves"][0]["total_points"], 5000);
    }
}
