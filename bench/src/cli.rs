//! Command-line flags.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::BenchResult;

/// What each watcher of the `watchers` workload watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WatchScope {
    /// Every writer's model.
    All,
    /// One writer's model.
    One,
}

/// Flags of `mlmeta-bench`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "mlmeta-bench",
    version,
    about = "Benchmarks an mlmeta server: bulk ingest (against the raw database floor), best-model queries, streaming trainers, concurrent writers, listings.",
    after_help = "Examples:\n  mlmeta-bench --spawn sqlite\n  mlmeta-bench --spawn postgres --workload raw,bulk --json\n  mlmeta-bench --spawn sqlite --workload concurrent --writers 64 --processes 4\n  mlmeta-bench --server http://127.0.0.1:50051 --workload best --scale large"
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

    /// An extra flag for the spawned server, repeatable, such as
    /// `--server-arg=--no-grpc-metrics` (A/B of the metrics layer) or
    /// `--server-arg=--http-listen=127.0.0.1:50080` (to scrape it; the
    /// spawned server has no HTTP listener otherwise).
    #[arg(long, allow_hyphen_values = true)]
    pub server_arg: Vec<String>,

    /// Workloads to run, comma-separated; they always run in the order
    /// raw, bulk, columnar, best, stream, acked, concurrent, list. `all` is every one
    /// (`raw` only when the harness spawns the server: it needs to know
    /// the backend).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
    pub workload: Vec<Workload>,

    /// Models of the `raw` and `bulk` workloads (and models per datablob
    /// group in `list`).
    #[arg(long, default_value_t = 100)]
    pub models: usize,

    /// Epochs per model in `raw` and `bulk` (and of the listed model in
    /// `list`).
    #[arg(long, default_value_t = 1_000)]
    pub epochs: usize,

    /// Epochs per InsertEpochs request in `bulk` and `columnar`, and per transaction in
    /// `raw` (at most 100,000).
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

    /// Epochs of the trainer in each mode of `acked` (batches of
    /// `--acked-batch`).
    #[arg(long, default_value_t = 20_000)]
    pub acked_epochs: usize,

    /// Epochs per batch in `acked`.
    #[arg(long, default_value_t = 100)]
    pub acked_batch: usize,

    /// Epochs of each writer in `concurrent`.
    #[arg(long, default_value_t = 300)]
    pub writer_epochs: usize,

    /// OS processes the writers of `concurrent` run in: 1 runs them as
    /// tasks of this process; more re-runs this binary that many times,
    /// each child with an equal share of the writers (never more processes
    /// than writers).
    #[arg(long, default_value_t = 1)]
    pub processes: usize,

    /// Streams the `idle` workload holds open at once, sending nothing.
    #[arg(long, default_value_t = 2_000)]
    pub idle_streams: usize,

    /// Burst sizes of the `large` workload, comma-separated: that many
    /// large InsertEpochs requests at once, each on its own connection.
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    pub large_requests: Vec<usize>,

    /// Approximate size of each `large` request, in MiB (at most 100,000
    /// epochs of `--large-metrics` metrics; fewer MiB if that is less).
    #[arg(long, default_value_t = 60)]
    pub large_mib: usize,

    /// Metrics per epoch in the `large` requests.
    #[arg(long, default_value_t = 32)]
    pub large_metrics: usize,

    /// During `large`, kill the spawned server once its RSS passes this
    /// many MiB (and report the burst as over it), so that a server without
    /// a memory bound cannot take a shared machine down.
    #[arg(long, default_value_t = 8_192)]
    pub rss_cap_mib: u64,

    /// Timed calls per query kind in `best` and `list`.
    #[arg(long, default_value_t = 200)]
    pub calls: usize,

    /// Seed of the generated metric values.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Epochs the `watch-latency` writer sends (one per call).
    #[arg(long, default_value_t = 500)]
    pub watch_epochs: usize,
    /// The server (another replica on the same database) that the
    /// `watch-latency` watcher connects to; default: the benchmarked one.
    #[arg(long)]
    pub watch_server: Option<String>,
    /// Watchers of the `watchers` workload.
    #[arg(long, default_value_t = 1_000)]
    pub watchers: usize,
    /// What each watcher of `watchers` watches: `all` the writers' models
    /// (every epoch goes to every watcher: the worst case of fan-out), or
    /// `one` model (watcher `i` watches writer `i mod W`'s model, as a
    /// dashboard of one run does).
    #[arg(long, value_enum, default_value_t = WatchScope::All)]
    pub watch_scope: WatchScope,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Internal: run as a writer process of `--processes`: read the job
    /// (JSON) on stdin, print results (JSON) on stdout.
    #[arg(long, hide = true)]
    pub writer_process: bool,
}

/// A database backend the harness can spawn the server on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// A temporary SQLite file.
    Sqlite,
    /// A new database on `MLMETA_BENCH_POSTGRES_URL`.
    Postgres,
}

impl Backend {
    /// Name as printed in the report.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Which workload(s) to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Workload {
    /// Every workload, in the order below.
    All,
    /// The floor: the bulk rows written straight into a fresh database
    /// with diesel, in this process, no gRPC.
    Raw,
    /// Batched InsertEpochs, 2 requests in flight and sequential.
    Bulk,
    /// The `bulk` data in the columnar form (EpochColumns), one request in
    /// flight.
    Columnar,
    /// GetBestModel latency (on the bulk data).
    Best,
    /// One trainer, one unary InsertEpochs per epoch.
    Stream,
    /// One trainer sending batches: WriteEpochs (acknowledged, pipelined)
    /// against StreamEpochs and sequential InsertEpochs.
    Acked,
    /// Several trainers at once, one call per epoch each.
    Concurrent,
    /// ListModels of one group and ListEpochs of one model.
    List,
    /// The `where` filter language: best, a list page and a non-matching
    /// expression over models with params and tags (not part of `all`).
    Filter,
    /// Many idle streams held open: their memory, and whether unary calls
    /// still get through (not part of `all`).
    Idle,
    /// Bursts of concurrent large InsertEpochs requests: the server's peak
    /// RSS under them (not part of `all`: it stores gigabytes).
    Large,
    /// Commit-to-watcher latency of WatchEpochs (on `--watch-server` when
    /// given; not part of `all`).
    WatchLatency,
    /// `--watchers` watchers while the largest `--writers` count writes:
    /// throughput against no watchers, RSS, completeness (not part of `all`).
    Watchers,
}

impl Workload {
    /// Name as printed in the report.
    pub fn name(self) -> &'static str {
        match self {
            Workload::All => "all",
            Workload::Raw => "raw",
            Workload::Bulk => "bulk",
            Workload::Columnar => "columnar",
            Workload::Best => "best",
            Workload::Stream => "stream",
            Workload::Acked => "acked",
            Workload::Concurrent => "concurrent",
            Workload::List => "list",
            Workload::Filter => "filter",
            Workload::Idle => "idle",
            Workload::Large => "large",
            Workload::WatchLatency => "watch-latency",
            Workload::Watchers => "watchers",
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

    /// The workloads to run, in their fixed order (so `raw` runs before
    /// `bulk`, which reports its ratio to it), each once.
    pub fn workloads(&self) -> Vec<Workload> {
        let all = self.workload.contains(&Workload::All);
        let mut chosen: Vec<Workload> = if all {
            let mut every = vec![
                Workload::Bulk,
                Workload::Columnar,
                Workload::Best,
                Workload::Stream,
                Workload::Acked,
                Workload::Concurrent,
                Workload::List,
            ];
            if self.spawn_backend().is_some() {
                every.push(Workload::Raw);
            }
            every.extend(self.workload.iter().filter(|w| **w != Workload::All));
            every
        } else {
            self.workload.clone()
        };
        chosen.sort_unstable();
        chosen.dedup();
        chosen
    }

    /// Rejects sizes the workloads cannot run with.
    pub fn check(&self) -> BenchResult<()> {
        let positive = [
            ("--models", self.models),
            ("--epochs", self.epochs),
            ("--batch", self.batch),
            ("--stream-epochs", self.stream_epochs),
            ("--acked-epochs", self.acked_epochs),
            ("--acked-batch", self.acked_batch),
            ("--writer-epochs", self.writer_epochs),
            ("--calls", self.calls),
            ("--idle-streams", self.idle_streams),
            ("--large-mib", self.large_mib),
            ("--large-metrics", self.large_metrics),
        ];
        for (flag, value) in positive {
            if value == 0 {
                return Err(format!("{flag} must be at least 1").into());
            }
        }
        if self.batch > MAX_BATCH || self.acked_batch > MAX_BATCH {
            return Err(format!("--batch and --acked-batch must be at most {MAX_BATCH}").into());
        }
        if self.writers.is_empty() || self.writers.contains(&0) {
            return Err("--writers must list counts of at least 1".into());
        }
        if self.large_requests.is_empty() || self.large_requests.contains(&0) {
            return Err("--large-requests must list counts of at least 1".into());
        }
        if self.large_metrics > 1_024 {
            return Err("--large-metrics must be at most 1024".into());
        }
        if self.processes == 0 {
            return Err("--processes must be at least 1".into());
        }
        if self.workload.contains(&Workload::Raw) && self.spawn_backend().is_none() {
            return Err(
                "the raw workload needs the backend: use --spawn sqlite|postgres, not --server".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(flags: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("mlmeta-bench").chain(flags.iter().copied())).unwrap()
    }

    #[test]
    fn workloads_run_in_fixed_order_once() {
        assert_eq!(
            parse(&["--workload", "bulk,raw,bulk"]).workloads(),
            [Workload::Raw, Workload::Bulk]
        );
        let all = parse(&[]).workloads();
        assert_eq!(all.first(), Some(&Workload::Raw));
        assert_eq!(all.len(), 8);
        assert_eq!(
            all[1..3],
            [Workload::Bulk, Workload::Columnar],
            "columnar runs after raw and bulk"
        );
        let external = parse(&["--server", "http://127.0.0.1:1"]);
        assert!(!external.workloads().contains(&Workload::Raw));
        assert!(external.check().is_ok());
        assert!(
            parse(&["--server", "http://127.0.0.1:1", "--workload", "raw"])
                .check()
                .is_err()
        );
        assert!(parse(&["--processes", "0"]).check().is_err());
        assert!(!all.contains(&Workload::Large) && !all.contains(&Workload::Idle));
        assert_eq!(
            parse(&["--workload", "large,idle"]).workloads(),
            [Workload::Idle, Workload::Large]
        );
        assert!(parse(&["--large-requests", "0"]).check().is_err());
    }
}
