//! What needs no server: help texts, usage errors, and a server that is
//! not running.

use crate::support::Cmd;

/// Every command path, for the help checks.
const COMMANDS: [&[&str]; 13] = [
    &[],
    &["best"],
    &["leaderboard"],
    &["list"],
    &["list", "datablobs"],
    &["list", "templates"],
    &["list", "models"],
    &["list", "epochs"],
    &["current-epoch"],
    &["add"],
    &["add", "datablob"],
    &["add", "model"],
    &["add", "epochs"],
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
        .args(["list", "datablobs"])
        .run()
        .await
        .fails(1);
    assert!(error.contains(&url), "{error}");
}
