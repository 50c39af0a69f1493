//! [`backend_tests!`](crate::backend_tests): one test body, one test per
//! backend, each bounded in time.

use std::future::Future;
use std::time::Duration;

/// Time a backend test may take (server start excluded) unless its
/// [`backend_tests!`](crate::backend_tests) entry says otherwise.
pub const DEFAULT_TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `body`, failing the test if it has not finished within `limit`.
pub async fn run_bounded<F: Future<Output = ()>>(name: &str, limit: Duration, body: F) {
    if tokio::time::timeout(limit, body).await.is_err() {
        panic!("test `{name}` did not finish within {limit:?}");
    }
}

/// Instantiates test bodies on both backends.
///
/// Each name must be an `async fn NAME(server: TestServer)` in the calling
/// module. The macro adds modules `sqlite` and `postgres` there, each with
/// one `#[tokio::test]` per name that starts a fresh server on its backend
/// and runs the body within [`DEFAULT_TEST_TIMEOUT`], or within the number
/// of seconds after `=>`:
///
/// ```ignore
/// backend_tests! {
///     puts_a_datablob,
///     inserts_many_epochs => 600,
/// }
/// ```
///
/// The PostgreSQL instance passes as skipped when PostgreSQL is
/// unreachable (see [`TestServer::postgres`](crate::TestServer::postgres)).
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident $(=> $secs:expr)?),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let server = $crate::TestServer::sqlite().await;
                    $crate::run_bounded(
                        concat!("sqlite::", stringify!($name)),
                        $crate::__test_limit!($($secs)?),
                        super::$name(server),
                    )
                    .await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(server) = $crate::TestServer::postgres().await else {
                        return;
                    };
                    $crate::run_bounded(
                        concat!("postgres::", stringify!($name)),
                        $crate::__test_limit!($($secs)?),
                        super::$name(server),
                    )
                    .await;
                }
            )*
        }
    };
}

/// Like [`backend_tests!`](crate::backend_tests), for bodies that start
/// their own servers: each name must be an `async fn NAME(backend:
/// Backend)`, called once with [`Backend::Sqlite`](crate::Backend) and once
/// with `Backend::Postgres`, within [`DEFAULT_TEST_TIMEOUT`] or the seconds
/// after `=>`. The body skips PostgreSQL itself when
/// [`TestServer::with`](crate::TestServer::with) returns `None`.
#[macro_export]
macro_rules! backend_tests_with_setup {
    ($($name:ident $(=> $secs:expr)?),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::run_bounded(
                        concat!("sqlite::", stringify!($name)),
                        $crate::__test_limit!($($secs)?),
                        super::$name($crate::Backend::Sqlite),
                    )
                    .await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::run_bounded(
                        concat!("postgres::", stringify!($name)),
                        $crate::__test_limit!($($secs)?),
                        super::$name($crate::Backend::Postgres),
                    )
                    .await;
                }
            )*
        }
    };
}

/// The time limit of one [`backend_tests!`](crate::backend_tests) entry.
#[doc(hidden)]
#[macro_export]
macro_rules! __test_limit {
    () => {
        $crate::DEFAULT_TEST_TIMEOUT
    };
    ($secs:expr) => {
        ::std::time::Duration::from_secs($secs)
    };
}
