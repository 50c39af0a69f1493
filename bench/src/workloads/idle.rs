//! `idle`: `--idle-streams` StreamEpochs calls held open at once (100 per
//! connection), each having sent one one-epoch message and then nothing:
//! trainers between epochs. Reports what the server's RSS grew by per idle
//! stream, how many streams the server refused, and whether unary reads,
//! unary writes and a new stream still get through while they are open.

use std::time::{Duration, Instant};

use mlmeta_proto::{InsertEpochsRequest, ListModelsRequest};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::BenchResult;
use crate::client::connect;
use crate::data::{count_stored, setup_models};
use crate::report::Report;
use crate::server::Target;
use crate::workloads::Ctx;

/// Streams per connection.
const STREAMS_PER_CONNECTION: usize = 100;

/// How long the open streams get to have their first messages stored.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Holds the idle streams open and measures around them.
pub async fn run(ctx: &mut Ctx, target: &Target, report: &mut Report) -> BenchResult<()> {
    let n = ctx.args.idle_streams;
    eprintln!("  {n} idle streams, {STREAMS_PER_CONNECTION} per connection");
    let set = setup_models(&ctx.client, &ctx.tag, "idle", 2, 1).await?;
    let (model, probe_model) = (set.names[0].clone(), set.names[1].clone());
    let mut clients = Vec::new();
    for _ in 0..n.div_ceil(STREAMS_PER_CONNECTION) {
        clients.push(connect(&ctx.url).await?);
    }
    let rss_before = target.rss_kib();
    let mut senders = Vec::with_capacity(n);
    let mut calls = Vec::with_capacity(n);
    for i in 0..n {
        let (sender, receiver) = mpsc::channel::<InsertEpochsRequest>(1);
        let mut client = clients[i / STREAMS_PER_CONNECTION].clone();
        calls.push(tokio::spawn(async move {
            client.stream_epochs(ReceiverStream::new(receiver)).await
        }));
        let epoch = ctx.metrics.epoch(&set, 0, i, n);
        sender
            .send(InsertEpochsRequest {
                columns: Vec::new(),
                project: String::new(),
                epochs: vec![epoch],
            })
            .await
            .map_err(|_| format!("stream {i} ended before its first message"))?;
        senders.push(sender);
    }
    // Every stream is open on the server once its message is stored (or it
    // was refused, which ends its call).
    // A server whose streams hold unary slots refuses this read: the very
    // lock-out to show, so it is reported and the probes below still run.
    let start = Instant::now();
    let stored = loop {
        let stored = match count_stored(&ctx.client, std::slice::from_ref(&model)).await {
            Ok(stored) => stored,
            Err(error) => {
                report.problem(format!("idle: counting the stored epochs failed: {error}"));
                tokio::time::sleep(Duration::from_secs(1)).await;
                break 0;
            }
        };
        let refused = calls.iter().filter(|call| call.is_finished()).count() as u64;
        if stored + refused >= n as u64 || start.elapsed() > SETTLE_TIMEOUT {
            break stored;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let refused = calls.iter().filter(|call| call.is_finished()).count();
    if let (Some(before), Some(after)) = (rss_before, target.rss_kib()) {
        let grown = after.saturating_sub(before) as f64;
        report.add(
            "idle",
            format!("{n} streams: server RSS growth"),
            grown / 1024.0,
            "MiB",
        );
        report.add(
            "idle",
            "RSS per open stream",
            grown / (n - refused).max(1) as f64,
            "KiB",
        );
    }
    report.add(
        "idle",
        format!("{n} streams: open"),
        (n - refused) as f64,
        "streams",
    );
    report.add("idle", format!("{n} streams: refused"), refused as f64, "streams");
    report.add(
        "idle",
        format!("{n} streams: first messages stored"),
        stored as f64,
        "epochs",
    );

    // With every stream open: a read, a write and a new stream.
    let mut probe = connect(&ctx.url).await?;
    let read = probe.list_models(ListModelsRequest::default()).await;
    let epoch = |num| ctx.metrics.epoch(&set, 1, num, 2);
    let write = probe
        .insert_epochs(InsertEpochsRequest {
            columns: Vec::new(),
            project: String::new(),
            epochs: vec![epoch(0)],
        })
        .await;
    let stream = probe
        .stream_epochs(futures::stream::iter(vec![InsertEpochsRequest {
            columns: Vec::new(),
            project: String::new(),
            epochs: vec![epoch(1)],
        }]))
        .await;
    for (what, failed) in [
        ("ListModels", read.err()),
        ("InsertEpochs", write.err()),
        ("a new StreamEpochs", stream.err()),
    ] {
        let ok = failed.is_none();
        report.add(
            "idle",
            format!("{what} with {n} streams open"),
            f64::from(u8::from(ok)),
            "ok",
        );
        if let Some(status) = failed {
            report.problem(format!("idle: {what} failed with {n} streams open: {status}"));
        }
    }
    drop(senders);
    for call in calls {
        let _ = call.await;
    }
    let probed = count_stored(&ctx.client, &[probe_model]).await?;
    if probed != 2 && report.problems.is_empty() {
        report.problem(format!("idle: the probe model holds {probed} epochs, expected 2"));
    }
    Ok(())
}
