//! The real `mlmeta-server` binary: SIGTERM (idle, with a call in flight,
//! with a call that hangs), bad database URLs, several servers migrating
//! one fresh database at once, the default database, a pool of one
//! connection, restarts.

use std::time::Duration;

use futures::future::join_all;
use mlmeta_proto::{InsertEpochsRequest, InsertEpochsResponse, MetricDirection};
use mlmeta_tests::calls::{self, Snapshot};
use mlmeta_tests::process::{ServerProcess, free_port, server_binary};
use mlmeta_tests::records::{best, datablob, epoch, insert, model, put_datablob, put_model};
use mlmeta_tests::{TestDatabase, run_bounded};
use tokio_stream::wrappers::ReceiverStream;

/// Time each binary test may take once the binary is built.
const LIMIT: Duration = Duration::from_secs(120);
/// Time a server may take to report SERVING.
const READY: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_idle_exits_zero() {
    server_binary();
    run_bounded("sigterm_while_idle_exits_zero", LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        let mut server = ServerProcess::start(&url);
        server.wait_healthy(READY).await.unwrap();
        // A client that made a call and stays connected, idle.
        let mut client = server.client();
        client
            .put_data_blob(put_datablob(datablob("d", "g", "{}"), false))
            .await
            .unwrap();
        server.terminate();
        let status = server.wait_exit(Duration::from_secs(10)).await;
        let status = status.unwrap_or_else(|| {
            panic!(
                "no exit within 10 s of SIGTERM (idle server); stderr:\n{}",
                server.stderr()
            )
        });
        assert!(
            status.success(),
            "exit status {status} after SIGTERM; stderr:\n{}",
            server.stderr()
        );
        drop(client);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_database_scheme_fails_naming_the_supported_ones() {
    server_binary();
    run_bounded("unknown_database_scheme", LIMIT, async {
        for url in ["mysql://x", "http://localhost/db"] {
            let mut server = ServerProcess::start(url);
            let status = server
                .wait_exit(Duration::from_secs(30))
                .await
                .unwrap_or_else(|| panic!("still running with --database-url {url}"));
            assert!(!status.success(), "{url}: exit status {status}");
            let stderr = server.stderr();
            assert!(
                stderr.contains("sqlite://") && stderr.contains("postgres://"),
                "{url}: stderr does not name sqlite:// and postgres://:\n{stderr}"
            );
        }
    })
    .await;
}

/// Starts three servers at once on `url`, waits until all are SERVING,
/// writes through each and reads everything back through the first.
async fn three_servers_on_one_database(url: &str) {
    let mut servers: Vec<ServerProcess> = (0..3).map(|_| ServerProcess::start(url)).collect();
    for (i, server) in servers.iter_mut().enumerate() {
        if let Err(error) = server.wait_healthy(READY).await {
            panic!("server {i} of 3 on {url}: {error}");
        }
    }
    for (i, server) in servers.iter().enumerate() {
        let mut client = server.client();
        let name = format!("written-through-{i}");
        client
            .put_data_blob(put_datablob(datablob(&name, "g", "{}"), false))
            .await
            .unwrap_or_else(|s| panic!("write through server {i}: {s}\nstderr:\n{}", server.stderr()));
    }
    let mut client = servers[0].client();
    let listed = mlmeta_tests::calls::list_all_datablobs(&mut client, None, 0).await;
    let names: Vec<&str> = listed.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["written-through-0", "written-through-1", "written-through-2"]
    );
    for server in &servers {
        server.terminate();
    }
    for (i, server) in servers.iter_mut().enumerate() {
        let status = server.wait_exit(Duration::from_secs(15)).await;
        assert!(
            status.is_some_and(|s| s.success()),
            "server {i} after SIGTERM: {status:?}; stderr:\n{}",
            server.stderr()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_start_together_on_one_fresh_sqlite_file() {
    server_binary();
    run_bounded("three_servers_sqlite", LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("shared.db").display());
        three_servers_on_one_database(&url).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_start_together_on_one_fresh_postgres_database() {
    server_binary();
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    run_bounded("three_servers_postgres", LIMIT, async {
        three_servers_on_one_database(database.url()).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_database_is_mlmeta_db_in_the_working_directory() {
    server_binary();
    run_bounded("default_database", LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut server = ServerProcess::spawn(&["--listen", &listen], Some(dir.path()), port);
        server.wait_healthy(READY).await.unwrap();
        let mut client = server.client();
        client
            .put_data_blob(put_datablob(datablob("d", "g", "{}"), false))
            .await
            .unwrap();
        assert!(
            dir.path().join("mlmeta.db").is_file(),
            "no mlmeta.db in the working directory; it holds {:?}",
            std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect::<Vec<_>>()
        );
        server.terminate();
        let status = server.wait_exit(Duration::from_secs(10)).await;
        assert!(
            status.is_some_and(|s| s.success()),
            "{status:?}; stderr:\n{}",
            server.stderr()
        );
        drop(client);
    })
    .await;
}

/// Opens a StreamEpochs call on `server` and sends one message of model
/// `m` (which must exist); returns the sender and the pending call.
async fn open_stream(
    server: &ServerProcess,
) -> (
    tokio::sync::mpsc::Sender<InsertEpochsRequest>,
    tokio::task::JoinHandle<Result<tonic::Response<InsertEpochsResponse>, tonic::Status>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<InsertEpochsRequest>(4);
    let mut streaming = server.client();
    let call = tokio::spawn(async move { streaming.stream_epochs(ReceiverStream::new(rx)).await });
    tx.send(insert(vec![epoch("m", 0, &[("loss", 1.0)])]))
        .await
        .unwrap();
    // Wait until the first message is committed: the stream is open.
    let mut client = server.client();
    for _ in 0..200 {
        if !calls::epochs_of(&mut client, &["m"]).await.is_empty() {
            return (tx, call);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the first streamed message was not committed within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_open_stream_finish_within_the_grace_period() {
    server_binary();
    run_bounded("sigterm_open_stream", LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        let mut server = ServerProcess::start_with(&url, &["--shutdown-grace-secs", "10"]);
        server.wait_healthy(READY).await.unwrap();
        calls::seed_model(&mut server.client(), "m").await;
        let (tx, call) = open_stream(&server).await;
        server.terminate();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            server.wait_exit(Duration::ZERO).await.is_none(),
            "exited with a call in flight, before the grace period"
        );
        tx.send(insert(vec![epoch("m", 1, &[("loss", 0.5)])]))
            .await
            .unwrap();
        drop(tx);
        let response = call
            .await
            .unwrap()
            .unwrap_or_else(|s| {
                panic!(
                    "the in-flight stream failed after SIGTERM: {s}\nstderr:\n{}",
                    server.stderr()
                )
            })
            .into_inner();
        assert_eq!((response.inserted, response.skipped), (2, 0));
        let status = server.wait_exit(Duration::from_secs(10)).await;
        assert!(
            status.is_some_and(|s| s.success()),
            "{status:?}; stderr:\n{}",
            server.stderr()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_after_the_grace_period_when_a_call_hangs() {
    server_binary();
    run_bounded("sigterm_hanging_stream", LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        let mut server = ServerProcess::start_with(&url, &["--shutdown-grace-secs", "2"]);
        server.wait_healthy(READY).await.unwrap();
        calls::seed_model(&mut server.client(), "m").await;
        let (tx, call) = open_stream(&server).await;
        server.terminate();
        let status = server.wait_exit(Duration::from_secs(10)).await;
        assert!(
            status.is_some(),
            "still running 10 s after SIGTERM with a 2 s grace period; stderr:\n{}",
            server.stderr()
        );
        drop(tx);
        drop(call);
    })
    .await;
}

/// With one pooled connection, an open StreamEpochs call and a burst of
/// concurrent calls all complete.
async fn pool_of_one_serves_concurrent_calls(url: &str) {
    let mut server = ServerProcess::start_with(url, &["--pool-size", "1"]);
    server.wait_healthy(READY).await.unwrap();
    calls::seed_model(&mut server.client(), "m").await;
    let (tx, call) = open_stream(&server).await;
    let burst = (0..8).map(|i| {
        let mut client = server.client();
        async move {
            calls::put_datablob(&mut client, &format!("d{i}"), "g", "{}").await;
            calls::insert_epochs(&mut client, vec![epoch("m", 100 + i, &[("loss", 1.0)])]).await;
            client
                .get_best_model(best("loss", MetricDirection::Min, 1))
                .await
                .unwrap_or_else(|s| panic!("GetBestModel: {s}"));
            calls::list_all_models(&mut client, None, 0).await;
        }
    });
    let finished = tokio::time::timeout(Duration::from_secs(30), join_all(burst)).await;
    assert!(
        finished.is_ok(),
        "calls did not complete within 30 s with --pool-size 1 and an open stream; stderr:\n{}",
        server.stderr()
    );
    tx.send(insert(vec![epoch("m", 1, &[("loss", 0.5)])]))
        .await
        .unwrap();
    drop(tx);
    let response = call.await.unwrap().unwrap().into_inner();
    assert_eq!((response.inserted, response.skipped), (2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_of_one_serves_concurrent_calls_on_sqlite() {
    server_binary();
    run_bounded("pool_of_one_sqlite", LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        pool_of_one_serves_concurrent_calls(&url).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_of_one_serves_concurrent_calls_on_postgres() {
    server_binary();
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    run_bounded("pool_of_one_postgres", LIMIT, async {
        pool_of_one_serves_concurrent_calls(database.url()).await;
    })
    .await;
}

/// Writes through one server, stops it, starts another on the same
/// database and reads everything back.
/// The versions of the migrations in the tree for `backend`, in order
/// (`2026-11-23-000000_create_tables` is `20261123000000`).
fn migration_versions(backend: &str) -> Vec<String> {
    let dir = format!("{}/../migrations/{backend}", env!("CARGO_MANIFEST_DIR"));
    let mut versions: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            name.split('_').next().unwrap().replace('-', "")
        })
        .collect();
    versions.sort();
    versions
}

async fn data_survives_a_restart(url: &str) {
    let mut first = ServerProcess::start(url);
    first.wait_healthy(READY).await.unwrap();
    let mut client = first.client();
    calls::seed_model(&mut client, "m").await;
    calls::insert_epochs(
        &mut client,
        vec![epoch("m", 3, &[("loss", f64::NAN), ("acc", 0.5)])],
    )
    .await;
    let before = Snapshot::take(&mut client).await;
    drop(client);
    first.terminate();
    let status = first.wait_exit(Duration::from_secs(10)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}; stderr:\n{}",
        first.stderr()
    );
    // The log says what was done to a brand-new database, then that a
    // second start had nothing to do.
    let migrated = first.stderr();
    let versions = migration_versions(if url.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    });
    assert!(
        migrated.contains(&format!("schema migrated: applied {} migrations", versions.len()))
            && migrated.contains(&format!("({})", versions.join(", "))),
        "{migrated}"
    );

    let mut second = ServerProcess::start(url);
    second.wait_healthy(READY).await.unwrap();
    let log = second.stderr();
    assert!(log.contains("schema up to date: no migration pending"), "{log}");
    let mut client = second.client();
    before.assert_unchanged(&mut client, "a restart").await;
    let response = client
        .put_model(put_model(model("m", "m-data", "m-tmpl"), false))
        .await
        .unwrap()
        .into_inner();
    assert!(response.already_existed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_a_restart_on_sqlite() {
    server_binary();
    run_bounded("restart_sqlite", LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        data_survives_a_restart(&url).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_a_restart_on_postgres() {
    server_binary();
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    run_bounded("restart_postgres", LIMIT, async {
        data_survives_a_restart(database.url()).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_path_with_spaces_and_unicode_is_used_as_written() {
    server_binary();
    run_bounded("sqlite_odd_path", LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("dir with spaces-模型");
        std::fs::create_dir(&sub).unwrap();
        let file = sub.join("my db.sqlite");
        let mut server = ServerProcess::start(&format!("sqlite://{}", file.display()));
        server.wait_healthy(READY).await.unwrap();
        calls::put_datablob(&mut server.client(), "d", "g", "{}").await;
        assert!(
            file.is_file(),
            "database not created at {}; the directory holds {:?}",
            file.display(),
            std::fs::read_dir(&sub)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect::<Vec<_>>()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_scheme_is_accepted() {
    server_binary();
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    run_bounded("postgresql_scheme", LIMIT, async {
        let url = database.url().replacen("postgres://", "postgresql://", 1);
        assert!(url.starts_with("postgresql://"), "{url}");
        let mut server = ServerProcess::start(&url);
        server.wait_healthy(READY).await.unwrap();
        calls::put_datablob(&mut server.client(), "d", "g", "{}").await;
    })
    .await;
}

/// Epochs stored before `metric_latest` existed (simulated: its rows
/// removed and the model listed as pending, as the migration does) get
/// their count and last value when the next server starts.
async fn stored_epochs_are_summarised_at_start(url: &str) {
    let names = |client: &mut calls::Client, text: &str| {
        let filter = Some(mlmeta_proto::ModelFilter {
            r#where: text.to_owned(),
            ..Default::default()
        });
        let mut client = client.clone();
        async move {
            calls::list_all_models(&mut client, filter, 0)
                .await
                .into_iter()
                .map(|m| m.name)
                .collect::<Vec<_>>()
        }
    };
    let mut first = ServerProcess::start(url);
    first.wait_healthy(READY).await.unwrap();
    let mut client = first.client();
    calls::seed_model(&mut client, "m").await;
    calls::insert_epochs(
        &mut client,
        vec![
            epoch("m", 1, &[("loss", 0.5)]),
            epoch("m", 4, &[("loss", f64::NAN), ("acc", 0.25)]),
            epoch("m", 2, &[("loss", 0.75)]),
        ],
    )
    .await;
    assert_eq!(
        names(&mut client, "count(loss) = 3 and count(acc) = 1").await,
        ["m"]
    );
    drop(client);
    first.terminate();
    assert!(
        first
            .wait_exit(Duration::from_secs(10))
            .await
            .is_some_and(|s| s.success())
    );
    {
        use diesel::RunQueryDsl;
        let mut conn =
            mlmeta_server::embedded::open(&mlmeta_server::DatabaseUrl::parse(url).unwrap()).unwrap();
        diesel::sql_query("DELETE FROM metric_latest")
            .execute(&mut conn)
            .unwrap();
        diesel::sql_query("INSERT INTO metric_latest_pending (model_id) SELECT id FROM models")
            .execute(&mut conn)
            .unwrap();
    }
    let mut second = ServerProcess::start(url);
    second.wait_healthy(READY).await.unwrap();
    let mut client = second.client();
    assert_eq!(
        names(
            &mut client,
            "count(loss) = 3 and not exists last(nothing) and count(acc) = 1 and last(acc) = 0.25"
        )
        .await,
        ["m"]
    );
    // The last loss (epoch 4) is NaN: no comparison matches it.
    assert!(
        names(&mut client, "last(loss) <= inf or last(loss) >= -inf")
            .await
            .is_empty()
    );
    calls::insert_epochs(&mut client, vec![epoch("m", 5, &[("loss", 0.125)])]).await;
    assert_eq!(
        names(&mut client, "count(loss) = 4 and last(loss) = 0.125").await,
        ["m"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_epochs_are_summarised_at_start_on_sqlite() {
    server_binary();
    run_bounded("summarised_at_start_sqlite", LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        stored_epochs_are_summarised_at_start(&url).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_epochs_are_summarised_at_start_on_postgres() {
    server_binary();
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    run_bounded("summarised_at_start_postgres", LIMIT, async {
        stored_epochs_are_summarised_at_start(database.url()).await;
    })
    .await;
}
