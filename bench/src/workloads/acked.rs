//! `acked`: one trainer sending `--acked-epochs` epochs (8 metrics each)
//! in batches of `--acked-batch`, three ways, each on its own model:
//! WriteEpochs (every batch acknowledged once committed, the next ones
//! sent meanwhile), one StreamEpochs call (each message committed, one
//! answer at the end), and sequential InsertEpochs calls (one in flight).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use mlmeta_proto::{InsertEpochsRequest, WriteEpochsRequest};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::BenchResult;
use crate::data::{count_stored, setup_models};
use crate::report::Report;
use crate::stats::{Latencies, millis, rate};
use crate::workloads::Ctx;

/// Batches the WriteEpochs trainer keeps unacknowledged, at most (as the
/// client library's EpochWriter does).
const IN_FLIGHT: usize = 8;

/// Measures acknowledged batch ingest against the two older ways.
pub async fn run(ctx: &mut Ctx, report: &mut Report) -> BenchResult<()> {
    let (n, batch) = (ctx.args.acked_epochs, ctx.args.acked_batch);
    eprintln!("  1 model x {n} epochs per mode, {batch} epochs per batch");
    for mode in ["WriteEpochs", "StreamEpochs", "InsertEpochs"] {
        let set = setup_models(
            &ctx.client,
            &ctx.tag,
            &format!("acked{}", mode.to_lowercase()),
            1,
            1,
        )
        .await?;
        let requests: Vec<InsertEpochsRequest> = ctx.metrics.requests(&set, n, batch).collect();
        let mut client = ctx.client.clone();
        let start = Instant::now();
        let (inserted, latencies) = match mode {
            "WriteEpochs" => write_epochs(&mut client, requests).await?,
            "StreamEpochs" => {
                let response = client
                    .stream_epochs(futures::stream::iter(requests))
                    .await
                    .map_err(|s| format!("StreamEpochs: {s}"))?;
                (response.into_inner().inserted, None)
            }
            _ => {
                let mut latencies = Latencies::with_capacity(requests.len());
                let mut inserted = 0;
                for request in requests {
                    let sent = Instant::now();
                    let response = client
                        .insert_epochs(request)
                        .await
                        .map_err(|s| format!("InsertEpochs: {s}"))?;
                    latencies.push(sent.elapsed());
                    inserted += response.into_inner().inserted;
                }
                (inserted, Some(latencies))
            }
        };
        let elapsed = start.elapsed();
        report.add(
            "acked",
            format!("{mode}: epochs/s"),
            rate(n as u64, elapsed),
            "epochs/s",
        );
        if let Some(mut latencies) = latencies {
            let what = if mode == "WriteEpochs" { "ack" } else { "call" };
            report.add(
                "acked",
                format!("{mode}: {what} p50"),
                millis(latencies.percentile(50.0)),
                "ms",
            );
            report.add(
                "acked",
                format!("{mode}: {what} p99"),
                millis(latencies.percentile(99.0)),
                "ms",
            );
        }
        let stored = count_stored(&ctx.client, &set.names).await?;
        if inserted != n as u64 || stored != n as u64 {
            report.problem(format!(
                "acked {mode}: {n} epochs sent, answers say {inserted} inserted, {stored} stored"
            ));
        }
    }
    Ok(())
}

/// Sends `requests` as WriteEpochs batches, at most [`IN_FLIGHT`]
/// unacknowledged; returns the epochs inserted and each batch's time from
/// sending to its acknowledgement.
async fn write_epochs(
    client: &mut crate::client::Client,
    requests: Vec<InsertEpochsRequest>,
) -> BenchResult<(u64, Option<Latencies>)> {
    let total = requests.len();
    let (sender, receiver) = mpsc::channel(IN_FLIGHT);
    let mut answers = client
        .write_epochs(ReceiverStream::new(receiver))
        .await
        .map_err(|s| format!("WriteEpochs: {s}"))?
        .into_inner();
    let mut latencies = Latencies::with_capacity(total);
    let mut sent_at: VecDeque<Instant> = VecDeque::with_capacity(IN_FLIGHT);
    let mut batches = requests.into_iter().enumerate();
    let mut inserted = 0;
    let mut acked = 0;
    while acked < total {
        while sent_at.len() < IN_FLIGHT {
            let Some((i, request)) = batches.next() else { break };
            let batch = WriteEpochsRequest {
                columns: Vec::new(),
                sequence: i as u64,
                epochs: request.epochs,
                project: request.project,
                stop_on_error: true,
            };
            sender
                .send(batch)
                .await
                .map_err(|_| "WriteEpochs: the stream closed")?;
            sent_at.push_back(Instant::now());
        }
        let answer = tokio::time::timeout(Duration::from_secs(300), answers.message())
            .await
            .map_err(|_| "WriteEpochs: no answer within 300 s")?
            .map_err(|s| format!("WriteEpochs: {s}"))?
            .ok_or("WriteEpochs: the stream ended early")?;
        if answer.sequence != acked as u64 {
            return Err(format!(
                "WriteEpochs: answer {} while {acked} was expected",
                answer.sequence
            )
            .into());
        }
        if let Some(sent) = sent_at.pop_front() {
            latencies.push(sent.elapsed());
        }
        inserted += answer.inserted;
        acked += 1;
    }
    drop(sender);
    Ok((inserted, Some(latencies)))
}
