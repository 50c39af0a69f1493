//! The proof that the epoch writer loses and duplicates nothing: a writer
//! streams thousands of epochs while the real `mlmeta-server` binary is
//! killed with SIGKILL and restarted on the same database and port, three
//! times; afterwards exactly the logged epochs are stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use mlmeta_client::{Client, RetryPolicy, WriterOptions};
use mlmeta_tests::process::{ServerProcess, server_binary};
use mlmeta_tests::{TestDatabase, run_bounded};

use crate::support::{assert_exactly_logged, metrics, seed_model};

/// Time each restart test may take once the binary is built.
const LIMIT: Duration = Duration::from_secs(120);
/// Time a (re)started server may take to report SERVING.
const READY: Duration = Duration::from_secs(60);
/// Epochs the writer logs.
const TOTAL: i64 = 6_000;
/// Kills during the run, spread evenly over it.
const KILLS: i64 = 3;
/// How long the server stays dead each time.
const DOWN: Duration = Duration::from_millis(400);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writer_survives_sigkill_restarts() {
    server_binary();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("mlmeta.db").display());
    run_bounded("restart::sqlite", LIMIT, writer_survives_sigkill_restarts(&url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_writer_survives_sigkill_restarts() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    server_binary();
    run_bounded(
        "restart::postgres",
        LIMIT,
        writer_survives_sigkill_restarts(database.url()),
    )
    .await;
}

/// Starts the binary on `database_url` at `port` and waits until it serves.
async fn start(database_url: &str, port: u16) -> ServerProcess {
    let listen = format!("127.0.0.1:{port}");
    let mut server = ServerProcess::spawn(&["--database-url", database_url, "--listen", &listen], None, port);
    if let Err(error) = server.wait_healthy(READY).await {
        panic!("mlmeta-server on {listen} ({database_url}): {error}");
    }
    server
}

async fn writer_survives_sigkill_restarts(database_url: &str) {
    let port = mlmeta_tests::process::free_port();
    let mut server = start(database_url, port).await;
    let client = Client::builder(server.url()).connect().await.unwrap();
    seed_model(&client, "m").await;

    let options = WriterOptions::default()
        .batch_size(100)
        .flush_interval(Duration::from_millis(20))
        .max_buffered(1_000)
        .attempt_timeout(Duration::from_secs(5))
        .retry(RetryPolicy {
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(250),
            multiplier: 2.0,
            max_elapsed: Duration::from_secs(60),
        });
    let writer = client.epoch_writer_with("m", options).unwrap();
    let logged = Arc::new(AtomicI64::new(0));
    let trainer = {
        let logged = logged.clone();
        tokio::spawn(async move {
            for i in 0..TOTAL {
                writer.log(i, metrics(i)).await.unwrap();
                logged.store(i + 1, Ordering::SeqCst);
                // A trainer's pace: ~10 epochs per millisecond.
                if i % 10 == 9 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            writer
        })
    };

    for kill in 1..=KILLS {
        let at = TOTAL * kill / (KILLS + 1);
        while logged.load(Ordering::SeqCst) < at {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        drop(server); // SIGKILL, then reaped
        tokio::time::sleep(DOWN).await;
        server = start(database_url, port).await;
    }

    let writer = trainer.await.unwrap();
    let stats = writer.stats();
    let counts = writer.close().await.unwrap();
    assert!(stats.retries > 0, "the kills went unnoticed: {stats:?}");
    // Each logged epoch is counted once: newly stored, or skipped when an
    // attempt stored it but its answer was lost to a kill.
    assert_eq!(counts.total(), TOTAL as u64, "{counts:?}");
    assert_exactly_logged(&client, "m", TOTAL).await;
    assert_eq!(client.current_epoch("m").await.unwrap().epoch_num, TOTAL - 1);
    eprintln!(
        "{database_url}: {KILLS} kills, {} retries, {} inserted, {} skipped",
        stats.retries, counts.inserted, counts.skipped
    );
    drop(server);
}
