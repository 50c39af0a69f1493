//! `mlmeta artifact add|list|upload|download|rm`: a model's artifacts.

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mlmeta_client::{Artifact, ArtifactPut, ArtifactUpload, Client, Error as ClientError, UploadOptions};
use serde_json::{Value, json};

use crate::args::{AddArtifactArgs, ArtifactCommand, UploadArtifactArgs};
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
        ArtifactCommand::Upload(args) => Box::new(upload(client, args).await?),
        ArtifactCommand::Download { model, name, to } => Box::new(download(client, model, name, to).await?),
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

/// A progress bar of `total` bytes on standard error, drawn only when it
/// is a terminal.
fn progress_bar(total: Option<u64>, verb: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = format!("{verb} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}} {{eta}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

async fn upload(client: &Client, args: &UploadArtifactArgs) -> Result<Uploaded, CliError> {
    let total = std::fs::metadata(&args.file).ok().map(|m| m.len());
    let bar = progress_bar(total, "uploading");
    let shown = bar.clone();
    let options = UploadOptions {
        media_type: args.media_type.clone(),
        overwrite: args.overwrite,
    };
    let uploaded = client
        .upload_artifact_file(&args.model, &args.name, &args.file, options, move |sent| {
            shown.set_position(sent);
        })
        .await;
    bar.finish_and_clear();
    match uploaded {
        Ok(upload) => Ok(Uploaded {
            model: args.model.clone(),
            upload,
        }),
        Err(ClientError::AlreadyExists { message }) => Err(CliError::ArtifactExists { message }),
        Err(error) => Err(error.into()),
    }
}

async fn download(client: &Client, model: &str, name: &str, to: &Path) -> Result<Downloaded, CliError> {
    let bar = progress_bar(None, "downloading");
    let shown = bar.clone();
    let downloaded = client
        .download_artifact_file(model, name, to, move |received| shown.set_position(received))
        .await;
    bar.finish_and_clear();
    Ok(Downloaded {
        model: model.to_owned(),
        artifact: downloaded?,
        path: to.to_owned(),
    })
}

struct Uploaded {
    model: String,
    upload: ArtifactUpload,
}

impl Render for Uploaded {
    fn table(&self) -> Table {
        let mut table = Table::new(COLUMNS);
        table.rows.push(row(&self.upload.artifact));
        table
    }

    /// `{"model", "artifact", "already_existed", "replaced", "content_existed"}`.
    fn json(&self) -> Result<Value, serde_json::Error> {
        Ok(json!({
            "model": self.model,
            "artifact": ArtifactJson::from(&self.upload.artifact),
            "already_existed": self.upload.already_existed,
            "replaced": self.upload.replaced,
            "content_existed": self.upload.content_existed,
        }))
    }

    fn summary(&self) -> Option<String> {
        let (artifact, model) = (&self.upload.artifact, &self.model);
        let size = artifact.size_bytes.unwrap_or_default();
        let digest = artifact.sha256.as_deref().unwrap_or_default();
        let what = if self.upload.replaced {
            "replaced"
        } else if self.upload.already_existed {
            "already had"
        } else {
            "uploaded"
        };
        let shared = if self.upload.content_existed {
            " (the server already held this content: no new room taken)"
        } else {
            ""
        };
        Some(format!(
            "{what} artifact {:?} of model {model:?}: {size} bytes, sha256 {digest}{shared}",
            artifact.name
        ))
    }
}

struct Downloaded {
    model: String,
    artifact: Artifact,
    path: PathBuf,
}

impl Render for Downloaded {
    fn table(&self) -> Table {
        let mut table = Table::new(COLUMNS);
        table.rows.push(row(&self.artifact));
        table
    }

    /// `{"model", "artifact", "path"}`.
    fn json(&self) -> Result<Value, serde_json::Error> {
        Ok(json!({
            "model": self.model,
            "artifact": ArtifactJson::from(&self.artifact),
            "path": self.path.display().to_string(),
        }))
    }

    fn summary(&self) -> Option<String> {
        Some(format!(
            "downloaded artifact {:?} of model {:?} to {}: {} bytes, sha256 verified",
            self.artifact.name,
            self.model,
            self.path.display(),
            self.artifact.size_bytes.unwrap_or_default()
        ))
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
