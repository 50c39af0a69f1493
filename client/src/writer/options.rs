//! [`WriterOptions`]: batching, buffering and retrying of an
//! [`EpochWriter`](crate::EpochWriter).

use std::time::Duration;

use crate::error::{Error, Result};
use crate::limits::{MAX_EPOCHS_PER_REQUEST, MAX_MESSAGE_BYTES, REQUEST_BYTE_BUDGET};
use crate::retry::RetryPolicy;

/// What logging does when the writer's buffer is full (the server is slow
/// or away).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// `log` waits until there is room: the training loop slows down to
    /// the server's pace. The default.
    #[default]
    Wait,
    /// `log` fails at once with [`Error::BufferFull`]; the epoch is not
    /// buffered (log it again later, or drop it).
    Fail,
}

/// How an [`EpochWriter`](crate::EpochWriter) batches, buffers and
/// retries.
///
/// ```
/// use std::time::Duration;
/// use mlmeta_client::{RetryPolicy, WhenFull, WriterOptions};
///
/// let options = WriterOptions::default()
///     .batch_size(500)
///     .flush_interval(Duration::from_millis(200))
///     .max_buffered(50_000)
///     .when_full(WhenFull::Fail)
///     .retry(RetryPolicy::for_duration(Duration::from_secs(600)));
/// assert_eq!(options.batch_size, 500);
/// assert_eq!(WriterOptions::default().batch_size, 1_000);
/// assert_eq!(WriterOptions::default().flush_interval, Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WriterOptions {
    /// Epochs that make a batch: a full batch is sent at once.
    /// Default 1,000; at most 100,000.
    pub batch_size: usize,
    /// A partial batch is sent after at most this long. Default 1 s.
    pub flush_interval: Duration,
    /// Epochs logged but not yet stored (buffered, or being sent) at most;
    /// beyond it [`WhenFull`] applies. Default 10,000; at least
    /// `batch_size`.
    pub max_buffered: usize,
    /// What `log` does when `max_buffered` epochs are waiting.
    /// Default [`WhenFull::Wait`].
    pub when_full: WhenFull,
    /// How sending a batch retries transient failures. Default
    /// [`RetryPolicy::default`]: for up to 5 minutes.
    pub retry: RetryPolicy,
    /// Time one attempt to send may take. Default 30 s.
    pub attempt_timeout: Duration,
    /// Encoded bytes per request at most (a batch larger than that goes in
    /// several requests). Default 16 MiB; at most 64 MiB.
    pub max_request_bytes: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            batch_size: 1_000,
            flush_interval: Duration::from_secs(1),
            max_buffered: 10_000,
            when_full: WhenFull::Wait,
            retry: RetryPolicy::default(),
            attempt_timeout: Duration::from_secs(30),
            max_request_bytes: REQUEST_BYTE_BUDGET,
        }
    }
}

impl WriterOptions {
    /// Sets [`WriterOptions::batch_size`].
    #[must_use]
    pub fn batch_size(mut self, epochs: usize) -> Self {
        self.batch_size = epochs;
        self
    }

    /// Sets [`WriterOptions::flush_interval`].
    #[must_use]
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Sets [`WriterOptions::max_buffered`].
    #[must_use]
    pub fn max_buffered(mut self, epochs: usize) -> Self {
        self.max_buffered = epochs;
        self
    }

    /// Sets [`WriterOptions::when_full`].
    #[must_use]
    pub fn when_full(mut self, when_full: WhenFull) -> Self {
        self.when_full = when_full;
        self
    }

    /// Sets [`WriterOptions::retry`].
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Sets [`WriterOptions::attempt_timeout`].
    #[must_use]
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Sets [`WriterOptions::max_request_bytes`].
    #[must_use]
    pub fn max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes;
        self
    }

    /// Checks that the options can work together.
    pub(crate) fn check(&self) -> Result<()> {
        let fail = |message: String| Err(Error::Config(format!("writer options: {message}")));
        if self.batch_size == 0 || self.batch_size > MAX_EPOCHS_PER_REQUEST {
            return fail(format!(
                "batch_size must be 1 to {MAX_EPOCHS_PER_REQUEST}, got {}",
                self.batch_size
            ));
        }
        if self.max_buffered < self.batch_size {
            return fail(format!(
                "max_buffered ({}) must be at least batch_size ({})",
                self.max_buffered, self.batch_size
            ));
        }
        if self.flush_interval.is_zero() || self.attempt_timeout.is_zero() {
            return fail("flush_interval and attempt_timeout must be above zero".into());
        }
        if self.max_request_bytes == 0 || self.max_request_bytes > MAX_MESSAGE_BYTES {
            return fail(format!(
                "max_request_bytes must be 1 to {MAX_MESSAGE_BYTES}, got {}",
                self.max_request_bytes
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert!(WriterOptions::default().check().is_ok());
        let bad = [
            (WriterOptions::default().batch_size(0), "batch_size"),
            (WriterOptions::default().batch_size(100_001), "batch_size"),
            (WriterOptions::default().max_buffered(999), "max_buffered"),
            (
                WriterOptions::default().flush_interval(Duration::ZERO),
                "flush_interval",
            ),
            (WriterOptions::default().max_request_bytes(0), "max_request_bytes"),
            (
                WriterOptions::default().max_request_bytes(MAX_MESSAGE_BYTES + 1),
                "max_request_bytes",
            ),
        ];
        for (options, field) in bad {
            assert!(
                matches!(options.check(), Err(Error::Config(m)) if m.contains(field)),
                "{field}"
            );
        }
    }
}
