//! Retrying transient failures with exponential backoff and jitter, up
//! to a total time.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::error::{Error, Result};

/// What [`ClientBuilder::on_retry`](crate::ClientBuilder::on_retry) calls
/// before each retry.
pub(crate) type RetryNotice = std::sync::Arc<dyn Fn(&Error, u32, Duration) + Send + Sync>;

/// How transient failures ([`Error::is_transient`]) are retried: after
/// waits that grow from `initial_backoff` by `multiplier` up to
/// `max_backoff`, each drawn at random between half and all of that
/// (so that many clients do not retry in step), for at most
/// `max_elapsed` in all since the first attempt. Other errors are
/// returned at once.
///
/// ```
/// use std::time::Duration;
/// use mlmeta_client::RetryPolicy;
///
/// let patient = RetryPolicy::for_duration(Duration::from_secs(600));
/// assert_eq!(patient.max_elapsed, Duration::from_secs(600));
/// assert!(RetryPolicy::none().max_elapsed.is_zero());
/// assert_eq!(RetryPolicy::default().max_elapsed, Duration::from_secs(300));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Wait before the first retry (before jitter). Default 100 ms.
    pub initial_backoff: Duration,
    /// Longest wait between two attempts (before jitter). Default 5 s.
    pub max_backoff: Duration,
    /// Growth of the wait after each retry. Default 2.
    pub multiplier: f64,
    /// Time after the first attempt when no new attempt is started; zero
    /// means a single attempt. Default 5 minutes.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            multiplier: 2.0,
            max_elapsed: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retry.
    pub fn none() -> Self {
        Self {
            max_elapsed: Duration::ZERO,
            ..Self::default()
        }
    }

    /// The default backoff, retrying for up to `max_elapsed` in all.
    pub fn for_duration(max_elapsed: Duration) -> Self {
        Self {
            max_elapsed,
            ..Self::default()
        }
    }

    /// Whether a failed attempt may be followed by another.
    pub(crate) fn retries(&self) -> bool {
        !self.max_elapsed.is_zero()
    }

    /// The wait before retry number `retry` (0 for the first), before
    /// jitter.
    fn backoff(&self, retry: u32) -> Duration {
        let factor = self
            .multiplier
            .max(1.0)
            .powi(i32::try_from(retry).unwrap_or(i32::MAX));
        let max = self.max_backoff.max(self.initial_backoff).as_secs_f64();
        Duration::from_secs_f64((self.initial_backoff.as_secs_f64() * factor).min(max))
    }

    /// The jittered wait before retry number `retry`: between half and all
    /// of [`RetryPolicy::backoff`].
    pub(crate) fn delay(&self, retry: u32) -> Duration {
        let full = self.backoff(retry);
        let half = full / 2;
        let extra = rand::rng().random_range(0.0..=1.0);
        half + (full - half).mul_f64(extra)
    }
}

/// Runs `attempt` until it succeeds, fails with a permanent error, or
/// `policy.max_elapsed` has passed since the first attempt; calls
/// `on_retry(error, retry, delay)` before each wait. Returns the last
/// error when giving up.
pub(crate) async fn run<T, F, Fut>(
    policy: &RetryPolicy,
    mut attempt: F,
    mut on_retry: impl FnMut(&Error, u32, Duration),
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let start = Instant::now();
    let mut retry = 0_u32;
    loop {
        let error = match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if error.is_transient() => error,
            Err(error) => return Err(error),
        };
        let left = policy.max_elapsed.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(error);
        }
        let delay = policy.delay(retry).min(left);
        on_retry(&error, retry, delay);
        tokio::time::sleep(delay).await;
        retry = retry.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn unavailable() -> Error {
        Error::Unavailable {
            message: "down".into(),
        }
    }

    #[test]
    fn backoff_grows_then_caps() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            multiplier: 2.0,
            max_elapsed: Duration::from_secs(60),
        };
        let waits: Vec<_> = (0..6).map(|r| policy.backoff(r).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(1));
        for retry in 0..10 {
            let full = policy.backoff(retry);
            for _ in 0..50 {
                let delay = policy.delay(retry);
                assert!(
                    delay >= full / 2 && delay <= full,
                    "{delay:?} outside [{:?}, {full:?}]",
                    full / 2
                );
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_until_success() {
        let calls = Cell::new(0);
        let mut seen = Vec::new();
        let result = run(
            &RetryPolicy::default(),
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move { if n < 4 { Err(unavailable()) } else { Ok(n) } }
            },
            |_, retry, _| seen.push(retry),
        )
        .await;
        assert_eq!(result, Ok(4));
        assert_eq!(seen, [0, 1, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let calls = Cell::new(0);
        let result: Result<()> = run(
            &RetryPolicy::default(),
            || {
                calls.set(calls.get() + 1);
                async {
                    Err(Error::NotFound {
                        message: "model".into(),
                    })
                }
            },
            |_, _, _| {},
        )
        .await;
        assert!(matches!(result, Err(Error::NotFound { .. })));
        assert_eq!(calls.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_the_total_time() {
        let start = Instant::now();
        let calls = Cell::new(0);
        let policy = RetryPolicy::for_duration(Duration::from_secs(10));
        let result: Result<()> = run(
            &policy,
            || {
                calls.set(calls.get() + 1);
                async { Err(unavailable()) }
            },
            |_, _, _| {},
        )
        .await;
        assert_eq!(result, Err(unavailable()));
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_secs(10) && elapsed < Duration::from_secs(11),
            "{elapsed:?}"
        );
        assert!(calls.get() > 3, "only {} attempts", calls.get());
    }

    #[tokio::test(start_paused = true)]
    async fn no_retry_means_one_attempt() {
        let calls = Cell::new(0);
        let result: Result<()> = run(
            &RetryPolicy::none(),
            || {
                calls.set(calls.get() + 1);
                async { Err(unavailable()) }
            },
            |_, _, _| {},
        )
        .await;
        assert!(result.is_err());
        assert_eq!(calls.get(), 1);
    }
}
