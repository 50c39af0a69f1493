//! Smoke test: the harness runs every workload (the `raw` floor included)
//! at a tiny scale against a server it spawns on SQLite, exits 0 and prints
//! every figure, in the table and in JSON; the concurrent writers also run
//! in 2 child processes, and `raw`, `bulk` and those writers on PostgreSQL
//! (skipped when it is unreachable, unless `MLMETA_REQUIRE_POSTGRES=1`).
//! It needs `mlmeta-server` in the same target profile directory and builds
//! it there first when it is missing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// Serializes the check-and-build of the server binary between tests.
static SERVER_BUILD: Mutex<()> = Mutex::new(());
/// Set once `mlmeta-server` was built (or found current) by this process.
static SERVER_BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();

/// Flags of a run that takes a few seconds in a debug build.
const TINY: &[&str] = &[
    "--models",
    "2",
    "--epochs",
    "20",
    "--batch",
    "10",
    "--writers",
    "2",
    "--stream-epochs",
    "20",
    "--acked-epochs",
    "50",
    "--acked-batch",
    "10",
    "--writer-epochs",
    "20",
    "--calls",
    "10",
];

fn bench_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mlmeta-bench"))
}

/// Makes sure `mlmeta-server` sits next to the bench binary, building it
/// with the same profile when it does not.
fn ensure_server_binary() {
    let _guard = SERVER_BUILD
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let bench = bench_binary();
    let profile_dir = bench.parent().expect("bench binary has a directory");
    let server = profile_dir.join(format!("mlmeta-server{}", std::env::consts::EXE_SUFFIX));
    // Once per test process, always: cargo is a no-op when the binary is
    // current, and a binary left from an older checkout would be benchmarked
    // otherwise (it lacks newer RPCs).
    if SERVER_BUILT.get().is_some() {
        return;
    }
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_owned(),
        Some(name) => name.to_owned(),
    };
    let target_dir = profile_dir.parent().expect("profile directory has a parent");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args([
            "build",
            "-p",
            "mlmeta-server",
            "--profile",
            &profile,
            "--manifest-path",
        ])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", target_dir)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building mlmeta-server failed");
    assert!(
        server.is_file(),
        "{} still missing after the build",
        server.display()
    );
    let _ = SERVER_BUILT.set(());
}

fn run_bench(extra: &[&str]) -> Output {
    ensure_server_binary();
    let spawn: &[&str] = if extra.contains(&"--spawn") {
        &[]
    } else {
        &["--spawn", "sqlite"]
    };
    let output = Command::new(bench_binary())
        .args(TINY)
        .args(spawn)
        .args(extra)
        .output()
        .expect("bench runs");
    assert!(
        output.status.success(),
        "mlmeta-bench failed ({})\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn every_workload_prints_its_figures() {
    let output = run_bench(&[]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.starts_with("mlmeta-bench: cores="), "{stdout}");
    for needle in [
        "backend=sqlite",
        "2 in flight: ratio to raw floor",
        "sequential: ratio to raw floor",
        "2 in flight: metric values/s",
        "sequential: epochs/s",
        "val_accuracy MAX top 10: p99",
        "val_loss MIN top 1: p50",
        "stream ",
        "WriteEpochs: epochs/s",
        "WriteEpochs: ack p99",
        "StreamEpochs: epochs/s",
        "InsertEpochs: call p50",
        "W=2: epochs/s",
        "W=2: errors",
        "ListModels 1 group (2 models): p50",
        "ListEpochs 1 model (20 epochs): p99",
        "server peak RSS",
        "problems: none",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    assert_ne!(cell(&stdout, "raw", "metric values/s"), "0");
    assert_eq!(cell(&stdout, "raw", "epochs stored (checked)"), "40");
}

/// The value printed in the table row of `workload` and `figure`.
fn cell(table: &str, workload: &str, figure: &str) -> String {
    table
        .lines()
        .map(|line| {
            line.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.len() == 5 && cells[0] == workload && cells[2] == figure)
        .unwrap_or_else(|| panic!("no row {workload} / {figure} in:\n{table}"))[3]
        .to_owned()
}

#[test]
fn json_output_is_one_document() {
    let output = run_bench(&["--workload", "list", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["summary"]["backend"], "sqlite");
    let results = doc["results"].as_array().unwrap();
    assert!(results.len() >= 4, "{doc}");
    assert!(
        results
            .iter()
            .all(|r| r["workload"] == "list" && r["value"].is_number())
    );
    assert_eq!(doc["problems"].as_array().map(Vec::len), Some(0));
}

#[test]
fn writers_run_in_child_processes() {
    let output = run_bench(&["--workload", "concurrent", "--writers", "1,3", "--processes", "2"]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "processes=2",
        "W=1: epochs/s",
        "W=3 in 2 processes: epochs/s",
        "W=3 in 2 processes: call p99",
        "problems: none",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    assert_eq!(cell(&stdout, "concurrent", "W=3 in 2 processes: errors"), "0");
    assert_eq!(
        cell(
            &stdout,
            "concurrent",
            "W=3 in 2 processes: epochs stored (checked)"
        ),
        "60"
    );
}

/// Whether `psql` reaches the PostgreSQL server the bench would use; when
/// it does not, the test is skipped with a notice, or fails when
/// `MLMETA_REQUIRE_POSTGRES=1`.
fn postgres_reachable() -> bool {
    let url = std::env::var("MLMETA_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let reachable = Command::new("psql")
        .args(["-X", "-q", "-d", &url, "-c", "SELECT 1"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !reachable {
        assert_ne!(
            std::env::var("MLMETA_REQUIRE_POSTGRES").as_deref(),
            Ok("1"),
            "PostgreSQL at {url} is unreachable and MLMETA_REQUIRE_POSTGRES=1"
        );
        eprintln!("SKIPPED: PostgreSQL at {url} is unreachable (set MLMETA_BENCH_POSTGRES_URL)");
    }
    reachable
}

#[test]
fn raw_bulk_and_writer_processes_on_postgres() {
    if !postgres_reachable() {
        return;
    }
    let output = run_bench(&[
        "--spawn",
        "postgres",
        "--workload",
        "raw,bulk,concurrent",
        "--processes",
        "2",
        "--json",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["summary"]["backend"], "postgres");
    let value = |figure: &str| {
        doc["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["figure"] == figure)
            .unwrap_or_else(|| panic!("no {figure:?} in {doc}"))["value"]
            .as_f64()
            .unwrap()
    };
    assert!(value("metric values/s") > 0.0);
    assert_eq!(value("epochs stored (checked)"), 40.0);
    assert!(value("2 in flight: ratio to raw floor") > 0.0);
    assert_eq!(value("W=2 in 2 processes: epochs stored (checked)"), 40.0);
    assert_eq!(doc["problems"].as_array().map(Vec::len), Some(0), "{doc}");
}
