//! `mlmeta-bench`: the benchmark harness of mlmeta.
//!
//! It drives a real `mlmeta-server` over loopback gRPC with five workloads
//! (`bulk`, `best`, `stream`, `concurrent`, `list`), measures the floor
//! `raw` (the bulk rows written straight into a fresh database with
//! diesel, no gRPC) and prints one table (or, with `--json`, one JSON
//! document) of figures.
//!
//! Run it in release, against a server it spawns itself on a fresh database:
//!
//! ```text
//! cargo build --release -p mlmeta-bench -p mlmeta-server
//! target/release/mlmeta-bench --spawn sqlite
//! target/release/mlmeta-bench --spawn postgres        # uses MLMETA_BENCH_POSTGRES_URL
//! target/release/mlmeta-bench --server http://127.0.0.1:50051 --workload best --json
//! target/release/mlmeta-bench --spawn sqlite --workload raw,bulk
//! target/release/mlmeta-bench --workload concurrent --writers 64 --processes 4
//! ```
//!
//! `--spawn` runs the `mlmeta-server` binary found next to this one (or
//! `--server-bin`), on a temporary SQLite file or on a new PostgreSQL
//! database `mlmeta_bench_<pid>` that is dropped at the end, and reports the
//! server's peak RSS after each workload. `raw` opens its own fresh
//! database of the same backend (`mlmeta_raw_<pid>` on PostgreSQL).
//! `--processes N` runs the concurrent writers in N child processes of this
//! binary (the hidden `--writer-process` mode). `--help` lists every knob.

mod cli;
mod client;
mod data;
mod report;
mod server;
mod stats;
mod workloads;

use std::process::ExitCode;

use clap::Parser;

/// The error type of the harness: any error, with its message.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// Result of a fallible harness step.
pub type BenchResult<T> = Result<T, BenchError>;

#[tokio::main]
async fn main() -> ExitCode {
    // The `raw` workload connects to PostgreSQL in this process.
    mlmeta_server::skip_openssl_exit_cleanup();
    let args = cli::Args::parse();
    if args.writer_process {
        return workloads::writers::child_main().await;
    }
    let json = args.json;
    match workloads::run(args).await {
        Ok(report) => {
            report.print(json);
            if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
