//! The server's error types and the one place where they become gRPC
//! statuses.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use tonic::{Code, Status};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// `--database-url` / `MLMETA_DATABASE_URL` is not usable.
    #[error("invalid --database-url / MLMETA_DATABASE_URL: {0}")]
    DatabaseUrl(#[from] crate::db::InvalidDatabaseUrl),
    /// The database could not be reached or opened.
    #[error("cannot open the database {url}: {message}")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// What the driver said.
        message: String,
    },
    /// Applying the embedded migrations failed.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// The reflection service could not be built from the descriptors.
    #[error("cannot build the gRPC reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The gRPC transport failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// A start-up task panicked or was cancelled.
    #[error("start-up task failed: {0}")]
    Task(String),
    /// A TLS file named in the configuration cannot be read.
    #[error("cannot read {flag} {path}: {source}")]
    TlsFile {
        /// The flag that names the file.
        flag: &'static str,
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The TLS certificate, key or client CA is not usable.
    #[error("invalid TLS configuration (--tls-cert, --tls-key, --tls-client-ca): {0}")]
    Tls(String),
    /// The tokens file is not usable.
    #[error(transparent)]
    Tokens(#[from] crate::security::tokens::TokensFileError),
    /// Listening beyond loopback without tokens was not explicitly allowed.
    #[error(
        "refusing to serve {0} without authentication: pass --auth-tokens FILE, \
         or --allow-unauthenticated to let anyone who can reach this address read and write"
    )]
    Unauthenticated(String),
}

impl From<DieselError> for StartupError {
    fn from(error: DieselError) -> Self {
        Self::Migration(error.to_string())
    }
}

/// Why a request failed. Each variant maps to one gRPC status code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request breaks a documented rule; the message names the field.
    #[error("{0}")]
    InvalidArgument(String),
    /// Something the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A different record is stored under the same name.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request depends on a record that does not exist.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The database cannot be reached or is overloaded; retrying may help.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The transaction lost a race with another one (PostgreSQL deadlock or
    /// serialization failure); running it again will succeed.
    #[error("transaction conflict: {0}")]
    Conflict(String),
    /// Stored data could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(DieselError),
    /// A blocking task panicked or was cancelled.
    #[error("internal task failed: {0}")]
    Task(String),
    /// The call carries no valid token.
    #[error("{0}")]
    Unauthenticated(String),
    /// The call's token lacks the scope the call needs.
    #[error("{0}")]
    PermissionDenied(String),
    /// A server limit (message size, concurrent calls) was reached.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The call ran past the server's deadline.
    #[error("{0}")]
    DeadlineExceeded(String),
}

/// Result of a request-serving operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An INVALID_ARGUMENT error naming `field` and the `rule` it breaks.
    pub fn invalid(field: impl std::fmt::Display, rule: impl std::fmt::Display) -> Self {
        Self::InvalidArgument(format!("{field}: {rule}"))
    }
}

impl Error {
    /// Whether running the same transaction again will likely succeed.
    pub fn is_transient_conflict(&self) -> bool {
        matches!(self, Self::Conflict(_))
    }
}

impl From<DieselError> for Error {
    fn from(error: DieselError) -> Self {
        match &error {
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                Self::Unavailable(info.message().to_owned())
            }
            DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, info) => {
                Self::Conflict(info.message().to_owned())
            }
            DieselError::DatabaseError(_, info) if info.message().contains("deadlock detected") => {
                Self::Conflict(info.message().to_owned())
            }
            DieselError::DatabaseError(_, info)
                if info.message().contains("database is locked")
                    || info.message().contains("database is busy") =>
            {
                Self::Unavailable(info.message().to_owned())
            }
            _ => Self::Database(error),
        }
    }
}

impl From<diesel::r2d2::PoolError> for Error {
    fn from(error: diesel::r2d2::PoolError) -> Self {
        Self::Unavailable(format!("no database connection available: {error}"))
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(error: tokio::task::JoinError) -> Self {
        Self::Task(error.to_string())
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let code = match &error {
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::NotFound(_) => Code::NotFound,
            Error::AlreadyExists(_) => Code::AlreadyExists,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::Unavailable(_) => Code::Unavailable,
            Error::Conflict(_) => Code::Aborted,
            Error::Unauthenticated(_) => Code::Unauthenticated,
            Error::PermissionDenied(_) => Code::PermissionDenied,
            Error::ResourceExhausted(_) => Code::ResourceExhausted,
            Error::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Error::Corrupt(_) | Error::Database(_) | Error::Task(_) => Code::Internal,
        };
        if code == Code::Internal {
            // Details (SQL, paths) go to the log, not to the caller.
            tracing::error!(%error, "request failed");
            return Status::internal("internal server error (details in the server log)");
        }
        if code == Code::Unavailable {
            tracing::warn!(%error, "request failed");
        }
        Status::new(code, error.to_string())
    }
}
