//! `bulk`: `--models` x `--epochs` epochs with InsertEpochs in batches of
//! `--batch`, first strictly sequential, then with 2 requests in flight
//! (what a client library does), each on its own models; then checks that
//! every epoch is stored. When `raw` ran, each metric values/s figure is
//! followed by its ratio to the raw floor (1 would mean no overhead).

use crate::BenchResult;
use crate::data::{METRICS_PER_EPOCH, count_stored, send_batches, setup_models};
use crate::report::Report;
use crate::stats::{millis, rate};
use crate::workloads::Ctx;

/// Datablob groups of the bulk models.
const GROUPS: usize = 4;

/// Measures batched ingest.
pub async fn run(ctx: &mut Ctx, report: &mut Report) -> BenchResult<()> {
    let (models, epochs, batch) = (ctx.args.models, ctx.args.epochs, ctx.args.batch);
    let expected = (models * epochs) as u64;
    for (label, in_flight, prefix) in [("sequential", 1, "bulkseq"), ("2 in flight", 2, "bulk")] {
        eprintln!("  {label}: {models} models x {epochs} epochs, {batch} epochs per request");
        let set = setup_models(&ctx.client, &ctx.tag, prefix, models, GROUPS).await?;
        let requests: Vec<_> = ctx.metrics.requests(&set, epochs, batch).collect();
        let mut outcome = send_batches(&ctx.client, requests.into_iter(), in_flight).await?;
        report.add(
            "bulk",
            format!("{label}: metric values/s"),
            rate(outcome.epochs * METRICS_PER_EPOCH, outcome.elapsed),
            "values/s",
        );
        if let Some(floor) = ctx.raw_values_per_s.filter(|v| *v > 0.0) {
            report.add(
                "bulk",
                format!("{label}: ratio to raw floor"),
                rate(outcome.epochs * METRICS_PER_EPOCH, outcome.elapsed) / floor,
                "x raw",
            );
        }
        report.add(
            "bulk",
            format!("{label}: epochs/s"),
            rate(outcome.epochs, outcome.elapsed),
            "epochs/s",
        );
        report.add(
            "bulk",
            format!("{label}: request p50"),
            millis(outcome.latencies.percentile(50.0)),
            "ms",
        );
        report.add(
            "bulk",
            format!("{label}: request p99"),
            millis(outcome.latencies.percentile(99.0)),
            "ms",
        );
        if outcome.inserted != expected || outcome.skipped != 0 {
            report.problem(format!(
                "bulk {label}: responses say {} inserted and {} skipped, expected {expected} inserted",
                outcome.inserted, outcome.skipped
            ));
        }
        let stored = count_stored(&ctx.client, &set.names).await?;
        report.add(
            "bulk",
            format!("{label}: epochs stored (checked)"),
            stored as f64,
            "epochs",
        );
        if stored != expected {
            report.problem(format!(
                "bulk {label}: {stored} epochs stored, expected {expected}"
            ));
        }
        ctx.stored.push((set, epochs));
    }
    Ok(())
}
