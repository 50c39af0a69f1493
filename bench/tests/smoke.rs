//! Smoke test: the harness runs every workload at a tiny scale against a
//! server it spawns on SQLite, exits 0 and prints every figure, in the
//! table and in JSON. It needs `mlmeta-server` in the same target profile
//! directory and builds it there first when it is missing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// Serializes the check-and-build of the server binary between tests.
static SERVER_BUILD: Mutex<()> = Mutex::new(());

/// Flags of a run that takes a few seconds in a debug build.
const TINY: &[&str] = &[
    "--spawn",
    "sqlite",
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
    if server.is_file() {
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
}

fn run_bench(extra: &[&str]) -> Output {
    ensure_server_binary();
    let output = Command::new(bench_binary())
        .args(TINY)
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
        "2 in flight: metric values/s",
        "sequential: epochs/s",
        "val_accuracy MAX top 10: p99",
        "val_loss MIN top 1: p50",
        "stream ",
        "W=2: epochs/s",
        "W=2: errors",
        "ListModels 1 group (2 models): p50",
        "ListEpochs 1 model (20 epochs): p99",
        "server peak RSS",
        "problems: none",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
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
