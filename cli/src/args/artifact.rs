//! Arguments of `mlmeta artifact add|list|rm`.

use clap::{Args, Subcommand};

pub(super) const ARTIFACT_HELP: &str = "\
Examples:
  mlmeta artifact add run-7 checkpoint --uri s3://models/run-7/epoch-49.pt --size 48213990
  mlmeta artifact add run-7 onnx --uri gs://exports/run-7.onnx --sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
  mlmeta artifact list run-7 --format json
  mlmeta artifact rm run-7 onnx

An artifact is a named reference from a model to a file stored elsewhere:
mlmeta keeps the URI (any scheme), and optionally the file's SHA-256, size
and media type, never the bytes. Adding the same record again is harmless;
a different one under the same name is refused unless --overwrite. Exits
with status 2 when the model does not exist.";

/// `artifact` subcommands.
#[derive(Debug, Subcommand)]
pub enum ArtifactCommand {
    /// Store a reference from a model to a file (idempotent).
    #[command(
        after_help = "Example:\n  mlmeta artifact add run-7 checkpoint --uri s3://models/run-7/epoch-49.pt --size 48213990 --media-type application/octet-stream"
    )]
    Add(AddArtifactArgs),
    /// The artifacts of a model, by name.
    #[command(after_help = "Example:\n  mlmeta artifact list run-7 --format json")]
    List {
        /// The model.
        #[arg(value_name = "MODEL")]
        model: String,
    },
    /// Upload a file's bytes into the server as an artifact of a model
    /// (verified by SHA-256; stored once per content).
    #[command(
        after_help = "Example:\n  mlmeta artifact upload run-7 checkpoint --file epoch-49.pt --media-type application/octet-stream\n\nThe file is read twice: once for its SHA-256, which the server checks, then to send it. A progress bar shows on a terminal. The artifact appears only once every byte is stored."
    )]
    Upload(UploadArtifactArgs),
    /// Download the bytes of an uploaded artifact into a file (verified by
    /// SHA-256 and size before it takes the file's name).
    #[command(after_help = "Example:\n  mlmeta artifact download run-7 checkpoint --to restored.pt")]
    Download {
        /// The model.
        #[arg(value_name = "MODEL")]
        model: String,
        /// The artifact's name.
        #[arg(value_name = "NAME")]
        name: String,
        /// The file to write (replaced once the whole content arrived and
        /// matched its digest).
        #[arg(long, value_name = "PATH")]
        to: std::path::PathBuf,
    },
    /// Delete an artifact reference of a model (the file itself is not
    /// touched; an absent name is not an error).
    #[command(after_help = "Example:\n  mlmeta artifact rm run-7 onnx")]
    Rm {
        /// The model.
        #[arg(value_name = "MODEL")]
        model: String,
        /// The artifact's name.
        #[arg(value_name = "NAME")]
        name: String,
    },
}

/// Arguments of `artifact add`.
#[derive(Debug, Args)]
pub struct AddArtifactArgs {
    /// The model the artifact belongs to (it must exist).
    #[arg(value_name = "MODEL")]
    pub model: String,
    /// The artifact's name, unique within the model.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Where the file is: a URI with a scheme (s3://, gs://, file://,
    /// https://, ...).
    #[arg(long, value_name = "URI")]
    pub uri: String,
    /// SHA-256 of the file, 64 hex digits (stored in lower case).
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
    /// Size of the file in bytes.
    #[arg(long, value_name = "N")]
    pub size: Option<u64>,
    /// Media type of the file, type/subtype (stored in lower case).
    #[arg(long, value_name = "T")]
    pub media_type: Option<String>,
    /// Replace a different artifact stored under the same name (otherwise
    /// that is an error).
    #[arg(long)]
    pub overwrite: bool,
}

/// Arguments of `artifact upload`.
#[derive(Debug, Args)]
pub struct UploadArtifactArgs {
    /// The model the artifact belongs to (it must exist).
    #[arg(value_name = "MODEL")]
    pub model: String,
    /// The artifact's name, unique within the model.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The file to upload.
    #[arg(long, value_name = "PATH")]
    pub file: std::path::PathBuf,
    /// Media type `type/subtype` (stored in lower case).
    #[arg(long, value_name = "TYPE")]
    pub media_type: Option<String>,
    /// Replace a different artifact stored under the name.
    #[arg(long)]
    pub overwrite: bool,
}
