//! The epoch writer with no server to talk to: bounded memory
//! (backpressure or BufferFull), and giving up after its retry time.

use std::time::Duration;

use mlmeta_client::{Client, Error, NewEpoch, RetryPolicy, WhenFull, WriterOptions};

use crate::support::dead_port;

fn unreachable_client() -> Client {
    Client::builder(format!("http://127.0.0.1:{}", dead_port()))
        .connect_timeout(Duration::from_millis(200))
        .connect_lazy()
        .unwrap()
}

fn quick_retries(total: Duration) -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        multiplier: 2.0,
        max_elapsed: total,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_fails_fast_when_told_to() {
    let options = WriterOptions::default()
        .batch_size(10)
        .max_buffered(20)
        .when_full(WhenFull::Fail)
        .retry(quick_retries(Duration::from_secs(30)));
    let writer = unreachable_client().epoch_writer_with("m", options).unwrap();
    for i in 0..20 {
        writer.log(i, [("loss", 1.0)]).await.unwrap();
    }
    let error = writer.log(20, [("loss", 1.0)]).await.unwrap_err();
    assert_eq!(error, Error::BufferFull { capacity: 20 });
    let error = writer
        .try_log_epoch(NewEpoch::new(21, [("loss", 1.0)]))
        .unwrap_err();
    assert_eq!(error, Error::BufferFull { capacity: 20 });
    assert_eq!(writer.stats().logged, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_applies_backpressure_by_default() {
    let options = WriterOptions::default()
        .batch_size(10)
        .max_buffered(20)
        .retry(quick_retries(Duration::from_secs(30)));
    let writer = unreachable_client().epoch_writer_with("m", options).unwrap();
    for i in 0..20 {
        writer.log(i, [("loss", 1.0)]).await.unwrap();
    }
    let waited = tokio::time::timeout(Duration::from_millis(300), writer.log(20, [("loss", 1.0)])).await;
    assert!(
        waited.is_err(),
        "log returned while the buffer was full: {waited:?}"
    );
    assert!(matches!(
        writer.try_log_epoch(NewEpoch::new(20, [("loss", 1.0)])),
        Err(Error::BufferFull { .. })
    ));
    let stats = writer.stats();
    assert_eq!((stats.logged, stats.stored), (20, 0));
    assert!(stats.retries > 0, "the writer should be retrying: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_gives_up_after_its_retry_time() {
    let options = WriterOptions::default()
        .batch_size(5)
        .retry(quick_retries(Duration::from_millis(500)));
    let writer = unreachable_client().epoch_writer_with("m", options).unwrap();
    let start = std::time::Instant::now();
    for i in 0..12 {
        writer.log(i, [("loss", 1.0)]).await.unwrap();
    }
    let error = tokio::time::timeout(Duration::from_secs(20), writer.flush())
        .await
        .expect("flush should end when the retry time runs out")
        .unwrap_err();
    assert!(matches!(error, Error::Unavailable { .. }), "{error:?}");
    assert!(start.elapsed() >= Duration::from_millis(500));
    assert!(writer.stats().retries > 0);
    // Waiting loggers and later calls get the same error.
    assert_eq!(writer.log(99, [("loss", 1.0)]).await.unwrap_err(), error);
    assert_eq!(writer.close().await.unwrap_err(), error);
}

#[test]
fn writers_and_blocking_logs_need_the_right_context() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = runtime.block_on(async { unreachable_client() });
    // No runtime on this thread: no writer.
    assert!(matches!(client.epoch_writer("m"), Err(Error::Config(_))));
    let writer = runtime.block_on(async { client.epoch_writer("m") }).unwrap();
    // A plain thread may block; it returns at once while there is room.
    writer
        .blocking_log_epoch(NewEpoch::new(0, [("loss", 1.0)]))
        .unwrap();
    // Within the runtime, blocking is refused.
    let refused = runtime.block_on(async { writer.blocking_log_epoch(NewEpoch::new(1, [("loss", 1.0)])) });
    assert!(matches!(refused, Err(Error::Config(m)) if m.contains("log_epoch")));
    let bad = WriterOptions::default().batch_size(0);
    let error = runtime
        .block_on(async { client.epoch_writer_with("m", bad) })
        .unwrap_err();
    assert!(matches!(error, Error::Config(m) if m.contains("batch_size")));
    assert_eq!(writer.stats().logged, 1);
}
