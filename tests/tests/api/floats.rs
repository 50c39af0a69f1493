//! Metric values read back bit-for-bit: NaN, infinities, subnormals,
//! f64::MAX/MIN and ordinary values, via ListEpochs, GetBestModel and
//! GetLeaderboard; and -0.0, which prost cannot carry, on the raw wire.

use std::collections::BTreeMap;

use mlmeta_proto::{
    GetBestModelResponse, GetLeaderboardResponse, ListEpochsRequest, ListEpochsResponse, MetricDirection,
};
use mlmeta_tests::calls::{self, epochs_of, full_leaderboard, insert_epochs};
use mlmeta_tests::records::{best, epoch, leaderboard};
use mlmeta_tests::{TestServer, backend_tests, wire};

backend_tests! {
    special_values_read_back_bit_for_bit,
    special_values_are_best_values_bit_for_bit,
    negative_zero_reads_back_as_zero,
    leaderboard_pages_through_special_values,
}

/// Every value that must survive storage exactly, except -0.0 (see
/// [`negative_zero_reads_back_as_zero`]).
fn specials() -> Vec<(&'static str, f64)> {
    vec![
        ("nan", f64::NAN),
        ("pos_inf", f64::INFINITY),
        ("neg_inf", f64::NEG_INFINITY),
        ("zero", 0.0),
        ("min_subnormal", f64::from_bits(1)),
        ("max_subnormal", f64::from_bits(0x000f_ffff_ffff_ffff)),
        ("neg_subnormal", -f64::from_bits(3)),
        ("min_positive", f64::MIN_POSITIVE),
        ("max", f64::MAX),
        ("min", f64::MIN),
        ("epsilon", f64::EPSILON),
        ("one_plus_epsilon", 1.0 + f64::EPSILON),
        ("tenth", 0.1),
        ("third", 1.0 / 3.0),
        ("pi", std::f64::consts::PI),
        ("big_int", 9_007_199_254_740_993.0),
        ("neg", -123_456.789e-7),
    ]
}

/// Mismatches between two metric maps, compared as bits.
fn mismatches(got: &BTreeMap<String, f64>, want: &BTreeMap<String, f64>, context: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (name, value) in want {
        match got.get(name) {
            None => out.push(format!("{context}: {name} missing")),
            Some(g) if g.to_bits() != value.to_bits() => out.push(format!(
                "{context}: {name} = {g:e} ({:#018x}), sent {value:e} ({:#018x})",
                g.to_bits(),
                value.to_bits()
            )),
            Some(_) => {}
        }
    }
    for name in got.keys().filter(|k| !want.contains_key(*k)) {
        out.push(format!("{context}: unexpected metric {name}"));
    }
    out
}

#[track_caller]
fn assert_none(problems: &[String]) {
    assert!(problems.is_empty(), "values changed:\n{}", problems.join("\n"));
}

async fn special_values_read_back_bit_for_bit(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let all = epoch("m", 0, &specials());
    // Also each value alone, with one ordinary metric.
    let mut sent = vec![all.clone()];
    for (i, (name, value)) in specials().into_iter().enumerate() {
        sent.push(epoch("m", i as i64 + 1, &[(name, value), ("marker", i as f64)]));
    }
    insert_epochs(&mut client, sent.clone()).await;
    let listed = epochs_of(&mut client, &["m"]).await;
    assert_eq!(listed.len(), sent.len());
    let mut problems = Vec::new();
    for (got, want) in listed.iter().zip(&sent) {
        let context = format!("ListEpochs epoch {}", want.epoch_num);
        problems.extend(mismatches(&got.metrics, &want.metrics, &context));
    }
    // And through the streaming path.
    calls::seed_model(&mut client, "s").await;
    let streamed = epoch("s", 0, &specials());
    client
        .stream_epochs(futures::stream::iter(vec![mlmeta_tests::records::insert(vec![
            streamed.clone(),
        ])]))
        .await
        .unwrap();
    let listed = epochs_of(&mut client, &["s"]).await;
    problems.extend(mismatches(&listed[0].metrics, &streamed.metrics, "StreamEpochs"));
    assert_none(&problems);
}

async fn special_values_are_best_values_bit_for_bit(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    // Epoch 0 carries every special value and is best on `key` (MAX);
    // epoch 1 is worse.
    let mut metrics = specials();
    metrics.push(("key", 10.0));
    insert_epochs(
        &mut client,
        vec![epoch("m", 0, &metrics), epoch("m", 1, &[("key", 1.0)])],
    )
    .await;
    let response = client
        .get_best_model(best("key", MetricDirection::Max, 1))
        .await
        .unwrap()
        .into_inner();
    let best_epoch = response.models[0].best_epoch.as_ref().expect("best_epoch");
    assert_eq!(best_epoch.epoch_num, 0);
    let want = epoch("m", 0, &metrics).metrics;
    let mut problems = mismatches(&best_epoch.metrics, &want, "best_epoch.metrics");

    // Each non-NaN special value as the best value of its own metric.
    for (name, value) in specials() {
        if value.is_nan() {
            continue;
        }
        for direction in [MetricDirection::Max, MetricDirection::Min] {
            let response = client
                .get_best_model(best(name, direction, 1))
                .await
                .unwrap_or_else(|s| panic!("GetBestModel {name}: {s}"))
                .into_inner();
            let got = response.models[0].metric_value;
            if got.to_bits() != value.to_bits() {
                problems.push(format!(
                    "GetBestModel {name} {direction:?}: metric_value {got:e}, sent {value:e}"
                ));
            }
            let board = full_leaderboard(&mut client, leaderboard(name, direction, 0)).await;
            let got = board[0].best_value;
            if got.to_bits() != value.to_bits() {
                problems.push(format!(
                    "GetLeaderboard {name} {direction:?}: best_value {got:e}, sent {value:e}"
                ));
            }
        }
    }
    assert_none(&problems);
}

/// -0.0 is stored exactly, but prost omits a double equal to its default
/// (and -0.0 == 0.0) when encoding, so every read path returns +0.0: the
/// documented limit of "bit for bit". The request here is hand-encoded,
/// because no prost client can send -0.0 either.
async fn negative_zero_reads_back_as_zero(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    // Epoch 0: neg_zero = -0.0 (best by MIN on `key`); epoch 1: key worse.
    let request = wire::insert_epochs_request(&[
        (epoch("m", 0, &[("key", 1.0)]), vec![("neg_zero", -0.0)]),
        (epoch("m", 1, &[("key", 2.0)]), vec![("neg_zero", 5.0)]),
    ]);
    wire::unary(server.channel(), "InsertEpochs", request)
        .await
        .unwrap_or_else(|s| panic!("raw InsertEpochs: {s}"));

    let listed: ListEpochsResponse = wire::call(
        server.channel(),
        "ListEpochs",
        &ListEpochsRequest {
            model_names: vec!["m".to_owned()],
            ..ListEpochsRequest::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(listed.epochs[0].metrics.get("neg_zero"), Some(&0.0), "ListEpochs");
    assert_eq!(listed.epochs[1].metrics.get("neg_zero"), Some(&5.0), "ListEpochs");

    let found: GetBestModelResponse = wire::call(
        server.channel(),
        "GetBestModel",
        &best("key", MetricDirection::Min, 1),
    )
    .await
    .unwrap();
    let best_epoch = found.models[0].best_epoch.as_ref().expect("best_epoch");
    assert_eq!(best_epoch.epoch_num, 0);
    assert_eq!(
        best_epoch.metrics.get("neg_zero"),
        Some(&0.0),
        "best_epoch.metrics"
    );

    let found: GetBestModelResponse = wire::call(
        server.channel(),
        "GetBestModel",
        &best("neg_zero", MetricDirection::Min, 1),
    )
    .await
    .unwrap();
    assert_eq!(found.models[0].metric_value, 0.0, "GetBestModel metric_value");
    assert_eq!(found.models[0].best_epoch.as_ref().map(|e| e.epoch_num), Some(0));

    let board: GetLeaderboardResponse = wire::call(
        server.channel(),
        "GetLeaderboard",
        &leaderboard("neg_zero", MetricDirection::Min, 0),
    )
    .await
    .unwrap();
    assert_eq!(board.rows[0].best_value, 0.0, "GetLeaderboard best_value");
    assert_eq!(board.rows[0].best_epoch_num, 0);
}

async fn leaderboard_pages_through_special_values(server: TestServer) {
    let mut client = server.client();
    // One model per value (the NaN model has no best value: not a row),
    // plus ties on the infinities and the extremes.
    let values: Vec<(String, f64)> = specials()
        .into_iter()
        .chain([
            ("pos_inf_2", f64::INFINITY),
            ("neg_inf_2", f64::NEG_INFINITY),
            ("max_2", f64::MAX),
        ])
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    for (name, value) in &values {
        calls::seed_model(&mut client, name).await;
        insert_epochs(&mut client, vec![epoch(name, 0, &[("v", *value)])]).await;
    }
    for direction in [MetricDirection::Max, MetricDirection::Min] {
        let mut want: Vec<(String, f64)> = values.iter().filter(|(_, v)| !v.is_nan()).cloned().collect();
        want.sort_by(|a, b| {
            let by_value = match direction {
                MetricDirection::Max => b.1.total_cmp(&a.1),
                _ => a.1.total_cmp(&b.1),
            };
            by_value.then(a.0.cmp(&b.0))
        });
        let want: Vec<(String, u64)> = want.into_iter().map(|(n, v)| (n, v.to_bits())).collect();
        for page_size in [1, 2, 3] {
            let board = full_leaderboard(&mut client, leaderboard("v", direction, page_size)).await;
            let got: Vec<(String, u64)> = board
                .iter()
                .map(|r| (r.model.as_ref().unwrap().name.clone(), r.best_value.to_bits()))
                .collect();
            assert_eq!(got, want, "{direction:?} in pages of {page_size}");
        }
    }
}
