//! Metric values read back bit-for-bit: NaN, infinities, -0.0, subnormals,
//! f64::MAX/MIN and ordinary values, via ListEpochs, GetBestModel and
//! GetLeaderboard.

use std::collections::BTreeMap;

use mlmeta_proto::MetricDirection;
use mlmeta_tests::calls::{self, epochs_of, full_leaderboard, insert_epochs};
use mlmeta_tests::records::{best, epoch, leaderboard};
use mlmeta_tests::{TestServer, backend_tests};

backend_tests! {
    special_values_read_back_bit_for_bit,
    special_values_are_best_values_bit_for_bit,
}

/// Every value that must survive storage exactly.
fn specials() -> Vec<(&'static str, f64)> {
    vec![
        ("nan", f64::NAN),
        ("pos_inf", f64::INFINITY),
        ("neg_inf", f64::NEG_INFINITY),
        ("neg_zero", -0.0),
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

fn bits(metrics: &BTreeMap<String, f64>) -> BTreeMap<String, u64> {
    metrics.iter().map(|(k, v)| (k.clone(), v.to_bits())).collect()
}

fn hex(map: &BTreeMap<String, u64>) -> BTreeMap<String, String> {
    map.iter()
        .map(|(k, v)| (k.clone(), format!("{v:#018x}")))
        .collect()
}

async fn special_values_read_back_bit_for_bit(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let all = epoch("m", 0, &specials());
    // Also each value alone, as the only metric of its epoch.
    let mut sent = vec![all.clone()];
    for (i, (name, value)) in specials().into_iter().enumerate() {
        sent.push(epoch("m", i as i64 + 1, &[(name, value), ("marker", i as f64)]));
    }
    insert_epochs(&mut client, sent.clone()).await;
    let listed = epochs_of(&mut client, &["m"]).await;
    assert_eq!(listed.len(), sent.len());
    for (got, want) in listed.iter().zip(&sent) {
        assert_eq!(
            hex(&bits(&got.metrics)),
            hex(&bits(&want.metrics)),
            "metrics of epoch {} as bits",
            want.epoch_num
        );
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
    assert_eq!(hex(&bits(&listed[0].metrics)), hex(&bits(&streamed.metrics)));
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
    let want: BTreeMap<String, u64> = metrics
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.to_bits()))
        .collect();
    assert_eq!(
        hex(&bits(&best_epoch.metrics)),
        hex(&want),
        "best_epoch.metrics as bits"
    );

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
            assert_eq!(
                format!("{:#018x}", got.to_bits()),
                format!("{:#018x}", value.to_bits()),
                "metric_value of {name} ({direction:?})"
            );
            let board = full_leaderboard(&mut client, leaderboard(name, direction, 0)).await;
            assert_eq!(
                format!("{:#018x}", board[0].best_value.to_bits()),
                format!("{:#018x}", value.to_bits()),
                "leaderboard best_value of {name} ({direction:?})"
            );
        }
    }
}
