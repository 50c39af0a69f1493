//! `columnar`: the `bulk` data (`--models` x `--epochs`, `--batch` epochs
//! per request) sent as EpochColumns instead of rows, one request in
//! flight, on its own models; then checks that every epoch is stored.
//! Its figures sit next to `bulk`'s sequential ones (and the `raw` floor
//! when that ran) to show what the form saves.

use crate::BenchResult;
use crate::data::{METRICS_PER_EPOCH, count_stored, send_batches, setup_models, to_columnar};
use crate::report::Report;
use crate::stats::{millis, rate};
use crate::workloads::Ctx;

/// Datablob groups of the columnar models.
const GROUPS: usize = 4;

/// Measures columnar batched ingest.
pub async fn run(ctx: &mut Ctx, report: &mut Report) -> BenchResult<()> {
    let (models, epochs, batch) = (ctx.args.models, ctx.args.epochs, ctx.args.batch);
    let expected = (models * epochs) as u64;
    eprintln!("  sequential: {models} models x {epochs} epochs, {batch} epochs per request, as columns");
    let set = setup_models(&ctx.client, &ctx.tag, "columnar", models, GROUPS).await?;
    // Built before the clock starts, as `bulk` builds its rows.
    let requests: Vec<_> = ctx
        .metrics
        .requests(&set, epochs, batch)
        .map(to_columnar)
        .collect();
    let mut outcome = send_batches(&ctx.client, requests.into_iter(), 1).await?;
    let values_per_s = rate(outcome.epochs * METRICS_PER_EPOCH, outcome.elapsed);
    report.add(
        "columnar",
        "sequential: metric values/s",
        values_per_s,
        "values/s",
    );
    if let Some(floor) = ctx.raw_values_per_s.filter(|v| *v > 0.0) {
        report.add(
            "columnar",
            "sequential: ratio to raw floor",
            values_per_s / floor,
            "x raw",
        );
    }
    report.add(
        "columnar",
        "sequential: epochs/s",
        rate(outcome.epochs, outcome.elapsed),
        "epochs/s",
    );
    report.add(
        "columnar",
        "sequential: request p50",
        millis(outcome.latencies.percentile(50.0)),
        "ms",
    );
    report.add(
        "columnar",
        "sequential: request p99",
        millis(outcome.latencies.percentile(99.0)),
        "ms",
    );
    if outcome.inserted != expected || outcome.skipped != 0 {
        report.problem(format!(
            "columnar: responses say {} inserted and {} skipped, expected {expected} inserted",
            outcome.inserted, outcome.skipped
        ));
    }
    let stored = count_stored(&ctx.client, &set.names).await?;
    report.add(
        "columnar",
        "sequential: epochs stored (checked)",
        stored as f64,
        "epochs",
    );
    if stored != expected {
        report.problem(format!("columnar: {stored} epochs stored, expected {expected}"));
    }
    ctx.stored.push((set, epochs));
    Ok(())
}
