//! Columnar epochs (`EpochColumns`) through InsertEpochs and WriteEpochs:
//! values, missing values, NaN and infinities stored exactly; duplicate
//! epochs counted as for rows; rows and columns mixed; every rule with its
//! code and message; summaries and best answers equal to the row form's.

use mlmeta_proto::{
    Epoch, EpochColumns, GetModelRequest, InsertEpochsRequest, MetricColumn, MetricDirection, MetricSummary,
    WriteEpochsRequest,
};
use mlmeta_tests::calls::{self, epochs_of, expect_status};
use mlmeta_tests::records::{best, epoch};
use mlmeta_tests::{TestServer, backend_tests};
use tonic::Code;

use crate::write_epochs::summary;

backend_tests! {
    columns_store_every_value_exactly,
    missing_values_are_absent_and_nan_and_infinities_are_values,
    duplicate_epochs_count_as_for_rows,
    rows_and_columns_mix_in_one_request,
    every_broken_rule_is_invalid_argument_naming_the_field,
    an_unknown_model_in_columns_is_not_found,
    summaries_and_best_answers_equal_those_of_rows,
    the_write_stream_carries_columns,
}

fn column(name: &str, values: &[f64], present: &[u8]) -> MetricColumn {
    MetricColumn {
        name: name.to_owned(),
        values: values.to_vec(),
        present: present.to_vec(),
    }
}

fn columns(model: &str, epoch_nums: &[i64], metrics: Vec<MetricColumn>) -> EpochColumns {
    EpochColumns {
        model_name: model.to_owned(),
        epoch_nums: epoch_nums.to_vec(),
        metrics,
        ..Default::default()
    }
}

fn request(rows: Vec<Epoch>, sets: Vec<EpochColumns>) -> InsertEpochsRequest {
    InsertEpochsRequest {
        epochs: rows,
        columns: sets,
        project: String::new(),
    }
}

async fn insert(client: &mut calls::Client, rows: Vec<Epoch>, sets: Vec<EpochColumns>) -> (u64, u64) {
    let answer = client
        .insert_epochs(request(rows, sets))
        .await
        .unwrap_or_else(|s| panic!("InsertEpochs: {s}"))
        .into_inner();
    (answer.inserted, answer.skipped)
}

/// (epoch_num, metrics as (name, value bits), steps, validation steps).
type Row = (i64, Vec<(String, u64)>, Option<i64>, Option<i64>);

fn rows_of(epochs: &[Epoch]) -> Vec<Row> {
    epochs
        .iter()
        .map(|e| {
            let metrics = e.metrics.iter().map(|(k, v)| (k.clone(), v.to_bits())).collect();
            (
                e.epoch_num,
                metrics,
                e.steps_per_epoch,
                e.validation_steps_per_epoch,
            )
        })
        .collect()
}

fn row(num: i64, metrics: &[(&str, f64)], steps: Option<i64>, validation: Option<i64>) -> Row {
    let metrics = metrics
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.to_bits()))
        .collect();
    (num, metrics, steps, validation)
}

async fn columns_store_every_value_exactly(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let set = EpochColumns {
        steps_per_epoch: vec![100, 200, 300],
        validation_steps_per_epoch: vec![7, 0, 9],
        validation_steps_per_epoch_present: vec![0b101],
        ..columns(
            "m",
            &[3, 1, 2],
            vec![
                column("loss", &[0.3, 0.1, 0.2], &[]),
                column("acc", &[1e-300, 1e300, -2.5], &[]),
            ],
        )
    };
    assert_eq!(insert(&mut client, vec![], vec![set]).await, (3, 0));
    let stored = rows_of(&epochs_of(&mut client, &["m"]).await);
    assert_eq!(
        stored,
        [
            row(1, &[("acc", 1e300), ("loss", 0.1)], Some(200), None),
            row(2, &[("acc", -2.5), ("loss", 0.2)], Some(300), Some(9)),
            row(3, &[("acc", 1e-300), ("loss", 0.3)], Some(100), Some(7)),
        ]
    );
}

async fn missing_values_are_absent_and_nan_and_infinities_are_values(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let nums: Vec<i64> = (0..10).collect();
    // loss: every epoch but 3 and 9; acc only at 8 and 9; the values
    // standing for missing ones are ignored, even NaN.
    let loss = column(
        "loss",
        &[
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            99.0,
            0.5,
            0.4,
            0.3,
            0.2,
            0.1,
            f64::NAN,
        ],
        &[0b1111_0111, 0b0000_0001],
    );
    let acc = column("acc", &[f64::NAN; 10], &[0, 0b0000_0011]);
    let set = EpochColumns {
        steps_per_epoch: vec![0; 10],
        steps_per_epoch_present: vec![0b0000_0001, 0],
        ..columns("m", &nums, vec![loss, acc])
    };
    assert_eq!(insert(&mut client, vec![], vec![set]).await, (10, 0));
    let stored = epochs_of(&mut client, &["m"]).await;
    assert_eq!(stored.len(), 10);
    assert!(stored[0].metrics["loss"].is_nan());
    assert_eq!(stored[0].steps_per_epoch, Some(0));
    assert!(stored[1..].iter().all(|e| e.steps_per_epoch.is_none()));
    assert_eq!(stored[1].metrics["loss"], f64::INFINITY);
    assert_eq!(stored[2].metrics["loss"], f64::NEG_INFINITY);
    assert!(
        stored[3].metrics.is_empty(),
        "epoch 3 has no metric: {:?}",
        stored[3].metrics
    );
    assert_eq!(stored[8].metrics.len(), 2);
    assert!(stored[8].metrics["acc"].is_nan());
    assert_eq!(stored[8].metrics["loss"], 0.1);
    assert_eq!(stored[9].metrics.keys().collect::<Vec<_>>(), ["acc"]);
}

async fn duplicate_epochs_count_as_for_rows(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    assert_eq!(
        insert(&mut client, vec![epoch("m", 0, &[("loss", 5.0)])], vec![]).await,
        (1, 0)
    );
    // 0 is stored; 2 is repeated within the set (the first wins).
    let set = columns(
        "m",
        &[0, 1, 2, 2],
        vec![column("loss", &[1.0, 2.0, 3.0, 4.0], &[])],
    );
    assert_eq!(insert(&mut client, vec![], vec![set.clone()]).await, (2, 2));
    let stored = rows_of(&epochs_of(&mut client, &["m"]).await);
    assert_eq!(
        stored,
        [
            row(0, &[("loss", 5.0)], None, None),
            row(1, &[("loss", 2.0)], None, None),
            row(2, &[("loss", 3.0)], None, None),
        ]
    );
    // The same request again: every epoch skipped.
    assert_eq!(insert(&mut client, vec![], vec![set]).await, (0, 4));
}

async fn rows_and_columns_mix_in_one_request(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    calls::seed_model(&mut client, "n").await;
    // Rows come first: the row of m/1 wins over its column; a second
    // column set repeats n/0 of the first.
    let rows = vec![epoch("m", 1, &[("loss", -1.0)]), epoch("n", 5, &[("acc", 0.5)])];
    let sets = vec![
        columns("m", &[0, 1], vec![column("loss", &[0.0, 1.0], &[])]),
        columns("n", &[0], vec![column("acc", &[0.25], &[])]),
        columns("n", &[0, 1], vec![column("acc", &[9.0, 0.75], &[])]),
    ];
    assert_eq!(insert(&mut client, rows, sets).await, (5, 2));
    let stored = rows_of(&epochs_of(&mut client, &["m", "n"]).await);
    assert_eq!(
        stored,
        [
            row(0, &[("loss", 0.0)], None, None),
            row(1, &[("loss", -1.0)], None, None),
            row(0, &[("acc", 0.25)], None, None),
            row(1, &[("acc", 0.75)], None, None),
            row(5, &[("acc", 0.5)], None, None),
        ]
    );
    // An empty column set is allowed and adds nothing.
    assert_eq!(
        insert(&mut client, vec![], vec![columns("m", &[], vec![])]).await,
        (0, 0)
    );
}

async fn every_broken_rule_is_invalid_argument_naming_the_field(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let good = || columns("m", &[0, 1, 2], vec![column("loss", &[1.0, 2.0, 3.0], &[])]);
    let many_columns: Vec<MetricColumn> = (0..1_025)
        .map(|i| column(&format!("m{i}"), &[1.0, 2.0, 3.0], &[]))
        .collect();
    let cases: Vec<(EpochColumns, Vec<&str>)> = vec![
        (
            EpochColumns {
                model_name: String::new(),
                ..good()
            },
            vec!["columns[1].model_name", "must not be empty"],
        ),
        (
            EpochColumns {
                epoch_nums: vec![0, -4, 2],
                ..good()
            },
            vec!["columns[1].epoch_nums[1]", "must be >= 0, got -4"],
        ),
        (
            columns("m", &[0, 1, 2], vec![column("loss", &[1.0, 2.0], &[])]),
            vec!["columns[1].metrics[0].values", "one value per epoch (3", "got 2"],
        ),
        (
            columns("m", &[0, 1, 2], vec![column("loss", &[1.0, 2.0, 3.0, 4.0], &[])]),
            vec!["columns[1].metrics[0].values", "got 4"],
        ),
        (
            columns(
                "m",
                (0..9).collect::<Vec<_>>().as_slice(),
                vec![column("loss", &[1.0; 9], &[0xff])],
            ),
            vec!["columns[1].metrics[0].present", "2 bytes for 9 epochs, got 1"],
        ),
        (
            columns("m", &[0, 1, 2], vec![column("loss", &[1.0; 3], &[0b111, 0])]),
            vec!["columns[1].metrics[0].present", "1 bytes for 3 epochs, got 2"],
        ),
        (
            columns("m", &[0, 1, 2], vec![column("loss", &[1.0; 3], &[0b1111])]),
            vec![
                "columns[1].metrics[0].present",
                "bits past the last epoch",
                "must be 0",
            ],
        ),
        (
            columns(
                "m",
                &[0, 1, 2],
                vec![column("loss", &[1.0; 3], &[]), column("loss", &[2.0; 3], &[])],
            ),
            vec![
                "columns[1].metrics[1].name",
                "repeats the metric \"loss\" of metrics[0]",
            ],
        ),
        (
            columns("m", &[0, 1, 2], vec![column("", &[1.0; 3], &[])]),
            vec!["columns[1].metrics[0].name", "must not be empty"],
        ),
        (
            columns("m", &[0, 1, 2], vec![column("a\u{7}", &[1.0; 3], &[])]),
            vec!["columns[1].metrics[0].name", "control characters"],
        ),
        (
            columns("m", &[0, 1, 2], vec![column(&"x".repeat(256), &[1.0; 3], &[])]),
            vec!["columns[1].metrics[0].name", "at most 255 bytes"],
        ),
        (
            columns("m", &[0, 1, 2], many_columns),
            vec!["columns[1].metrics", "at most 1024 metric columns, got 1025"],
        ),
        (
            EpochColumns {
                steps_per_epoch: vec![1, 2],
                ..good()
            },
            vec!["columns[1].steps_per_epoch", "one count per epoch (3", "got 2"],
        ),
        (
            EpochColumns {
                steps_per_epoch: vec![1, -2, 3],
                ..good()
            },
            vec!["columns[1].steps_per_epoch[1]", "must be >= 0, got -2"],
        ),
        (
            EpochColumns {
                validation_steps_per_epoch_present: vec![0b1],
                ..good()
            },
            vec!["columns[1].validation_steps_per_epoch_present", "must be empty"],
        ),
        (
            EpochColumns {
                validation_steps_per_epoch: vec![1, 2, 3],
                validation_steps_per_epoch_present: vec![0b1, 0],
                ..good()
            },
            vec![
                "columns[1].validation_steps_per_epoch_present",
                "1 bytes for 3 epochs",
            ],
        ),
    ];
    for (bad, needles) in cases {
        // A valid set before the bad one: nothing of the request is stored.
        let sets = vec![
            columns("m", &[10, 11], vec![column("loss", &[1.0, 2.0], &[])]),
            bad,
        ];
        let result = client
            .insert_epochs(request(vec![epoch("m", 20, &[])], sets))
            .await;
        expect_status(result, Code::InvalidArgument, &needles);
    }
    assert!(
        epochs_of(&mut client, &["m"]).await.is_empty(),
        "a refused request stored epochs"
    );

    // The request limit counts the epochs of rows and columns together.
    let nums: Vec<i64> = (0..100_000).collect();
    let result = client
        .insert_epochs(request(
            vec![epoch("m", 200_000, &[])],
            vec![columns("m", &nums, vec![])],
        ))
        .await;
    expect_status(
        result,
        Code::InvalidArgument,
        &["epochs and columns", "at most 100000 epochs, got 100001"],
    );
    assert_eq!(
        insert(&mut client, vec![], vec![columns("m", &nums, vec![])]).await,
        (100_000, 0)
    );
}

async fn an_unknown_model_in_columns_is_not_found(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let sets = vec![
        columns("m", &[0, 1], vec![]),
        columns("nope", &[0, 1], vec![column("loss", &[1.0, 2.0], &[])]),
    ];
    let result = client.insert_epochs(request(vec![], sets)).await;
    expect_status(result, Code::NotFound, &["nope"]);
    assert!(epochs_of(&mut client, &["m"]).await.is_empty());
}

/// The metric summaries of `model`, by metric name, with value bits.
async fn summaries(client: &mut calls::Client, model: &str) -> Vec<MetricSummary> {
    client
        .get_model(GetModelRequest {
            model_name: model.to_owned(),
            project: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .metrics
}

fn summary_bits(summaries: &[MetricSummary]) -> Vec<String> {
    summaries
        .iter()
        .map(|s| {
            format!(
                "{} count={} nan={} min={:?}@{:?} max={:?}@{:?} last={:#x}@{}",
                s.metric_name,
                s.count,
                s.nan_count,
                s.min_value.map(f64::to_bits),
                s.min_epoch_num,
                s.max_value.map(f64::to_bits),
                s.max_epoch_num,
                s.last_value.to_bits(),
                s.last_epoch_num
            )
        })
        .collect()
}

async fn summaries_and_best_answers_equal_those_of_rows(server: TestServer) {
    let mut client = server.client();
    // Epochs with NaN, infinities and missing values, sent twice: as rows
    // to the `rows-*` models and as columns to the `cols-*` ones.
    let value = |model: usize, i: i64, j: usize| -> Option<f64> {
        match (i + j as i64 + model as i64) % 7 {
            0 => None,
            1 => Some(f64::NAN),
            2 if i % 5 == 0 => Some(f64::INFINITY),
            3 if i % 11 == 0 => Some(f64::NEG_INFINITY),
            k => Some((k as f64) * 0.125 + (i as f64) / 64.0 - (model as f64)),
        }
    };
    let names = ["loss", "acc", "val_loss"];
    let nums: Vec<i64> = (0..40).rev().collect();
    for model in 0..3 {
        let (rows_model, cols_model) = (format!("rows-{model}"), format!("cols-{model}"));
        calls::seed_model(&mut client, &rows_model).await;
        calls::seed_model(&mut client, &cols_model).await;
        let rows: Vec<Epoch> = nums
            .iter()
            .map(|&i| {
                let metrics: Vec<(&str, f64)> = names
                    .iter()
                    .enumerate()
                    .filter_map(|(j, name)| value(model, i, j).map(|v| (*name, v)))
                    .collect();
                epoch(&rows_model, i, &metrics)
            })
            .collect();
        let metrics: Vec<MetricColumn> = names
            .iter()
            .enumerate()
            .map(|(j, name)| {
                let mut present = vec![0_u8; nums.len().div_ceil(8)];
                let values = nums
                    .iter()
                    .enumerate()
                    .map(|(k, &i)| match value(model, i, j) {
                        Some(v) => {
                            present[k / 8] |= 1 << (k % 8);
                            v
                        }
                        None => 0.0,
                    })
                    .collect::<Vec<_>>();
                column(name, &values, &present)
            })
            .collect();
        assert_eq!(insert(&mut client, rows, vec![]).await, (40, 0));
        assert_eq!(
            insert(&mut client, vec![], vec![columns(&cols_model, &nums, metrics)]).await,
            (40, 0)
        );
        assert_eq!(
            rows_of(&epochs_of(&mut client, &[&rows_model]).await),
            rows_of(&epochs_of(&mut client, &[&cols_model]).await)
        );
        assert_eq!(
            summary_bits(&summaries(&mut client, &rows_model).await),
            summary_bits(&summaries(&mut client, &cols_model).await)
        );
    }
    for name in names {
        for direction in [MetricDirection::Min, MetricDirection::Max] {
            let answer = client
                .get_best_model(best(name, direction, 6))
                .await
                .unwrap()
                .into_inner();
            let of = |kind: &str| -> Vec<(String, i64, u64)> {
                answer
                    .models
                    .iter()
                    .filter_map(|m| {
                        let name = &m.model.as_ref().unwrap().name;
                        let (prefix, index) = name.split_once('-').unwrap();
                        let num = m.best_epoch.as_ref().unwrap().epoch_num;
                        (prefix == kind).then(|| (index.to_owned(), num, m.metric_value.to_bits()))
                    })
                    .collect()
            };
            assert_eq!(answer.models.len(), 6, "{name} {direction:?}");
            assert_eq!(of("rows"), of("cols"), "{name} {direction:?}");
            assert_eq!(of("rows").len(), 3);
        }
    }
}

async fn the_write_stream_carries_columns(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let batch = |sequence: u64, rows: Vec<Epoch>, sets: Vec<EpochColumns>| WriteEpochsRequest {
        sequence,
        epochs: rows,
        columns: sets,
        ..Default::default()
    };
    let batches = vec![
        batch(
            1,
            vec![],
            vec![columns(
                "m",
                &[0, 1, 2],
                vec![column("loss", &[1.0, f64::NAN, 3.0], &[0b011])],
            )],
        ),
        batch(
            2,
            vec![],
            vec![columns("m", &[3, 4], vec![column("loss", &[1.0, 2.0], &[0b111])])],
        ),
        batch(
            3,
            vec![epoch("m", 2, &[("loss", 9.0)])],
            vec![columns("m", &[2, 3], vec![column("loss", &[4.0, 5.0], &[])])],
        ),
    ];
    let mut answers = client
        .write_epochs(futures::stream::iter(batches))
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    while let Some(answer) = answers.message().await.unwrap() {
        got.push(answer);
    }
    let summaries: Vec<_> = got.iter().map(summary).collect();
    assert_eq!(
        summaries,
        [
            (1, 3, 0, None),
            (2, 0, 0, Some(Code::InvalidArgument as i32)),
            (3, 1, 2, None)
        ]
    );
    let message = &got[1].error.as_ref().unwrap().message;
    assert!(message.contains("columns[0].metrics[0].present"), "{message}");
    let stored = rows_of(&epochs_of(&mut client, &["m"]).await);
    assert_eq!(
        stored,
        [
            row(0, &[("loss", 1.0)], None, None),
            row(1, &[("loss", f64::NAN)], None, None),
            row(2, &[], None, None),
            row(3, &[("loss", 5.0)], None, None),
        ]
    );
}
