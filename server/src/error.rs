//! The server's error types and the one place where they become gRPC
//! statuses.

use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use tonic::codegen::http;
use tonic::{Code, Status};

use crate::log_limit::LogLimiter;

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
    /// The SQLite database file (or its `-wal`/`-shm` companion, or their
    /// directory) cannot be written.
    #[error(
        "cannot write the SQLite database {path}: {reason}; the server must be able to write the file, \
         its -wal and -shm files and their directory (check their permissions and that the file system \
         is mounted read-write)"
    )]
    NotWritable {
        /// The file that cannot be written.
        path: String,
        /// What the operating system or SQLite said.
        reason: String,
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
    /// A listener could not be bound.
    #[error("cannot listen on {addr} ({flag}): {source}")]
    Listen {
        /// The flag that names the address.
        flag: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
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
    /// The storage cannot serve: out of space, read-only, failing,
    /// unreachable, or (SQLite) the file is gone. The caller gets
    /// `message`, which says what to do; `detail` goes to the log.
    #[error("{message} ({detail})")]
    Storage {
        /// What went wrong, which decides the status code.
        fault: StorageFault,
        /// For the caller: what happened and what to do.
        message: String,
        /// For the log: what the driver said.
        detail: String,
    },
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
    /// A stream completed no message for longer than the idle timeout and
    /// was ended; what it sent before is committed.
    ///
    /// UNAVAILABLE, because the client did nothing wrong and can retry just
    /// this call (open a new stream and go on): gRPC's test for choosing
    /// UNAVAILABLE over ABORTED or FAILED_PRECONDITION. Retrying clients
    /// (mlmeta's, and gRPC retry policies) retry it, and re-sending is
    /// harmless because epoch inserts are idempotent. DEADLINE_EXCEEDED
    /// would name a deadline the client never set, CANCELLED reads as the
    /// client's own doing, RESOURCE_EXHAUSTED as overload.
    #[error("{0}")]
    StreamIdle(String),
}

/// Result of a request-serving operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A storage fault: a condition of the database or its disk that clients
/// cannot fix by changing their request, but an operator can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFault {
    /// No space left (SQLite `SQLITE_FULL`, PostgreSQL `53100 disk_full`).
    DiskFull,
    /// The database refuses writes: a read-only file or file system
    /// (`SQLITE_READONLY`), a PostgreSQL hot standby (`25006`).
    ReadOnly,
    /// The disk failed a read or write (`SQLITE_IOERR`, `EIO`).
    Io,
    /// The database cannot be reached (connection refused or lost).
    Unreachable,
    /// The SQLite file was moved, deleted or replaced while serving.
    Moved,
}

impl StorageFault {
    /// The gRPC code clients see: disk full is RESOURCE_EXHAUSTED (retry
    /// after space is freed), everything else UNAVAILABLE (retry later).
    fn code(self) -> Code {
        match self {
            Self::DiskFull => Code::ResourceExhausted,
            Self::ReadOnly | Self::Io | Self::Unreachable | Self::Moved => Code::Unavailable,
        }
    }

    /// The message clients see: what happened and what to do.
    fn advice(self) -> &'static str {
        match self {
            Self::DiskFull => {
                "database disk is full: free space on the database's disk (details in the server log), then retry"
            }
            Self::ReadOnly => {
                "database is read-only (a read-only file or file system, or a PostgreSQL standby): \
                 make it writable or point the server at the primary, then retry"
            }
            Self::Io => "database disk I/O error: check the database's disk and the server log, then retry",
            Self::Unreachable => {
                "database unreachable: retry in a few seconds (the server reconnects by itself)"
            }
            Self::Moved => "SQLite database file moved or deleted while the server ran: restart the server",
        }
    }

    /// At most one log line per fault kind and [`FAULT_LOG_INTERVAL`]:
    /// under load every failing call would otherwise log the same thing.
    fn log_limiter(self) -> &'static LogLimiter {
        static LIMITERS: [LogLimiter; 5] = [
            LogLimiter::new(FAULT_LOG_INTERVAL),
            LogLimiter::new(FAULT_LOG_INTERVAL),
            LogLimiter::new(FAULT_LOG_INTERVAL),
            LogLimiter::new(FAULT_LOG_INTERVAL),
            LogLimiter::new(FAULT_LOG_INTERVAL),
        ];
        &LIMITERS[self as usize]
    }
}

/// How often calls failing with the same [`StorageFault`] are logged.
const FAULT_LOG_INTERVAL: Duration = Duration::from_secs(10);

impl Error {
    /// An INVALID_ARGUMENT error naming `field` and the `rule` it breaks.
    pub fn invalid(field: impl std::fmt::Display, rule: impl std::fmt::Display) -> Self {
        Self::InvalidArgument(format!("{field}: {rule}"))
    }

    /// A storage fault with its standard advice; `detail` is for the log.
    pub fn storage(fault: StorageFault, detail: impl Into<String>) -> Self {
        Self::storage_with(fault, fault.advice(), detail)
    }

    /// A storage fault with a message of its own for the caller.
    pub fn storage_with(fault: StorageFault, message: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Storage {
            fault,
            message: message.into(),
            detail: detail.into(),
        }
    }
}

impl Error {
    /// Whether the database could not be reached (a lost or refused
    /// connection).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Self::Storage {
                fault: StorageFault::Unreachable,
                ..
            }
        )
    }

    /// Whether running the same transaction again will likely succeed.
    pub fn is_transient_conflict(&self) -> bool {
        matches!(self, Self::Conflict(_))
    }
}

/// The storage fault a driver message names, if any. SQLite reports them
/// only as its result code's text (diesel keeps no code), PostgreSQL's
/// disk-full and I/O errors carry the operating system's text.
fn storage_fault_in(message: &str) -> Option<StorageFault> {
    const FAULTS: &[(&str, StorageFault)] = &[
        // SQLITE_FULL; PostgreSQL 53100 ("could not extend file ...: No
        // space left on device").
        ("database or disk is full", StorageFault::DiskFull),
        ("No space left on device", StorageFault::DiskFull),
        ("Disk quota exceeded", StorageFault::DiskFull),
        // SQLITE_READONLY and its extended codes ("attempt to write a
        // readonly database").
        ("readonly database", StorageFault::ReadOnly),
        ("Read-only file system", StorageFault::ReadOnly),
        // SQLITE_IOERR ("disk I/O error"); EIO in PostgreSQL's messages.
        ("disk I/O error", StorageFault::Io),
        ("Input/output error", StorageFault::Io),
        // SQLITE_CANTOPEN: the file (or its -wal/-shm) cannot be opened.
        ("unable to open database file", StorageFault::Unreachable),
    ];
    FAULTS
        .iter()
        .find(|(text, _)| message.contains(text))
        .map(|&(_, fault)| fault)
}

impl From<DieselError> for Error {
    fn from(error: DieselError) -> Self {
        if let DieselError::DatabaseError(kind, info) = &error {
            let fault = match kind {
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => {
                    Some(StorageFault::Unreachable)
                }
                DatabaseErrorKind::ReadOnlyTransaction => Some(StorageFault::ReadOnly),
                _ => storage_fault_in(info.message()),
            };
            if let Some(fault) = fault {
                return Self::storage(fault, info.message());
            }
        }
        match &error {
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

impl From<tokio::task::JoinError> for Error {
    fn from(error: tokio::task::JoinError) -> Self {
        Self::Task(error.to_string())
    }
}

/// The error of one batch of a `WriteEpochs` stream, answered in the
/// stream instead of ending it: the code and message its status would have.
impl From<Error> for mlmeta_proto::BatchError {
    fn from(error: Error) -> Self {
        let status = Status::from(error);
        Self {
            code: status.code() as i32,
            message: status.message().to_owned(),
        }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let code = match &error {
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::NotFound(_) => Code::NotFound,
            Error::AlreadyExists(_) => Code::AlreadyExists,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::Unavailable(_) | Error::StreamIdle(_) => Code::Unavailable,
            Error::Storage { fault, .. } => fault.code(),
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
        if let Error::Storage {
            fault,
            message,
            detail,
        } = error
        {
            if let Some(suppressed) = fault.log_limiter().allow() {
                tracing::warn!(?fault, detail, suppressed, "request failed: {message}");
            }
            return Status::new(code, message);
        }
        // An idle stream ended is routine, not a failure worth a warning.
        if code == Code::Unavailable && !matches!(error, Error::StreamIdle(_)) {
            tracing::warn!(%error, "request failed");
        }
        Status::new(code, error.to_string())
    }
}

impl Error {
    /// The HTTP response of the HTTP listener for this error: the status
    /// of its gRPC code (Google's mapping: INVALID_ARGUMENT 400,
    /// UNAUTHENTICATED 401 with `WWW-Authenticate: Bearer`, PERMISSION_DENIED
    /// 403, NOT_FOUND 404, RESOURCE_EXHAUSTED 429, UNAVAILABLE 503, ...)
    /// and the message gRPC callers would get, as plain text. Built from
    /// the [`Status`] so that both listeners log and hide the same things.
    pub(crate) fn into_http_response(self) -> http::Response<String> {
        let status = Status::from(self);
        let code = http_status_of(status.code());
        let mut response = http::Response::new(format!("{}\n", status.message()));
        *response.status_mut() = code;
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if code == http::StatusCode::UNAUTHORIZED {
            headers.insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
        }
        if code == http::StatusCode::TOO_MANY_REQUESTS || code == http::StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
        }
        response
    }
}

impl axum::response::IntoResponse for Error {
    fn into_response(self) -> axum::response::Response {
        self.into_http_response().map(axum::body::Body::from)
    }
}

/// The HTTP status of a gRPC code (`google.rpc.Code`'s documented mapping).
fn http_status_of(code: Code) -> http::StatusCode {
    use http::StatusCode as Http;
    match code {
        Code::Ok => Http::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => Http::BAD_REQUEST,
        Code::Unauthenticated => Http::UNAUTHORIZED,
        Code::PermissionDenied => Http::FORBIDDEN,
        Code::NotFound => Http::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => Http::CONFLICT,
        Code::ResourceExhausted => Http::TOO_MANY_REQUESTS,
        Code::Cancelled => Http::from_u16(499).unwrap_or(Http::BAD_REQUEST),
        Code::Unimplemented => Http::NOT_IMPLEMENTED,
        Code::Unavailable => Http::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => Http::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => Http::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_responses_carry_the_status_of_the_grpc_code() {
        let cases = [
            (
                Error::invalid("page_size", "must be at most 1000"),
                400,
                "page_size",
            ),
            (Error::Unauthenticated("no token".into()), 401, "no token"),
            (Error::PermissionDenied("read only".into()), 403, "read only"),
            (Error::NotFound("no model m".into()), 404, "no model m"),
            (
                Error::ResourceExhausted("at the limit".into()),
                429,
                "at the limit",
            ),
            (Error::DeadlineExceeded("too slow".into()), 504, "too slow"),
            (Error::Unavailable("down".into()), 503, "down"),
            (Error::Task("secret detail".into()), 500, "internal server error"),
        ];
        for (error, status, text) in cases {
            let response = error.into_http_response();
            assert_eq!(response.status().as_u16(), status, "{text}");
            assert!(response.body().contains(text), "{}", response.body());
            assert!(!response.body().contains("secret"), "{}", response.body());
            assert_eq!(
                response.headers().contains_key(http::header::WWW_AUTHENTICATE),
                status == 401
            );
        }
    }

    fn driver_error(kind: DatabaseErrorKind, message: &str) -> Error {
        Error::from(DieselError::DatabaseError(kind, Box::new(message.to_owned())))
    }

    /// The driver errors as SQLite and PostgreSQL word them (SQLite's
    /// result-code texts; PostgreSQL's messages of SQLSTATE 53100, 25006
    /// and of EIO, and libpq's on a lost connection), and the status each
    /// becomes.
    #[test]
    fn storage_faults_reach_clients_as_what_to_do() {
        use DatabaseErrorKind::{ClosedConnection, ReadOnlyTransaction, UnableToSendCommand, Unknown};
        let cases = [
            (
                Unknown,
                "database or disk is full",
                Code::ResourceExhausted,
                "disk is full",
            ),
            (
                Unknown,
                "could not extend file \"base/16384/16390\": No space left on device",
                Code::ResourceExhausted,
                "disk is full",
            ),
            (
                Unknown,
                "attempt to write a readonly database",
                Code::Unavailable,
                "read-only",
            ),
            (
                ReadOnlyTransaction,
                "cannot execute INSERT in a read-only transaction",
                Code::Unavailable,
                "read-only",
            ),
            (Unknown, "disk I/O error", Code::Unavailable, "I/O error"),
            (
                Unknown,
                "could not read block 7 in file \"base/16384/16390\": Input/output error",
                Code::Unavailable,
                "I/O error",
            ),
            (
                ClosedConnection,
                "server closed the connection unexpectedly",
                Code::Unavailable,
                "unreachable",
            ),
            (
                UnableToSendCommand,
                "no connection to the server",
                Code::Unavailable,
                "unreachable",
            ),
        ];
        for (kind, driver_message, code, says) in cases {
            let status = Status::from(driver_error(kind, driver_message));
            assert_eq!(status.code(), code, "{driver_message}");
            assert!(
                status.message().contains(says),
                "{driver_message}: {}",
                status.message()
            );
            assert!(
                status.message().contains("retry"),
                "{driver_message}: {}",
                status.message()
            );
            for detail in ["16390", "INSERT", "unexpectedly", "no connection to"] {
                assert!(
                    !status.message().contains(detail),
                    "driver details stay in the log: {}",
                    status.message()
                );
            }
        }
    }

    #[test]
    fn other_database_errors_stay_internal() {
        let status = Status::from(driver_error(DatabaseErrorKind::Unknown, "no such table: epochs"));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("epochs"));
        let locked = Status::from(driver_error(DatabaseErrorKind::Unknown, "database is locked"));
        assert_eq!(locked.code(), Code::Unavailable);
    }
}
