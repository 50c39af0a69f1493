//! `concurrent`: for each W of `--writers`, W trainers at once, each on its
//! own connection and model, `--writer-epochs` epochs with one call per
//! epoch; then checks that exactly the acknowledged epochs are stored.

use std::sync::Arc;
use std::time::Instant;

use mlmeta_proto::InsertEpochsRequest;
use tokio::task::JoinSet;

use crate::BenchResult;
use crate::client::{Client, connect};
use crate::data::{MetricGen, ModelSet, setup_models, stored_epochs};
use crate::report::Report;
use crate::stats::{Latencies, micros, rate};
use crate::workloads::Ctx;

/// Datablob groups of the writers' models.
const GROUPS: usize = 4;

/// What one writer did.
#[derive(Debug, Default)]
struct WriterOutcome {
    /// Epoch numbers whose call succeeded.
    acked: Vec<i64>,
    /// Duration of every call, failed ones included.
    latencies: Latencies,
    /// Failed calls.
    errors: u64,
    /// Message of the first failure.
    first_error: Option<String>,
}

/// Measures concurrent one-epoch-per-call writers.
pub async fn run(ctx: &mut Ctx, report: &mut Report) -> BenchResult<()> {
    let n = ctx.args.writer_epochs;
    for &writers in &ctx.args.writers.clone() {
        eprintln!("  {writers} writers x {n} epochs, one call per epoch");
        let prefix = format!("conc{writers}");
        let set = Arc::new(setup_models(&ctx.client, &ctx.tag, &prefix, writers, GROUPS).await?);
        let mut clients = Vec::with_capacity(writers);
        for _ in 0..writers {
            clients.push(connect(&ctx.url).await?);
        }

        let start = Instant::now();
        let mut tasks = JoinSet::new();
        for (index, client) in clients.into_iter().enumerate() {
            tasks.spawn(write(client, ctx.metrics, Arc::clone(&set), index, n));
        }
        let mut total = WriterOutcome::default();
        let mut acked = Vec::with_capacity(writers);
        while let Some(joined) = tasks.join_next().await {
            let (index, outcome) = joined?;
            total.latencies.extend(outcome.latencies);
            total.errors += outcome.errors;
            if total.first_error.is_none() {
                total.first_error = outcome.first_error;
            }
            acked.push((index, outcome.acked));
        }
        let elapsed = start.elapsed();

        let acked_count: u64 = acked.iter().map(|(_, nums)| nums.len() as u64).sum();
        let label = format!("W={writers}");
        report.add(
            "concurrent",
            format!("{label}: epochs/s"),
            rate(acked_count, elapsed),
            "epochs/s",
        );
        report.add(
            "concurrent",
            format!("{label}: call p50"),
            micros(total.latencies.percentile(50.0)),
            "µs",
        );
        report.add(
            "concurrent",
            format!("{label}: call p99"),
            micros(total.latencies.percentile(99.0)),
            "µs",
        );
        report.add(
            "concurrent",
            format!("{label}: errors"),
            total.errors as f64,
            "calls",
        );
        if total.errors > 0 {
            report.problem(format!(
                "concurrent {label}: {} of {} calls failed; first: {}",
                total.errors,
                writers * n,
                total.first_error.unwrap_or_default()
            ));
        }

        let stored = stored_epochs(&ctx.client, &set.names).await?;
        let stored_count: usize = stored.values().map(Vec::len).sum();
        report.add(
            "concurrent",
            format!("{label}: epochs stored (checked)"),
            stored_count as f64,
            "epochs",
        );
        let mismatched: Vec<&str> = acked
            .iter()
            .filter(|(index, nums)| {
                let mut got = stored.get(&set.names[*index]).cloned().unwrap_or_default();
                got.sort_unstable();
                got != *nums
            })
            .map(|(index, _)| set.names[*index].as_str())
            .collect();
        if !mismatched.is_empty() {
            report.problem(format!(
                "concurrent {label}: stored epochs differ from the acknowledged ones for {} models (e.g. {})",
                mismatched.len(),
                mismatched[0]
            ));
        }
    }
    Ok(())
}

/// One writer: `n` epochs of model `index`, one call each, in order.
async fn write(
    mut client: Client,
    metrics: MetricGen,
    set: Arc<ModelSet>,
    index: usize,
    n: usize,
) -> (usize, WriterOutcome) {
    let mut outcome = WriterOutcome {
        latencies: Latencies::with_capacity(n),
        ..Default::default()
    };
    for num in 0..n {
        let request = InsertEpochsRequest {
            epochs: vec![metrics.epoch(&set, index, num, n)],
        };
        let sent = Instant::now();
        let result = client.insert_epochs(request).await;
        outcome.latencies.push(sent.elapsed());
        match result {
            Ok(_) => outcome.acked.push(num as i64),
            Err(status) => {
                outcome.errors += 1;
                outcome.first_error.get_or_insert_with(|| status.to_string());
            }
        }
    }
    (index, outcome)
}
