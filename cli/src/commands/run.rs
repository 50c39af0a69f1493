//! `mlmeta run start|heartbeat|end MODEL`.

use mlmeta_client::{Client, Model, RunStatus};
use serde_json::Value;

use crate::args::RunCommand;
use crate::error::CliError;
use crate::output::json::ModelJson;
use crate::output::{Cell, Render, Table, format_time};

/// Makes the one call the subcommand names; prints the model's run after it.
pub async fn run(client: &Client, command: &RunCommand) -> Result<Box<dyn Render>, CliError> {
    let model = match command {
        // The client fills the run context (host, pid, user, command line,
        // git commit) of this process.
        RunCommand::Start {
            model,
            heartbeat_timeout_secs,
        } => client.start_run(model, *heartbeat_timeout_secs).await?,
        RunCommand::Heartbeat { model } => client.heartbeat(model).await?,
        RunCommand::End { model, status } => client.end_run(model, RunStatus::from(*status)).await?,
    };
    Ok(Box::new(Run(model)))
}

struct Run(Model);

impl Render for Run {
    fn table(&self) -> Table {
        let mut table = Table::new(["model", "status", "started_at", "ended_at", "last_heartbeat_at"]);
        let run = self.0.run.as_ref();
        table.rows.push(vec![
            Cell::from(self.0.name.as_str()),
            Cell::from(crate::output::json::status_name(&self.0)),
            Cell::Text(format_time(run.and_then(|r| r.started_at))),
            Cell::Text(format_time(run.and_then(|r| r.ended_at))),
            Cell::Text(format_time(run.and_then(|r| r.last_heartbeat_at))),
        ]);
        table
    }

    fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(ModelJson::from(&self.0))
    }
}
