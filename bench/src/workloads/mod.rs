//! The workloads and the run that strings them together: start the target,
//! run each workload, read the server's peak RSS after each, stop.

mod acked;
mod best;
mod bulk;
mod columnar;
mod concurrent;
mod filter;
mod idle;
mod large;
mod list;
mod raw;
mod stream;
mod watch;
pub mod writers;

use std::future::Future;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::BenchResult;
use crate::cli::{Args, Workload};
use crate::client::Client;
use crate::data::{MetricGen, ModelSet};
use crate::report::Report;
use crate::server::Target;
use crate::stats::Latencies;

/// Untimed calls before each timed series of queries.
const WARMUP_CALLS: usize = 3;

/// What the workloads share.
#[derive(Debug)]
pub struct Ctx {
    /// The flags.
    pub args: Args,
    /// A client on the first connection to the server.
    pub client: Client,
    /// The server's URL, for workloads that open their own connections.
    pub url: String,
    /// Prefix of every record name of this run, so that runs against the
    /// same external server never collide.
    pub tag: String,
    /// Generator of the metric values.
    pub metrics: MetricGen,
    /// Model sets whose epochs are stored, with their epochs per model:
    /// what `bulk` (or `best` itself) stored, queried by `best`.
    pub stored: Vec<(ModelSet, usize)>,
    /// Metric values/s of the `raw` floor, when it ran: `bulk` reports its
    /// ratio to it.
    pub raw_values_per_s: Option<f64>,
}

/// Runs the workloads of `args` and returns the report (problems included;
/// an error only when the target could not be started).
pub async fn run(args: Args) -> BenchResult<Report> {
    args.check()?;
    let (mut target, client) = Target::start(&args).await?;
    let mut report = Report::new(target.backend);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    report.fact("cores", cores);
    report.fact("backend", target.backend);
    report.fact(
        "profile",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    );
    match target.pid() {
        Some(pid) => report.fact("server", format!("spawned pid {pid}")),
        None => report.fact("server", target.url.clone()),
    }
    report.fact("database", target.database.clone());
    report.fact("loadavg_start", load_average());
    report.fact("models", args.models);
    report.fact("epochs", args.epochs);
    report.fact("batch", args.batch);
    report.fact(
        "writers",
        args.writers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("/"),
    );
    report.fact("processes", args.processes);
    report.fact("scale", format!("{:?}", args.scale).to_lowercase());

    let run_start = Instant::now();
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut ctx = Ctx {
        metrics: MetricGen::new(args.seed),
        tag: format!("r{secs:x}p{}", std::process::id()),
        url: target.url.clone(),
        client,
        args,
        stored: Vec::new(),
        raw_values_per_s: None,
    };
    for workload in ctx.args.workloads() {
        let name = workload.name();
        eprintln!("[{:>6.1}s] {name}", run_start.elapsed().as_secs_f64());
        let rss_reset = target.reset_peak_rss();
        let result = match workload {
            Workload::Raw => raw::run(&mut ctx, &mut report).await,
            Workload::Bulk => bulk::run(&mut ctx, &mut report).await,
            Workload::Columnar => columnar::run(&mut ctx, &mut report).await,
            Workload::Best => best::run(&mut ctx, &mut report).await,
            Workload::Stream => stream::run(&mut ctx, &mut report).await,
            Workload::Acked => acked::run(&mut ctx, &mut report).await,
            Workload::Concurrent => concurrent::run(&mut ctx, &target, &mut report).await,
            Workload::List => list::run(&mut ctx, &mut report).await,
            Workload::Filter => filter::run(&mut ctx, &mut report).await,
            Workload::Idle => idle::run(&mut ctx, &target, &mut report).await,
            Workload::Large => large::run(&mut ctx, &target, &mut report).await,
            Workload::WatchLatency => watch::latency(&mut ctx, &mut report).await,
            Workload::Watchers => watch::many(&mut ctx, &target, &mut report).await,
            Workload::All => Ok(()),
        };
        if let Err(error) = result {
            report.problem(format!("{name} failed: {error}"));
        }
        // The server takes no part in `raw`.
        if let Some(kib) = target.peak_rss_kib().filter(|_| workload != Workload::Raw) {
            let figure = if rss_reset {
                "server peak RSS (this workload)"
            } else {
                "server peak RSS (since start)"
            };
            report.add(name, figure, kib as f64 / 1024.0, "MiB");
        }
        if let Err(error) = target.check_alive() {
            report.problem(error.to_string());
            break;
        }
    }
    report.fact("loadavg_end", load_average());
    report.fact(
        "wall_s",
        (run_start.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    );
    drop(target);
    Ok(report)
}

/// Times `calls` calls of `call` made one after the other, after a few
/// untimed ones.
pub async fn time_calls<F, Fut>(calls: usize, mut call: F) -> BenchResult<Latencies>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = BenchResult<()>>,
{
    for _ in 0..WARMUP_CALLS {
        call().await?;
    }
    let mut latencies = Latencies::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        call().await?;
        latencies.push(start.elapsed());
    }
    Ok(latencies)
}

/// The 1-, 5- and 15-minute load averages, as in /proc/loadavg.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}
