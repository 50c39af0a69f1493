//! `mlmeta best`: the best model(s) by a metric.

use mlmeta_client::{BestModel, Client, Direction, Error as ClientError};
use serde_json::Value;

use super::ranking::{self, Ranked, RankingJson};
use crate::args::BestArgs;
use crate::error::CliError;
use crate::output::{Render, Table};

/// Asks for the `--top` best models.
pub async fn run(client: &Client, args: &BestArgs) -> Result<Box<dyn Render>, CliError> {
    let metric = &args.rank.metric;
    let direction = args.rank.direction.direction();
    let filtered = !args.rank.filter.is_empty();
    let columns = args.rank.columns.names();
    match client
        .best_models_with(
            metric,
            direction,
            &args.rank.filter.to_filter(),
            args.top,
            &columns,
        )
        .await
    {
        Ok(models) if !models.is_empty() => Ok(Box::new(Best {
            metric: metric.clone(),
            direction,
            columns,
            models,
        })),
        Ok(_) | Err(ClientError::NotFound { .. }) => Err(ranking::nobody_has(metric, filtered)),
        Err(error) => Err(error.into()),
    }
}

struct Best {
    metric: String,
    direction: Direction,
    columns: Vec<String>,
    models: Vec<BestModel>,
}

impl Best {
    fn ranked(&self) -> Vec<Ranked<'_>> {
        self.models
            .iter()
            .map(|b| Ranked {
                model: &b.model,
                datablob: &b.datablob,
                template: &b.model_template,
                epoch_num: b.best_epoch.epoch_num,
                value: b.metric_value,
                metrics: Some(&b.best_epoch.metrics),
            })
            .collect()
    }
}

impl Render for Best {
    fn table(&self) -> Table {
        ranking::table(&self.metric, &self.columns, &self.ranked())
    }

    fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(RankingJson::new(
            &self.metric,
            self.direction,
            &self.columns,
            &self.ranked(),
        ))
    }
}
