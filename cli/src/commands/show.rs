//! `mlmeta show model NAME`: everything about one model on one screen.

use std::fmt::Write as _;

use mlmeta_client::{
    Client, DataBlob, GroupedFilter, MetricSummary, ModelDetail, ModelTemplate, StatusChange,
};
use serde::Serialize;
use serde_json::Value;

use crate::args::{ShowCommand, ShowModelArgs};
use crate::error::CliError;
use crate::output::json::{ArtifactJson, GroupedJson, MetricValue, ModelJson};
use crate::output::{Cell, Render, Table, format_time, table_text};

/// Substrings of metric names for which lower is better, unless the user
/// says otherwise.
const LOWER_IS_BETTER: &[&str] = &[
    "loss",
    "error",
    "err",
    "mse",
    "mae",
    "rmse",
    "perplexity",
    "latency",
    "time",
];

/// Reads the model with its history and metric summaries, and its
/// datablob and template for their hyperparameters.
pub async fn run(client: &Client, command: &ShowCommand) -> Result<Box<dyn Render>, CliError> {
    let ShowCommand::Model(args) = command;
    let detail = client.get_model(&args.name).await?;
    let datablobs = GroupedFilter::default().names([detail.model.datablob_name.as_str()]);
    let templates = GroupedFilter::default().names([detail.model.model_template_name.as_str()]);
    let (datablob, template) = tokio::try_join!(
        client.list_datablobs(&datablobs),
        client.list_model_templates(&templates)
    )?;
    let metrics = detail.metrics.iter().map(|m| MetricRow::new(m, args)).collect();
    Ok(Box::new(ShowModel {
        detail,
        datablob: datablob.into_iter().next(),
        template: template.into_iter().next(),
        metrics,
    }))
}

struct ShowModel {
    detail: ModelDetail,
    datablob: Option<DataBlob>,
    template: Option<ModelTemplate>,
    metrics: Vec<MetricRow>,
}

/// Whether higher or lower values of a metric are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Goal {
    Max,
    Min,
}

/// One metric's line: its summary and which extreme is its best.
#[derive(Debug, Clone)]
struct MetricRow {
    summary: MetricSummary,
    goal: Goal,
}

impl MetricRow {
    fn new(summary: &MetricSummary, args: &ShowModelArgs) -> Self {
        Self {
            goal: goal(&summary.metric_name, args),
            summary: summary.clone(),
        }
    }

    fn best(&self) -> Option<(i64, f64)> {
        match self.goal {
            Goal::Max => self.summary.max,
            Goal::Min => self.summary.min,
        }
    }
}

fn goal(metric: &str, args: &ShowModelArgs) -> Goal {
    if args.maximize.iter().any(|m| m == metric) {
        return Goal::Max;
    }
    if args.minimize.iter().any(|m| m == metric) {
        return Goal::Min;
    }
    let lower = metric.to_lowercase();
    if LOWER_IS_BETTER.iter().any(|word| lower.contains(word)) {
        Goal::Min
    } else {
        Goal::Max
    }
}

impl ShowModel {
    fn metrics_table(&self) -> Table {
        let mut table = Table::new([
            "metric",
            "best",
            "best_epoch",
            "goal",
            "last",
            "last_epoch",
            "min",
            "min_epoch",
            "max",
            "max_epoch",
            "epochs",
            "nan",
        ]);
        let value = |pair: Option<(i64, f64)>| pair.map_or(Cell::Empty, |(_, v)| Cell::Float(v));
        let epoch = |pair: Option<(i64, f64)>| pair.map_or(Cell::Empty, |(e, _)| Cell::Int(e));
        for row in &self.metrics {
            let s = &row.summary;
            table.rows.push(vec![
                Cell::from(s.metric_name.as_str()),
                value(row.best()),
                epoch(row.best()),
                Cell::from(match row.goal {
                    Goal::Max => "max",
                    Goal::Min => "min",
                }),
                Cell::Float(s.last.1),
                Cell::Int(s.last.0),
                value(s.min),
                epoch(s.min),
                value(s.max),
                epoch(s.max),
                Cell::Int(i64::try_from(s.count).unwrap_or(i64::MAX)),
                Cell::Int(i64::try_from(s.nan_count).unwrap_or(i64::MAX)),
            ]);
        }
        table
    }

    fn artifacts_table(&self) -> Table {
        let mut table = Table::new(["name", "uri", "sha256", "size_bytes", "media_type", "created_at"]);
        let text = |s: &Option<String>| s.as_deref().map_or(Cell::Empty, Cell::from);
        for artifact in &self.detail.artifacts {
            table.rows.push(vec![
                Cell::from(artifact.name.as_str()),
                Cell::from(artifact.uri.as_str()),
                text(&artifact.sha256),
                artifact
                    .size_bytes
                    .map_or(Cell::Empty, |n| Cell::Int(i64::try_from(n).unwrap_or(i64::MAX))),
                text(&artifact.media_type),
                Cell::Text(format_time(artifact.created_at)),
            ]);
        }
        table
    }

    fn history_table(&self) -> Table {
        let mut table = Table::new(["changed_at", "from", "to", "cause"]);
        for change in &self.detail.status_changes {
            table.rows.push(vec![
                Cell::Text(format_time(change.changed_at)),
                Cell::from(change.from.as_str()),
                Cell::from(change.to.as_str()),
                Cell::from(change.cause.as_str()),
            ]);
        }
        table
    }
}

/// A component as one line: `name (group g) {hyperparams}`.
fn component_line(name: &str, found: Option<(&str, &Value)>) -> String {
    match found {
        Some((group, hyperparams)) => format!("{name} (group {group}) {hyperparams}"),
        None => format!("{name} (not readable)"),
    }
}

impl Render for ShowModel {
    /// The metrics table (what `--format csv` prints).
    fn table(&self) -> Table {
        self.metrics_table()
    }

    fn summary(&self) -> Option<String> {
        let model = &self.detail.model;
        let run = model.run.as_ref();
        let timeout = run
            .and_then(|r| r.heartbeat_timeout_secs)
            .map_or_else(|| "the server's default".to_owned(), |s| format!("{s} s"));
        let epochs = match model.current_epoch {
            Some(current) => format!("{} (current epoch {current})", model.epoch_count),
            None => "0".to_owned(),
        };
        let tags = if model.tags.is_empty() {
            String::new()
        } else {
            model
                .tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let fields: [(&str, String); 15] = [
            ("model", model.name.clone()),
            ("project", model.project.clone().unwrap_or_default()),
            ("class", model.model_class_name.clone()),
            ("status", crate::output::json::status_name(model).to_owned()),
            ("created_at", format_time(model.created_at)),
            ("last_modified_at", format_time(model.last_modified_at)),
            ("started_at", format_time(run.and_then(|r| r.started_at))),
            ("ended_at", format_time(run.and_then(|r| r.ended_at))),
            (
                "last_heartbeat_at",
                format_time(run.and_then(|r| r.last_heartbeat_at)),
            ),
            ("heartbeat_timeout", timeout),
            ("epochs", epochs),
            ("params", model.params.to_string()),
            (
                "datablob",
                component_line(
                    &model.datablob_name,
                    self.datablob
                        .as_ref()
                        .map(|d| (d.group_name.as_str(), &d.hyperparams)),
                ),
            ),
            (
                "template",
                component_line(
                    &model.model_template_name,
                    self.template
                        .as_ref()
                        .map(|t| (t.group_name.as_str(), &t.hyperparams)),
                ),
            ),
            ("tags", tags),
        ];
        let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (key, value) in &fields {
            let mut lines = value.lines();
            let _ = writeln!(out, "{key:width$}  {}", lines.next().unwrap_or_default());
            for line in lines {
                let _ = writeln!(out, "{:width$}  {line}", "");
            }
        }
        if !model.description.is_empty() {
            let _ = writeln!(out, "\ndescription:");
            for line in model.description.lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
        let _ = writeln!(out, "\nmetrics:");
        if self.metrics.is_empty() {
            let _ = writeln!(out, "  (no epochs)");
        } else {
            out.push_str(&table_text(&self.metrics_table()));
        }
        if !self.detail.artifacts.is_empty() {
            let _ = writeln!(out, "\nartifacts:");
            out.push_str(&table_text(&self.artifacts_table()));
        }
        if !self.detail.status_changes.is_empty() {
            let _ = writeln!(out, "\nstatus history:");
            out.push_str(&table_text(&self.history_table()));
        }
        Some(out.trim_end().to_owned())
    }

    fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(ShowModelJson {
            model: ModelJson::from(&self.detail.model),
            datablob: self.datablob.as_ref().map(GroupedJson::from),
            model_template: self.template.as_ref().map(GroupedJson::from),
            metrics: self.metrics.iter().map(MetricJson::from).collect(),
            artifacts: self.detail.artifacts.iter().map(ArtifactJson::from).collect(),
            status_changes: self
                .detail
                .status_changes
                .iter()
                .map(StatusChangeJson::from)
                .collect(),
        })
    }
}

/// `show model --format json`: the model's fields as `list models` prints
/// them, plus its components, metrics and history.
#[derive(Serialize)]
struct ShowModelJson<'a> {
    #[serde(flatten)]
    model: ModelJson<'a>,
    datablob: Option<GroupedJson<'a>>,
    model_template: Option<GroupedJson<'a>>,
    metrics: Vec<MetricJson<'a>>,
    artifacts: Vec<ArtifactJson<'a>>,
    status_changes: Vec<StatusChangeJson<'a>>,
}

#[derive(Serialize)]
struct MetricJson<'a> {
    metric_name: &'a str,
    goal: Goal,
    best: Option<MetricValue>,
    best_epoch_num: Option<i64>,
    last: MetricValue,
    last_epoch_num: i64,
    min: Option<MetricValue>,
    min_epoch_num: Option<i64>,
    max: Option<MetricValue>,
    max_epoch_num: Option<i64>,
    count: u64,
    nan_count: u64,
}

impl<'a> From<&'a MetricRow> for MetricJson<'a> {
    fn from(row: &'a MetricRow) -> Self {
        let s = &row.summary;
        let value = |pair: Option<(i64, f64)>| pair.map(|(_, v)| MetricValue(v));
        let epoch = |pair: Option<(i64, f64)>| pair.map(|(e, _)| e);
        Self {
            metric_name: &s.metric_name,
            goal: row.goal,
            best: value(row.best()),
            best_epoch_num: epoch(row.best()),
            last: MetricValue(s.last.1),
            last_epoch_num: s.last.0,
            min: value(s.min),
            min_epoch_num: epoch(s.min),
            max: value(s.max),
            max_epoch_num: epoch(s.max),
            count: s.count,
            nan_count: s.nan_count,
        }
    }
}

#[derive(Serialize)]
struct StatusChangeJson<'a> {
    changed_at: String,
    from: &'static str,
    to: &'static str,
    cause: &'a str,
}

impl<'a> From<&'a StatusChange> for StatusChangeJson<'a> {
    fn from(change: &'a StatusChange) -> Self {
        Self {
            changed_at: format_time(change.changed_at),
            from: change.from.as_str(),
            to: change.to.as_str(),
            cause: &change.cause,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(minimize: &[&str], maximize: &[&str]) -> ShowModelArgs {
        ShowModelArgs {
            name: "m".into(),
            minimize: minimize.iter().map(|s| (*s).to_owned()).collect(),
            maximize: maximize.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn losses_are_minimized_unless_told_otherwise() {
        let none = args(&[], &[]);
        assert_eq!(goal("val_accuracy", &none), Goal::Max);
        assert_eq!(goal("val_loss", &none), Goal::Min);
        assert_eq!(goal("Top1_Error", &none), Goal::Min);
        assert_eq!(goal("f1", &args(&["f1"], &[])), Goal::Min);
        assert_eq!(goal("loss", &args(&[], &["loss"])), Goal::Max);
    }
}
