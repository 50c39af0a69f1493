//! `mlmeta import-dir DIR`: old results kept as directories (naklar's
//! layout: one directory per run, holding a dict file of its parameters
//! and results) become models, their epochs and artifact references.
//!
//! Every directory under DIR that holds the dict file is one model:
//! - its keys become params (numbers, strings, booleans, lists and
//!   objects kept as their JSON values), except the metric keys, `epoch`
//!   and `history`;
//! - the metric keys (`--metrics`, or `--metrics-prefix`) give epochs: a
//!   number is one epoch (numbered by the dict's `epoch` key, else 0), a
//!   list of numbers one epoch per element (0, 1, ...);
//! - `history` (an object of lists, or a list of objects) gives one epoch
//!   per element, numbered from 0 (or by an element's own `epoch`);
//! - `history.csv` and `conf.jsonl` beside it are read as `add epochs`
//!   reads files; the metrics of one epoch number from several places are
//!   merged (a metric given twice keeps the first value);
//! - every other file in the directory becomes an artifact reference:
//!   its `file://` URI, size and SHA-256.
//!
//! Everything is idempotent (the same puts again change nothing, epochs
//! stored are skipped), so running it twice stores nothing new.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mlmeta_client::{
    Artifact, Client, DataBlob, Error as ClientError, Metrics, Model, ModelTemplate, NewEpoch, digest_file,
};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::args::ImportDirArgs;
use crate::error::CliError;
use crate::import::EpochReader;
use crate::output::{Cell, Render, Table};

/// Epoch files read beside the dict file.
const EPOCH_FILES: [&str; 2] = ["history.csv", "conf.jsonl"];

/// What one directory becomes.
#[derive(Debug, Clone, PartialEq)]
struct Planned {
    directory: PathBuf,
    model: String,
    params: Map<String, Value>,
    epochs: Vec<NewEpoch>,
    artifacts: Vec<Artifact>,
}

/// What was done with one directory.
#[derive(Debug, Clone, Serialize)]
struct Outcome {
    directory: String,
    model: String,
    /// `created`, `existed`, `would create` (dry run) or `conflict: ...`.
    status: String,
    epochs_inserted: u64,
    epochs_skipped: u64,
    artifacts_added: u64,
    artifacts_existing: u64,
}

/// Imports (or, with `--dry-run`, plans) every run directory under DIR.
pub async fn run(client: &Client, args: &ImportDirArgs) -> Result<Box<dyn Render>, CliError> {
    let planned = plan(args)?;
    if args.dry_run {
        return Ok(Box::new(Imported {
            outcomes: planned.iter().map(dry_outcome).collect(),
        }));
    }
    // Created when missing; an existing one is kept as it is.
    client
        .put_datablob(&DataBlob::new(&args.datablob, "imported", json!({})), true)
        .await?;
    client
        .put_model_template(&ModelTemplate::new(&args.template, "imported", json!({})), true)
        .await?;
    let mut outcomes = Vec::with_capacity(planned.len());
    for planned in &planned {
        outcomes.push(store(client, args, planned).await?);
    }
    let conflicts: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.status.starts_with("conflict"))
        .collect();
    if !conflicts.is_empty() {
        let first: Vec<String> = conflicts
            .iter()
            .take(3)
            .map(|o| format!("{}: {}", o.directory, o.status))
            .collect();
        return Err(CliError::ImportDir(format!(
            "{} of {} directories conflict with what is stored (the others were imported): {}",
            conflicts.len(),
            outcomes.len(),
            first.join("; ")
        )));
    }
    Ok(Box::new(Imported { outcomes }))
}

fn dry_outcome(planned: &Planned) -> Outcome {
    Outcome {
        directory: planned.directory.display().to_string(),
        model: planned.model.clone(),
        status: "would create".into(),
        epochs_inserted: planned.epochs.len() as u64,
        epochs_skipped: 0,
        artifacts_added: planned.artifacts.len() as u64,
        artifacts_existing: 0,
    }
}

/// Stores one planned model; a conflict with what is stored is reported
/// in the outcome, anything else ends the import.
async fn store(client: &Client, args: &ImportDirArgs, planned: &Planned) -> Result<Outcome, CliError> {
    let mut outcome = Outcome {
        directory: planned.directory.display().to_string(),
        model: planned.model.clone(),
        status: String::new(),
        epochs_inserted: 0,
        epochs_skipped: 0,
        artifacts_added: 0,
        artifacts_existing: 0,
    };
    let model = Model::new(&planned.model, &args.class, &args.datablob, &args.template)
        .with_params(Value::Object(planned.params.clone()));
    match client.put_model(&model, false).await {
        Ok(put) => outcome.status = if put.already_existed { "existed" } else { "created" }.into(),
        Err(ClientError::AlreadyExists { message }) => {
            outcome.status = format!("conflict: {message}");
            return Ok(outcome);
        }
        Err(error) => return Err(error.into()),
    }
    let counts = client
        .insert_epochs(&planned.model, planned.epochs.clone())
        .await?;
    outcome.epochs_inserted = counts.inserted;
    outcome.epochs_skipped = counts.skipped;
    for artifact in &planned.artifacts {
        match client.put_artifact(&planned.model, artifact, false).await {
            Ok(put) if put.already_existed => outcome.artifacts_existing += 1,
            Ok(_) => outcome.artifacts_added += 1,
            Err(ClientError::AlreadyExists { message }) => {
                outcome.status = format!("conflict: {message}");
                return Ok(outcome);
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(outcome)
}

/// The run directories under `args.dir` (DIR itself included), in path
/// order, each read into what it becomes.
fn plan(args: &ImportDirArgs) -> Result<Vec<Planned>, CliError> {
    let root = std::fs::canonicalize(&args.dir)
        .map_err(|e| CliError::ImportDir(format!("cannot read {}: {e}", args.dir.display())))?;
    let mut directories = Vec::new();
    walk(&root, &args.dict_file, &mut directories)?;
    if directories.is_empty() {
        return Err(CliError::ImportDir(format!(
            "no directory under {} holds a {:?} file (see --dict-file)",
            args.dir.display(),
            args.dict_file
        )));
    }
    let mut planned: Vec<Planned> = Vec::with_capacity(directories.len());
    for directory in directories {
        let one = plan_one(args, &root, &directory)?;
        if let Some(other) = planned.iter().find(|p| p.model == one.model) {
            return Err(CliError::ImportDir(format!(
                "{} and {} would both be model {:?} (see --model-name-from)",
                other.directory.display(),
                one.directory.display(),
                one.model
            )));
        }
        planned.push(one);
    }
    Ok(planned)
}

fn walk(directory: &Path, dict_file: &str, found: &mut Vec<PathBuf>) -> Result<(), CliError> {
    if directory.join(dict_file).is_file() {
        found.push(directory.to_owned());
    }
    for entry in sorted_entries(directory)? {
        // Symbolic links are not followed: a link back up would loop.
        if entry.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            walk(&entry, dict_file, found)?;
        }
    }
    Ok(())
}

fn sorted_entries(directory: &Path) -> Result<Vec<PathBuf>, CliError> {
    let read = |e: std::io::Error| CliError::ImportDir(format!("cannot read {}: {e}", directory.display()));
    let mut entries = std::fs::read_dir(directory)
        .map_err(read)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(read)?;
    entries.sort();
    Ok(entries)
}

fn plan_one(args: &ImportDirArgs, root: &Path, directory: &Path) -> Result<Planned, CliError> {
    let dict_path = directory.join(&args.dict_file);
    let at = |message: String| CliError::ImportDir(format!("{}: {message}", dict_path.display()));
    let text = std::fs::read_to_string(&dict_path).map_err(|e| at(e.to_string()))?;
    let Value::Object(dict) = serde_json::from_str::<Value>(&text).map_err(|e| at(e.to_string()))? else {
        return Err(at("not a JSON object".into()));
    };
    let model = model_name(args, root, directory, &dict).map_err(at)?;
    let is_metric = |key: &str| match &args.metrics_prefix {
        Some(prefix) => key.starts_with(prefix.as_str()),
        None => args.metrics.iter().any(|m| m == key),
    };
    let mut params = Map::new();
    let mut epochs: BTreeMap<i64, Metrics> = BTreeMap::new();
    let single_epoch = match dict.get("epoch") {
        Some(value) => value
            .as_i64()
            .filter(|n| *n >= 0)
            .ok_or_else(|| at(format!("epoch: {value} is not an epoch number (an integer >= 0)")))?,
        None => 0,
    };
    for (key, value) in &dict {
        if key == "history" {
            history(value, &mut epochs).map_err(|m| at(format!("history: {m}")))?;
        } else if is_metric(key) {
            metric(key, value, single_epoch, &mut epochs).map_err(at)?;
        } else if key != "epoch" {
            params.insert(key.clone(), value.clone());
        }
    }
    let mut epochs: BTreeMap<i64, NewEpoch> = epochs
        .into_iter()
        .map(|(n, metrics)| (n, NewEpoch::new(n, metrics)))
        .collect();
    for name in EPOCH_FILES {
        let path = directory.join(name);
        if path.is_file() {
            let reader =
                EpochReader::open(&path, Some(&model)).map_err(|e| CliError::ImportDir(e.to_string()))?;
            for epoch in reader {
                merge(
                    &mut epochs,
                    epoch.map_err(|e| CliError::ImportDir(e.to_string()))?.epoch,
                );
            }
        }
    }
    let epochs: Vec<NewEpoch> = epochs.into_values().collect();
    let mut artifacts = Vec::new();
    for path in sorted_entries(directory)? {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let consumed = name == args.dict_file || EPOCH_FILES.contains(&name.as_str());
        if consumed || !path.symlink_metadata().is_ok_and(|m| m.is_file()) {
            continue;
        }
        artifacts.push(file_artifact(&name, &path)?);
    }
    Ok(Planned {
        directory: directory.to_owned(),
        model,
        params,
        epochs,
        artifacts,
    })
}

/// Adds `epoch` to `epochs`: an epoch number already there gains the
/// metrics (and step counts) it lacks; a value given twice keeps the first.
fn merge(epochs: &mut BTreeMap<i64, NewEpoch>, epoch: NewEpoch) {
    match epochs.get_mut(&epoch.epoch_num) {
        Some(known) => {
            for (name, value) in epoch.metrics {
                known.metrics.entry(name).or_insert(value);
            }
            known.steps_per_epoch = known.steps_per_epoch.or(epoch.steps_per_epoch);
            known.validation_steps_per_epoch = known
                .validation_steps_per_epoch
                .or(epoch.validation_steps_per_epoch);
        }
        None => {
            epochs.insert(epoch.epoch_num, epoch);
        }
    }
}

fn model_name(
    args: &ImportDirArgs,
    root: &Path,
    directory: &Path,
    dict: &Map<String, Value>,
) -> Result<String, String> {
    if args.model_name_from != "path" {
        return match dict.get(&args.model_name_from) {
            Some(Value::String(name)) if !name.is_empty() => Ok(name.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(other) => Err(format!("{}: {other} cannot name a model", args.model_name_from)),
            None => Err(format!(
                "no key {:?} to name the model by (--model-name-from)",
                args.model_name_from
            )),
        };
    }
    let relative = directory.strip_prefix(root).unwrap_or(directory);
    let name = if relative.as_os_str().is_empty() {
        root.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        relative.to_string_lossy().into_owned()
    };
    Ok(name)
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

/// A metric key: a number (one epoch) or a list of numbers (one per epoch).
fn metric(key: &str, value: &Value, epoch: i64, epochs: &mut BTreeMap<i64, Metrics>) -> Result<(), String> {
    let not_number =
        |v: &Value| format!("{key}: {v} is not a number (NaN, inf and -inf are accepted as strings)");
    match value {
        Value::Array(values) => {
            for (i, v) in values.iter().enumerate() {
                let n = number(v).ok_or_else(|| not_number(v))?;
                epochs
                    .entry(i64::try_from(i).unwrap_or(i64::MAX))
                    .or_default()
                    .insert(key.to_owned(), n);
            }
        }
        v => {
            let n = number(v).ok_or_else(|| not_number(v))?;
            epochs.entry(epoch).or_default().insert(key.to_owned(), n);
        }
    }
    Ok(())
}

/// `history`: `{"loss": [..], ...}` or `[{"loss": .., "epoch": n?}, ...]`.
fn history(value: &Value, epochs: &mut BTreeMap<i64, Metrics>) -> Result<(), String> {
    match value {
        Value::Object(series) => {
            for (key, values) in series {
                let Value::Array(_) = values else {
                    return Err(format!("{key}: expected a list of values, one per epoch"));
                };
                metric(key, values, 0, epochs)?;
            }
        }
        Value::Array(rows) => {
            for (i, row) in rows.iter().enumerate() {
                let Value::Object(row) = row else {
                    return Err(format!("element {i}: expected an object of metric values"));
                };
                let n = match row.get("epoch") {
                    Some(v) => v
                        .as_i64()
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| format!("element {i}: epoch {v} is not an epoch number"))?,
                    None => i64::try_from(i).unwrap_or(i64::MAX),
                };
                for (key, v) in row.iter().filter(|(k, _)| *k != "epoch") {
                    metric(key, v, n, epochs)?;
                }
            }
        }
        other => {
            return Err(format!(
                "{other} is neither an object of lists nor a list of objects"
            ));
        }
    }
    Ok(())
}

/// A `file://` reference to `path` with its size and SHA-256.
fn file_artifact(name: &str, path: &Path) -> Result<Artifact, CliError> {
    let (sha256, size) = digest_file(path).map_err(|e| CliError::ImportDir(e.to_string()))?;
    Ok(Artifact::new(name, file_uri(path))
        .with_sha256(sha256)
        .with_size(size))
}

/// `file://` and the absolute path, percent-encoded where a URI needs it.
fn file_uri(path: &Path) -> String {
    let mut uri = String::from("file://");
    for byte in path.to_string_lossy().bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

struct Imported {
    outcomes: Vec<Outcome>,
}

impl Render for Imported {
    fn table(&self) -> Table {
        let mut table = Table::new([
            "directory",
            "model",
            "status",
            "epochs_inserted",
            "epochs_skipped",
            "artifacts_added",
            "artifacts_existing",
        ]);
        let count = |n: u64| Cell::Number(n.to_string());
        for o in &self.outcomes {
            table.rows.push(vec![
                Cell::from(o.directory.as_str()),
                Cell::from(o.model.as_str()),
                Cell::from(o.status.as_str()),
                count(o.epochs_inserted),
                count(o.epochs_skipped),
                count(o.artifacts_added),
                count(o.artifacts_existing),
            ]);
        }
        table
    }

    /// `[{"directory", "model", "status", "epochs_inserted", ...}]`.
    fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(&self.outcomes)
    }

    fn summary(&self) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_are_percent_encoded() {
        assert_eq!(file_uri(Path::new("/r/a b/c%d.pt")), "file:///r/a%20b/c%25d.pt");
    }

    #[test]
    fn metrics_and_history_become_epochs() {
        let mut epochs = BTreeMap::new();
        metric("f1", &json!(0.5), 3, &mut epochs).unwrap();
        metric("acc", &json!([0.1, "NaN"]), 0, &mut epochs).unwrap();
        history(&json!([{"loss": 1.0}, {"loss": 0.5, "epoch": 7}]), &mut epochs).unwrap();
        history(&json!({"val": [2.0]}), &mut epochs).unwrap();
        assert_eq!(epochs[&3]["f1"], 0.5);
        assert_eq!(epochs[&0]["acc"], 0.1);
        assert!(epochs[&1]["acc"].is_nan());
        assert_eq!(
            (epochs[&0]["loss"], epochs[&7]["loss"], epochs[&0]["val"]),
            (1.0, 0.5, 2.0)
        );
        assert!(
            metric("f1", &json!("high"), 0, &mut epochs)
                .unwrap_err()
                .contains("f1")
        );
        assert!(history(&json!(5), &mut epochs).is_err());
    }
}
