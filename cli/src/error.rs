//! [`CliError`]: every way a command fails, and the exit status each one
//! means.

use std::io;

use mlmeta_client::{Error as ClientError, InsertCounts};

use crate::exit::ExitStatus;
use crate::import::ImportError;

/// Why a command failed. Its `Display` is the one line printed after
/// `error: `.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server could not be reached (or answered UNAVAILABLE).
    #[error(
        "cannot reach the mlmeta server at {url} (is it running? see --server / MLMETA_SERVER): {reason}"
    )]
    Unreachable {
        /// The server URL used.
        url: String,
        /// What the transport or the server said.
        reason: String,
    },
    /// A not-found condition, in words meant for people.
    #[error("{0}")]
    NotFound(String),
    /// `watch --until-status`: a watched run did not finish.
    #[error("{0}")]
    RunNotFinished(String),
    /// A different record is stored under the name.
    #[error("{message} (add --ignore-existing to keep the stored one)")]
    AlreadyExists {
        /// The server's message.
        message: String,
    },
    /// A different artifact is stored under the name (`artifact add`; the
    /// server's message says to set overwrite, which is `--overwrite`).
    #[error("{message}")]
    ArtifactExists {
        /// The server's message.
        message: String,
    },
    /// The server wants a (different) token.
    #[error("{message} (set --token or MLMETA_TOKEN)")]
    Unauthenticated {
        /// The server's message.
        message: String,
    },
    /// Any other failure of a call.
    #[error("{0}")]
    Client(#[from] ClientError),
    /// The epoch file is unreadable or malformed.
    #[error("{source}{}", stored_note(*.stored))]
    Import {
        /// What is wrong with the file.
        source: ImportError,
        /// Epochs sent before the failure (stored or skipped).
        stored: InsertCounts,
    },
    /// An input file (`describe --file`) could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The file as given.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(io::Error),
    /// Encoding the output failed.
    #[error("cannot encode the output: {0}")]
    Encode(String),
    /// `import-dir` found a directory it cannot import, or directories
    /// that conflict with what is stored.
    #[error("{0}")]
    ImportDir(String),
    /// `export` or `import` failed: a malformed line (named), a file that
    /// cannot be read or written, or records that conflict with what is
    /// stored.
    #[error("{0}")]
    Transfer(String),
}

impl CliError {
    /// The exit status this error means.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Self::NotFound(_) => ExitStatus::NotFound,
            Self::RunNotFinished(_) => ExitStatus::RunNotFinished,
            _ => ExitStatus::Failure,
        }
    }

    /// The error, with client errors turned into the CLI's own variants:
    /// an unavailable server names `url`; NOT_FOUND and FAILED_PRECONDITION
    /// (a missing datablob or template) become not-found conditions.
    pub fn with_server(self, url: &str) -> Self {
        match self {
            Self::Client(error) => match error {
                ClientError::Unavailable { message } => Self::Unreachable {
                    url: url.to_owned(),
                    reason: message,
                },
                ClientError::NotFound { message } | ClientError::FailedPrecondition { message } => {
                    Self::NotFound(message)
                }
                ClientError::AlreadyExists { message } => Self::AlreadyExists { message },
                ClientError::Unauthenticated { message } => Self::Unauthenticated { message },
                other => Self::Client(other),
            },
            other => other,
        }
    }

    /// Whether this is a write to a closed pipe (`mlmeta ... | head`),
    /// which is not worth reporting.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

impl From<csv::Error> for CliError {
    fn from(error: csv::Error) -> Self {
        let text = error.to_string();
        match error.into_kind() {
            csv::ErrorKind::Io(error) => Self::Output(error),
            _ => Self::Encode(text),
        }
    }
}

impl From<serde_json::Error> for CliError {
    fn from(error: serde_json::Error) -> Self {
        match error.io_error_kind() {
            Some(kind) => Self::Output(io::Error::new(kind, error)),
            None => Self::Encode(error.to_string()),
        }
    }
}

fn stored_note(stored: InsertCounts) -> String {
    if stored.total() == 0 {
        String::new()
    } else {
        format!(
            " ({} epochs before it were sent: {} inserted, {} skipped; fix the file and import it again, stored epochs are skipped)",
            stored.total(),
            stored.inserted,
            stored.skipped
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_map_to_exit_statuses() {
        let not_found = CliError::from(ClientError::NotFound {
            message: "no model".into(),
        })
        .with_server("u");
        assert_eq!(not_found.exit_status(), ExitStatus::NotFound);
        assert_eq!(not_found.to_string(), "no model");
        let precondition = CliError::from(ClientError::FailedPrecondition {
            message: "no datablob".into(),
        })
        .with_server("u");
        assert_eq!(precondition.exit_status(), ExitStatus::NotFound);
        let down = CliError::from(ClientError::Unavailable {
            message: "refused".into(),
        })
        .with_server("http://127.0.0.1:1");
        assert_eq!(down.exit_status(), ExitStatus::Failure);
        assert!(down.to_string().contains("http://127.0.0.1:1"), "{down}");
        let invalid = CliError::from(ClientError::InvalidArgument {
            message: "bad".into(),
        })
        .with_server("u");
        assert_eq!(invalid.exit_status(), ExitStatus::Failure);
    }
}
