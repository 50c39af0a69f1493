//! Command-line flags.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::BenchResult;

/// Flags of `mlmeta-bench`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "mlmeta-bench",
    version,
    about = "Benchmarks an mlmeta server: bulk ingest, best-model queries, streaming trainers, concurrent writers, listings.",
    after_help = "Examples:\n  mlmeta-bench --spawn sqlite\n  mlmeta-bench --spawn postgres --workload bulk --json\n  mlmeta-bench --server http://127.0.0.1:50051 --workload best --scale large"
)]
pub struct Args {
    /// Benchmark an already running server at this URL (e.g.
    /// `http://127.0.0.1:50051`); its peak RSS is not reported.
    #[arg(long, conflicts_with = "spawn")]
    pub server: Option<String>,

    /// Spawn `mlmeta-server` on a fresh database of this backend (the
    /// default when `--server` is not given). PostgreSQL uses
    /// `MLMETA_BENCH_POSTGRES_URL` to create and drop the database.
    #[arg(long, value_enum)]
    pub spawn: Option<Backend>,

    /// The `mlmeta-server` binary to spawn; default: next to this binary.
    #[arg(long)]
    pub server_bin: Option<PathBuf>,

    /// Which workload to run; `all` runs bulk, best, stream, concurrent and
    /// list in this order.
    #[arg(long, value_enum, default_value_t = Workload::All)]
    pub workload: Workload,

    /// Models of the `bulk` workload (and models per datablob group in
    /// `list`).
    #[arg(long, default_value_t = 100)]
    pub models: usize,

    /// Epochs per model in `bulk` (and of the listed model in `list`).
    #[arg(long, default_value_t = 1_000)]
    pub epochs: usize,

    /// Epochs per InsertEpochs request in `bulk` (at most 100,000).
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,

    /// Writer counts of the `concurrent` workload, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    pub writers: Vec<usize>,

    /// `large` stores 1,000 models x 1,000 epochs before `best` measures.
    #[arg(long, value_enum, default_value_t = Scale::Default)]
    pub scale: Scale,

    /// Epochs of the single trainer in `stream`.
    #[arg(long, default_value_t = 2_000)]
    pub stream_epochs: usize,

    /// Epochs of each writer in `concurrent`.
    #[arg(long, default_value_t = 300)]
    pub writer_epochs: usize,

    /// Timed calls per query kind in `best` and `list`.
    #[arg(long, default_value_t = 200)]
    pub calls: usize,

    /// Seed of the generated metric values.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// A database backend the harness can spawn the server on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// A temporary SQLite file.
    Sqlite,
    /// A new database on `MLMETA_BENCH_POSTGRES_URL`.
    Postgres,
}

/// Which workload(s) to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Every workload, in the order below.
    All,
    /// Batched InsertEpochs, 2 requests in flight and sequential.
    Bulk,
    /// GetBestModel latency (on the bulk data).
    Best,
    /// One trainer, one unary InsertEpochs per epoch.
    Stream,
    /// Several trainers at once, one call per epoch each.
    Concurrent,
    /// ListModels of one group and ListEpochs of one model.
    List,
}

impl Workload {
    /// The workloads this choice runs, in order.
    pub fn expand(self) -> Vec<Workload> {
        match self {
            Workload::All => vec![
                Workload::Bulk,
                Workload::Best,
                Workload::Stream,
                Workload::Concurrent,
                Workload::List,
            ],
            one => vec![one],
        }
    }

    /// Name as printed in the report.
    pub fn name(self) -> &'static str {
        match self {
            Workload::All => "all",
            Workload::Bulk => "bulk",
            Workload::Best => "best",
            Workload::Stream => "stream",
            Workload::Concurrent => "concurrent",
            Workload::List => "list",
        }
    }
}

/// Size of the data `best` measures on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scale {
    /// What `bulk` stored (`--models` x `--epochs`).
    Default,
    /// At least 1,000 models x 1,000 epochs.
    Large,
}

/// Largest number of epochs in one InsertEpochs request.
pub const MAX_BATCH: usize = 100_000;

impl Args {
    /// The backend to spawn, if any: `--spawn`, or SQLite without `--server`.
    pub fn spawn_backend(&self) -> Option<Backend> {
        match (&self.server, self.spawn) {
            (Some(_), _) => None,
            (None, Some(backend)) => Some(backend),
            (None, None) => Some(Backend::Sqlite),
        }
    }

    /// Rejects sizes the workloads cannot run with.
    pub fn check(&self) -> BenchResult<()> {
        let positive = [
            ("--models", self.models),
            ("--epochs", self.epochs),
            ("--batch", self.batch),
            ("--stream-epochs", self.stream_epochs),
            ("--writer-epochs", self.writer_epochs),
            ("--calls", self.calls),
        ];
        for (flag, value) in positive {
            if value == 0 {
                return Err(format!("{flag} must be at least 1").into());
            }
        }
        if self.batch > MAX_BATCH {
            return Err(format!("--batch must be at most {MAX_BATCH}").into());
        }
        if self.writers.is_empty() || self.writers.contains(&0) {
            return Err("--writers must list counts of at least 1".into());
        }
        Ok(())
    }
}
