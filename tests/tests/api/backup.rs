//! `mlmeta-server backup`: an online copy of a SQLite database taken while
//! eight writers keep writing is a sound mlmeta database (it passes
//! `PRAGMA integrity_check`, done by the command, and a server serves it)
//! holding, for every writer, exactly a prefix of what it wrote: at least
//! what was acknowledged before the copy began, at most what was
//! committed when it ended, never a gap. The command refuses to
//! overwrite, to create a database, and PostgreSQL (pointing at pg_dump).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use mlmeta_proto::{GetCurrentEpochRequest, ListEpochsRequest};
use mlmeta_tests::calls::{insert_epochs, list_all_epochs, seed_model};
use mlmeta_tests::process::{ServerProcess, server_binary};
use mlmeta_tests::records::epoch;
use mlmeta_tests::{TestDatabase, run_bounded};

const LIMIT: Duration = Duration::from_secs(180);
const READY: Duration = Duration::from_secs(60);
const WRITERS: usize = 8;

fn backup(database_url: &str, to: &Path) -> Output {
    Command::new(server_binary())
        .args(["backup", "--database-url", database_url, "--to"])
        .arg(to)
        .env_remove("MLMETA_DATABASE_URL")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_taken_while_eight_writers_write_holds_a_prefix_of_each() {
    server_binary();
    run_bounded("backup_while_writing", LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("live.db").display());
        let mut server = ServerProcess::start(&url);
        server.wait_healthy(READY).await.unwrap();
        let mut client = server.client();
        let names: Vec<String> = (0..WRITERS).map(|w| format!("writer-{w}")).collect();
        for name in &names {
            seed_model(&mut client, name).await;
        }
        // Each writer stores epoch n only after epoch n - 1 was
        // acknowledged, and counts what was acknowledged.
        let acknowledged: Arc<Vec<AtomicI64>> = Arc::new((0..WRITERS).map(|_| AtomicI64::new(0)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(w, name)| {
                let (mut client, name) = (server.client(), name.clone());
                let (acknowledged, stop) = (Arc::clone(&acknowledged), Arc::clone(&stop));
                tokio::spawn(async move {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        #[allow(clippy::cast_precision_loss)]
                        let value = n as f64;
                        insert_epochs(
                            &mut client,
                            vec![epoch(&name, n, &[("loss", 1.0 / value), ("n", value)])],
                        )
                        .await;
                        acknowledged[w].store(n, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        let snapshot = |a: &[AtomicI64]| a.iter().map(|n| n.load(Ordering::SeqCst)).collect::<Vec<_>>();
        while snapshot(&acknowledged).iter().any(|&n| n < 50) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut copies = Vec::new();
        for round in 0..2 {
            let before = snapshot(&acknowledged);
            let to = dir.path().join(format!("copy-{round}.db"));
            let (copy_url, path) = (url.clone(), to.clone());
            let output = tokio::task::spawn_blocking(move || backup(&copy_url, &path))
                .await
                .unwrap();
            let after = snapshot(&acknowledged);
            assert!(
                output.status.success(),
                "backup: {}\n{}",
                output.status,
                text(&output.stderr)
            );
            let said = text(&output.stdout);
            assert!(
                said.starts_with(&format!("backed up {WRITERS} models and ")),
                "{said}"
            );
            copies.push((to, before, after));
        }
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.await.unwrap();
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.contains("partial"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        for (path, before, after) in copies {
            let copy_url = format!("sqlite://{}", path.display());
            let mut copy_server = ServerProcess::start(&copy_url);
            copy_server.wait_healthy(READY).await.unwrap();
            let mut reader = copy_server.client();
            for (w, name) in names.iter().enumerate() {
                let request = ListEpochsRequest {
                    model_names: vec![name.clone()],
                    ..Default::default()
                };
                let numbers: Vec<i64> = list_all_epochs(&mut reader, request)
                    .await
                    .iter()
                    .map(|e| e.epoch_num)
                    .collect();
                let held = i64::try_from(numbers.len()).unwrap();
                assert_eq!(numbers, (1..=held).collect::<Vec<_>>(), "{name}: not a prefix");
                // Acknowledged before the copy began: in it. Committed
                // when it ended (at most one more than acknowledged): the
                // most it can hold.
                assert!(
                    before[w] <= held && held <= after[w] + 1,
                    "{name}: {held} epochs, acknowledged {} before and {} after",
                    before[w],
                    after[w]
                );
                // The model's own counters were copied in the same state.
                let current = reader
                    .get_current_epoch(GetCurrentEpochRequest {
                        model_name: name.clone(),
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!(current.current_epoch, held, "{name}: current epoch");
            }
            copy_server.terminate();
            copy_server.wait_exit(Duration::from_secs(15)).await;
        }
        server.terminate();
        server.wait_exit(Duration::from_secs(15)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_refuses_to_overwrite_to_create_and_postgres() {
    server_binary();
    run_bounded("backup_refusals", LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("live.db").display());
        let mut server = ServerProcess::start(&url);
        server.wait_healthy(READY).await.unwrap();
        server.terminate();
        server.wait_exit(Duration::from_secs(15)).await;

        let taken = dir.path().join("taken.db");
        std::fs::write(&taken, b"precious").unwrap();
        let output = backup(&url, &taken);
        assert_eq!(output.status.code(), Some(2));
        assert!(
            text(&output.stderr).contains("already exists"),
            "{}",
            text(&output.stderr)
        );
        assert_eq!(std::fs::read(&taken).unwrap(), b"precious");

        let missing = dir.path().join("missing.db");
        let output = backup(
            &format!("sqlite://{}", missing.display()),
            &dir.path().join("x.db"),
        );
        assert_eq!(output.status.code(), Some(1));
        assert!(
            text(&output.stderr).contains("no SQLite database"),
            "{}",
            text(&output.stderr)
        );
        assert!(!missing.exists() && !dir.path().join("x.db").exists());

        if let Some(database) = TestDatabase::create().await {
            let output = backup(database.url(), &dir.path().join("pg.db"));
            assert_eq!(output.status.code(), Some(2));
            assert!(
                text(&output.stderr).contains("pg_dump"),
                "{}",
                text(&output.stderr)
            );
        }
    })
    .await;
}
