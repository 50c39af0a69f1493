//! The proof that the epoch writer loses and duplicates nothing: a writer
//! streams thousands of epochs (through WriteEpochs) while the real
//! `mlmeta-server` binary is killed with SIGKILL and restarted on the same
//! database and port, three times; every epoch acknowledged before a kill
//! is stored after it, and afterwards exactly the logged epochs are stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use mlmeta_client::{Client, EpochFilter, RetryPolicy, WriterOptions};
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
    let writer = Arc::new(client.epoch_writer_with("m", options).unwrap());
    let logged = Arc::new(AtomicI64::new(0));
    let trainer = {
        let logged = logged.clone();
        let writer = Arc::clone(&writer);
        tokio::spawn(async move {
            for i in 0..TOTAL {
                writer.log(i, metrics(i)).await.unwrap();
                logged.store(i + 1, Ordering::SeqCst);
                // A trainer's pace: ~10 epochs per millisecond.
                if i % 10 == 9 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        })
    };

    for kill in 1..=KILLS {
        let at = TOTAL * kill / (KILLS + 1);
        while logged.load(Ordering::SeqCst) < at {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Epochs are logged in order: the first `acknowledged` are stored.
        let acknowledged = writer.stats().stored;
        drop(server); // SIGKILL, then reaped
        tokio::time::sleep(DOWN).await;
        server = start(database_url, port).await;
        let stored = client
            .list_epochs(&EpochFilter::models(["m"]).max_epoch_num(acknowledged as i64 - 1))
            .await
            .unwrap();
        assert_eq!(
            stored.len() as u64,
            acknowledged,
            "epochs acknowledged before kill {kill} are missing after it"
        );
    }

    trainer.await.unwrap();
    let Ok(writer) = Arc::try_unwrap(writer) else {
        panic!("the trainer still holds the writer");
    };
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

/// Against a server that does not know WriteEpochs (an older release), the
/// writer falls back to InsertEpochs and still stores everything once.
/// Needs such a binary: `MLMETA_OLDER_SERVER=/path/to/old/mlmeta-server
/// cargo nextest run -p mlmeta-client --run-ignored only -E 'test(/older_server/)'`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs MLMETA_OLDER_SERVER, a mlmeta-server binary without WriteEpochs"]
async fn writer_falls_back_to_insert_epochs_on_an_older_server() {
    let older =
        std::env::var("MLMETA_OLDER_SERVER").expect("MLMETA_OLDER_SERVER: path of an older mlmeta-server");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("mlmeta.db").display());
    run_bounded("restart::older_server", LIMIT, async {
        let port = mlmeta_tests::process::free_port();
        let listen = format!("127.0.0.1:{port}");
        // The harness appends its own binary's path; the wrapper drops it
        // and runs the older one.
        let wrapper = ["sh", "-c", "shift; exec \"$0\" \"$@\"", older.as_str()];
        let mut server = ServerProcess::spawn_under(
            &wrapper,
            &["--database-url", &url, "--listen", &listen],
            None,
            port,
            "info",
        );
        server.wait_healthy(READY).await.unwrap();
        let client = Client::builder(server.url()).connect().await.unwrap();
        seed_model(&client, "m").await;
        let writer = client
            .epoch_writer_with("m", WriterOptions::default().batch_size(50))
            .unwrap();
        for i in 0..1_000 {
            writer.log(i, metrics(i)).await.unwrap();
            if i == 500 {
                writer.flush().await.unwrap();
                assert_eq!(writer.stats().stored, 501);
            }
        }
        writer.log(3, metrics(3)).await.unwrap();
        let counts = writer.close().await.unwrap();
        assert_eq!((counts.inserted, counts.skipped), (1_000, 1));
        assert_exactly_logged(&client, "m", 1_000).await;
    })
    .await;
}
