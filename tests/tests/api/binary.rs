//! The real `mlmeta-server` binary: SIGTERM, bad database URLs, several
//! servers migrating one fresh database at once, the default database.

use std::time::Duration;

use mlmeta_tests::process::{ServerProcess, free_port, server_binary};
use mlmeta_tests::records::{datablob, put_datablob};
use mlmeta_tests::{TestDatabase, run_bounded};

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
