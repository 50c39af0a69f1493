//! `mlmeta add datablob|template|model|epochs`.

use std::path::PathBuf;

use mlmeta_client::{Client, DataBlob, InsertCounts, Model, ModelTemplate, NewEpoch, Put, RecordKind, Tags};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::args::{AddCommand, AddEpochsArgs};
use crate::error::CliError;
use crate::import::{CHUNK_EPOCHS, EpochReader, ImportError};
use crate::output::json::{GroupedJson, ModelJson};
use crate::output::{Cell, Render, Table};

/// Chunks read ahead of the one being sent: reading overlaps sending while
/// memory stays at a few chunks, whatever the file's size.
const CHUNKS_AHEAD: usize = 2;

/// Stores the record, or imports the file.
pub async fn run(client: &Client, command: &AddCommand) -> Result<Box<dyn Render>, CliError> {
    Ok(match command {
        AddCommand::Datablob(args) => {
            let blob = DataBlob::new(&args.name, &args.group, args.hyperparams.clone());
            Box::new(Added::Datablob(
                client.put_datablob(&blob, args.ignore_existing).await?,
            ))
        }
        AddCommand::Template(args) => {
            let template = ModelTemplate::new(&args.name, &args.group, args.hyperparams.clone());
            Box::new(Added::Template(
                client.put_model_template(&template, args.ignore_existing).await?,
            ))
        }
        AddCommand::Model(args) => {
            let model = Model::new(&args.name, &args.class, &args.datablob, &args.template)
                .with_params(args.params.clone());
            let mut put = client.put_model(&model, args.ignore_existing).await?;
            // Tags and the description are mutable, so they are set after
            // the put (by separate calls: a failure there leaves the model
            // stored, and running the command again is harmless).
            if !args.tags.is_empty() {
                let set: Tags = args.tags.iter().cloned().collect();
                put.record.tags = client
                    .update_tags(RecordKind::Model, &args.name, &set, &[])
                    .await?;
            }
            if let Some(description) = &args.description {
                client
                    .set_description(RecordKind::Model, &args.name, description)
                    .await?;
                put.record.description.clone_from(description);
            }
            Box::new(Added::Model(Box::new(put)))
        }
        AddCommand::Epochs(args) => Box::new(import(client, args).await?),
    })
}

enum Added {
    Datablob(Put<DataBlob>),
    Template(Put<ModelTemplate>),
    // Boxed: a model with its run and metadata is far larger than the rest.
    Model(Box<Put<Model>>),
}

impl Added {
    fn kind_and_name(&self) -> (&'static str, &str) {
        match self {
            Self::Datablob(put) => ("datablob", &put.record.name),
            Self::Template(put) => ("template", &put.record.name),
            Self::Model(put) => ("model", &put.record.name),
        }
    }

    fn already_existed(&self) -> bool {
        match self {
            Self::Datablob(put) => put.already_existed,
            Self::Template(put) => put.already_existed,
            Self::Model(put) => put.already_existed,
        }
    }
}

impl Render for Added {
    fn table(&self) -> Table {
        let existed = Cell::Text(self.already_existed().to_string());
        let grouped = |json: GroupedJson<'_>| {
            let mut table = Table::new(["name", "group", "hyperparams", "already_existed"]);
            table.rows.push(vec![
                Cell::from(json.name),
                Cell::from(json.group_name),
                Cell::Text(json.hyperparams.to_string()),
                existed.clone(),
            ]);
            table
        };
        match self {
            Self::Datablob(put) => grouped((&put.record).into()),
            Self::Template(put) => grouped((&put.record).into()),
            Self::Model(put) => {
                let m = &put.record;
                let mut table = Table::new(["name", "class", "datablob", "template", "already_existed"]);
                table.rows.push(vec![
                    Cell::from(m.name.as_str()),
                    Cell::from(m.model_class_name.as_str()),
                    Cell::from(m.datablob_name.as_str()),
                    Cell::from(m.model_template_name.as_str()),
                    existed,
                ]);
                table
            }
        }
    }

    /// `{"already_existed": bool, "<datablob|model_template|model>": record}`.
    fn json(&self) -> Result<Value, serde_json::Error> {
        let (key, record) = match self {
            Self::Datablob(put) => ("datablob", serde_json::to_value(GroupedJson::from(&put.record))?),
            Self::Template(put) => (
                "model_template",
                serde_json::to_value(GroupedJson::from(&put.record))?,
            ),
            Self::Model(put) => ("model", serde_json::to_value(ModelJson::from(&put.record))?),
        };
        Ok(json!({ "already_existed": self.already_existed(), key: record }))
    }

    fn summary(&self) -> Option<String> {
        let (kind, name) = self.kind_and_name();
        Some(if self.already_existed() {
            format!("{kind} {name:?} already existed; left unchanged")
        } else {
            format!("stored {kind} {name:?}")
        })
    }
}

/// Streams the file to the server: a blocking reader task parses chunks
/// of [`CHUNK_EPOCHS`] while the previous one is being stored.
async fn import(client: &Client, args: &AddEpochsArgs) -> Result<Imported, CliError> {
    // Checked first so that a wrong model name is reported as such, before
    // any of the file is read.
    if !client.current_epoch(&args.model).await?.model_exists {
        return Err(CliError::NotFound(format!(
            "no such model: {:?} (add it first with `mlmeta add model`)",
            args.model
        )));
    }
    let (chunks, mut received) = mpsc::channel(CHUNKS_AHEAD);
    let path = args.file.clone();
    // Dropped, not awaited: once `received` is gone the task stops at its
    // next send.
    let _reader = tokio::task::spawn_blocking(move || read_chunks(path, &chunks));
    let mut counts = InsertCounts::default();
    while let Some(chunk) = received.recv().await {
        let chunk = chunk.map_err(|source| CliError::Import {
            source,
            stored: counts,
        })?;
        counts += client.insert_epochs(&args.model, chunk).await?;
    }
    Ok(Imported {
        model_name: args.model.clone(),
        inserted: counts.inserted,
        skipped: counts.skipped,
    })
}

/// Sends the chunks of the file at `path` until its end, its first error,
/// or the receiver going away.
fn read_chunks(path: PathBuf, chunks: &mpsc::Sender<Result<Vec<NewEpoch>, ImportError>>) {
    let mut reader = match EpochReader::open(&path) {
        Ok(reader) => reader,
        Err(error) => {
            let _ = chunks.blocking_send(Err(error));
            return;
        }
    };
    loop {
        let chunk = reader.next_chunk(CHUNK_EPOCHS);
        let last = match &chunk {
            Ok(epochs) if epochs.is_empty() => return,
            Ok(_) => false,
            Err(_) => true,
        };
        if chunks.blocking_send(chunk).is_err() || last {
            return;
        }
    }
}

#[derive(Serialize)]
struct Imported {
    model_name: String,
    inserted: u64,
    skipped: u64,
}

impl Render for Imported {
    fn table(&self) -> Table {
        let mut table = Table::new(["model", "inserted", "skipped"]);
        let count = |n: u64| Cell::Number(n.to_string());
        table.rows.push(vec![
            Cell::from(self.model_name.as_str()),
            count(self.inserted),
            count(self.skipped),
        ]);
        table
    }

    fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self)
    }

    fn summary(&self) -> Option<String> {
        let epochs = |n: u64| {
            if n == 1 {
                "1 epoch".to_owned()
            } else {
                format!("{n} epochs")
            }
        };
        Some(format!(
            "model {:?}: {} inserted, {} skipped (already stored)",
            self.model_name,
            epochs(self.inserted),
            epochs(self.skipped)
        ))
    }
}
