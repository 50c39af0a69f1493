//! `mlmeta leaderboard`: every matching model's best value of a metric.

use mlmeta_client::{Client, Direction, LeaderboardRow};
use serde_json::Value;

use super::ranking::{self, Ranked, RankingJson};
use crate::args::RankArgs;
use crate::error::CliError;
use crate::output::{Render, Table};

/// Fetches the whole leaderboard (every page).
pub async fn run(client: &Client, args: &RankArgs) -> Result<Box<dyn Render>, CliError> {
    let direction = args.direction.direction();
    let columns = args.columns.names();
    let rows = client
        .leaderboard_with(&args.metric, direction, &args.filter.to_filter(), &columns)
        .await?;
    if rows.is_empty() {
        return Err(ranking::nobody_has(&args.metric, !args.filter.is_empty()));
    }
    Ok(Box::new(Leaderboard {
        metric: args.metric.clone(),
        direction,
        columns,
        rows,
    }))
}

struct Leaderboard {
    metric: String,
    direction: Direction,
    columns: Vec<String>,
    rows: Vec<LeaderboardRow>,
}

impl Leaderboard {
    fn ranked(&self) -> Vec<Ranked<'_>> {
        self.rows
            .iter()
            .map(|r| Ranked {
                model: &r.model,
                datablob: &r.datablob,
                template: &r.model_template,
                epoch_num: r.best_epoch_num,
                value: r.best_value,
                metrics: None,
            })
            .collect()
    }
}

impl Render for Leaderboard {
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
