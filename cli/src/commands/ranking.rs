//! What `best` and `leaderboard` share: ranked models as rows with their
//! hyperparameters flattened into columns, and as JSON.

use std::collections::{BTreeMap, BTreeSet};

use mlmeta_client::{DataBlob, Direction, Metrics, Model, ModelTemplate};
use serde::Serialize;

use crate::error::CliError;
use crate::output::flatten::flatten;
use crate::output::json::{GroupedJson, MetricValue, ModelJson, metrics};
use crate::output::{Cell, Table};

/// One ranked model, borrowed from the client's answer.
pub struct Ranked<'a> {
    /// The model.
    pub model: &'a Model,
    /// Its datablob.
    pub datablob: &'a DataBlob,
    /// Its template.
    pub template: &'a ModelTemplate,
    /// Its best epoch on the metric.
    pub epoch_num: i64,
    /// The metric's value there.
    pub value: f64,
    /// Every metric of that epoch, when known.
    pub metrics: Option<&'a Metrics>,
}

/// Rows `rank, model, epoch, <metric>, datablob, template`, then the
/// `columns` (as written), then one
/// column per model param and datablob and template hyperparameter
/// (`params.<key>`, `datablob.<key>`, `template.<key>`, sorted; empty
/// where a model's record lacks the key).
pub fn table(metric: &str, columns: &[String], ranked: &[Ranked<'_>]) -> Table {
    let flat: Vec<[BTreeMap<String, Cell>; 3]> = ranked
        .iter()
        .map(|r| {
            [
                flatten("params", &r.model.params),
                flatten("datablob", &r.datablob.hyperparams),
                flatten("template", &r.template.hyperparams),
            ]
        })
        .collect();
    let params_keys: BTreeSet<&String> = flat.iter().flat_map(|[p, _, _]| p.keys()).collect();
    let datablob_keys: BTreeSet<&String> = flat.iter().flat_map(|[_, d, _]| d.keys()).collect();
    let template_keys: BTreeSet<&String> = flat.iter().flat_map(|[_, _, t]| t.keys()).collect();
    let mut table = Table::new(["rank", "model", "epoch", metric, "datablob", "template"]);
    table.columns.extend(columns.iter().cloned());
    table.columns.extend(params_keys.iter().map(|k| (*k).clone()));
    table.columns.extend(datablob_keys.iter().map(|k| (*k).clone()));
    table.columns.extend(template_keys.iter().map(|k| (*k).clone()));
    for (index, (r, [params, datablob, template])) in ranked.iter().zip(&flat).enumerate() {
        let mut row = vec![
            Cell::Int(rank(index)),
            Cell::from(r.model.name.as_str()),
            Cell::Int(r.epoch_num),
            Cell::Float(r.value),
            Cell::from(r.datablob.name.as_str()),
            Cell::from(r.template.name.as_str()),
        ];
        row.extend(r.model.columns.iter().map(Cell::column));
        let cell =
            |cells: &BTreeMap<String, Cell>, key: &String| cells.get(key).cloned().unwrap_or(Cell::Empty);
        row.extend(params_keys.iter().map(|k| cell(params, k)));
        row.extend(datablob_keys.iter().map(|k| cell(datablob, k)));
        row.extend(template_keys.iter().map(|k| cell(template, k)));
        table.rows.push(row);
    }
    table
}

/// The JSON document: `{"metric", "direction", "models": [...]}`.
#[derive(Serialize)]
pub struct RankingJson<'a> {
    /// The metric ranked by.
    pub metric: &'a str,
    /// `"max"` or `"min"`.
    pub direction: &'static str,
    /// The models, best first.
    pub models: Vec<RankedJson<'a>>,
}

/// One model of [`RankingJson`].
#[derive(Serialize)]
pub struct RankedJson<'a> {
    /// 1 for the best.
    pub rank: i64,
    /// The model.
    pub model: ModelJson<'a>,
    /// Its datablob, with hyperparameters as nested JSON.
    pub datablob: GroupedJson<'a>,
    /// Its template, with hyperparameters as nested JSON.
    pub model_template: GroupedJson<'a>,
    /// Its best epoch on the metric.
    pub best_epoch_num: i64,
    /// The metric's value there.
    pub value: MetricValue,
    /// Every metric of the best epoch (`best` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<BTreeMap<&'a str, MetricValue>>,
}

impl<'a> RankingJson<'a> {
    /// The document of `ranked`.
    pub fn new(metric: &'a str, direction: Direction, columns: &'a [String], ranked: &[Ranked<'a>]) -> Self {
        Self {
            metric,
            direction: match direction {
                Direction::Max => "max",
                Direction::Min => "min",
            },
            models: ranked
                .iter()
                .enumerate()
                .map(|(index, r)| RankedJson {
                    rank: rank(index),
                    model: ModelJson::from(r.model).with_columns(columns, &r.model.columns),
                    datablob: r.datablob.into(),
                    model_template: r.template.into(),
                    best_epoch_num: r.epoch_num,
                    value: MetricValue(r.value),
                    metrics: r.metrics.map(metrics),
                })
                .collect(),
        }
    }
}

fn rank(index: usize) -> i64 {
    i64::try_from(index).map_or(i64::MAX, |i| i + 1)
}

/// The not-found error of a ranking nobody is in.
pub fn nobody_has(metric: &str, filtered: bool) -> CliError {
    let who = if filtered {
        "no model matching the filters"
    } else {
        "no model"
    };
    CliError::NotFound(format!(
        "{who} has a value for metric {metric:?} (NaN values do not count)"
    ))
}
