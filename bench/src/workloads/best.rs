//! `best`: GetBestModel latency over every stored model, by val_accuracy
//! MAX and val_loss MIN, top 1 and top 10. Runs on what `bulk` stored
//! (storing the same amount itself when `bulk` did not run); with
//! `--scale large` it first tops the data up to 1,000 models x 1,000
//! epochs.

use mlmeta_proto::{GetBestModelRequest, MetricDirection};

use crate::BenchResult;
use crate::cli::Scale;
use crate::data::populate;
use crate::report::Report;
use crate::stats::micros;
use crate::workloads::{Ctx, time_calls};

/// Models that `--scale large` measures on.
const LARGE_MODELS: usize = 1_000;

/// Epochs of each model that `--scale large` adds.
const LARGE_EPOCHS: usize = 1_000;

/// Measures best-model queries.
pub async fn run(ctx: &mut Ctx, report: &mut Report) -> BenchResult<()> {
    let (models, epochs, batch) = (ctx.args.models, ctx.args.epochs, ctx.args.batch);
    if ctx.stored.is_empty() {
        eprintln!("  storing {models} models x {epochs} epochs first (untimed)");
        let set = populate(&ctx.client, &ctx.metrics, &ctx.tag, "best", models, epochs, batch).await?;
        ctx.stored.push((set, epochs));
    }
    let stored_models = |ctx: &Ctx| ctx.stored.iter().map(|(set, _)| set.len()).sum::<usize>();
    if ctx.args.scale == Scale::Large && stored_models(ctx) < LARGE_MODELS {
        let missing = LARGE_MODELS - stored_models(ctx);
        eprintln!("  storing {missing} more models x {LARGE_EPOCHS} epochs (untimed)");
        let set = populate(
            &ctx.client,
            &ctx.metrics,
            &ctx.tag,
            "large",
            missing,
            LARGE_EPOCHS,
            batch,
        )
        .await?;
        ctx.stored.push((set, LARGE_EPOCHS));
    }
    let known_models = stored_models(ctx);
    let known_epochs: usize = ctx.stored.iter().map(|(set, e)| set.len() * e).sum();
    report.add("best", "models with epochs", known_models as f64, "models");
    report.add("best", "epochs stored", known_epochs as f64, "epochs");

    let queries = [
        ("val_accuracy", MetricDirection::Max, 1),
        ("val_accuracy", MetricDirection::Max, 10),
        ("val_loss", MetricDirection::Min, 1),
        ("val_loss", MetricDirection::Min, 10),
    ];
    for (metric, direction, top_k) in queries {
        let label = format!(
            "{metric} {} top {top_k}",
            direction.as_str_name().trim_start_matches("METRIC_DIRECTION_")
        );
        let request = GetBestModelRequest {
            project: String::new(),
            metric_name: metric.to_owned(),
            direction: direction as i32,
            filter: None,
            top_k,
            ..Default::default()
        };
        check_answer(ctx, &request, known_models, &label, report).await?;
        let client = &ctx.client;
        let mut latencies = time_calls(ctx.args.calls, || {
            let mut client = client.clone();
            let request = request.clone();
            async move {
                client
                    .get_best_model(request)
                    .await
                    .map(|_| ())
                    .map_err(|s| format!("GetBestModel: {s}").into())
            }
        })
        .await?;
        report.add(
            "best",
            format!("{label}: p50"),
            micros(latencies.percentile(50.0)),
            "µs",
        );
        report.add(
            "best",
            format!("{label}: p99"),
            micros(latencies.percentile(99.0)),
            "µs",
        );
    }
    Ok(())
}

/// Checks one answer: as many models as asked (when that many exist), best
/// first, each with its metric value.
async fn check_answer(
    ctx: &Ctx,
    request: &GetBestModelRequest,
    known_models: usize,
    label: &str,
    report: &mut Report,
) -> BenchResult<()> {
    let answer = ctx
        .client
        .clone()
        .get_best_model(request.clone())
        .await
        .map_err(|s| format!("GetBestModel: {s}"))?
        .into_inner();
    let top_k = request.top_k as usize;
    let n = answer.models.len();
    if n < top_k.min(known_models) || n > top_k {
        report.problem(format!(
            "best {label}: {n} models returned, expected {}",
            top_k.min(known_models)
        ));
    }
    let values: Vec<f64> = answer.models.iter().map(|m| m.metric_value).collect();
    let ordered = values.windows(2).all(|w| {
        if request.direction == MetricDirection::Max as i32 {
            w[0] >= w[1]
        } else {
            w[0] <= w[1]
        }
    });
    if !ordered {
        report.problem(format!("best {label}: values not best first: {values:?}"));
    }
    Ok(())
}
