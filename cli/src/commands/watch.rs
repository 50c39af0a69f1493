//! `mlmeta watch [MODEL ...]` and `mlmeta watch --models`: prints what
//! the server's watch streams deliver, one line at a time, until Ctrl-C or
//! until the watched runs end (`--until-status`).

use std::collections::BTreeMap;
use std::io::Write as _;

use futures::{Stream, StreamExt as _, TryStreamExt as _};
use mlmeta_client::{Client, Epoch, ModelChange, ModelEvents, RunStatus, WatchOptions};
use serde::Serialize;

use crate::args::{Format, UntilStatus, WatchArgs};
use crate::error::CliError;
use crate::output::json::{EpochJson, ModelJson, status_name};
use crate::output::{format_f64, format_time};

/// Runs the watch; returns only on an error, or when `--until-status` is met.
pub async fn run(client: &Client, args: &WatchArgs, format: Format) -> Result<(), CliError> {
    let options = options(args);
    if args.model_events {
        return print_model_events(client, &options, format).await;
    }
    let mut printer = EpochPrinter::new(format);
    let Some(until) = args.until_status else {
        let mut batches = client.watch_epochs(&options);
        while let Some(batch) = batches.try_next().await? {
            printer.print(&batch.epochs)?;
        }
        return Ok(());
    };
    // The runs' statuses now, then their changes, next to the epochs.
    let mut runs = Runs::default();
    let mut events = client.watch_models(&WatchOptions {
        metrics: Vec::new(),
        history: false,
        ..options.clone()
    });
    let mut batches = client.watch_epochs(&options);
    let mut cursor = String::new();
    runs.load(client, args).await?;
    loop {
        if let Some(outcome) = runs.outcome(until) {
            // What was committed before the runs ended is printed first.
            drain(client, &options, cursor, &mut printer).await?;
            return outcome;
        }
        tokio::select! {
            batch = batches.try_next() => {
                let Some(batch) = batch? else { return Ok(()) };
                printer.print(&batch.epochs)?;
                cursor = batch.cursor;
            }
            message = events.try_next() => {
                let Some(message) = message? else { return Ok(()) };
                runs.update(&message);
            }
        }
    }
}

fn options(args: &WatchArgs) -> WatchOptions {
    let mut options = if args.models.is_empty() {
        WatchOptions::filter(args.filter.to_filter())
    } else {
        WatchOptions::models(args.models.iter().cloned())
    };
    options.metrics = args.metrics.clone();
    options.history = args.history;
    options
}

/// Prints every epoch committed up to now after `cursor` (a new watch
/// from it, until it says it caught up).
async fn drain(
    client: &Client,
    options: &WatchOptions,
    cursor: String,
    printer: &mut EpochPrinter,
) -> Result<(), CliError> {
    let mut options = options.clone();
    if !cursor.is_empty() {
        options = options.cursor(cursor).history(false);
    }
    let mut batches = client.watch_epochs(&options);
    while let Some(batch) = batches.try_next().await? {
        printer.print(&batch.epochs)?;
        if batch.caught_up {
            break;
        }
    }
    Ok(())
}

/// The watched runs' statuses.
#[derive(Default)]
struct Runs(BTreeMap<String, RunStatus>);

impl Runs {
    async fn load(&mut self, client: &Client, args: &WatchArgs) -> Result<(), CliError> {
        if args.models.is_empty() {
            for model in client.list_models(&args.filter.to_filter()).await? {
                self.0.insert(model.name.clone(), status_of(&model));
            }
        } else {
            for name in &args.models {
                let detail = client.get_model(name).await?;
                self.0.insert(name.clone(), status_of(&detail.model));
            }
        }
        Ok(())
    }

    fn update(&mut self, message: &ModelEvents) {
        for event in &message.events {
            match &event.model {
                Some(model) => {
                    self.0.insert(event.model_name.clone(), status_of(model));
                }
                None => {
                    self.0.remove(&event.model_name);
                }
            }
        }
    }

    /// `Some` once the runs ended as `until` asks.
    fn outcome(&self, until: UntilStatus) -> Option<Result<(), CliError>> {
        if self.0.is_empty() {
            return None;
        }
        let failed: Vec<String> = self
            .0
            .iter()
            .filter(|(_, status)| {
                matches!(status, RunStatus::Failed | RunStatus::Crashed | RunStatus::Killed)
            })
            .map(|(name, status)| format!("{name} {}", status.as_str().to_uppercase()))
            .collect();
        let all_ended = self.0.values().all(|status| {
            matches!(
                status,
                RunStatus::Finished | RunStatus::Failed | RunStatus::Killed | RunStatus::Crashed
            )
        });
        let done = match until {
            UntilStatus::Finished => !failed.is_empty() || all_ended,
            UntilStatus::AnyEnd => all_ended,
        };
        if !done {
            return None;
        }
        Some(if failed.is_empty() {
            Ok(())
        } else {
            Err(CliError::RunNotFinished(format!(
                "watched run(s) did not finish: {}",
                failed.join(", ")
            )))
        })
    }
}

fn status_of(model: &mlmeta_client::Model) -> RunStatus {
    model.run.as_ref().map_or(RunStatus::Created, |run| run.status)
}

/// Prints epochs as they come, in the chosen format.
struct EpochPrinter {
    format: Format,
    header: bool,
}

impl EpochPrinter {
    fn new(format: Format) -> Self {
        Self {
            format,
            header: false,
        }
    }

    fn print(&mut self, epochs: &[Epoch]) -> Result<(), CliError> {
        if epochs.is_empty() {
            return Ok(());
        }
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        for epoch in epochs {
            match self.format {
                Format::Json => {
                    serde_json::to_writer(&mut out, &EpochJson::from(epoch))?;
                    writeln!(out)?;
                }
                Format::Csv => {
                    if !self.header {
                        writeln!(out, "model,epoch,metric,value")?;
                        self.header = true;
                    }
                    for (metric, value) in &epoch.metrics {
                        writeln!(
                            out,
                            "{},{},{},{}",
                            csv_field(&epoch.model_name),
                            epoch.epoch_num,
                            csv_field(metric),
                            format_f64(*value)
                        )?;
                    }
                }
                Format::Table => {
                    let metrics: Vec<String> = epoch
                        .metrics
                        .iter()
                        .map(|(metric, value)| format!("{metric}={}", format_f64(*value)))
                        .collect();
                    writeln!(
                        out,
                        "{}  epoch {}  {}",
                        epoch.model_name,
                        epoch.epoch_num,
                        metrics.join("  ")
                    )?;
                }
            }
        }
        out.flush()?;
        Ok(())
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[derive(Serialize)]
struct EventJson<'a> {
    model_name: &'a str,
    changes: Vec<&'static str>,
    model: Option<ModelJson<'a>>,
}

fn change_name(change: ModelChange) -> &'static str {
    match change {
        ModelChange::Created => "created",
        ModelChange::Status => "status",
        ModelChange::Tags => "tags",
        ModelChange::Deleted => "deleted",
        ModelChange::Restored => "restored",
        ModelChange::Purged => "purged",
    }
}

async fn print_model_events(client: &Client, options: &WatchOptions, format: Format) -> Result<(), CliError> {
    let mut messages = client.watch_models(options);
    print_events(&mut messages, format).await
}

async fn print_events(
    messages: &mut (impl Stream<Item = mlmeta_client::Result<ModelEvents>> + Unpin),
    format: Format,
) -> Result<(), CliError> {
    let mut header = false;
    while let Some(message) = messages.next().await {
        let message = message?;
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        for event in &message.events {
            let changes: Vec<&str> = event.changes.iter().map(|c| change_name(*c)).collect();
            match format {
                Format::Json => {
                    let json = EventJson {
                        model_name: &event.model_name,
                        changes: changes.clone(),
                        model: event.model.as_ref().map(ModelJson::from),
                    };
                    serde_json::to_writer(&mut out, &json)?;
                    writeln!(out)?;
                }
                Format::Csv => {
                    if !header {
                        writeln!(out, "model,changes,status,deleted_at")?;
                        header = true;
                    }
                    let status = event.model.as_ref().map_or("", status_name);
                    let deleted = event.model.as_ref().and_then(|m| m.deleted_at);
                    writeln!(
                        out,
                        "{},{},{},{}",
                        csv_field(&event.model_name),
                        changes.join(" "),
                        status,
                        deleted.map(|t| format_time(Some(t))).unwrap_or_default()
                    )?;
                }
                Format::Table => {
                    let status = event.model.as_ref().map_or("purged", status_name);
                    let tags = event.model.as_ref().map_or(String::new(), |m| {
                        m.tags
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(",")
                    });
                    writeln!(
                        out,
                        "{}  {}  {}  {}",
                        event.model_name,
                        changes.join(","),
                        status,
                        tags
                    )?;
                }
            }
        }
        out.flush()?;
    }
    Ok(())
}
