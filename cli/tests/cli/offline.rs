//! What needs no server: help texts, usage errors, and a server that is
//! not running.

use crate::support::Cmd;

/// Every command path, for the help checks.
const COMMANDS: [&[&str]; 21] = [
    &[],
    &["best"],
    &["leaderboard"],
    &["list"],
    &["list", "projects"],
    &["list", "datablobs"],
    &["list", "templates"],
    &["list", "models"],
    &["list", "epochs"],
    &["current-epoch"],
    &["add"],
    &["add", "datablob"],
    &["add", "model"],
    &["add", "epochs"],
    &["run"],
    &["run", "start"],
    &["run", "heartbeat"],
    &["run", "end"],
    &["import-dir"],
    &["artifact", "upload"],
    &["artifact", "download"],
];

#[tokio::test]
async fn every_help_has_an_example() {
    for command in COMMANDS {
        let help = Cmd::new()
            .args(command.iter().copied())
            .args(["--help"])
            .run()
            .await
            .ok();
        assert!(
            help.contains("Example") && help.contains("mlmeta "),
            "`mlmeta {} --help` has no example:\n{help}",
            command.join(" ")
        );
        // The connection and output flags every command takes sit under
        // their own heading, apart from the command's own options.
        let global = help.find("\nGlobal options:\n");
        let server = help.find("--server <URL>");
        assert!(
            global.is_some() && server > global,
            "`mlmeta {} --help` does not list --server under `Global options:`:\n{help}",
            command.join(" ")
        );
    }
    let help = Cmd::new().args(["add", "template", "--help"]).run().await.ok();
    assert!(help.contains("Example"), "{help}");
    let help = Cmd::new().args(["--help"]).run().await.ok();
    for line in ["0  success", "1  error", "2  not found", "MLMETA_SERVER"] {
        assert!(help.contains(line), "`mlmeta --help` lacks {line:?}:\n{help}");
    }
}

#[tokio::test]
async fn usage_errors_exit_1() {
    for args in [
        &["best", "--metric", "loss"][..],
        &["best", "--metric", "loss", "--max", "--min"],
        &["leaderboard", "--max"],
        &["list", "things"],
        &["best", "--metric", "loss", "--max", "--format", "yaml"],
        &[],
    ] {
        let run = Cmd::new().args(args.iter().copied()).run().await;
        assert_eq!(run.code, Some(1), "`mlmeta {}`: {run:#?}", args.join(" "));
        assert_eq!(run.stdout, "");
        assert!(!run.stderr.is_empty());
    }
}

#[tokio::test]
async fn a_server_that_is_not_running_is_named() {
    let url = format!("http://127.0.0.1:{}", mlmeta_tests::process::free_port());
    for args in [
        &["best", "--metric", "loss", "--min"][..],
        &["list", "models", "--format", "json"],
        &["current-epoch", "m"],
        &["add", "datablob", "d", "--group", "g"],
    ] {
        let error = Cmd::new()
            .server(&url)
            .args(["--retry-secs", "0"])
            .args(args.iter().copied())
            .run()
            .await
            .fails(1);
        assert!(
            error.starts_with(&format!(
                "cannot reach the mlmeta server at {url} (is it running?"
            )),
            "{error}"
        );
    }
    let error = Cmd::new()
        .env("MLMETA_SERVER", &url)
        .env("MLMETA_RETRY_SECS", "0")
        .args(["list", "datablobs"])
        .run()
        .await
        .fails(1);
    assert!(error.contains(&url), "{error}");
}

/// By default a command waits for an unavailable server (`--retry-secs`),
/// says so once, and names the server when it gives up.
#[tokio::test]
async fn an_unavailable_server_is_retried_for_retry_secs() {
    let url = format!("http://127.0.0.1:{}", mlmeta_tests::process::free_port());
    let started = std::time::Instant::now();
    let run = Cmd::new()
        .server(&url)
        .args(["--retry-secs", "1", "list", "models"])
        .run()
        .await;
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "gave up before --retry-secs"
    );
    assert_eq!(run.code, Some(1), "{run:#?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{run:#?}");
    assert!(
        lines[0].starts_with(&format!("mlmeta: the server at {url} is not available"))
            && lines[0].ends_with("retrying for up to 1 s (--retry-secs)"),
        "{run:#?}"
    );
    assert!(
        lines[1].starts_with("error: cannot reach the mlmeta server"),
        "{run:#?}"
    );
}
