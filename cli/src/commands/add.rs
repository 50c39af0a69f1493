//! `mlmeta add datablob|template|model|epochs`.

use std::path::PathBuf;

use mlmeta_client::{Client, DataBlob, InsertCounts, Model, ModelTemplate, NewEpoch, Put, RecordKind, Tags};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::args::{AddCommand, AddEpochsArgs};
use crate::error::CliError;
use crate::import::{CHUNK_EPOCHS, EpochReader, FileEpoch, ImportError};
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
    if let Some(model) = &args.model
        && !client.current_epoch(model).await?.model_exists
    {
        return Err(CliError::NotFound(format!(
            "no such model: {model:?} (add it first with `mlmeta add model`)"
        )));
    }
    let (chunks, mut received) = mpsc::channel(CHUNKS_AHEAD);
    let path = args.file.clone();
    let model = args.model.clone();
    // Dropped, not awaited: once `received` is gone the task stops at its
    // next send.
    let _reader = tokio::task::spawn_blocking(move || read_chunks(path, model.as_deref(), &chunks));
    let mut imported = Imported {
        one_model: args.model.is_some(),
        models: Vec::new(),
    };
    while let Some(chunk) = received.recv().await {
        let chunk = chunk.map_err(|source| CliError::Import {
            source,
            stored: imported.total(),
        })?;
        for (model, epochs) in runs_of_one_model(chunk) {
            let counts = client.insert_epochs(&model, epochs).await?;
            imported.add(model, counts);
        }
    }
    if let Some(model) = &args.model
        && imported.models.is_empty()
    {
        imported.add(model.clone(), InsertCounts::default());
    }
    Ok(imported)
}

/// The chunk cut where the model changes: one insert per run of epochs
/// of one model (an export lists each model's epochs together, so a chunk
/// holds few runs), keeping per-model counts exact.
fn runs_of_one_model(chunk: Vec<FileEpoch>) -> Vec<(String, Vec<NewEpoch>)> {
    let mut runs: Vec<(String, Vec<NewEpoch>)> = Vec::new();
    for FileEpoch { model, epoch } in chunk {
        match runs.last_mut() {
            Some((last, epochs)) if *last == model => epochs.push(epoch),
            _ => runs.push((model, vec![epoch])),
        }
    }
    runs
}

/// Sends the chunks of the file at `path` until its end, its first error,
/// or the receiver going away.
fn read_chunks(
    path: PathBuf,
    model: Option<&str>,
    chunks: &mpsc::Sender<Result<Vec<FileEpoch>, ImportError>>,
) {
    let mut reader = match EpochReader::open(&path, model) {
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

/// What an import stored, per model in the order the file names them.
struct Imported {
    /// The command named the model: the JSON output is that model's
    /// counts alone, as before files could name models.
    one_model: bool,
    models: Vec<ModelCounts>,
}

#[derive(Serialize)]
struct ModelCounts {
    model_name: String,
    inserted: u64,
    skipped: u64,
}

impl Imported {
    fn add(&mut self, model: String, counts: InsertCounts) {
        match self.models.iter_mut().find(|m| m.model_name == model) {
            Some(known) => {
                known.inserted += counts.inserted;
                known.skipped += counts.skipped;
            }
            None => self.models.push(ModelCounts {
                model_name: model,
                inserted: counts.inserted,
                skipped: counts.skipped,
            }),
        }
    }

    fn total(&self) -> InsertCounts {
        let mut total = InsertCounts::default();
        for model in &self.models {
            total.inserted += model.inserted;
            total.skipped += model.skipped;
        }
        total
    }
}

impl Render for Imported {
    fn table(&self) -> Table {
        let mut table = Table::new(["model", "inserted", "skipped"]);
        let count = |n: u64| Cell::Number(n.to_string());
        for model in &self.models {
            table.rows.push(vec![
                Cell::from(model.model_name.as_str()),
                count(model.inserted),
                count(model.skipped),
            ]);
        }
        table
    }

    /// With MODEL: `{"model_name", "inserted", "skipped"}`; without:
    /// `{"inserted", "skipped", "models": [that, per model]}`.
    fn json(&self) -> Result<Value, serde_json::Error> {
        match (self.one_model, self.models.as_slice()) {
            (true, [model]) => serde_json::to_value(model),
            _ => {
                let total = self.total();
                Ok(json!({
                    "inserted": total.inserted,
                    "skipped": total.skipped,
                    "models": serde_json::to_value(&self.models)?,
                }))
            }
        }
    }

    fn summary(&self) -> Option<String> {
        let epochs = |n: u64| {
            if n == 1 {
                "1 epoch".to_owned()
            } else {
                format!("{n} epochs")
            }
        };
        let line = |name: &str, counts: (u64, u64)| {
            format!(
                "model {name:?}: {} inserted, {} skipped (already stored)",
                epochs(counts.0),
                epochs(counts.1)
            )
        };
        let mut lines: Vec<String> = self
            .models
            .iter()
            .map(|m| line(&m.model_name, (m.inserted, m.skipped)))
            .collect();
        if lines.is_empty() {
            lines.push("the file holds no epochs".to_owned());
        } else if lines.len() > 1 {
            let total = self.total();
            lines.push(format!(
                "{} models: {} inserted, {} skipped (already stored)",
                self.models.len(),
                epochs(total.inserted),
                epochs(total.skipped)
            ));
        }
        Some(lines.join("\n"))
    }
}
