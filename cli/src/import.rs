//! [`EpochReader`]: epochs read one at a time from a CSV or JSON Lines
//! file, so that `add epochs` can send a file of any size in chunks.
//!
//! - CSV: a header `epoch,<metric>,<metric>...`, then one epoch per record.
//!   An empty cell means the epoch lacks that metric.
//! - JSON Lines: `{"epoch": 3, "metrics": {"loss": 0.2}}` per line, with
//!   optional `steps_per_epoch` and `validation_steps_per_epoch`; blank
//!   lines are skipped.
//!
//! Values parse as Rust's `f64` does (`NaN`, `inf`, `-inf`, `infinity`, in
//! any case). JSON also takes those as strings (the form `mlmeta --format
//! json` prints) and Python's bare `NaN`/`Infinity`/`-Infinity` tokens,
//! which `json.dumps` writes although they are not JSON.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use mlmeta_client::NewEpoch;
use serde::Deserialize;
use serde_json::Value;

/// Epochs read before a chunk is sent: one request's worth, far under
/// the server's 100,000 epochs and 64 MiB per request.
pub const CHUNK_EPOCHS: usize = 10_000;

/// Read buffer: large enough that a fast disk is not read in tiny bites.
const READ_BUFFER_BYTES: usize = 256 * 1024;

/// A file that cannot be read, or a line that is not an epoch.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Opening or reading failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file, as given.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The content is not what the format expects.
    #[error("{path}, line {line}: {message}")]
    Malformed {
        /// The file, as given.
        path: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
}

/// The two formats of an epoch file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Comma-separated values with an `epoch,...` header.
    Csv,
    /// One JSON object per line.
    JsonLines,
}

impl FileFormat {
    /// The format a file name's extension says, if it says one.
    fn from_extension(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "csv" => Some(Self::Csv),
            "jsonl" | "ndjson" | "json" => Some(Self::JsonLines),
            _ => None,
        }
    }

    /// The format of content starting with `head`: a JSON object opens
    /// with `{`, anything else is taken for a CSV header.
    fn sniff(head: &[u8]) -> Self {
        let first = head
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(head)
            .iter()
            .find(|b| !b.is_ascii_whitespace());
        if first == Some(&b'{') {
            Self::JsonLines
        } else {
            Self::Csv
        }
    }
}

/// Epochs of a CSV or JSON Lines source, as an iterator that stops after
/// the first error.
pub struct EpochReader {
    name: String,
    source: Source,
    done: bool,
}

enum Source {
    Csv {
        reader: csv::Reader<Box<dyn BufRead + Send>>,
        metrics: Vec<String>,
        record: csv::StringRecord,
    },
    JsonLines {
        input: Box<dyn BufRead + Send>,
        line: u64,
        text: String,
    },
}

impl EpochReader {
    /// Opens `path` (`-` for standard input); the format comes from the
    /// extension, or else from the first character.
    pub fn open(path: &Path) -> Result<Self, ImportError> {
        let stdin = path == Path::new("-");
        let name = if stdin {
            "standard input".to_owned()
        } else {
            path.display().to_string()
        };
        let input: Box<dyn BufRead + Send> = if stdin {
            Box::new(BufReader::with_capacity(READ_BUFFER_BYTES, io::stdin()))
        } else {
            let file = File::open(path).map_err(|source| ImportError::Io {
                path: name.clone(),
                source,
            })?;
            Box::new(BufReader::with_capacity(READ_BUFFER_BYTES, file))
        };
        Self::new(name, input, FileFormat::from_extension(path))
    }

    /// Reads `input`, called `name` in messages, as `format` (sniffed from
    /// the content when `None`).
    pub fn new(
        name: String,
        mut input: Box<dyn BufRead + Send>,
        format: Option<FileFormat>,
    ) -> Result<Self, ImportError> {
        let format = match format {
            Some(format) => format,
            None => FileFormat::sniff(input.fill_buf().map_err(|source| ImportError::Io {
                path: name.clone(),
                source,
            })?),
        };
        let source = match format {
            FileFormat::JsonLines => Source::JsonLines {
                input,
                line: 0,
                text: String::new(),
            },
            FileFormat::Csv => {
                let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(input);
                let metrics = csv_metrics(&name, &mut reader)?;
                Source::Csv {
                    reader,
                    metrics,
                    record: csv::StringRecord::new(),
                }
            }
        };
        Ok(Self {
            name,
            source,
            done: false,
        })
    }

    /// Up to `max` next epochs; empty at the end of the input.
    pub fn next_chunk(&mut self, max: usize) -> Result<Vec<NewEpoch>, ImportError> {
        let mut chunk = Vec::with_capacity(max.min(CHUNK_EPOCHS));
        for epoch in self.by_ref().take(max) {
            chunk.push(epoch?);
        }
        Ok(chunk)
    }

    fn read_next(&mut self) -> Result<Option<NewEpoch>, ImportError> {
        match &mut self.source {
            Source::Csv {
                reader,
                metrics,
                record,
            } => {
                let more = reader.read_record(record).map_err(|e| csv_error(&self.name, e))?;
                if !more {
                    return Ok(None);
                }
                let line = record.position().map_or(0, csv::Position::line);
                csv_epoch(metrics, record)
                    .map(Some)
                    .map_err(|message| malformed(&self.name, line, message))
            }
            Source::JsonLines { input, line, text } => loop {
                text.clear();
                let read = input.read_line(text).map_err(|source| ImportError::Io {
                    path: self.name.clone(),
                    source,
                })?;
                if read == 0 {
                    return Ok(None);
                }
                *line += 1;
                let trimmed = text.trim();
                if trimmed.is_empty() {
                    continue;
                }
                return json_epoch(trimmed)
                    .map(Some)
                    .map_err(|message| malformed(&self.name, *line, message));
            },
        }
    }
}

impl Iterator for EpochReader {
    type Item = Result<NewEpoch, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.read_next().transpose();
        self.done = !matches!(next, Some(Ok(_)));
        next
    }
}

fn malformed(name: &str, line: u64, message: String) -> ImportError {
    ImportError::Malformed {
        path: name.to_owned(),
        line,
        message,
    }
}

/// The metric names of a CSV header `epoch,<metric>,...`.
fn csv_metrics(
    name: &str,
    reader: &mut csv::Reader<Box<dyn BufRead + Send>>,
) -> Result<Vec<String>, ImportError> {
    let header = reader.headers().map_err(|e| csv_error(name, e))?;
    let mut columns = header.iter();
    if columns.next() != Some("epoch") {
        return Err(malformed(
            name,
            1,
            "the header must start with `epoch`, then the metric names: `epoch,<metric>,<metric>...`".into(),
        ));
    }
    let mut metrics: Vec<String> = Vec::with_capacity(header.len());
    for (index, metric) in columns.enumerate() {
        if metric.is_empty() {
            return Err(malformed(
                name,
                1,
                format!("column {} has no metric name", index + 2),
            ));
        }
        if metrics.iter().any(|m| m == metric) {
            return Err(malformed(name, 1, format!("metric {metric:?} appears twice")));
        }
        metrics.push(metric.to_owned());
    }
    Ok(metrics)
}

/// The epoch of one CSV record under the header's `metrics`.
fn csv_epoch(metrics: &[String], record: &csv::StringRecord) -> Result<NewEpoch, String> {
    let mut cells = record.iter();
    let epoch_num = epoch_num(cells.next().unwrap_or_default())?;
    let mut epoch = NewEpoch::new(epoch_num, std::iter::empty::<(String, f64)>());
    for (metric, cell) in metrics.iter().zip(cells) {
        if cell.is_empty() {
            continue;
        }
        let value = cell
            .parse::<f64>()
            .map_err(|_| format!("{metric}: {cell:?} is not a number (NaN, inf and -inf are accepted)"))?;
        epoch.metrics.insert(metric.clone(), value);
    }
    Ok(epoch)
}

fn epoch_num(text: &str) -> Result<i64, String> {
    match text.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err(format!(
            "epoch: {text:?} is not an epoch number (an integer >= 0)"
        )),
    }
}

/// A CSV error as a line-numbered message.
fn csv_error(name: &str, error: csv::Error) -> ImportError {
    let line = error.position().map_or(0, csv::Position::line);
    let message = match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("{len} fields, but the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_owned(),
        _ => error.to_string(),
    };
    match error.into_kind() {
        csv::ErrorKind::Io(source) => ImportError::Io {
            path: name.to_owned(),
            source,
        },
        _ => malformed(name, line, message),
    }
}

/// One line of a JSON Lines file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonEpoch {
    epoch: i64,
    #[serde(default)]
    metrics: BTreeMap<String, Value>,
    #[serde(default)]
    steps_per_epoch: Option<i64>,
    #[serde(default)]
    validation_steps_per_epoch: Option<i64>,
}

/// The epoch of one (non-blank) JSON line.
fn json_epoch(line: &str) -> Result<NewEpoch, String> {
    let parsed = serde_json::from_str::<JsonEpoch>(line).or_else(|error| {
        // Only when plain JSON fails, so valid lines pay nothing for it.
        serde_json::from_str::<JsonEpoch>(&quote_bare_non_finite(line)).map_err(|_| json_message(&error))
    })?;
    if parsed.epoch < 0 {
        return Err(format!(
            "epoch: {} is not an epoch number (an integer >= 0)",
            parsed.epoch
        ));
    }
    let mut epoch = NewEpoch::new(parsed.epoch, std::iter::empty::<(String, f64)>());
    epoch.steps_per_epoch = parsed.steps_per_epoch;
    epoch.validation_steps_per_epoch = parsed.validation_steps_per_epoch;
    for (metric, value) in parsed.metrics {
        let number = match &value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        let Some(number) = number else {
            return Err(format!(
                "metrics.{metric}: {value} is not a number (NaN, inf and -inf are accepted as strings)"
            ));
        };
        epoch.metrics.insert(metric, number);
    }
    Ok(epoch)
}

/// serde_json's message without its "at line 1 column N" (the line is
/// ours to tell), with the column kept.
fn json_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    match text.strip_suffix(&suffix) {
        Some(message) => format!("{message} (column {})", error.column()),
        None => text,
    }
}

/// `line` with Python's bare `NaN`, `Infinity` and `-Infinity` tokens
/// outside strings turned into JSON strings.
fn quote_bare_non_finite(line: &str) -> String {
    const TOKENS: [&str; 3] = ["-Infinity", "Infinity", "NaN"];
    let mut out = String::with_capacity(line.len() + 16);
    let mut rest = line;
    let mut in_string = false;
    let mut escaped = false;
    'scan: while let Some(c) = rest.chars().next() {
        if !in_string {
            for token in TOKENS {
                if let Some(after) = rest.strip_prefix(token) {
                    out.push('"');
                    out.push_str(token);
                    out.push('"');
                    rest = after;
                    continue 'scan;
                }
            }
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(text: &str, format: Option<FileFormat>) -> Result<EpochReader, ImportError> {
        EpochReader::new(
            "f".into(),
            Box::new(io::Cursor::new(text.as_bytes().to_vec())),
            format,
        )
    }

    fn read_all(text: &str) -> Result<Vec<NewEpoch>, ImportError> {
        reader(text, None)?.collect()
    }

    fn line_of(error: ImportError) -> (u64, String) {
        match error {
            ImportError::Malformed { line, message, .. } => (line, message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn csv_with_gaps_and_non_finite_values() {
        let epochs = read_all("epoch,loss,acc\n0,0.5,0.1\n1,,NaN\n\n2, inf ,-inf\n").unwrap();
        assert_eq!(epochs.len(), 3);
        assert_eq!(epochs[0], NewEpoch::new(0, [("loss", 0.5), ("acc", 0.1)]));
        assert_eq!(epochs[1].metrics.len(), 1);
        assert!(epochs[1].metrics["acc"].is_nan());
        assert_eq!(epochs[2].metrics["loss"], f64::INFINITY);
        assert_eq!(epochs[2].metrics["acc"], f64::NEG_INFINITY);
    }

    #[test]
    fn csv_errors_name_the_line() {
        let (line, message) = line_of(read_all("epoch,loss\n0,1\n1,x\n").unwrap_err());
        assert_eq!(line, 3);
        assert!(message.contains("loss") && message.contains("\"x\""), "{message}");
        let (line, message) = line_of(read_all("epoch,loss\n0,1\n1,2,3\n").unwrap_err());
        assert_eq!(line, 3);
        assert!(message.contains("3 fields"), "{message}");
        let (line, _) = line_of(read_all("epoch,loss\n-1,1\n").unwrap_err());
        assert_eq!(line, 2);
        let (line, message) = line_of(reader("step,loss\n", Some(FileFormat::Csv)).err().unwrap());
        assert_eq!(line, 1);
        assert!(message.contains("epoch"), "{message}");
        let (_, message) = line_of(reader("epoch,a,a\n", None).err().unwrap());
        assert!(message.contains("twice"), "{message}");
        let (_, message) = line_of(reader("", Some(FileFormat::Csv)).err().unwrap());
        assert!(message.contains("header"), "{message}");
    }

    #[test]
    fn json_lines_in_every_accepted_spelling() {
        let text = concat!(
            "{\"epoch\": 0, \"metrics\": {\"loss\": 0.5}, \"steps_per_epoch\": 10}\n",
            "\n",
            "{\"epoch\": 1, \"metrics\": {\"loss\": \"NaN\", \"acc\": \"-inf\"}}\n",
            "{\"epoch\": 2, \"metrics\": {\"loss\": NaN, \"acc\": -Infinity, \"x\": Infinity}}\n",
            "{\"epoch\": 3}\n",
        );
        let epochs = read_all(text).unwrap();
        assert_eq!(epochs.len(), 4);
        assert_eq!(epochs[0].steps_per_epoch, Some(10));
        assert!(epochs[1].metrics["loss"].is_nan());
        assert_eq!(epochs[2].metrics["acc"], f64::NEG_INFINITY);
        assert_eq!(epochs[2].metrics["x"], f64::INFINITY);
        assert!(epochs[3].metrics.is_empty());
    }

    #[test]
    fn json_errors_name_the_line() {
        let text = "{\"epoch\": 0, \"metrics\": {}}\n\n{\"epoch\": 1, \"metrics\": {\"loss\": }}\n";
        let (line, message) = line_of(read_all(text).unwrap_err());
        assert_eq!(line, 3);
        assert!(message.contains("column"), "{message}");
        let (line, message) = line_of(read_all("{\"epoch\": 0, \"metric\": {}}\n").unwrap_err());
        assert_eq!(line, 1);
        assert!(message.contains("metric"), "{message}");
        let (_, message) = line_of(read_all("{\"epoch\": 0, \"metrics\": {\"a\": true}}").unwrap_err());
        assert!(message.contains("metrics.a"), "{message}");
    }

    #[test]
    fn bare_tokens_inside_strings_stay() {
        assert_eq!(
            quote_bare_non_finite(r#"{"NaN \"Infinity": NaN, "b": -Infinity}"#),
            r#"{"NaN \"Infinity": "NaN", "b": "-Infinity"}"#
        );
    }

    #[test]
    fn format_from_extension_or_content() {
        assert_eq!(
            FileFormat::from_extension(Path::new("a.CSV")),
            Some(FileFormat::Csv)
        );
        assert_eq!(
            FileFormat::from_extension(Path::new("a.jsonl")),
            Some(FileFormat::JsonLines)
        );
        assert_eq!(FileFormat::from_extension(Path::new("-")), None);
        assert_eq!(
            FileFormat::sniff(b"\xEF\xBB\xBF  {\"epoch\""),
            FileFormat::JsonLines
        );
        assert_eq!(FileFormat::sniff(b"epoch,loss"), FileFormat::Csv);
    }

    #[test]
    fn chunks_stop_after_an_error() {
        let mut epochs = reader("epoch,loss\n0,1\n1,2\n2,x\n3,4\n", None).unwrap();
        assert_eq!(epochs.next_chunk(2).unwrap().len(), 2);
        assert!(epochs.next_chunk(2).is_err());
        assert!(epochs.next_chunk(2).unwrap().is_empty());
    }
}
