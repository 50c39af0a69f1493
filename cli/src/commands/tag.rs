//! `mlmeta tag`, `mlmeta untag` and `mlmeta describe`: the mutable
//! metadata of models, datablobs and templates.

use std::io::Read as _;
use std::path::Path;

use mlmeta_client::{Client, RecordKind, Tags};
use serde_json::{Value, json};

use crate::args::{DescribeArgs, TagArgs, UntagArgs};
use crate::error::CliError;
use crate::output::{Cell, Render, Table};

/// Sets the tags; prints the record's tags afterwards.
pub async fn tag(client: &Client, args: &TagArgs) -> Result<Box<dyn Render>, CliError> {
    let set: Tags = args.tags.iter().cloned().collect();
    let tags = client
        .update_tags(args.kind.kind(), &args.name, &set, &[])
        .await?;
    Ok(Box::new(Tagged {
        kind: args.kind.kind(),
        name: args.name.clone(),
        tags,
    }))
}

/// Removes the tags; prints the record's tags afterwards.
pub async fn untag(client: &Client, args: &UntagArgs) -> Result<Box<dyn Render>, CliError> {
    let keys: Vec<&str> = args.keys.iter().map(String::as_str).collect();
    let tags = client
        .update_tags(args.kind.kind(), &args.name, &Tags::new(), &keys)
        .await?;
    Ok(Box::new(Tagged {
        kind: args.kind.kind(),
        name: args.name.clone(),
        tags,
    }))
}

/// Sets the description from the argument or the file.
pub async fn describe(client: &Client, args: &DescribeArgs) -> Result<Box<dyn Render>, CliError> {
    let text = match (&args.text, &args.file) {
        (Some(text), _) => text.clone(),
        (None, Some(path)) => read_text(path)?,
        // clap requires one of the two.
        (None, None) => String::new(),
    };
    client
        .set_description(args.kind.kind(), &args.name, &text)
        .await?;
    Ok(Box::new(Described {
        kind: args.kind.kind(),
        name: args.name.clone(),
        bytes: text.len(),
    }))
}

/// The file's text; `-` is standard input.
fn read_text(path: &Path) -> Result<String, CliError> {
    let failed = |source| CliError::ReadFile {
        path: path.display().to_string(),
        source,
    };
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(failed)?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(failed)
}

fn label(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Model => "model",
        RecordKind::DataBlob => "datablob",
        RecordKind::ModelTemplate => "template",
    }
}

struct Tagged {
    kind: RecordKind,
    name: String,
    tags: Tags,
}

impl Render for Tagged {
    /// One row per tag: `key, value`.
    fn table(&self) -> Table {
        let mut table = Table::new(["key", "value"]);
        table.rows = self
            .tags
            .iter()
            .map(|(k, v)| vec![Cell::from(k.as_str()), Cell::from(v.as_str())])
            .collect();
        table
    }

    /// `{"<model|datablob|template>": name, "tags": {...}}`.
    fn json(&self) -> Result<Value, serde_json::Error> {
        Ok(json!({ label(self.kind): self.name, "tags": self.tags }))
    }
}

struct Described {
    kind: RecordKind,
    name: String,
    bytes: usize,
}

impl Render for Described {
    fn table(&self) -> Table {
        let mut table = Table::new([label(self.kind), "description_bytes"]);
        let bytes = i64::try_from(self.bytes).unwrap_or(i64::MAX);
        table
            .rows
            .push(vec![Cell::from(self.name.as_str()), Cell::Int(bytes)]);
        table
    }

    /// `{"<model|datablob|template>": name, "description_bytes": n}`.
    fn json(&self) -> Result<Value, serde_json::Error> {
        Ok(json!({ label(self.kind): self.name, "description_bytes": self.bytes }))
    }

    fn summary(&self) -> Option<String> {
        let kind = label(self.kind);
        Some(if self.bytes == 0 {
            format!("cleared the description of {kind} {:?}", self.name)
        } else {
            format!("described {kind} {:?} ({} bytes)", self.name, self.bytes)
        })
    }
}
