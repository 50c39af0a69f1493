//! `watch-latency` and `watchers`: WatchEpochs from the watcher's side.
//!
//! - `watch-latency`: one writer inserts one epoch per call, one after the
//!   other; a watcher (on `--watch-server`, another replica, when given)
//!   receives them. Reports the time from sending each InsertEpochs to the
//!   watcher receiving its epoch, next to the insert call's own latency
//!   (the commit is somewhere inside that call).
//! - `watchers`: `--writers` (the largest) trainers write, first with no
//!   watchers, then with `--watchers` watchers of all their models open on
//!   the same server (100 per connection); reports both throughputs, the
//!   RSS the watchers added, and whether every watcher got every epoch
//!   exactly once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlmeta_proto::{InsertEpochsRequest, WatchEpochsRequest};

use crate::BenchResult;
use crate::cli::WatchScope;
use crate::client::connect;
use crate::data::setup_models;
use crate::report::Report;
use crate::server::Target;
use crate::stats::{Latencies, cpu_micros_per, millis, rate};
use crate::workloads::Ctx;
use crate::workloads::writers;

/// Watchers per connection in `watchers`.
const WATCHERS_PER_CONNECTION: usize = 100;

/// How long watchers get to receive every epoch after the writers end.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// Measures commit-to-watcher latency.
pub async fn latency(ctx: &mut Ctx, report: &mut Report) -> BenchResult<()> {
    let n = ctx.args.watch_epochs;
    let watch_url = ctx.args.watch_server.clone().unwrap_or_else(|| ctx.url.clone());
    eprintln!("  {n} epochs, one per call; watcher on {watch_url}");
    let set = setup_models(&ctx.client, &ctx.tag, "watchlat", 1, 1).await?;
    let model = set.names[0].clone();
    let mut watcher = connect(&watch_url).await?;
    let mut stream = watcher
        .watch_epochs(WatchEpochsRequest {
            model_names: vec![model.clone()],
            ..Default::default()
        })
        .await?
        .into_inner();
    stream.message().await?;
    let mut writer = ctx.client.clone();
    let mut to_watcher = Latencies::with_capacity(n);
    let mut calls = Latencies::with_capacity(n);
    for num in 0..n {
        let epoch = ctx.metrics.epoch(&set, 0, num, n);
        let sent = Instant::now();
        writer
            .insert_epochs(InsertEpochsRequest {
                columns: Vec::new(),
                project: String::new(),
                epochs: vec![epoch],
            })
            .await?;
        calls.push(sent.elapsed());
        loop {
            let message = stream.message().await?.ok_or("the watch ended")?;
            if message.epochs.iter().any(|e| e.epoch_num == num as i64) {
                break;
            }
        }
        to_watcher.push(sent.elapsed());
    }
    let where_ = if ctx.args.watch_server.is_some() {
        "other replica"
    } else {
        "same server"
    };
    for (p, name) in [(50.0, "p50"), (99.0, "p99")] {
        report.add(
            "watch-latency",
            format!("send to watcher ({where_}) {name}"),
            millis(to_watcher.percentile(p)),
            "ms",
        );
        report.add(
            "watch-latency",
            format!("InsertEpochs call {name}"),
            millis(calls.percentile(p)),
            "ms",
        );
    }
    Ok(())
}

/// Measures writers with and without many watchers.
pub async fn many(ctx: &mut Ctx, target: &Target, report: &mut Report) -> BenchResult<()> {
    let writers_n = ctx.args.writers.iter().copied().max().unwrap_or(64);
    let watchers_n = ctx.args.watchers;
    let epochs = ctx.args.writer_epochs;
    eprintln!(
        "  {writers_n} writers x {epochs} epochs, without and with {watchers_n} watchers ({:?} models each)",
        ctx.args.watch_scope
    );
    let indices: Vec<usize> = (0..writers_n).collect();

    let alone = Arc::new(setup_models(&ctx.client, &ctx.tag, "watchless", writers_n, 4).await?);
    let cpu_before = target.cpu_seconds();
    let (elapsed, outcomes) =
        writers::in_this_process(&ctx.url, ctx.metrics, Arc::clone(&alone), &indices, epochs).await?;
    let acked: u64 = outcomes.iter().map(|(_, o)| o.acked.len() as u64).sum();
    if let Some(per_epoch) = cpu_micros_per(cpu_before, target.cpu_seconds(), acked) {
        report.add(
            "watchers",
            "no watchers: server CPU per written epoch",
            per_epoch,
            "µs",
        );
    }
    report.add(
        "watchers",
        format!("W={writers_n}, no watchers: epochs/s"),
        rate(acked, elapsed),
        "epochs/s",
    );

    let set = Arc::new(setup_models(&ctx.client, &ctx.tag, "watched", writers_n, 4).await?);
    let rss_before = target.rss_kib();
    let mut connections = Vec::new();
    for _ in 0..watchers_n.div_ceil(WATCHERS_PER_CONNECTION) {
        connections.push(connect(&ctx.url).await?);
    }
    let scope = ctx.args.watch_scope;
    let expected = match scope {
        WatchScope::All => (writers_n * epochs) as u64,
        WatchScope::One => epochs as u64,
    };
    let mut watchers = Vec::with_capacity(watchers_n);
    for i in 0..watchers_n {
        let mut client = connections[i / WATCHERS_PER_CONNECTION].clone();
        let model_names = match scope {
            WatchScope::All => set.names.clone(),
            WatchScope::One => vec![set.names[i % set.names.len()].clone()],
        };
        let mut stream = client
            .watch_epochs(WatchEpochsRequest {
                model_names,
                ..Default::default()
            })
            .await?
            .into_inner();
        stream.message().await?;
        watchers.push(tokio::spawn(async move {
            let mut seen: HashSet<(String, i64)> = HashSet::new();
            let mut repeats = 0_u64;
            let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT + Duration::from_secs(600);
            while (seen.len() as u64) < expected {
                match tokio::time::timeout_at(deadline, stream.message()).await {
                    Ok(Ok(Some(message))) => {
                        for epoch in message.epochs {
                            if !seen.insert((epoch.model_name, epoch.epoch_num)) {
                                repeats += 1;
                            }
                        }
                    }
                    _ => break,
                }
            }
            (seen.len() as u64, repeats)
        }));
    }
    let rss_open = target.rss_kib();
    let cpu_before = target.cpu_seconds();
    let (elapsed, outcomes) =
        writers::in_this_process(&ctx.url, ctx.metrics, Arc::clone(&set), &indices, epochs).await?;
    let acked: u64 = outcomes.iter().map(|(_, o)| o.acked.len() as u64).sum();
    report.add(
        "watchers",
        format!("W={writers_n}, {watchers_n} watchers ({scope:?} models each): epochs/s"),
        rate(acked, elapsed),
        "epochs/s",
    );
    let rss_during = target.rss_kib();
    let mut acked_by_writer = vec![0_u64; writers_n];
    for (writer, outcome) in &outcomes {
        acked_by_writer[*writer] = outcome.acked.len() as u64;
    }
    let (mut complete, mut repeats) = (0, 0);
    let drained = Instant::now();
    for (i, watcher) in watchers.into_iter().enumerate() {
        let (got, twice) = watcher.await.map_err(|e| e.to_string())?;
        let owed = match scope {
            WatchScope::All => acked,
            WatchScope::One => acked_by_writer[i % writers_n],
        };
        if got == owed {
            complete += 1;
        }
        repeats += twice;
    }
    report.add(
        "watchers",
        "time for all watchers to receive everything after the writers ended",
        millis(drained.elapsed()),
        "ms",
    );
    let delivered: u64 = match scope {
        WatchScope::All => acked * watchers_n as u64,
        WatchScope::One => (0..watchers_n).map(|i| acked_by_writer[i % writers_n]).sum(),
    };
    // Writes and deliveries together, from the writers' start to the last
    // watcher's end.
    if let Some(per_epoch) = cpu_micros_per(cpu_before, target.cpu_seconds(), delivered) {
        report.add(
            "watchers",
            "with watchers: server CPU per delivered epoch (writes included)",
            per_epoch,
            "µs",
        );
    }
    if let (Some(before), Some(open), Some(during)) = (rss_before, rss_open, rss_during) {
        report.add(
            "watchers",
            format!("{watchers_n} watchers open: server RSS added"),
            open.saturating_sub(before) as f64 / 1024.0,
            "MiB",
        );
        report.add(
            "watchers",
            "server RSS added, during the writes",
            during.saturating_sub(before) as f64 / 1024.0,
            "MiB",
        );
    }
    report.add(
        "watchers",
        "watchers that received every epoch",
        complete as f64,
        "watchers",
    );
    report.add(
        "watchers",
        "epochs received twice (all watchers)",
        repeats as f64,
        "epochs",
    );
    Ok(())
}
