//! Writes are idempotent, so the CLI retries transient failures for
//! `--retry-secs` instead of giving up at the first "connection refused":
//! an import started while the server restarts completes once it is back.
//!
//! Retrying is the client's doing, the same whatever the backend, so this
//! runs on SQLite only (the real binary, restarted on the same port).

use std::time::Duration;

use mlmeta_tests::process::{ServerProcess, free_port};

use crate::support::Cmd;

/// The server binary on `port` over the SQLite file `db`, healthy.
async fn start(db: &str, port: u16) -> ServerProcess {
    let listen = format!("127.0.0.1:{port}");
    let mut server = ServerProcess::spawn(&["--database-url", db, "--listen", &listen], None, port);
    server.wait_healthy(Duration::from_secs(30)).await.unwrap();
    server
}

#[tokio::test]
async fn an_import_waits_for_a_restarting_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("m.db").display());
    let port = free_port();
    let mut server = start(&db, port).await;
    let url = server.url();
    let cli = || Cmd::new().server(&url);
    for args in [
        &["add", "datablob", "d", "--group", "g"][..],
        &["add", "template", "t", "--group", "g"],
        &[
            "add",
            "model",
            "run",
            "--class",
            "C",
            "--datablob",
            "d",
            "--template",
            "t",
        ],
    ] {
        cli().args(args.iter().copied()).run().await.ok();
    }
    let csv: String = std::iter::once("epoch,loss\n".to_owned())
        .chain((0..500).map(|epoch| format!("{epoch},{}\n", 1.0 / f64::from(epoch + 1))))
        .collect();
    server.terminate();
    assert!(server.wait_exit(Duration::from_secs(30)).await.is_some());
    let import = tokio::spawn(
        cli()
            .args(["add", "epochs", "run", "--file", "-"])
            .stdin(csv.clone())
            .run(),
    );
    // Long enough for the import to find the server gone and start waiting.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _restarted = start(&db, port).await;
    let run = import.await.unwrap();
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert_eq!(
        run.stdout,
        "model \"run\": 500 epochs inserted, 0 epochs skipped (already stored)\n"
    );
    assert!(
        run.stderr.contains("is not available") && run.stderr.contains("(--retry-secs)"),
        "the wait is announced: {run:#?}"
    );
    assert_eq!(cli().args(["current-epoch", "run"]).run().await.ok(), "499\n");
    // Importing again stores nothing twice.
    let again = cli()
        .args(["add", "epochs", "run", "--file", "-"])
        .stdin(csv)
        .run()
        .await
        .ok();
    assert_eq!(
        again,
        "model \"run\": 0 epochs inserted, 500 epochs skipped (already stored)\n"
    );
}
