//! `mlmeta delete`, `mlmeta restore` and `mlmeta purge`.

use mlmeta_client::{Client, PurgeCounts, RecordKind};
use serde_json::{Value, json};

use crate::args::{PurgeArgs, RecordCommand};
use crate::error::CliError;
use crate::output::{Cell, Render, Table};

/// Soft-deletes the record.
pub async fn delete(client: &Client, command: &RecordCommand) -> Result<Box<dyn Render>, CliError> {
    let (kind, name) = command.target();
    client.delete(kind, name).await?;
    Ok(Box::new(Changed {
        kind,
        name: name.to_owned(),
        verb: "deleted",
    }))
}

/// Restores the record.
pub async fn restore(client: &Client, command: &RecordCommand) -> Result<Box<dyn Render>, CliError> {
    let (kind, name) = command.target();
    client.restore(kind, name).await?;
    Ok(Box::new(Changed {
        kind,
        name: name.to_owned(),
        verb: "restored",
    }))
}

/// Purges deleted records (clap made sure `--yes` was given).
pub async fn purge(client: &Client, args: &PurgeArgs) -> Result<Box<dyn Render>, CliError> {
    let counts = client.purge(args.model.as_deref()).await?;
    Ok(Box::new(Purged(counts)))
}

fn label(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Model => "model",
        RecordKind::DataBlob => "datablob",
        RecordKind::ModelTemplate => "template",
    }
}

struct Changed {
    kind: RecordKind,
    name: String,
    verb: &'static str,
}

impl Render for Changed {
    fn table(&self) -> Table {
        let mut table = Table::new([label(self.kind), "state"]);
        table
            .rows
            .push(vec![Cell::from(self.name.as_str()), Cell::from(self.verb)]);
        table
    }

    /// `{"<model|datablob|template>": name, "state": "deleted"|"restored"}`.
    fn json(&self) -> Result<Value, serde_json::Error> {
        Ok(json!({ label(self.kind): self.name, "state": self.verb }))
    }

    fn summary(&self) -> Option<String> {
        Some(format!("{} {} {:?}", self.verb, label(self.kind), self.name))
    }
}

struct Purged(PurgeCounts);

impl Render for Purged {
    fn table(&self) -> Table {
        let mut table = Table::new(["models", "epochs", "datablobs", "templates"]);
        let int = |n: u64| Cell::Int(i64::try_from(n).unwrap_or(i64::MAX));
        table.rows.push(vec![
            int(self.0.models),
            int(self.0.epochs),
            int(self.0.datablobs),
            int(self.0.model_templates),
        ]);
        table
    }

    /// `{"models": n, "epochs": n, "datablobs": n, "templates": n}`.
    fn json(&self) -> Result<Value, serde_json::Error> {
        Ok(json!({
            "models": self.0.models,
            "epochs": self.0.epochs,
            "datablobs": self.0.datablobs,
            "templates": self.0.model_templates,
        }))
    }

    fn summary(&self) -> Option<String> {
        Some(format!(
            "purged {} models ({} epochs), {} datablobs, {} templates",
            self.0.models, self.0.epochs, self.0.datablobs, self.0.model_templates
        ))
    }
}
