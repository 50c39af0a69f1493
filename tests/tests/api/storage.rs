//! Storage faults: a SQLite file deleted while serving, a database that
//! cannot be written (at start, and a PostgreSQL database turned read-only
//! while serving), a full disk (SQLite on a small tmpfs, PostgreSQL on a
//! private cluster on one). Clients get a status they can act on
//! (RESOURCE_EXHAUSTED, UNAVAILABLE) with a message saying what to do;
//! nothing acknowledged is lost.
//!
//! The binary is run where the test reads the log. Mounting needs root:
//! without it those tests pass as skipped (see `mlmeta_tests::mounts`).

use std::time::{Duration, Instant};

use mlmeta_tests::calls::{self, expect_status, seed_model};
use mlmeta_tests::cluster::PostgresCluster;
use mlmeta_tests::mounts::{ReadOnlyView, Tmpfs};
use mlmeta_tests::process::{ServerProcess, server_binary};
use mlmeta_tests::records::{epoch, insert};
use mlmeta_tests::{Client, TestDatabase, TestServer, run_bounded};
use tonic::Code;

/// Time each test may take once the binary is built.
const LIMIT: Duration = Duration::from_secs(120);
/// Time a server may take to report SERVING.
const READY: Duration = Duration::from_secs(60);

/// `count` epochs of model `m` from `first` on, with a few metrics each.
fn epochs(first: i64, count: i64) -> Vec<mlmeta_proto::Epoch> {
    (first..first + count)
        .map(|n| {
            epoch(
                "m",
                n,
                &[("loss", 1.0 / (n + 1) as f64), ("accuracy", 0.5), ("lr", 1e-3)],
            )
        })
        .collect()
}

/// Item 4: a cleanup job removes the database's directory while a trainer
/// writes. No write sent after that is acknowledged: every one gets
/// UNAVAILABLE naming the file; health turns NOT_SERVING; the error is
/// logged once, not at every check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_deleted_while_serving_acknowledges_nothing_after() {
    server_binary();
    run_bounded("sqlite_file_deleted_while_serving", LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let url = format!("sqlite://{}", data.join("mlmeta.db").display());
        let mut server = ServerProcess::start(&url);
        server.wait_healthy(READY).await.unwrap();
        let mut client = server.client();
        seed_model(&mut client, "m").await;

        // A trainer: one epoch per call, as fast as they are answered.
        let mut trainer = client.clone();
        let writes = tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let mut refused = 0;
            for n in 0..20_000 {
                let sent = Instant::now();
                let outcome = trainer.insert_epochs(insert(epochs(n, 1))).await;
                refused += usize::from(outcome.is_err());
                outcomes.push((n, sent, outcome));
                if refused == 20 {
                    break;
                }
            }
            outcomes
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::remove_dir_all(&data).unwrap();
        let removed = Instant::now();
        let outcomes = writes.await.unwrap();

        let acknowledged_before = outcomes.iter().filter(|(_, _, o)| o.is_ok()).count();
        assert!(
            acknowledged_before > 0,
            "the trainer never wrote before the removal"
        );
        for (n, sent, outcome) in &outcomes {
            if *sent > removed {
                assert!(
                    outcome.is_err(),
                    "epoch {n}, sent {:?} after the database's directory was removed, was acknowledged",
                    *sent - removed
                );
            }
        }
        let (_, _, last) = outcomes.into_iter().last().unwrap();
        expect_status(
            last,
            Code::Unavailable,
            &["mlmeta.db", "moved, deleted or replaced"],
        );
        let refused = client.insert_epochs(insert(epochs(50_000, 1))).await;
        expect_status(refused, Code::Unavailable, &["mlmeta.db", "restart the server"]);

        let channel = mlmeta_tests::health::channel(&server.url());
        let took = mlmeta_tests::health::wait_for(
            &channel,
            tonic_health::pb::health_check_response::ServingStatus::NotServing,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        eprintln!(
            "sqlite: NOT_SERVING {took:?} after the health check began (the directory was removed before)"
        );
        // Several checkpointer ticks (50 ms) and monitor probes later: one
        // error line for the file, one for the health change.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let log = server.stderr();
        assert_eq!(
            log.matches("refusing writes until it is back").count(),
            1,
            "the moved file is logged once:\n{log}"
        );
        assert_eq!(log.matches("health NOT_SERVING").count(), 1, "{log}");
    })
    .await;
}

/// Item 5: a SQLite file the server cannot write is refused at start with
/// a message naming it, whether or not its `-wal`/`-shm` files exist
/// (before, the server started read-only when they did, and every write
/// then failed with INTERNAL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_sqlite_file_is_refused_at_start() {
    server_binary();
    run_bounded("unwritable_sqlite_file", LIMIT, async {
        let source = tempfile::tempdir().unwrap();
        let url = mlmeta_server::DatabaseUrl::parse(&format!(
            "sqlite://{}",
            source.path().join("mlmeta.db").display()
        ))
        .unwrap();
        // Another process keeps the database open: its -wal and -shm stay.
        let keeper = mlmeta_server::embedded::open(&url).unwrap();
        let Some(view) = ReadOnlyView::of(source.path()) else {
            return;
        };
        let file = view.path().join("mlmeta.db");
        assert!(view.path().join("mlmeta.db-wal").exists());
        refused_at_start(&file, "with -wal and -shm").await;
        // The last connection closed: SQLite removed the -wal and -shm.
        drop(keeper);
        assert!(!view.path().join("mlmeta.db-wal").exists());
        refused_at_start(&file, "without -wal and -shm").await;
    })
    .await;
}

/// Starts the binary on `file` and expects it to exit at once, naming it.
async fn refused_at_start(file: &std::path::Path, case: &str) {
    let mut server = ServerProcess::start(&format!("sqlite://{}", file.display()));
    let status = server.wait_exit(Duration::from_secs(20)).await;
    let stderr = server.stderr();
    assert!(
        status.is_some_and(|s| !s.success()),
        "{case}: started on a read-only file ({status:?}); stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("cannot write the SQLite database") && stderr.contains(&file.display().to_string()),
        "{case}: stderr does not name the file:\n{stderr}"
    );
}

/// Item 5 on SQLite: the disk fills up (a tmpfs of 16 MiB) with commits
/// in the WAL that the checkpointer cannot copy into the (growing)
/// database file. Writes get RESOURCE_EXHAUSTED saying the disk is full;
/// the failing checkpoint (retried every 50 ms) is logged once, not 20
/// times a second; once space is freed writes succeed again, and
/// everything acknowledged is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full_is_resource_exhausted_until_space_is_freed() {
    use diesel::Connection as _;
    use diesel::connection::SimpleConnection as _;
    server_binary();
    run_bounded("sqlite_disk_full", LIMIT, async {
        let Some(disk) = Tmpfs::mount("16m") else {
            return;
        };
        let path = disk.path().join("mlmeta.db");
        let mut server = ServerProcess::start(&format!("sqlite://{}", path.display()));
        server.wait_healthy(READY).await.unwrap();
        let mut client = server.client();
        seed_model(&mut client, "m").await;
        assert_eq!(
            calls::insert_epochs(&mut client, epochs(0, 1000)).await,
            (1000, 0)
        );

        // A reader's snapshot keeps the next commits from being copied out
        // of the WAL until it ends, which is after the disk is full.
        let mut reader = diesel::SqliteConnection::establish(&path.display().to_string()).unwrap();
        reader
            .batch_execute("BEGIN; SELECT count(*) FROM epochs;")
            .unwrap();
        assert_eq!(
            calls::insert_epochs(&mut client, epochs(1000, 2000)).await,
            (2000, 0)
        );
        let filler = disk.fill("filler");
        reader.batch_execute("COMMIT;").unwrap();
        drop(reader);

        let full = client.insert_epochs(insert(epochs(3000, 20_000))).await;
        expect_status(full, Code::ResourceExhausted, &["disk is full", "free space"]);
        // 20 checkpointer ticks.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let log = server.stderr();
        assert!(
            log.contains("database or disk is full"),
            "the driver's words are in the log:\n{log}"
        );
        assert_eq!(
            log.matches("WAL checkpoint failed").count(),
            1,
            "a failing checkpoint is logged once:\n{log}"
        );

        std::fs::remove_file(&filler).unwrap();
        assert_eq!(
            calls::insert_epochs(&mut client, epochs(3000, 20_000)).await,
            (20_000, 0)
        );
        let stored = calls::epochs_of(&mut client, &["m"]).await;
        assert_eq!(stored.len(), 23_000);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(server.stderr().contains("WAL checkpoints succeed again"));
    })
    .await;
}

/// Item 5 on PostgreSQL: the cluster's disk fills up (a private cluster on
/// a 64 MiB tmpfs). Writes get RESOURCE_EXHAUSTED (SQLSTATE 53100) until
/// space is freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_disk_full_is_resource_exhausted_until_space_is_freed() {
    server_binary();
    let Some(cluster) = tokio::task::spawn_blocking(|| PostgresCluster::start_on_tmpfs("64m"))
        .await
        .unwrap()
    else {
        return;
    };
    run_bounded("postgres_disk_full", LIMIT, async {
        let mut server = ServerProcess::start(&cluster.url());
        server.wait_healthy(READY).await.unwrap();
        let mut client = server.client();
        seed_model(&mut client, "m").await;
        assert_eq!(
            calls::insert_epochs(&mut client, epochs(0, 1000)).await,
            (1000, 0)
        );

        let filler = mlmeta_tests::mounts::fill(cluster.home(), "filler");
        let full = client.insert_epochs(insert(epochs(1000, 20_000))).await;
        expect_status(full, Code::ResourceExhausted, &["disk is full", "free space"]);

        std::fs::remove_file(&filler).unwrap();
        assert_eq!(
            calls::insert_epochs(&mut client, epochs(1000, 20_000)).await,
            (20_000, 0)
        );
        assert_eq!(calls::epochs_of(&mut client, &["m"]).await.len(), 21_000);
        let log = server.stderr();
        assert!(
            log.contains("No space left on device"),
            "the driver's words are in the log:\n{log}"
        );
    })
    .await;
    drop(cluster);
}

/// Item 5 on PostgreSQL: the database turns read-only while serving (as a
/// primary demoted to a hot standby does: every session read-only, SQLSTATE
/// 25006), its sessions cut. Writes get UNAVAILABLE saying so, reads go on;
/// when it is writable again, so is the server, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_read_only_database_is_unavailable_for_writes() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let name = database.name().to_owned();
    let server = TestServer::on_postgres(database).await;
    run_bounded("postgres_read_only", LIMIT, async {
        let mut client = server.client();
        seed_model(&mut client, "m").await;
        assert_eq!(calls::insert_epochs(&mut client, epochs(0, 100)).await, (100, 0));

        let alter = format!("ALTER DATABASE \"{name}\" SET default_transaction_read_only = on");
        as_admin(&alter, &name).await;
        // The first calls may meet a session that was cut (UNAVAILABLE
        // "unreachable"); the sessions opened after it are read-only.
        let refused = until(&mut client, async |client| {
            let outcome = client.insert_epochs(insert(epochs(100, 10))).await;
            let read_only = outcome.as_ref().is_err_and(|s| s.message().contains("read-only"));
            (read_only, outcome)
        })
        .await;
        expect_status(refused, Code::Unavailable, &["read-only", "retry"]);
        let read = until(&mut client, async |client| {
            let outcome = client
                .get_current_epoch(mlmeta_proto::GetCurrentEpochRequest {
                    project: String::new(),
                    model_name: "m".into(),
                })
                .await;
            (outcome.is_ok(), outcome)
        })
        .await;
        assert_eq!(read.unwrap().into_inner().current_epoch, 99, "reads go on");

        as_admin(
            &format!("ALTER DATABASE \"{name}\" RESET default_transaction_read_only"),
            &name,
        )
        .await;
        let written = until(&mut client, async |client| {
            let outcome = client.insert_epochs(insert(epochs(100, 10))).await;
            (outcome.is_ok(), outcome)
        })
        .await;
        assert_eq!(written.unwrap().into_inner().inserted, 10);
    })
    .await;
}

/// Runs `sql` as the PostgreSQL administrator, then cuts the sessions on
/// database `name` so that new ones see the change.
async fn as_admin(sql: &str, name: &str) {
    let (sql, name) = (sql.to_owned(), name.to_owned());
    tokio::task::spawn_blocking(move || {
        mlmeta_tests::postgres::run_as_admin(&sql);
        mlmeta_tests::postgres::terminate_sessions(&name);
    })
    .await
    .unwrap();
}

/// Repeats `call` every 50 ms until it says it is done, for up to 10 s;
/// returns the last outcome.
async fn until<T>(client: &mut Client, mut call: impl AsyncFnMut(&mut Client) -> (bool, T)) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (done, outcome) = call(client).await;
        if done || Instant::now() >= deadline {
            return outcome;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
