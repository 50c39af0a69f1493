//! `mlmeta current-epoch MODEL`.

use mlmeta_client::Client;
use serde::Serialize;
use serde_json::Value;

use crate::args::CurrentEpochArgs;
use crate::error::CliError;
use crate::output::{Cell, Render, Table};

/// Asks for the model's highest stored epoch number.
pub async fn run(client: &Client, args: &CurrentEpochArgs) -> Result<Box<dyn Render>, CliError> {
    let current = client.current_epoch(&args.model).await?;
    if !current.model_exists {
        return Err(CliError::NotFound(format!("no such model: {:?}", args.model)));
    }
    Ok(Box::new(CurrentEpoch {
        model_name: args.model.clone(),
        current_epoch: current.epoch_num,
    }))
}

#[derive(Serialize)]
struct CurrentEpoch {
    model_name: String,
    current_epoch: i64,
}

impl Render for CurrentEpoch {
    fn table(&self) -> Table {
        let mut table = Table::new(["model", "current_epoch"]);
        table.rows.push(vec![
            Cell::from(self.model_name.as_str()),
            Cell::Int(self.current_epoch),
        ]);
        table
    }

    fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self)
    }

    /// The bare number, for `$(mlmeta current-epoch run-1)` in scripts.
    fn summary(&self) -> Option<String> {
        Some(self.current_epoch.to_string())
    }
}
