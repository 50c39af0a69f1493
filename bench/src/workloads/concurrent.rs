//! `concurrent`: for each W of `--writers`, W trainers at once, each on its
//! own connection and model, `--writer-epochs` epochs with one call per
//! epoch, as tasks of this process or spread over `--processes` child
//! processes; then checks that exactly the acknowledged epochs are stored.

use std::sync::Arc;

use crate::BenchResult;
use crate::data::{setup_models, stored_epochs};
use crate::report::Report;
use crate::server::Target;
use crate::stats::{cpu_micros_per, micros, rate};
use crate::workloads::Ctx;
use crate::workloads::writers::{self, WriterOutcome};

/// Datablob groups of the writers' models.
const GROUPS: usize = 4;

/// Measures concurrent one-epoch-per-call writers.
pub async fn run(ctx: &mut Ctx, target: &Target, report: &mut Report) -> BenchResult<()> {
    let n = ctx.args.writer_epochs;
    for &writers in &ctx.args.writers.clone() {
        let processes = ctx.args.processes.min(writers);
        let label = if processes > 1 {
            eprintln!("  {writers} writers in {processes} processes x {n} epochs, one call per epoch");
            format!("W={writers} in {processes} processes")
        } else {
            eprintln!("  {writers} writers x {n} epochs, one call per epoch");
            format!("W={writers}")
        };
        let prefix = format!("conc{writers}");
        let set = Arc::new(setup_models(&ctx.client, &ctx.tag, &prefix, writers, GROUPS).await?);
        let cpu_before = target.cpu_seconds();
        let (elapsed, outcomes) = if processes > 1 {
            writers::in_processes(&ctx.url, ctx.metrics, &set, n, processes).await?
        } else {
            let indices: Vec<usize> = (0..writers).collect();
            writers::in_this_process(&ctx.url, ctx.metrics, Arc::clone(&set), &indices, n).await?
        };
        let cpu_after = target.cpu_seconds();
        let mut total = WriterOutcome::default();
        let mut acked = Vec::with_capacity(outcomes.len());
        for (index, outcome) in outcomes {
            total.latencies.extend(outcome.latencies);
            total.errors += outcome.errors;
            if total.first_error.is_none() {
                total.first_error = outcome.first_error;
            }
            acked.push((index, outcome.acked));
        }

        let acked_count: u64 = acked.iter().map(|(_, nums)| nums.len() as u64).sum();
        report.add(
            "concurrent",
            format!("{label}: epochs/s"),
            rate(acked_count, elapsed),
            "epochs/s",
        );
        // Less noisy than throughput on a shared machine: an A/B of two
        // servers compares the work each does per epoch.
        if let Some(per_epoch) = cpu_micros_per(cpu_before, cpu_after, acked_count) {
            report.add(
                "concurrent",
                format!("{label}: server CPU per epoch"),
                per_epoch,
                "µs",
            );
        }
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
        if acked.len() != writers {
            report.problem(format!(
                "concurrent {label}: {} of {writers} writers reported",
                acked.len()
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
