//! Health tells the truth (item 6): `grpc.health.v1` says NOT_SERVING for
//! `mlmeta.v1.MetadataService` and the whole server while the database is
//! unusable, and SERVING again when it is back, without a restart. Calls
//! meanwhile fail at once with UNAVAILABLE.
//!
//! PostgreSQL is stopped and started for real: a private cluster of the
//! test's own (the shared one serves the other tests meanwhile). SQLite's
//! database directory is moved away and back. Each test prints the times
//! it measured (to NOT_SERVING, back to SERVING, of a call while down).

use std::path::Path;
use std::time::{Duration, Instant};

use mlmeta_tests::calls::{self, expect_status, seed_model};
use mlmeta_tests::cluster::PostgresCluster;
use mlmeta_tests::health::{channel, wait_for};
use mlmeta_tests::process::{ServerProcess, server_binary};
use mlmeta_tests::records::{epoch, insert};
use mlmeta_tests::{Client, run_bounded};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

/// Time each test may take once the binary is built.
const LIMIT: Duration = Duration::from_secs(120);
/// Time a server may take to report SERVING.
const READY: Duration = Duration::from_secs(60);
/// Time the health status may take to follow the database (the monitor
/// probes every second).
const FOLLOW: Duration = Duration::from_secs(15);
/// A call while the database is down must fail well before the pool's
/// wait for a busy connection (10 s).
const FAIL_FAST: Duration = Duration::from_secs(5);

/// Epoch `n` of model `m`.
fn one_epoch(n: i64) -> mlmeta_proto::InsertEpochsRequest {
    insert(vec![epoch("m", n, &[("loss", 1.0)])])
}

/// Writes epoch `n`, retrying for up to 3 s after health said SERVING.
/// The pool drops the sessions the restart killed on the first failure
/// (db/pool.rs `Outage`); before it did, dead pooled sessions failed
/// every write for about 8 s after the database was back.
async fn write_eventually(client: &mut Client, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match client.insert_epochs(one_epoch(n)).await {
            Ok(_) => return,
            Err(status) if Instant::now() < deadline => {
                eprintln!("write {n} not yet: {status}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!("epoch {n} still not written 3 s after the database returned: {status}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_and_started_turns_health_not_serving_and_back() {
    server_binary();
    let Some(cluster) = tokio::task::spawn_blocking(PostgresCluster::start_new)
        .await
        .unwrap()
    else {
        return;
    };
    let cluster = std::sync::Arc::new(cluster);
    run_bounded("postgres_health", LIMIT, async {
        let mut server = ServerProcess::start(&cluster.url());
        server.wait_healthy(READY).await.unwrap();
        let health = channel(&server.url());
        let mut client = server.client();
        seed_model(&mut client, "m").await;
        client.insert_epochs(one_epoch(0)).await.unwrap();

        for cycle in 1..=2 {
            let stopping = Instant::now();
            let stopper = std::sync::Arc::clone(&cluster);
            tokio::task::spawn_blocking(move || stopper.stop()).await.unwrap();
            let stopped = stopping.elapsed();
            let to_not_serving = wait_for(&health, ServingStatus::NotServing, FOLLOW)
                .await
                .unwrap_or_else(|e| panic!("cycle {cycle}: {e}\nserver log:\n{}", server.stderr()));

            // Calls fail at once, with a status a client retries (the
            // slowest of a few of each).
            let (mut write_took, mut read_took) = (Duration::ZERO, Duration::ZERO);
            for _ in 0..5 {
                let started = Instant::now();
                let write = client.insert_epochs(one_epoch(cycle)).await;
                write_took = write_took.max(started.elapsed());
                expect_status(write, Code::Unavailable, &["unreachable", "retry"]);
                let started = Instant::now();
                let read = client.list_models(mlmeta_proto::ListModelsRequest::default()).await;
                read_took = read_took.max(started.elapsed());
                expect_status(read, Code::Unavailable, &["unreachable"]);
            }
            assert!(
                write_took < FAIL_FAST && read_took < FAIL_FAST,
                "calls while PostgreSQL is down took {write_took:?} (write) and {read_took:?} (read)"
            );

            let starting = Instant::now();
            let starter = std::sync::Arc::clone(&cluster);
            tokio::task::spawn_blocking(move || starter.start()).await.unwrap();
            let started_in = starting.elapsed();
            let to_serving = wait_for(&health, ServingStatus::Serving, FOLLOW)
                .await
                .unwrap_or_else(|e| panic!("cycle {cycle}: {e}\nserver log:\n{}", server.stderr()));
            let serving_at = Instant::now();
            write_eventually(&mut client, cycle).await;
            eprintln!(
                "postgres cycle {cycle}: pg_ctl stop took {stopped:?}, then NOT_SERVING after {to_not_serving:?}; \
                 calls while down: write {write_took:?}, read {read_took:?}; pg_ctl start took {started_in:?}, \
                 then SERVING after {to_serving:?}, first write {:?} after that",
                serving_at.elapsed()
            );
        }
        let stored = calls::epochs_of(&mut client, &["m"]).await;
        assert_eq!(stored.iter().map(|e| e.epoch_num).collect::<Vec<_>>(), vec![0, 1, 2]);
        let log = server.stderr();
        assert_eq!(log.matches("health NOT_SERVING").count(), 2, "one line per change:\n{log}");
        assert_eq!(log.matches("health SERVING").count(), 2, "one line per change:\n{log}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_moved_away_and_back_turns_health_not_serving_and_back() {
    server_binary();
    run_bounded("sqlite_health", LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let away = dir.path().join("moved");
        std::fs::create_dir(&data).unwrap();
        let mut server = ServerProcess::start(&format!("sqlite://{}", data.join("mlmeta.db").display()));
        server.wait_healthy(READY).await.unwrap();
        let health = channel(&server.url());
        let mut client = server.client();
        seed_model(&mut client, "m").await;
        for n in 0..100 {
            client.insert_epochs(one_epoch(n)).await.unwrap();
        }

        // The directory with the file, its -wal and -shm moves away.
        std::fs::rename(&data, &away).unwrap();
        let to_not_serving = wait_for(&health, ServingStatus::NotServing, FOLLOW)
            .await
            .unwrap();
        let started = Instant::now();
        let write = client.insert_epochs(one_epoch(100)).await;
        let write_took = started.elapsed();
        expect_status(write, Code::Unavailable, &["mlmeta.db", "moved"]);
        // Everything acknowledged is in the moved file.
        let moved: Vec<i64> = stored_epoch_nums(&away.join("mlmeta.db"));
        assert_eq!(moved, (0..100).collect::<Vec<_>>());

        std::fs::rename(&away, &data).unwrap();
        let to_serving = wait_for(&health, ServingStatus::Serving, FOLLOW).await.unwrap();
        write_eventually(&mut client, 100).await;
        let stored = calls::epochs_of(&mut client, &["m"]).await;
        assert_eq!(stored.len(), 101);
        eprintln!(
            "sqlite: NOT_SERVING {to_not_serving:?} after the move (refused write took {write_took:?}), \
             SERVING {to_serving:?} after the move back"
        );
        let log = server.stderr();
        assert_eq!(log.matches("health NOT_SERVING").count(), 1, "{log}");
        assert_eq!(log.matches("health SERVING").count(), 1, "{log}");
    })
    .await;
}

/// Epoch numbers stored in the SQLite file at `path`, read with a
/// connection of our own.
fn stored_epoch_nums(path: &Path) -> Vec<i64> {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        epoch_num: i64,
    }
    let mut conn = SqliteConnection::establish(&path.display().to_string())
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    diesel::sql_query("SELECT epoch_num FROM epochs ORDER BY epoch_num")
        .load::<Row>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|row| row.epoch_num)
        .collect()
}
