//! `mlmeta artifact add|list|rm`: a model's artifact references.

use mlmeta_client::{Artifact, ArtifactPut, Client, Error as ClientError};
use serde_json::{Value, json};

use crate::args::{AddArtifactArgs, ArtifactCommand};
use crate::error::CliError;
use crate::output::json::ArtifactJson;
use crate::output::{Cell, Render, Table, format_time};

/// Makes the one call the subcommand names.
pub async fn run(client: &Client, command: &ArtifactCommand) -> Result<Box<dyn Render>, CliError> {
    Ok(match command {
        ArtifactCommand::Add(args) => Box::new(add(client, args).await?),
        ArtifactCommand::List { model } => Box::new(Listed {
            model: model.clone(),
            artifacts: client.list_artifacts(model).await?,
        }),
        ArtifactCommand::Rm { model, name } => Box::new(Removed {
            model: model.clone(),
            name: name.clone(),
            deleted: client.delete_artifact(model, name).await?,
        }),
    })
}

async fn add(client: &Client, args: &AddArtifactArgs) -> Result<Added, CliError> {
    let mut artifact = Artifact::new(&args.name, &args.uri);
    artifact.sha256.clone_from(&args.sha256);
    artifact.size_bytes = args.size;
    artifact.media_type.clone_from(&args.media_type);
    match client.put_artifact(&args.model, &artifact, args.overwrite).await {
        Ok(put) => Ok(Added {
            model: args.model.clone(),
            put,
        }),
        // Not the generic hint about --ignore-existing.
        Err(ClientError::AlreadyExists { message }) => Err(CliError::ArtifactExists { message }),
        Err(error) => Err(error.into()),
    }
}

/// The columns of an artifact table.
const COLUMNS: [&str; 6] = ["name", "uri", "sha256", "size_bytes", "media_type", "created_at"];

fn row(artifact: &Artifact) -> Vec<Cell> {
    let text = |value: &Option<String>| value.as_deref().map_or(Cell::Empty, Cell::from);
    vec![
        Cell::from(artifact.name.as_str()),
        Cell::from(artifact.uri.as_str()),
        text(&artifact.sha256),
        artifact
            .size_bytes
            .map_or(Cell::Empty, |size| Cell::Number(size.to_string())),
        text(&artifact.media_type),
        Cell::Text(format_time(artifact.created_at)),
    ]
}

struct Added {
    model: String,
    put: ArtifactPut,
}

impl Render for Added {
    fn table(&self) -> Table {
        let mut table = Table::new(COLUMNS);
        table.rows.push(row(&self.put.artifact));
        table
    }

    /// `{"model": name, "artifact": {...}, "already_existed": b, "replaced": b}`.
    fn json(&self) -> Result<Value, serde_json::Error> {
        Ok(json!({
            "model": self.model,
            "artifact": ArtifactJson::from(&self.put.artifact),
            "already_existed": self.put.already_existed,
            "replaced": self.put.replaced,
        }))
    }

    fn summary(&self) -> Option<String> {
        let (name, model) = (&self.put.artifact.name, &self.model);
        Some(if self.put.replaced {
            format!("replaced artifact {name:?} of model {model:?}")
        } else if self.put.already_existed {
            format!("artifact {name:?} of model {model:?} already existed; left unchanged")
        } else {
            format!("stored artifact {name:?} of model {model:?}")
        })
    }
}

struct Listed {
    model: String,
    artifacts: Vec<Artifact>,
}

impl Render for Listed {
    fn table(&self) -> Table {
        let mut table = Table::new(COLUMNS);
        table.rows = self.artifacts.iter().map(row).collect();
        table
    }

    /// `[{"name": ..., "uri": ..., ...}]`, by name.
    fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self.artifacts.iter().map(ArtifactJson::from).collect::<Vec<_>>())
    }

    fn summary(&self) -> Option<String> {
        self.artifacts
            .is_empty()
            .then(|| format!("model {:?} has no artifacts", self.model))
    }
}

struct Removed {
    model: String,
    name: String,
    deleted: bool,
}

impl Render for Removed {
    fn table(&self) -> Table {
        let mut table = Table::new(["model", "artifact", "deleted"]);
        table.rows.push(vec![
            Cell::from(self.model.as_str()),
            Cell::from(self.name.as_str()),
            Cell::from(if self.deleted { "true" } else { "false" }),
        ]);
        table
    }

    /// `{"model": name, "artifact": name, "deleted": b}`.
    fn json(&self) -> Result<Value, serde_json::Error> {
        Ok(json!({ "model": self.model, "artifact": self.name, "deleted": self.deleted }))
    }

    fn summary(&self) -> Option<String> {
        let (name, model) = (&self.name, &self.model);
        Some(if self.deleted {
            format!("removed artifact {name:?} of model {model:?}")
        } else {
            format!("model {model:?} has no artifact {name:?}; nothing removed")
        })
    }
}
