//! [`EpochReader`]: epochs read one at a time from a CSV, JSON Lines or
//! JSON file, so that `add epochs` can send a file of any size in chunks.
//!
//! - CSV: a header `epoch,<metric>,<metric>...`, then one epoch per record.
//!   An empty cell means the epoch lacks that metric. A leading `model`
//!   column (`model,epoch,...`, what `mlmeta list epochs --format csv`
//!   prints) names each epoch's model.
//! - JSON Lines: `{"epoch": 3, "metrics": {"loss": 0.2}}` per line, with
//!   optional `steps_per_epoch`, `validation_steps_per_epoch` and
//!   `model_name`; blank lines are skipped.
//! - JSON: an array of such objects (what `mlmeta list epochs --format
//!   json` prints: `epoch_num` is taken for `epoch` and `recorded_at` is
//!   ignored), read one element at a time.
//!
//! An epoch whose row names no model belongs to the model the command
//! names; one whose row names another model than the command is refused.
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

/// One epoch of the file with the model it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct FileEpoch {
    /// The model: the row's `model` column or `model_name` field, or
    /// else the model the command names.
    pub model: String,
    /// The epoch.
    pub epoch: NewEpoch,
}

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
    /// An element of a JSON array is not an epoch.
    #[error("{path}, element {index}: {message}")]
    MalformedElement {
        /// The file, as given.
        path: String,
        /// 1-based position in the array.
        index: u64,
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
    /// One JSON array of objects.
    JsonArray,
}

impl FileFormat {
    /// The format a file name's extension says, if it says one.
    fn from_extension(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "csv" => Some(Self::Csv),
            "jsonl" | "ndjson" => Some(Self::JsonLines),
            _ => None,
        }
    }

    /// The format of content starting with `head`: JSON Lines open with
    /// `{`, a JSON array with `[`; anything else is taken for a CSV header,
    /// unless the file's name ends in `.json`.
    fn sniff(head: &[u8], json_name: bool) -> Self {
        let first = head
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(head)
            .iter()
            .find(|b| !b.is_ascii_whitespace());
        match first {
            Some(b'[') => Self::JsonArray,
            Some(b'{') => Self::JsonLines,
            _ if json_name => Self::JsonLines,
            _ => Self::Csv,
        }
    }
}

/// Epochs of a CSV or JSON Lines source, as an iterator that stops after
/// the first error.
pub struct EpochReader {
    name: String,
    /// The model the command names, if it names one.
    model: Option<String>,
    source: Source,
    done: bool,
}

enum Source {
    Csv {
        reader: csv::Reader<Box<dyn BufRead + Send>>,
        /// The header starts with `model`.
        has_model: bool,
        columns: Vec<Column>,
        record: csv::StringRecord,
    },
    JsonLines {
        input: Box<dyn BufRead + Send>,
        line: u64,
        text: String,
    },
    JsonArray {
        input: Box<dyn BufRead + Send>,
        /// Elements read so far.
        index: u64,
        /// The closing `]` was read.
        closed: bool,
    },
}

/// Where an epoch of the file came from, for messages.
#[derive(Clone, Copy)]
enum Place {
    Line(u64),
    Element(u64),
}

impl EpochReader {
    /// Opens `path` (`-` for standard input); the format comes from the
    /// extension, or else from the first character.
    pub fn open(path: &Path, model: Option<&str>) -> Result<Self, ImportError> {
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
        let json_name = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        Self::new(name, input, FileFormat::from_extension(path), json_name, model)
    }

    /// Reads `input`, called `name` in messages, as `format` (sniffed from
    /// the content when `None`; `json_name`: the name ends in `.json`),
    /// for the model the command names, if it names one.
    pub fn new(
        name: String,
        mut input: Box<dyn BufRead + Send>,
        format: Option<FileFormat>,
        json_name: bool,
        model: Option<&str>,
    ) -> Result<Self, ImportError> {
        let format = match format {
            Some(format) => format,
            None => FileFormat::sniff(
                input.fill_buf().map_err(|source| ImportError::Io {
                    path: name.clone(),
                    source,
                })?,
                json_name,
            ),
        };
        let source = match format {
            FileFormat::JsonLines => Source::JsonLines {
                input,
                line: 0,
                text: String::new(),
            },
            FileFormat::JsonArray => Source::JsonArray {
                input,
                index: 0,
                closed: false,
            },
            FileFormat::Csv => {
                let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(input);
                let (has_model, columns) = csv_header(&name, &mut reader)?;
                if !has_model && model.is_none() {
                    return Err(malformed(&name, 1, no_model_message()));
                }
                Source::Csv {
                    reader,
                    has_model,
                    columns,
                    record: csv::StringRecord::new(),
                }
            }
        };
        Ok(Self {
            name,
            model: model.map(str::to_owned),
            source,
            done: false,
        })
    }

    /// Up to `max` next epochs; empty at the end of the input.
    pub fn next_chunk(&mut self, max: usize) -> Result<Vec<FileEpoch>, ImportError> {
        let mut chunk = Vec::with_capacity(max.min(CHUNK_EPOCHS));
        for epoch in self.by_ref().take(max) {
            chunk.push(epoch?);
        }
        Ok(chunk)
    }

    fn read_next(&mut self) -> Result<Option<FileEpoch>, ImportError> {
        let Some((place, row)) = self.read_row()? else {
            return Ok(None);
        };
        self.owned(row)
            .map(Some)
            .map_err(|message| self.error_at(place, message))
    }

    /// The epoch of a row, with its model resolved against the command's.
    fn owned(&self, (model, epoch): (Option<String>, NewEpoch)) -> Result<FileEpoch, String> {
        let model = match (model, &self.model) {
            (Some(row), Some(command)) if row != *command => {
                return Err(format!(
                    "an epoch of model {row:?}, but the command is for model {command:?} \
                     (leave MODEL out to import every model the file names)"
                ));
            }
            (Some(row), _) => row,
            (None, Some(command)) => command.clone(),
            (None, None) => return Err(no_model_message()),
        };
        Ok(FileEpoch { model, epoch })
    }

    fn error_at(&self, place: Place, message: String) -> ImportError {
        match place {
            Place::Line(line) => malformed(&self.name, line, message),
            Place::Element(index) => ImportError::MalformedElement {
                path: self.name.clone(),
                index,
                message,
            },
        }
    }

    /// The next row: its place, the model it names and its epoch.
    fn read_row(&mut self) -> Result<Option<(Place, Row)>, ImportError> {
        match &mut self.source {
            Source::Csv {
                reader,
                has_model,
                columns,
                record,
            } => {
                let more = reader.read_record(record).map_err(|e| csv_error(&self.name, e))?;
                if !more {
                    return Ok(None);
                }
                let line = record.position().map_or(0, csv::Position::line);
                csv_epoch(*has_model, columns, record)
                    .map(|row| Some((Place::Line(line), row)))
                    .map_err(|message| malformed(&self.name, line, message))
            }
            Source::JsonArray { input, index, closed } => {
                let name = &self.name;
                let io = |source| ImportError::Io {
                    path: name.clone(),
                    source,
                };
                let Some(()) = next_array_element(input.as_mut(), *index, closed)
                    .map_err(io)?
                    .map_err(|message| ImportError::MalformedElement {
                        path: name.clone(),
                        index: *index + 1,
                        message,
                    })?
                else {
                    return Ok(None);
                };
                *index += 1;
                let place = Place::Element(*index);
                let mut deserializer = serde_json::Deserializer::from_reader(input.as_mut());
                let parsed = JsonEpoch::deserialize(&mut deserializer)
                    .map_err(|e| json_element_message(&e))
                    .and_then(json_row);
                parsed
                    .map(|row| Some((place, row)))
                    .map_err(|message| self.error_at(place, message))
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
                    .map(|row| Some((Place::Line(*line), row)))
                    .map_err(|message| malformed(&self.name, *line, message));
            },
        }
    }
}

/// The model a row names (if it names one) and its epoch.
type Row = (Option<String>, NewEpoch);

fn no_model_message() -> String {
    "the file names no model: give the model (`mlmeta add epochs MODEL --file ...`) \
     or a `model` column (`model_name` in JSON)"
        .to_owned()
}

/// Moves `input` to the start of the next element of a JSON array
/// (`Some`), or past its end (`None`); the inner `Err` says what is not
/// an array. `read` elements were read before.
fn next_array_element(
    input: &mut dyn BufRead,
    read: u64,
    closed: &mut bool,
) -> io::Result<Result<Option<()>, String>> {
    if *closed {
        return Ok(Ok(None));
    }
    if read == 0 {
        skip_byte_order_mark(input)?;
        if next_non_whitespace(input)? != Some(b'[') {
            return Ok(Err("expected `[`: a JSON file holds one array of epochs".into()));
        }
        input.consume(1);
    }
    match next_non_whitespace(input)? {
        Some(b']') => {
            input.consume(1);
            *closed = true;
            return Ok(match next_non_whitespace(input)? {
                None => Ok(None),
                Some(_) => Err("text after the array's closing `]`".into()),
            });
        }
        Some(b',') if read > 0 => input.consume(1),
        Some(_) if read == 0 => return Ok(Ok(Some(()))),
        Some(_) => return Ok(Err("expected `,` or `]` after the element before".into())),
        None => return Ok(Err("the array ends without its closing `]`".into())),
    }
    Ok(Ok(Some(())))
}

fn skip_byte_order_mark(input: &mut dyn BufRead) -> io::Result<()> {
    if input.fill_buf()?.starts_with(b"\xEF\xBB\xBF") {
        input.consume(3);
    }
    Ok(())
}

/// The next byte that is not whitespace, left unread.
fn next_non_whitespace(input: &mut dyn BufRead) -> io::Result<Option<u8>> {
    loop {
        let buffer = input.fill_buf()?;
        if buffer.is_empty() {
            return Ok(None);
        }
        match buffer.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(at) => {
                let byte = buffer[at];
                input.consume(at);
                return Ok(Some(byte));
            }
            None => {
                let all = buffer.len();
                input.consume(all);
            }
        }
    }
}

impl Iterator for EpochReader {
    type Item = Result<FileEpoch, ImportError>;

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

/// A CSV column after `epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Column {
    Metric(String),
    /// `steps_per_epoch`, as `list epochs` prints it.
    Steps,
    /// `validation_steps_per_epoch`, as `list epochs` prints it.
    ValidationSteps,
}

impl Column {
    fn of(name: &str) -> Self {
        match name {
            "steps_per_epoch" => Self::Steps,
            "validation_steps_per_epoch" => Self::ValidationSteps,
            metric => Self::Metric(metric.to_owned()),
        }
    }
}

/// Whether a CSV header `[model,]epoch,<metric>,...` has the model
/// column, and its columns after `epoch`.
fn csv_header(
    name: &str,
    reader: &mut csv::Reader<Box<dyn BufRead + Send>>,
) -> Result<(bool, Vec<Column>), ImportError> {
    let header = reader.headers().map_err(|e| csv_error(name, e))?;
    let mut columns = header.iter().peekable();
    let has_model = columns.next_if_eq(&"model").is_some();
    if columns.next() != Some("epoch") {
        return Err(malformed(
            name,
            1,
            "the header must start with `epoch` (or `model,epoch`), then the metric names: \
             `epoch,<metric>,<metric>...`"
                .into(),
        ));
    }
    let first_metric_column = if has_model { 3 } else { 2 };
    let mut metrics: Vec<Column> = Vec::with_capacity(header.len());
    for (index, metric) in columns.enumerate() {
        if metric.is_empty() {
            return Err(malformed(
                name,
                1,
                format!("column {} has no metric name", index + first_metric_column),
            ));
        }
        let column = Column::of(metric);
        if metrics.contains(&column) {
            return Err(malformed(name, 1, format!("column {metric:?} appears twice")));
        }
        metrics.push(column);
    }
    Ok((has_model, metrics))
}

/// The row of one CSV record under the header's `metrics`.
fn csv_epoch(has_model: bool, columns: &[Column], record: &csv::StringRecord) -> Result<Row, String> {
    let mut cells = record.iter();
    let model = if has_model {
        match cells.next() {
            Some(model) if !model.is_empty() => Some(model.to_owned()),
            _ => return Err("model: empty (every row names its model)".into()),
        }
    } else {
        None
    };
    let epoch_num = epoch_num(cells.next().unwrap_or_default())?;
    let mut epoch = NewEpoch::new(epoch_num, std::iter::empty::<(String, f64)>());
    for (column, cell) in columns.iter().zip(cells) {
        if cell.is_empty() {
            continue;
        }
        match column {
            Column::Metric(metric) => {
                let value = cell.parse::<f64>().map_err(|_| {
                    format!("{metric}: {cell:?} is not a number (NaN, inf and -inf are accepted)")
                })?;
                epoch.metrics.insert(metric.clone(), value);
            }
            Column::Steps => epoch.steps_per_epoch = Some(step_count("steps_per_epoch", cell)?),
            Column::ValidationSteps => {
                epoch.validation_steps_per_epoch = Some(step_count("validation_steps_per_epoch", cell)?);
            }
        }
    }
    Ok((model, epoch))
}

fn step_count(column: &str, text: &str) -> Result<i64, String> {
    text.parse::<i64>()
        .map_err(|_| format!("{column}: {text:?} is not a step count (an integer)"))
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

/// One line of a JSON Lines file, or one element of a JSON array.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonEpoch {
    #[serde(alias = "epoch_num")]
    epoch: i64,
    #[serde(default, alias = "model")]
    model_name: Option<String>,
    /// Printed by `list epochs`; the server sets its own on import.
    #[serde(default, rename = "recorded_at")]
    _recorded_at: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    metrics: BTreeMap<String, Value>,
    #[serde(default)]
    steps_per_epoch: Option<i64>,
    #[serde(default)]
    validation_steps_per_epoch: Option<i64>,
}

/// The row of one (non-blank) JSON line.
fn json_epoch(line: &str) -> Result<Row, String> {
    let parsed = serde_json::from_str::<JsonEpoch>(line).or_else(|error| {
        // Only when plain JSON fails, so valid lines pay nothing for it.
        serde_json::from_str::<JsonEpoch>(&quote_bare_non_finite(line)).map_err(|_| json_message(&error))
    })?;
    json_row(parsed)
}

/// The row of a parsed JSON epoch.
fn json_row(parsed: JsonEpoch) -> Result<Row, String> {
    if parsed.model_name.as_deref() == Some("") {
        return Err("model_name: empty".into());
    }
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
    Ok((parsed.model_name, epoch))
}

/// serde_json's message for an array element, whose lines and columns
/// count from the element's start.
fn json_element_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    text.strip_suffix(&suffix).map_or(text.clone(), str::to_owned)
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

    fn reader_for(
        text: &str,
        format: Option<FileFormat>,
        model: Option<&str>,
    ) -> Result<EpochReader, ImportError> {
        EpochReader::new(
            "f".into(),
            Box::new(io::Cursor::new(text.as_bytes().to_vec())),
            format,
            false,
            model,
        )
    }

    fn reader(text: &str, format: Option<FileFormat>) -> Result<EpochReader, ImportError> {
        reader_for(text, format, Some("m"))
    }

    fn read_all(text: &str) -> Result<Vec<NewEpoch>, ImportError> {
        reader(text, None)?.map(|e| e.map(|e| e.epoch)).collect()
    }

    fn read_owned(text: &str, model: Option<&str>) -> Result<Vec<(String, i64)>, ImportError> {
        reader_for(text, None, model)?
            .map(|e| e.map(|e| (e.model, e.epoch.epoch_num)))
            .collect()
    }

    fn element_of(error: ImportError) -> (u64, String) {
        match error {
            ImportError::MalformedElement { index, message, .. } => (index, message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn csv_and_json_exports_name_their_models() {
        let csv = "model,epoch,loss\na,1,0.5\nb,1,NaN\n";
        assert_eq!(read_owned(csv, None).unwrap(), [("a".into(), 1), ("b".into(), 1)]);
        let (line, message) = line_of(read_owned(csv, Some("a")).unwrap_err());
        assert_eq!(line, 3);
        assert!(
            message.contains("model \"b\"") && message.contains("\"a\""),
            "{message}"
        );
        let (line, message) = line_of(reader_for("epoch,loss\n1,2\n", None, None).err().unwrap());
        assert_eq!(line, 1);
        assert!(message.contains("names no model"), "{message}");
        let (line, message) = line_of(read_owned("model,epoch,loss\n,1,2\n", None).unwrap_err());
        assert_eq!(
            (line, message.as_str()),
            (2, "model: empty (every row names its model)")
        );
        let lines = "{\"model_name\": \"a\", \"epoch_num\": 2, \"metrics\": {}, \"recorded_at\": \"2026-12-01T00:00:00Z\"}\n{\"epoch\": 3}\n";
        assert_eq!(
            read_owned(lines, Some("a")).unwrap(),
            [("a".into(), 2), ("a".into(), 3)]
        );
        let (line, message) = line_of(read_owned(lines, None).unwrap_err());
        assert_eq!(line, 2);
        assert!(message.contains("names no model"), "{message}");
    }

    #[test]
    fn json_arrays_are_read_element_by_element() {
        let doc = concat!(
            "\u{feff} [\n  {\"epoch_num\": 1, \"metrics\": {\"loss\": \"NaN\"}, \"model_name\": \"a\",",
            " \"recorded_at\": \"2026-12-01T00:00:00Z\", \"steps_per_epoch\": null},\n",
            "  {\"epoch\": 2, \"metrics\": {\"loss\": 0.25}, \"model\": \"b\", \"validation_steps_per_epoch\": 4}\n]\n",
        );
        let epochs: Vec<FileEpoch> = reader_for(doc, None, None)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(epochs.len(), 2);
        assert_eq!((epochs[0].model.as_str(), epochs[0].epoch.epoch_num), ("a", 1));
        assert!(epochs[0].epoch.metrics["loss"].is_nan());
        assert_eq!(
            (
                epochs[1].model.as_str(),
                epochs[1].epoch.validation_steps_per_epoch
            ),
            ("b", Some(4))
        );
        assert!(read_owned("[]", None).unwrap().is_empty());
        assert!(read_owned(" [ ] \n", None).unwrap().is_empty());
        let cases = [
            ("[{\"epoch\": 1}", 2, "the array ends without its closing `]`"),
            (
                "[{\"epoch\": 1} {\"epoch\": 2}]",
                2,
                "expected `,` or `]` after the element before",
            ),
            ("[{\"epoch\": 1}] x", 2, "text after the array's closing `]`"),
            (
                "[{\"epoch\": 1}, {\"epoch\": -2}]",
                2,
                "epoch: -2 is not an epoch number (an integer >= 0)",
            ),
            ("[{\"epoch\": 1, \"metric\": {}}]", 1, "unknown field `metric`"),
            ("[5]", 1, "invalid type: integer `5`, expected struct JsonEpoch"),
        ];
        for (text, index, want) in cases {
            let (got_index, message) = element_of(read_owned(text, Some("a")).unwrap_err());
            assert_eq!(got_index, index, "{text}: {message}");
            assert!(message.starts_with(want), "{text}: {message}");
        }
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
        let epochs =
            read_all("epoch,loss,steps_per_epoch,validation_steps_per_epoch\n1,2,10,\n2,3,,4\n").unwrap();
        assert_eq!(
            (epochs[0].steps_per_epoch, epochs[0].validation_steps_per_epoch),
            (Some(10), None)
        );
        assert_eq!(
            (epochs[1].steps_per_epoch, epochs[1].validation_steps_per_epoch),
            (None, Some(4))
        );
        assert_eq!(epochs[1].metrics.len(), 1);
        let (line, message) = line_of(read_all("epoch,steps_per_epoch\n1,2.5\n").unwrap_err());
        assert_eq!(
            (line, message.as_str()),
            (2, "steps_per_epoch: \"2.5\" is not a step count (an integer)")
        );
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
        assert_eq!(FileFormat::from_extension(Path::new("a.json")), None);
        assert_eq!(
            FileFormat::sniff(b"\xEF\xBB\xBF  {\"epoch\"", false),
            FileFormat::JsonLines
        );
        assert_eq!(FileFormat::sniff(b" [{", false), FileFormat::JsonArray);
        assert_eq!(FileFormat::sniff(b"epoch,loss", false), FileFormat::Csv);
        assert_eq!(FileFormat::sniff(b"oops", true), FileFormat::JsonLines);
    }

    #[test]
    fn chunks_stop_after_an_error() {
        let mut epochs = reader("epoch,loss\n0,1\n1,2\n2,x\n3,4\n", None).unwrap();
        assert_eq!(epochs.next_chunk(2).unwrap().len(), 2);
        assert!(epochs.next_chunk(2).is_err());
        assert!(epochs.next_chunk(2).unwrap().is_empty());
    }
}
