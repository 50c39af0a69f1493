//! [`Error`]: everything that can go wrong, as variants callers match on,
//! and the one conversion from gRPC statuses.

use std::error::Error as StdError;

use tonic::{Code, Status};

/// Result of the client's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an operation failed.
///
/// The server's answers map one-to-one onto the first variants (each keeps
/// the server's message); failures to reach the server, or a connection
/// that broke mid-call, are [`Error::Unavailable`]. [`Error::is_transient`]
/// tells which failures are worth retrying.
///
/// ```
/// use mlmeta_client::Error;
///
/// fn describe(error: &Error) -> &'static str {
///     match error {
///         Error::NotFound { .. } => "no such record",
///         Error::AlreadyExists { .. } => "a different record has that name",
///         Error::InvalidArgument { .. } => "the request breaks a documented limit",
///         Error::FailedPrecondition { .. } => "the datablob or template is missing",
///         e if e.is_transient() => "try again later",
///         _ => "something else",
///     }
/// }
///
/// let error = Error::NotFound { message: "model \"m\" does not exist".into() };
/// assert_eq!(describe(&error), "no such record");
/// assert!(!error.is_transient());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// NOT_FOUND: something the request names does not exist (an unknown
    /// model when inserting epochs, no model with the metric when asking
    /// for the best one).
    #[error("not found: {message}")]
    NotFound {
        /// The server's message.
        message: String,
    },
    /// ALREADY_EXISTS: a different record is stored under the same name
    /// (put again with `ignore_existing` to keep the stored one).
    #[error("already exists: {message}")]
    AlreadyExists {
        /// The server's message.
        message: String,
    },
    /// INVALID_ARGUMENT: the request breaks one of the documented rules;
    /// the message names the field and the rule. The epoch writer also
    /// returns it for an epoch it refuses before buffering it.
    #[error("invalid argument: {message}")]
    InvalidArgument {
        /// The server's (or, from the epoch writer, the client's) message.
        message: String,
    },
    /// FAILED_PRECONDITION: the request depends on a record that does not
    /// exist (a model whose datablob or template is missing).
    #[error("failed precondition: {message}")]
    FailedPrecondition {
        /// The server's message.
        message: String,
    },
    /// The server cannot be reached, refused the call as UNAVAILABLE, or
    /// the connection broke during the call. Transient.
    #[error("server unavailable: {message}")]
    Unavailable {
        /// What the transport or the server said.
        message: String,
    },
    /// DEADLINE_EXCEEDED, or the client's own time limit for the call ran
    /// out. Transient; a write may or may not have been stored.
    #[error("deadline exceeded: {message}")]
    DeadlineExceeded {
        /// What the transport or the server said.
        message: String,
    },
    /// ABORTED: the server's transaction lost a race with another one.
    /// Transient.
    #[error("aborted: {message}")]
    Aborted {
        /// The server's message.
        message: String,
    },
    /// UNAUTHENTICATED: the server wants a token
    /// ([`ClientBuilder::token`](crate::ClientBuilder::token)) and got
    /// none, or one it does not know.
    #[error("unauthenticated: {message}")]
    Unauthenticated {
        /// The server's message.
        message: String,
    },
    /// PERMISSION_DENIED: the token is valid but its scope does not allow
    /// the call (a `read` token on a write).
    #[error("permission denied: {message}")]
    PermissionDenied {
        /// The server's message.
        message: String,
    },
    /// RESOURCE_EXHAUSTED: a server limit was reached (too many calls in
    /// progress, or a request over the server's size limit). Transient:
    /// the call limit clears, and the client keeps its own requests well
    /// under the default size limit.
    #[error("resource exhausted: {message}")]
    ResourceExhausted {
        /// The server's message.
        message: String,
    },
    /// Any other gRPC status (INTERNAL, UNIMPLEMENTED, ...).
    #[error("{code:?}: {message}")]
    Other {
        /// The status code.
        code: Code,
        /// The status message.
        message: String,
    },
    /// A client setting or argument is unusable (a malformed URL, a batch
    /// size of 0, no async runtime to run on, ...). Nothing was sent.
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The server's answer lacks a field or holds data this client cannot
    /// read (a missing record, hyperparameters that are not JSON, a page
    /// token that repeats).
    #[error("unexpected answer from the server: {0}")]
    InvalidResponse(String),
    /// Reading or writing a local file (an artifact's content) failed.
    #[error("{0}")]
    LocalIo(String),
    /// The epoch writer's buffer is full and its [`WhenFull`] policy is
    /// to fail, or `try_log` found no room.
    ///
    /// [`WhenFull`]: crate::WhenFull
    #[error("the epoch writer's buffer is full ({capacity} epochs not yet stored)")]
    BufferFull {
        /// The buffer's capacity, in epochs.
        capacity: usize,
    },
    /// The epoch writer's background task is gone (it panicked or its
    /// runtime shut down).
    #[error("the epoch writer's background task has stopped")]
    WriterStopped,
}

impl Error {
    /// Whether trying the same call again later may succeed: the server is
    /// away or restarting, the connection broke, a deadline passed, or a
    /// transaction conflict. Every mlmeta write is idempotent, so any of
    /// these can be retried.
    pub fn is_transient(&self) -> bool {
        if let Self::Unavailable { message } = self {
            return !is_tls_rejection(message);
        }
        matches!(
            self,
            Self::DeadlineExceeded { .. } | Self::Aborted { .. } | Self::ResourceExhausted { .. }
        )
    }

    /// The gRPC status code this error stands for; `None` for errors made
    /// on the client's side ([`Error::Config`], [`Error::InvalidResponse`],
    /// [`Error::BufferFull`], [`Error::WriterStopped`]).
    pub fn code(&self) -> Option<Code> {
        Some(match self {
            Self::NotFound { .. } => Code::NotFound,
            Self::AlreadyExists { .. } => Code::AlreadyExists,
            Self::InvalidArgument { .. } => Code::InvalidArgument,
            Self::FailedPrecondition { .. } => Code::FailedPrecondition,
            Self::Unavailable { .. } => Code::Unavailable,
            Self::DeadlineExceeded { .. } => Code::DeadlineExceeded,
            Self::Aborted { .. } => Code::Aborted,
            Self::Unauthenticated { .. } => Code::Unauthenticated,
            Self::PermissionDenied { .. } => Code::PermissionDenied,
            Self::ResourceExhausted { .. } => Code::ResourceExhausted,
            Self::Other { code, .. } => *code,
            Self::Config(_)
            | Self::InvalidResponse(_)
            | Self::LocalIo(_)
            | Self::BufferFull { .. }
            | Self::WriterStopped => {
                return None;
            }
        })
    }
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        // Statuses made by the client's transport (connection refused or
        // reset, timeouts) carry their cause as a source; those decoded
        // from the server's answer never do.
        let transport_failure = status.source().is_some();
        let message = describe(&status);
        match status.code() {
            Code::NotFound => Self::NotFound { message },
            Code::AlreadyExists => Self::AlreadyExists { message },
            Code::InvalidArgument => Self::InvalidArgument { message },
            Code::FailedPrecondition => Self::FailedPrecondition { message },
            Code::Unavailable => Self::Unavailable { message },
            Code::DeadlineExceeded => Self::DeadlineExceeded { message },
            Code::Cancelled if timed_out(&status) => Self::DeadlineExceeded { message },
            Code::Aborted => Self::Aborted { message },
            Code::Unauthenticated => Self::Unauthenticated { message },
            Code::PermissionDenied => Self::PermissionDenied { message },
            Code::ResourceExhausted => Self::ResourceExhausted { message },
            // A connection that broke mid-call surfaces as UNKNOWN,
            // INTERNAL or CANCELLED with a transport error as its cause.
            Code::Unknown | Code::Internal | Code::Cancelled if transport_failure => {
                Self::Unavailable { message }
            }
            code => Self::Other { code, message },
        }
    }
}

impl From<tonic::transport::Error> for Error {
    fn from(error: tonic::transport::Error) -> Self {
        Self::Unavailable {
            message: chain(&error),
        }
    }
}

/// Whether an UNAVAILABLE failure is a TLS handshake that a peer refused
/// over a certificate (an untrusted CA, a wrong name, a missing client
/// certificate): the same handshake fails again, so waiting and retrying
/// only delays the error. rustls names these in its messages ("invalid
/// peer certificate: UnknownIssuer", "received fatal alert:
/// CertificateRequired"); the transport keeps no typed cause to match.
fn is_tls_rejection(message: &str) -> bool {
    message.to_ascii_lowercase().contains("certificate")
}

/// The status message, followed by its causes when the status was made by
/// the transport (whose own message is often just "transport error").
fn describe(status: &Status) -> String {
    match status.source() {
        Some(source) => {
            let causes = chain(source);
            if status.message().is_empty() || causes.contains(status.message()) {
                causes
            } else {
                format!("{}: {causes}", status.message())
            }
        }
        None => status.message().to_owned(),
    }
}

/// `error` and its sources, joined by ": ", without repeats.
pub(crate) fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        let text = error.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = error.source();
    }
    parts.join(": ")
}

/// Whether the client's own time limit ended the call.
fn timed_out(status: &Status) -> bool {
    let mut next = status.source();
    while let Some(error) = next {
        if error.is::<tonic::TimeoutExpired>() {
            return true;
        }
        next = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_statuses_keep_code_and_message() {
        let cases = [
            (Status::not_found("nf"), "not found: nf"),
            (Status::already_exists("ae"), "already exists: ae"),
            (
                Status::invalid_argument("epochs: too many"),
                "invalid argument: epochs: too many",
            ),
            (Status::failed_precondition("fp"), "failed precondition: fp"),
            (Status::unavailable("db down"), "server unavailable: db down"),
            (Status::deadline_exceeded("slow"), "deadline exceeded: slow"),
            (Status::aborted("conflict"), "aborted: conflict"),
            (Status::unauthenticated("no token"), "unauthenticated: no token"),
            (Status::permission_denied("read"), "permission denied: read"),
            (Status::resource_exhausted("busy"), "resource exhausted: busy"),
        ];
        for (status, text) in cases {
            let code = status.code();
            let error = Error::from(status);
            assert_eq!(error.to_string(), text);
            assert_eq!(error.code(), Some(code));
        }
        let error = Error::from(Status::internal("boom"));
        assert_eq!(
            error,
            Error::Other {
                code: Code::Internal,
                message: "boom".into()
            }
        );
        assert!(!error.is_transient());
    }

    #[test]
    fn transient_errors() {
        assert!(Error::from(Status::unavailable("x")).is_transient());
        assert!(Error::from(Status::deadline_exceeded("x")).is_transient());
        assert!(Error::from(Status::aborted("x")).is_transient());
        assert!(Error::from(Status::resource_exhausted("x")).is_transient());
        for status in [
            Status::unauthenticated("x"),
            Status::permission_denied("x"),
            Status::invalid_argument("x"),
            Status::not_found("x"),
            Status::already_exists("x"),
            Status::failed_precondition("x"),
            Status::unknown("x"),
            Status::cancelled("x"),
        ] {
            assert!(!Error::from(status).is_transient());
        }
        assert!(!Error::BufferFull { capacity: 1 }.is_transient());
    }

    #[test]
    fn transport_failures_are_unavailable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset by peer");
        let status = Status::from_error(Box::new(io));
        assert_eq!(status.code(), Code::Unknown);
        let error = Error::from(status);
        assert!(matches!(&error, Error::Unavailable { message } if message.contains("connection reset")));
        assert!(error.is_transient());
    }

    #[test]
    fn client_timeouts_are_deadline_exceeded() {
        let status = Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert_eq!(status.code(), Code::Cancelled);
        assert!(matches!(Error::from(status), Error::DeadlineExceeded { .. }));
    }
}
