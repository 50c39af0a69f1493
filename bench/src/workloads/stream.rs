//! `stream`: one trainer reporting each epoch as it ends: 1 model x
//! `--stream-epochs` epochs, one unary InsertEpochs per epoch, sequential.

use std::time::Instant;

use mlmeta_proto::InsertEpochsRequest;

use crate::BenchResult;
use crate::data::{count_stored, setup_models};
use crate::report::Report;
use crate::stats::{Latencies, micros, rate};
use crate::workloads::Ctx;

/// Measures one-epoch-per-call ingest of a single trainer.
pub async fn run(ctx: &mut Ctx, report: &mut Report) -> BenchResult<()> {
    let n = ctx.args.stream_epochs;
    eprintln!("  1 model x {n} epochs, one call per epoch");
    let set = setup_models(&ctx.client, &ctx.tag, "stream", 1, 1).await?;
    let mut client = ctx.client.clone();
    let mut latencies = Latencies::with_capacity(n);
    let mut inserted = 0;
    let start = Instant::now();
    for num in 0..n {
        let request = InsertEpochsRequest {
            columns: Vec::new(),
            project: String::new(),
            epochs: vec![ctx.metrics.epoch(&set, 0, num, n)],
        };
        let sent = Instant::now();
        let response = client
            .insert_epochs(request)
            .await
            .map_err(|s| format!("InsertEpochs of epoch {num}: {s}"))?;
        latencies.push(sent.elapsed());
        inserted += response.into_inner().inserted;
    }
    let elapsed = start.elapsed();
    report.add("stream", "epochs/s", rate(n as u64, elapsed), "epochs/s");
    report.add("stream", "call p50", micros(latencies.percentile(50.0)), "µs");
    report.add("stream", "call p99", micros(latencies.percentile(99.0)), "µs");
    let stored = count_stored(&ctx.client, &set.names).await?;
    report.add("stream", "epochs stored (checked)", stored as f64, "epochs");
    if inserted != n as u64 || stored != n as u64 {
        report.problem(format!(
            "stream: {n} epochs sent, responses say {inserted} inserted, {stored} stored"
        ));
    }
    Ok(())
}
