//! GetBestModel and GetLeaderboard against a brute-force computation over
//! seeded random data: 30 models over 3 datablob groups x 2 template
//! groups, 50 epochs each, 4 metrics with ~5% NaN, some metrics missing
//! from some models, infinities and many exact ties.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use mlmeta_proto::{Epoch, GetBestModelRequest, GetLeaderboardRequest, MetricDirection, ModelFilter};
use mlmeta_tests::calls::{self, Client, expect_status, full_leaderboard, insert_epochs};
use mlmeta_tests::records::{best, epoch, insert, leaderboard, strings};
use mlmeta_tests::{TestServer, backend_tests};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tonic::Code;

backend_tests! {
    best_model_and_leaderboard_match_brute_force => 300,
}

const METRICS: [&str; 4] = ["m0", "m1", "m2", "m3"];

/// One model of the generated world.
#[derive(Debug, Clone)]
struct ModelRec {
    name: String,
    datablob: String,
    datablob_group: String,
    template: String,
    template_group: String,
}

/// Everything generated, as sent.
#[derive(Debug)]
struct World {
    models: Vec<ModelRec>,
    /// model name -> epoch_num -> metrics.
    epochs: BTreeMap<String, BTreeMap<i64, BTreeMap<String, f64>>>,
}

fn generate(seed: u64) -> World {
    let mut rng = StdRng::seed_from_u64(seed);
    let blobs: Vec<(String, String)> = (0..3)
        .flat_map(|g| (0..2).map(move |k| (format!("d-{g}-{k}"), format!("dg{g}"))))
        .collect();
    let tmpls: Vec<(String, String)> = (0..2)
        .flat_map(|g| (0..2).map(move |k| (format!("t-{g}-{k}"), format!("tg{g}"))))
        .collect();
    let mut models = Vec::new();
    let mut epochs = BTreeMap::new();
    for i in 0..30 {
        let (datablob, datablob_group) = blobs[rng.random_range(0..blobs.len())].clone();
        let (template, template_group) = tmpls[rng.random_range(0..tmpls.len())].clone();
        // Names not in creation order.
        let name = format!("model-{:02}", (i * 7) % 30);
        let present: Vec<bool> = METRICS
            .iter()
            .enumerate()
            .map(|(k, _)| k == 0 || matches!((i, k), (3 | 7, 1) | (5, 2)) || rng.random_bool(0.7))
            .collect();
        let mut model_epochs = BTreeMap::new();
        for num in 0..50_i64 {
            let mut metrics = BTreeMap::new();
            for (k, metric) in METRICS.iter().enumerate() {
                // Epoch 0 always carries a finite value of every present metric.
                if !present[k] || (num > 0 && rng.random_bool(0.1)) {
                    continue;
                }
                let value = if num > 0 && rng.random_bool(0.05) {
                    f64::NAN
                } else {
                    // Quarter steps in 0..50: exact ties within and across models.
                    f64::from(rng.random_range(0..200_u32)) / 4.0
                };
                metrics.insert((*metric).to_owned(), value);
            }
            model_epochs.insert(num, metrics);
        }
        // Infinities: a tie on +Inf at the same epoch (broken by name), a -Inf.
        if i == 3 || i == 7 {
            model_epochs
                .get_mut(&10)
                .unwrap()
                .insert("m1".to_owned(), f64::INFINITY);
        }
        if i == 5 {
            model_epochs
                .get_mut(&4)
                .unwrap()
                .insert("m2".to_owned(), f64::NEG_INFINITY);
        }
        epochs.insert(name.clone(), model_epochs);
        models.push(ModelRec {
            name,
            datablob,
            datablob_group,
            template,
            template_group,
        });
    }
    World { models, epochs }
}

fn matches(filter: &ModelFilter, m: &ModelRec) -> bool {
    let ok = |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
    ok(&filter.names, &m.name)
        && ok(&filter.datablob_names, &m.datablob)
        && ok(&filter.datablob_group_names, &m.datablob_group)
        && ok(&filter.model_template_names, &m.template)
        && ok(&filter.model_template_group_names, &m.template_group)
}

/// `a` better than `b` in `direction`.
fn better(a: f64, b: f64, direction: MetricDirection) -> bool {
    match direction {
        MetricDirection::Max => a > b,
        _ => a < b,
    }
}

/// Expected ranking: (model, best epoch_num, best value), best first.
fn brute_force(
    world: &World,
    metric: &str,
    direction: MetricDirection,
    filter: &ModelFilter,
) -> Vec<(String, i64, f64)> {
    let mut rows = Vec::new();
    for m in world.models.iter().filter(|m| matches(filter, m)) {
        let mut best_row: Option<(i64, f64)> = None;
        for (num, metrics) in &world.epochs[&m.name] {
            let Some(&value) = metrics.get(metric) else {
                continue;
            };
            if value.is_nan() {
                continue;
            }
            if best_row.is_none_or(|(_, b)| better(value, b, direction)) {
                best_row = Some((*num, value));
            }
        }
        if let Some((num, value)) = best_row {
            rows.push((m.name.clone(), num, value));
        }
    }
    rows.sort_by(|a, b| {
        let by_value = match direction {
            MetricDirection::Max => b.2.partial_cmp(&a.2),
            _ => a.2.partial_cmp(&b.2),
        }
        .unwrap_or(Ordering::Equal);
        by_value.then(a.1.cmp(&b.1)).then(a.0.cmp(&b.0))
    });
    rows
}

fn bits_rows(rows: &[(String, i64, f64)]) -> Vec<(String, i64, u64)> {
    rows.iter()
        .map(|(n, e, v)| (n.clone(), *e, v.to_bits()))
        .collect()
}

fn filters(world: &World) -> Vec<ModelFilter> {
    let mut rng = StdRng::seed_from_u64(7);
    let mut names: Vec<String> = world.models.iter().map(|m| m.name.clone()).collect();
    names.shuffle(&mut rng);
    vec![
        ModelFilter::default(),
        ModelFilter {
            datablob_group_names: strings(&["dg0"]),
            ..ModelFilter::default()
        },
        ModelFilter {
            model_template_group_names: strings(&["tg1"]),
            ..ModelFilter::default()
        },
        ModelFilter {
            datablob_group_names: strings(&["dg1", "dg2"]),
            model_template_group_names: strings(&["tg0"]),
            ..ModelFilter::default()
        },
        ModelFilter {
            names: names[..10].to_vec(),
            ..ModelFilter::default()
        },
        ModelFilter {
            datablob_names: strings(&["d-0-1", "d-2-0"]),
            ..ModelFilter::default()
        },
        ModelFilter {
            model_template_names: strings(&["t-1-0"]),
            names: names[..20].to_vec(),
            ..ModelFilter::default()
        },
        ModelFilter {
            datablob_names: strings(&["d-0-0"]),
            datablob_group_names: strings(&["dg1"]),
            ..ModelFilter::default()
        },
    ]
}

async fn seed(client: &mut Client, world: &World) {
    let mut blobs: Vec<(&str, &str)> = world
        .models
        .iter()
        .map(|m| (m.datablob.as_str(), m.datablob_group.as_str()))
        .collect();
    blobs.sort_unstable();
    blobs.dedup();
    for (i, (name, group)) in blobs.iter().enumerate() {
        calls::put_datablob(client, name, group, &format!(r#"{{"blob": {i}}}"#)).await;
    }
    let mut tmpls: Vec<(&str, &str)> = world
        .models
        .iter()
        .map(|m| (m.template.as_str(), m.template_group.as_str()))
        .collect();
    tmpls.sort_unstable();
    tmpls.dedup();
    for (i, (name, group)) in tmpls.iter().enumerate() {
        calls::put_template(client, name, group, &format!(r#"{{"tmpl": {i}.5}}"#)).await;
    }
    let mut sent: Vec<Epoch> = Vec::new();
    for m in &world.models {
        calls::put_model(client, &m.name, &m.datablob, &m.template).await;
        for (num, metrics) in &world.epochs[&m.name] {
            let mut e = epoch(&m.name, *num, &[]);
            e.metrics = metrics.clone();
            sent.push(e);
        }
    }
    // In random order and in batches, so that stored best values are
    // merged with later ones (equal values arriving at lower epochs too),
    // half of the batches through StreamEpochs.
    let mut rng = StdRng::seed_from_u64(99);
    sent.shuffle(&mut rng);
    // Re-sent epochs with values that would win everything: skipped, so
    // they must change nothing.
    let decoys: Vec<Epoch> = sent
        .iter()
        .step_by(15)
        .map(|e| {
            let mut decoy = e.clone();
            for (k, value) in decoy.metrics.iter_mut() {
                *value = if k.as_str() == "m0" { f64::INFINITY } else { -1e300 };
            }
            decoy
        })
        .collect();
    let count = sent.len() as u64;
    let mut inserted = 0;
    for (i, batch) in sent.chunks(170).enumerate() {
        if i % 2 == 0 {
            let (new, skipped) = insert_epochs(client, batch.to_vec()).await;
            assert_eq!(skipped, 0);
            inserted += new;
        } else {
            let messages: Vec<_> = batch.chunks(40).map(|c| insert(c.to_vec())).collect();
            let response = client
                .stream_epochs(futures::stream::iter(messages))
                .await
                .unwrap_or_else(|s| panic!("StreamEpochs: {s}"))
                .into_inner();
            assert_eq!(response.skipped, 0);
            inserted += response.inserted;
        }
    }
    assert_eq!(inserted, count);
    let decoy_count = decoys.len() as u64;
    assert_eq!(insert_epochs(client, decoys).await, (0, decoy_count));
}

async fn best_model_and_leaderboard_match_brute_force(server: TestServer) {
    let mut client = server.client();
    let world = generate(0x5eed);
    seed(&mut client, &world).await;
    let by_name: BTreeMap<&str, &ModelRec> = world.models.iter().map(|m| (m.name.as_str(), m)).collect();
    let mut checked = 0;
    for metric in METRICS.iter().chain(&["absent"]) {
        for direction in [MetricDirection::Max, MetricDirection::Min] {
            for filter in filters(&world) {
                let want = brute_force(&world, metric, direction, &filter);
                let context = format!("{metric} {direction:?} {filter:?}");
                for top_k in [1_u32, 10] {
                    let request = GetBestModelRequest {
                        filter: Some(filter.clone()),
                        ..best(metric, direction, top_k)
                    };
                    let result = client.get_best_model(request).await;
                    if want.is_empty() {
                        expect_status(result, Code::NotFound, &[]);
                        continue;
                    }
                    let got = result
                        .unwrap_or_else(|s| panic!("GetBestModel {context} top_k {top_k}: {s}"))
                        .into_inner()
                        .models;
                    let got_rows: Vec<(String, i64, u64)> = got
                        .iter()
                        .map(|b| {
                            let e = b.best_epoch.as_ref().expect("best_epoch");
                            (
                                b.model.as_ref().expect("model").name.clone(),
                                e.epoch_num,
                                b.metric_value.to_bits(),
                            )
                        })
                        .collect();
                    let n = want.len().min(top_k as usize);
                    assert_eq!(
                        got_rows,
                        bits_rows(&want[..n]),
                        "GetBestModel {context} top_k {top_k}"
                    );
                    for b in &got {
                        let m = by_name[b.model.as_ref().unwrap().name.as_str()];
                        let e = b.best_epoch.as_ref().unwrap();
                        let stored = &world.epochs[&m.name][&e.epoch_num];
                        let want_bits: BTreeMap<_, _> =
                            stored.iter().map(|(k, v)| (k.clone(), v.to_bits())).collect();
                        let got_bits: BTreeMap<_, _> =
                            e.metrics.iter().map(|(k, v)| (k.clone(), v.to_bits())).collect();
                        assert_eq!(
                            got_bits, want_bits,
                            "best_epoch.metrics of {} ({context})",
                            m.name
                        );
                        assert_eq!(b.datablob.as_ref().unwrap().name, m.datablob);
                        assert_eq!(b.datablob.as_ref().unwrap().group_name, m.datablob_group);
                        assert_eq!(b.model_template.as_ref().unwrap().name, m.template);
                        assert_eq!(b.model_template.as_ref().unwrap().group_name, m.template_group);
                    }
                    checked += 1;
                }
                let request = GetLeaderboardRequest {
                    filter: Some(filter.clone()),
                    ..leaderboard(metric, direction, 7)
                };
                let board = full_leaderboard(&mut client, request).await;
                let got_rows: Vec<(String, i64, u64)> = board
                    .iter()
                    .map(|r| {
                        (
                            r.model.as_ref().expect("model").name.clone(),
                            r.best_epoch_num,
                            r.best_value.to_bits(),
                        )
                    })
                    .collect();
                assert_eq!(got_rows, bits_rows(&want), "GetLeaderboard {context}");
                for r in &board {
                    let m = by_name[r.model.as_ref().unwrap().name.as_str()];
                    assert_eq!(r.datablob.as_ref().unwrap().name, m.datablob);
                    assert_eq!(r.model_template.as_ref().unwrap().name, m.template);
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "checked {checked} answers");
    // The generated data really has the cases it is meant to have.
    let full = brute_force(&world, "m1", MetricDirection::Max, &ModelFilter::default());
    assert!(
        full[0].2.is_infinite() && full[1].2.is_infinite(),
        "a tie on +Inf"
    );
    let m3 = brute_force(&world, "m3", MetricDirection::Max, &ModelFilter::default());
    assert!(m3.len() < 30, "some models lack m3");
    assert!(
        full.windows(2).any(|w| w[0].2 == w[1].2 && w[0].1 != w[1].1),
        "ties across epochs"
    );
}
