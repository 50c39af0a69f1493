//! `filter`: the `where` language on `--models` models x `--epochs`
//! epochs x 8 metrics, each model with 5 params keys, datablobs and
//! templates with 3 keys each, and 2 tags: GetBestModel with the issue's
//! expression, a ListModels page of 100 with an expression and summary
//! columns (by name, and sorted by a summary), and an expression that
//! matches nothing.

use futures::{StreamExt, TryStreamExt, stream};
use mlmeta_proto::{
    DataBlob, GetBestModelRequest, ListModelsRequest, MetricDirection, Model, ModelFilter, ModelTemplate,
    PutDataBlobRequest, PutModelRequest, PutModelTemplateRequest, RecordKind, RecordRef, UpdateTagsRequest,
};

use crate::BenchResult;
use crate::data::{ModelSet, send_batches};
use crate::report::Report;
use crate::stats::micros;
use crate::workloads::{Ctx, time_calls};

/// Datablobs (one group each) and templates (groups `cnn` and `mlp`).
const DATABLOBS: usize = 10;
const TEMPLATES: usize = 4;

/// The issue's expression.
const BEST_WHERE: &str =
    "params.lr < 0.01 and (tags.team = 'a' or template.group = 'cnn') and max(val_accuracy) > 0.5";
/// A page of this expression is listed.
const LIST_WHERE: &str =
    "params.lr < 0.01 and datablob.group in ('g1', 'g2', 'g3') and max(val_accuracy) > 0.5";
/// The summary columns of the listed pages.
const COLUMNS: [&str; 3] = ["last(loss)", "max(val_accuracy)", "epochs"];
/// Matches no model (no lr is negative).
const NOTHING_WHERE: &str = "params.lr < 0 and max(val_accuracy) > 0.5";

/// Stores the data (untimed), then times the three queries.
pub async fn run(ctx: &mut Ctx, report: &mut Report) -> BenchResult<()> {
    let (models, epochs) = (ctx.args.models, ctx.args.epochs);
    eprintln!("  storing {models} models x {epochs} epochs with params and tags (untimed)");
    let set = setup(ctx, models).await?;
    let outcome = send_batches(&ctx.client, ctx.metrics.requests(&set, epochs, ctx.args.batch), 2).await?;
    report.add("filter", "epochs stored", outcome.inserted as f64, "epochs");

    let best = GetBestModelRequest {
        project: String::new(),
        metric_name: "val_accuracy".to_owned(),
        direction: MetricDirection::Max as i32,
        filter: Some(where_filter(BEST_WHERE)),
        top_k: 1,
        ..Default::default()
    };
    let client = &ctx.client;
    let answer = client.clone().get_best_model(best.clone()).await;
    if !matches!(&answer, Ok(a) if a.get_ref().models.len() == 1) {
        report.problem(format!("filter: best --where found no model: {answer:?}"));
    }
    let mut latencies = time_calls(ctx.args.calls, || {
        let (mut client, request) = (client.clone(), best.clone());
        async move {
            client
                .get_best_model(request)
                .await
                .map(|_| ())
                .map_err(|s| format!("GetBestModel: {s}").into())
        }
    })
    .await?;
    add(report, "best --where (issue's expression)", &mut latencies);

    for (label, expr, order_by) in [
        ("list models --where --columns, page of 100", LIST_WHERE, ""),
        (
            "list models --where --columns --sort 'max(val_accuracy) desc', page of 100",
            LIST_WHERE,
            "max(val_accuracy) desc",
        ),
        ("list models --where matching nothing", NOTHING_WHERE, ""),
    ] {
        let request = ListModelsRequest {
            project: String::new(),
            filter: Some(where_filter(expr)),
            page_size: 100,
            page_token: String::new(),
            order_by: order_by.to_owned(),
            columns: COLUMNS.map(str::to_owned).to_vec(),
        };
        let page = client.clone().list_models(request.clone()).await;
        let rows = page.as_ref().map_or(0, |p| p.get_ref().models.len());
        report.add("filter", format!("{label}: rows"), rows as f64, "models");
        let mut latencies = time_calls(ctx.args.calls, || {
            let (mut client, request) = (client.clone(), request.clone());
            async move {
                client
                    .list_models(request)
                    .await
                    .map(|_| ())
                    .map_err(|s| format!("ListModels: {s}").into())
            }
        })
        .await?;
        add(report, label, &mut latencies);
    }
    Ok(())
}

fn add(report: &mut Report, label: &str, latencies: &mut crate::stats::Latencies) {
    report.add(
        "filter",
        format!("{label}: p50"),
        micros(latencies.percentile(50.0)),
        "µs",
    );
    report.add(
        "filter",
        format!("{label}: p99"),
        micros(latencies.percentile(99.0)),
        "µs",
    );
}

fn where_filter(expr: &str) -> ModelFilter {
    ModelFilter {
        r#where: expr.to_owned(),
        ..Default::default()
    }
}

/// Puts the datablobs, templates and models (with params and tags).
async fn setup(ctx: &Ctx, models: usize) -> BenchResult<ModelSet> {
    let (client, tag) = (&ctx.client, &ctx.tag);
    let set = ModelSet::planned(tag, "filter", models, DATABLOBS);
    for (d, group) in set.groups.iter().enumerate() {
        let datablob = DataBlob {
            name: format!("{tag}-filter-data-{d}"),
            group_name: format!("g{d}"),
            hyperparams_json: format!(
                r#"{{"rows": {}, "source": "{group}", "shuffle": {}}}"#,
                1000 * d,
                d % 2 == 0
            ),
            ..Default::default()
        };
        client
            .clone()
            .put_data_blob(PutDataBlobRequest {
                project: String::new(),
                datablob: Some(datablob),
                ignore_existing: false,
            })
            .await
            .map_err(|s| format!("PutDataBlob: {s}"))?;
    }
    for t in 0..TEMPLATES {
        let template = ModelTemplate {
            name: format!("{tag}-filter-tmpl-{t}"),
            group_name: if t % 2 == 0 { "cnn" } else { "mlp" }.to_owned(),
            hyperparams_json: format!(r#"{{"layers": {}, "dropout": 0.1, "optimizer": "adam"}}"#, 2 + t),
            ..Default::default()
        };
        client
            .clone()
            .put_model_template(PutModelTemplateRequest {
                project: String::new(),
                model_template: Some(template),
                ignore_existing: false,
            })
            .await
            .map_err(|s| format!("PutModelTemplate: {s}"))?;
    }
    stream::iter(set.names.iter().enumerate())
        .map(|(i, name)| {
            let mut client = client.clone();
            let model = Model {
                name: name.clone(),
                model_class_name: "Sequential".to_owned(),
                datablob_name: format!("{tag}-filter-data-{}", i % DATABLOBS),
                model_template_name: format!("{tag}-filter-tmpl-{}", i % TEMPLATES),
                params_json: format!(
                    r#"{{"lr": {}, "seed": {i}, "batch": {}, "opt": {{"name": "adam", "beta": 0.9}}, "warmup": {}}}"#,
                    [0.1, 0.03, 0.01, 0.003, 0.001][i % 5],
                    32 << (i % 3),
                    i % 2 == 0
                ),
                ..Default::default()
            };
            let tags = [
                ("team".to_owned(), ["a", "b", "c"][i % 3].to_owned()),
                ("stage".to_owned(), ["dev", "prod"][i % 2].to_owned()),
            ];
            async move {
                client
                    .put_model(PutModelRequest {
                        project: String::new(),
                        model: Some(model),
                        ignore_existing: false,
                    })
                    .await
                    .map_err(|s| crate::BenchError::from(format!("PutModel: {s}")))?;
                client
                    .update_tags(UpdateTagsRequest {
                        target: Some(RecordRef {
                            kind: RecordKind::Model as i32,
                            name: name.clone(),
                        }),
                        set: tags.into_iter().collect(),
                        unset: Vec::new(),
                        project: String::new(),
                    })
                    .await
                    .map(|_| ())
                    .map_err(|s| crate::BenchError::from(format!("UpdateTags: {s}")))
            }
        })
        .buffer_unordered(8)
        .try_collect::<()>()
        .await?;
    Ok(set)
}
