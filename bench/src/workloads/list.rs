//! `list`: ListModels filtered to one datablob group (`--models` models)
//! and ListEpochs of one model (`--epochs` epochs, pages of 1,000).

use mlmeta_proto::{ListEpochsRequest, ListModelsRequest, ModelFilter};

use crate::BenchResult;
use crate::data::{populate, setup_models};
use crate::report::Report;
use crate::stats::micros;
use crate::workloads::{Ctx, time_calls};

/// Datablob groups of the listed models (one of them is listed).
const GROUPS: usize = 4;

/// Page size of both listings.
const PAGE_SIZE: u32 = 1_000;

/// Measures the two listings.
pub async fn run(ctx: &mut Ctx, report: &mut Report) -> BenchResult<()> {
    let (models, epochs) = (ctx.args.models, ctx.args.epochs);
    eprintln!("  {GROUPS} groups x {models} models; 1 model x {epochs} epochs");
    let set = setup_models(&ctx.client, &ctx.tag, "list", GROUPS * models, GROUPS).await?;
    let with_epochs = populate(
        &ctx.client,
        &ctx.metrics,
        &ctx.tag,
        "listepochs",
        1,
        epochs,
        ctx.args.batch,
    )
    .await?;

    let models_request = ListModelsRequest {
        project: String::new(),
        filter: Some(ModelFilter {
            datablob_group_names: vec![set.groups[0].clone()],
            ..Default::default()
        }),
        page_size: PAGE_SIZE,
        page_token: String::new(),
        ..Default::default()
    };
    let expected_models = models.min(PAGE_SIZE as usize);
    let got = ctx
        .client
        .clone()
        .list_models(models_request.clone())
        .await
        .map_err(|s| format!("ListModels: {s}"))?
        .into_inner()
        .models
        .len();
    if got != expected_models {
        report.problem(format!(
            "list: ListModels returned {got} models, expected {expected_models}"
        ));
    }
    let client = &ctx.client;
    let mut latencies = time_calls(ctx.args.calls, || {
        let mut client = client.clone();
        let request = models_request.clone();
        async move {
            client
                .list_models(request)
                .await
                .map(|_| ())
                .map_err(|s| format!("ListModels: {s}").into())
        }
    })
    .await?;
    let label = format!("ListModels 1 group ({expected_models} models)");
    report.add(
        "list",
        format!("{label}: p50"),
        micros(latencies.percentile(50.0)),
        "µs",
    );
    report.add(
        "list",
        format!("{label}: p99"),
        micros(latencies.percentile(99.0)),
        "µs",
    );

    let epochs_request = ListEpochsRequest {
        project: String::new(),
        model_names: with_epochs.names.clone(),
        min_epoch_num: None,
        max_epoch_num: None,
        page_size: PAGE_SIZE,
        page_token: String::new(),
    };
    let expected_epochs = epochs.min(PAGE_SIZE as usize);
    let got = ctx
        .client
        .clone()
        .list_epochs(epochs_request.clone())
        .await
        .map_err(|s| format!("ListEpochs: {s}"))?
        .into_inner()
        .epochs
        .len();
    if got != expected_epochs {
        report.problem(format!(
            "list: ListEpochs returned {got} epochs, expected {expected_epochs}"
        ));
    }
    let mut latencies = time_calls(ctx.args.calls, || {
        let mut client = client.clone();
        let request = epochs_request.clone();
        async move {
            client
                .list_epochs(request)
                .await
                .map(|_| ())
                .map_err(|s| format!("ListEpochs: {s}").into())
        }
    })
    .await?;
    let label = format!("ListEpochs 1 model ({expected_epochs} epochs)");
    report.add(
        "list",
        format!("{label}: p50"),
        micros(latencies.percentile(50.0)),
        "µs",
    );
    report.add(
        "list",
        format!("{label}: p99"),
        micros(latencies.percentile(99.0)),
        "µs",
    );
    Ok(())
}
