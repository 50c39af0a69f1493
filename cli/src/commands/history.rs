//! `mlmeta history MODEL [MODEL ...] --metric M [--metric M ...]`: the
//! curves of the named metrics, one row per model and epoch.

use std::collections::BTreeMap;

use mlmeta_client::{Client, Epoch, EpochFilter};
use serde::Serialize;
use serde_json::Value;

use crate::args::HistoryArgs;
use crate::error::CliError;
use crate::output::json::MetricValue;
use crate::output::plot::{self, PlotSize, Series};
use crate::output::{Cell, Render, Table};

/// Reads the epochs of the models (NOT_FOUND, exit 2, for a model that does
/// not exist) and keeps those carrying any of the metrics.
pub async fn run(client: &Client, args: &HistoryArgs) -> Result<Box<dyn Render>, CliError> {
    let filter = EpochFilter {
        model_names: args.models.clone(),
        min_epoch_num: args.from,
        max_epoch_num: args.to,
    };
    let epochs = client.list_epochs(&filter).await?;
    // In the order the models were named, then by epoch.
    let rank: BTreeMap<&str, usize> = args
        .models
        .iter()
        .enumerate()
        .rev()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let mut epochs: Vec<Epoch> = epochs
        .into_iter()
        .filter(|e| args.metrics.iter().any(|m| e.metrics.contains_key(m)))
        .collect();
    epochs.sort_by_key(|e| (rank.get(e.model_name.as_str()).copied(), e.epoch_num));
    Ok(Box::new(History {
        metrics: args.metrics.clone(),
        models: args.models.clone(),
        epochs,
        plot: args.plot.then(PlotSize::of_terminal),
    }))
}

struct History {
    metrics: Vec<String>,
    /// As named (the order of the series).
    models: Vec<String>,
    epochs: Vec<Epoch>,
    /// `--plot`: the chart's size.
    plot: Option<PlotSize>,
}

impl History {
    /// One series per model and metric that has any epoch, in the order
    /// named (the epochs are sorted by model, then epoch).
    fn series(&self) -> Vec<Series> {
        let mut out = Vec::new();
        for model in &self.models {
            for metric in &self.metrics {
                let points: Vec<(i64, f64)> = self
                    .epochs
                    .iter()
                    .filter(|e| &e.model_name == model)
                    .filter_map(|e| e.metrics.get(metric).map(|v| (e.epoch_num, *v)))
                    .collect();
                if !points.is_empty() {
                    out.push(Series {
                        label: format!("{model} {metric}"),
                        points,
                    });
                }
            }
        }
        out
    }
}

/// One row of `history --format json`.
#[derive(Serialize)]
struct HistoryJson<'a> {
    model_name: &'a str,
    epoch_num: i64,
    /// Every metric asked for; `null` when the epoch lacks it.
    metrics: BTreeMap<&'a str, Option<MetricValue>>,
}

impl Render for History {
    fn summary(&self) -> Option<String> {
        let size = self.plot?;
        let chart = plot::render(&self.series(), size);
        // The printer adds the last newline.
        Some(chart.trim_end_matches('\n').to_owned())
    }

    fn table(&self) -> Table {
        let mut table = Table::new(["model", "epoch"]);
        table.columns.extend(self.metrics.iter().cloned());
        for epoch in &self.epochs {
            let mut row = vec![Cell::from(epoch.model_name.as_str()), Cell::Int(epoch.epoch_num)];
            row.extend(
                self.metrics
                    .iter()
                    .map(|m| epoch.metrics.get(m).map_or(Cell::Empty, |v| Cell::Float(*v))),
            );
            table.rows.push(row);
        }
        table
    }

    fn json(&self) -> Result<Value, serde_json::Error> {
        let rows: Vec<HistoryJson<'_>> = self
            .epochs
            .iter()
            .map(|e| HistoryJson {
                model_name: &e.model_name,
                epoch_num: e.epoch_num,
                metrics: self
                    .metrics
                    .iter()
                    .map(|m| (m.as_str(), e.metrics.get(m).map(|v| MetricValue(*v))))
                    .collect(),
            })
            .collect();
        serde_json::to_value(rows)
    }
}
