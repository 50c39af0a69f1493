//! `mlmeta export` and `mlmeta import`: a project as JSON Lines (see
//! `jsonl.rs` for the format), streamed both ways.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, BufWriter, Write};

use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mlmeta_client::{Client, ExportOptions, ExportRecord, ExportRecordKind, ImportOptions, ImportResponse};
use serde_json::{Value, json};

use crate::args::{ExportArgs, ImportArgs};
use crate::error::CliError;
use crate::jsonl::{self, Line};
use crate::output::{Cell, Nothing, Render, Table};

/// Epochs per batch record sent to the server.
const EPOCHS_PER_RECORD: usize = 10_000;
/// Records per import message, and bytes of lines per message.
const RECORDS_PER_MESSAGE: usize = 1_000;
const BYTES_PER_MESSAGE: usize = 4 << 20;
/// Import messages read ahead of the network.
const MESSAGES_AHEAD: usize = 4;
/// Record positions remembered to name the line of a server error.
const REMEMBERED_POSITIONS: usize = 1 << 16;

fn bar(verb: &str, total: Option<u64>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = if total.is_some() {
        format!("{verb} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{msg}} {{bytes_per_sec}} {{eta}}")
    } else {
        format!("{verb} {{spinner}} {{bytes}} {{msg}} {{bytes_per_sec}}")
    };
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// `mlmeta export`.
pub async fn export(client: &Client, args: &ExportArgs) -> Result<Box<dyn Render>, CliError> {
    let options = ExportOptions {
        model_names: args.models.clone(),
        where_expr: args.where_expr.clone(),
        with_artifacts: args.with_artifacts,
    };
    let to_stdout = args.to == "-";
    let sink: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            std::fs::File::create(&args.to)
                .map_err(|e| CliError::Transfer(format!("cannot create {}: {e}", args.to)))?,
        )
    };
    let mut out = BufWriter::with_capacity(1 << 20, sink);
    let mut records = client.export(&options).await?;
    let progress = bar("exporting", None);
    let mut summary = ExportSummary::default();
    let mut text = Vec::with_capacity(4096);
    while let Some(record) = records.next().await {
        let record = record?;
        summary.count(&record);
        for line in jsonl::lines(record).map_err(|e| CliError::Transfer(e.to_string()))? {
            text.clear();
            serde_json::to_writer(&mut text, &line)?;
            text.push(b'\n');
            out.write_all(&text)?;
            summary.lines += 1;
            summary.bytes += text.len() as u64;
        }
        progress.set_position(summary.bytes);
        progress.set_message(format!("{} lines", summary.lines));
    }
    out.flush()?;
    progress.finish_and_clear();
    summary.to = args.to.clone();
    if to_stdout {
        // Standard output holds the export: the summary goes to stderr.
        if let Some(text) = summary.summary() {
            eprintln!("{text}");
        }
        return Ok(Box::new(Nothing));
    }
    Ok(Box::new(summary))
}

#[derive(Default)]
struct ExportSummary {
    to: String,
    lines: u64,
    bytes: u64,
    datablobs: u64,
    model_templates: u64,
    models: u64,
    artifacts: u64,
    epochs: u64,
}

impl ExportSummary {
    fn count(&mut self, record: &ExportRecord) {
        match &record.record {
            Some(ExportRecordKind::Datablob(_)) => self.datablobs += 1,
            Some(ExportRecordKind::ModelTemplate(_)) => self.model_templates += 1,
            Some(ExportRecordKind::Model(_)) => self.models += 1,
            Some(ExportRecordKind::Artifact(_)) => self.artifacts += 1,
            Some(ExportRecordKind::Epochs(batch)) => self.epochs += batch.epochs.len() as u64,
            _ => {}
        }
    }
}

impl Render for ExportSummary {
    fn table(&self) -> Table {
        let mut table = Table::new([
            "datablobs",
            "model_templates",
            "models",
            "artifacts",
            "epochs",
            "lines",
            "bytes",
        ]);
        table.rows.push(
            [
                self.datablobs,
                self.model_templates,
                self.models,
                self.artifacts,
                self.epochs,
                self.lines,
                self.bytes,
            ]
            .map(|n| Cell::Int(i64::try_from(n).unwrap_or(i64::MAX)))
            .to_vec(),
        );
        table
    }

    /// `{"to", "datablobs", "model_templates", "models", "artifacts", "epochs", "lines", "bytes"}`.
    fn json(&self) -> Result<Value, serde_json::Error> {
        Ok(json!({
            "to": self.to,
            "datablobs": self.datablobs,
            "model_templates": self.model_templates,
            "models": self.models,
            "artifacts": self.artifacts,
            "epochs": self.epochs,
            "lines": self.lines,
            "bytes": self.bytes,
        }))
    }

    fn summary(&self) -> Option<String> {
        Some(format!(
            "exported {} datablobs, {} templates, {} models, {} artifacts, {} epochs to {} ({} lines, {} bytes)",
            self.datablobs,
            self.model_templates,
            self.models,
            self.artifacts,
            self.epochs,
            self.to,
            self.lines,
            self.bytes
        ))
    }
}

/// What the reader thread ended with: its error (a line it could not
/// read, named), and the first line of the records it sent last.
struct ReaderEnd {
    error: Option<String>,
    positions: VecDeque<(u64, u64)>,
}

/// Reads the file line by line into import messages (records batched),
/// sending each through `messages`; stops at the first bad line.
fn read_lines(
    input: Box<dyn BufRead + Send>,
    messages: tokio::sync::mpsc::Sender<Vec<ExportRecord>>,
    progress: ProgressBar,
) -> ReaderEnd {
    let mut end = ReaderEnd {
        error: None,
        positions: VecDeque::new(),
    };
    let mut reader = Reader {
        messages,
        batch: Vec::new(),
        batch_bytes: 0,
        epochs: Vec::new(),
        epochs_line: 0,
        next_index: 0,
        positions: &mut end.positions,
        gone: false,
    };
    end.error = reader.run(input, &progress).err();
    reader.flush_epochs();
    reader.flush();
    end
}

struct Reader<'a> {
    messages: tokio::sync::mpsc::Sender<Vec<ExportRecord>>,
    batch: Vec<ExportRecord>,
    batch_bytes: usize,
    epochs: Vec<mlmeta_proto::Epoch>,
    epochs_line: u64,
    next_index: u64,
    positions: &'a mut VecDeque<(u64, u64)>,
    /// The import call ended (its error is what to report).
    gone: bool,
}

impl Reader<'_> {
    fn run(&mut self, mut input: Box<dyn BufRead + Send>, progress: &ProgressBar) -> Result<(), String> {
        let mut text = String::new();
        let mut number: u64 = 0;
        let mut bytes: u64 = 0;
        loop {
            text.clear();
            let read = input
                .read_line(&mut text)
                .map_err(|e| format!("line {}: cannot read: {e}", number + 1))?;
            if read == 0 {
                if number == 0 {
                    return Err("line 1: the file is empty; an export starts with its header line".into());
                }
                return Ok(());
            }
            number += 1;
            bytes += read as u64;
            let trimmed = text.trim_end_matches(['\n', '\r']);
            let line: Line = serde_json::from_str(trimmed)
                .map_err(|e| format!("line {number}: not a record of an export: {e}"))?;
            match (&line, number) {
                (Line::Header(header), 1) => {
                    jsonl::check_header(header).map_err(|e| format!("line 1: {e}"))?;
                }
                (_, 1) => {
                    return Err(
                        "line 1: an export starts with its header line (`{\"header\":{...}}`)".into(),
                    );
                }
                (Line::Header(_), _) => {
                    return Err(format!("line {number}: only the first line is the header"));
                }
                _ => {}
            }
            if let Line::Epoch(epoch) = line {
                if self.epochs.first().is_some_and(|e| e.model_name != epoch.model)
                    || self.epochs.len() >= EPOCHS_PER_RECORD
                {
                    self.flush_epochs();
                }
                if self.epochs.is_empty() {
                    self.epochs_line = number;
                }
                self.epochs
                    .push(jsonl::epoch(epoch).map_err(|e| format!("line {number}: {e}"))?);
                self.batch_bytes += read;
            } else {
                self.flush_epochs();
                let record = jsonl::record(line).map_err(|e| format!("line {number}: {e}"))?;
                self.push(record, number, read);
            }
            if number.is_multiple_of(1024) {
                progress.set_position(bytes);
                progress.set_message(format!("{number} lines"));
            }
            if self.gone {
                return Ok(());
            }
        }
    }

    fn push(&mut self, record: ExportRecord, line: u64, bytes: usize) {
        if self.positions.len() == REMEMBERED_POSITIONS {
            self.positions.pop_front();
        }
        self.positions.push_back((self.next_index, line));
        self.next_index += 1;
        self.batch.push(record);
        self.batch_bytes += bytes;
        if self.batch.len() >= RECORDS_PER_MESSAGE || self.batch_bytes >= BYTES_PER_MESSAGE {
            self.flush();
        }
    }

    fn flush_epochs(&mut self) {
        if self.epochs.is_empty() {
            return;
        }
        let record = ExportRecord {
            record: Some(ExportRecordKind::Epochs(mlmeta_proto::EpochBatch {
                epochs: std::mem::take(&mut self.epochs),
            })),
        };
        self.push(record, self.epochs_line, 0);
    }

    fn flush(&mut self) {
        if self.batch.is_empty() || self.gone {
            return;
        }
        self.batch_bytes = 0;
        if self
            .messages
            .blocking_send(std::mem::take(&mut self.batch))
            .is_err()
        {
            self.gone = true;
        }
    }
}

/// The line of record `records[i]` named in a server message, if known.
fn line_of(message: &str, positions: &VecDeque<(u64, u64)>) -> Option<u64> {
    let rest = message.split("records[").nth(1)?;
    let index: u64 = rest.split(']').next()?.parse().ok()?;
    positions
        .iter()
        .rev()
        .find(|(i, _)| *i <= index)
        .map(|(_, line)| *line)
}

/// `mlmeta import`.
pub async fn import(client: &Client, args: &ImportArgs) -> Result<Box<dyn Render>, CliError> {
    let (input, total): (Box<dyn BufRead + Send>, Option<u64>) = if args.from == "-" {
        (
            Box::new(BufReader::with_capacity(1 << 20, std::io::stdin())),
            None,
        )
    } else {
        let file = std::fs::File::open(&args.from)
            .map_err(|e| CliError::Transfer(format!("cannot open {}: {e}", args.from)))?;
        let total = file.metadata().ok().map(|m| m.len());
        (Box::new(BufReader::with_capacity(1 << 20, file)), total)
    };
    let progress = bar("importing", total);
    let (sender, receiver) = tokio::sync::mpsc::channel(MESSAGES_AHEAD);
    let shown = progress.clone();
    let reader = tokio::task::spawn_blocking(move || read_lines(input, sender, shown));
    let batches = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|batch| (batch, receiver))
    });
    let options = ImportOptions {
        overwrite_mutable: args.overwrite_mutable,
    };
    let answer = client.import(batches, &options).await;
    let end = reader
        .await
        .map_err(|e| CliError::Transfer(format!("the file reader failed: {e}")))?;
    progress.finish_and_clear();
    if let Some(error) = end.error {
        let stored = match &answer {
            Ok(answer) => format!(" (the lines before it were imported: {})", counts_text(answer)),
            Err(_) => String::new(),
        };
        return Err(CliError::Transfer(format!("{}: {error}{stored}", args.from)));
    }
    let answer = match answer {
        Ok(answer) => answer,
        Err(error) => {
            let message = error.to_string();
            return Err(match line_of(&message, &end.positions) {
                Some(line) => CliError::Transfer(format!("{} line {line}: {message}", args.from)),
                None => CliError::from(error),
            });
        }
    };
    let conflicts = conflict_count(&answer);
    if conflicts > 0 {
        let first: Vec<String> = answer
            .conflicts
            .iter()
            .take(3)
            .map(|c| format!("{} {:?}: {}", c.kind, c.name, c.message))
            .collect();
        return Err(CliError::Transfer(format!(
            "{conflicts} records conflict with what is stored and were left alone ({}); the others were imported: {}",
            first.join("; "),
            counts_text(&answer)
        )));
    }
    Ok(Box::new(ImportSummary(answer)))
}

fn conflict_count(answer: &ImportResponse) -> u64 {
    kinds(answer).iter().map(|(_, c)| c.conflicts).sum()
}

fn kinds(answer: &ImportResponse) -> [(&'static str, mlmeta_client::ImportCounts); 5] {
    [
        ("datablobs", answer.datablobs.unwrap_or_default()),
        ("model_templates", answer.model_templates.unwrap_or_default()),
        ("models", answer.models.unwrap_or_default()),
        ("artifacts", answer.artifacts.unwrap_or_default()),
        ("epochs", answer.epochs.unwrap_or_default()),
    ]
}

fn counts_text(answer: &ImportResponse) -> String {
    kinds(answer)
        .iter()
        .map(|(kind, c)| {
            format!(
                "{kind} {} inserted, {} skipped, {} updated, {} conflicts",
                c.inserted, c.skipped, c.updated, c.conflicts
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

struct ImportSummary(ImportResponse);

impl Render for ImportSummary {
    fn table(&self) -> Table {
        let mut table = Table::new(["kind", "inserted", "skipped", "updated", "conflicts"]);
        for (kind, c) in kinds(&self.0) {
            let n = |v: u64| Cell::Int(i64::try_from(v).unwrap_or(i64::MAX));
            table.rows.push(vec![
                Cell::from(kind),
                n(c.inserted),
                n(c.skipped),
                n(c.updated),
                n(c.conflicts),
            ]);
        }
        table
    }

    /// `{"<kind>": {"inserted", "skipped", "updated", "conflicts"}, ..., "records", "artifact_bytes"}`.
    fn json(&self) -> Result<Value, serde_json::Error> {
        let mut object = serde_json::Map::new();
        for (kind, c) in kinds(&self.0) {
            object.insert(
                kind.to_owned(),
                json!({"inserted": c.inserted, "skipped": c.skipped, "updated": c.updated, "conflicts": c.conflicts}),
            );
        }
        object.insert("records".into(), json!(self.0.records));
        object.insert("artifact_bytes".into(), json!(self.0.artifact_bytes));
        Ok(Value::Object(object))
    }

    fn summary(&self) -> Option<String> {
        Some(format!(
            "imported {} records: {}",
            self.0.records,
            counts_text(&self.0)
        ))
    }
}
