//! GetLeaderboard: every matching model with the metric, best first, with
//! its records, best epoch and value; agrees with GetBestModel.

use mlmeta_proto::{
    GetBestModelRequest, GetLeaderboardRequest, LeaderboardRow, MetricDirection, ModelFilter,
};
use mlmeta_tests::calls::{self, full_leaderboard, insert_epochs, json};
use mlmeta_tests::records::{best, epoch, leaderboard, strings};
use mlmeta_tests::{TestServer, backend_tests};

use MetricDirection::{Max, Min};

backend_tests! {
    leaderboard_lists_models_with_the_metric_best_first,
    leaderboard_agrees_with_best_model,
}

fn rows(board: &[LeaderboardRow]) -> Vec<(String, i64, u64)> {
    board
        .iter()
        .map(|r| {
            (
                r.model.as_ref().expect("model").name.clone(),
                r.best_epoch_num,
                r.best_value.to_bits(),
            )
        })
        .collect()
}

fn row(name: &str, epoch_num: i64, value: f64) -> (String, i64, u64) {
    (name.to_owned(), epoch_num, value.to_bits())
}

async fn leaderboard_lists_models_with_the_metric_best_first(server: TestServer) {
    let mut client = server.client();
    calls::put_datablob(&mut client, "d1", "dg1", r#"{"n": 1}"#).await;
    calls::put_datablob(&mut client, "d2", "dg2", "{}").await;
    calls::put_template(&mut client, "t1", "tg1", r#"{"depth": 4.0}"#).await;
    for (name, blob) in [
        ("w", "d1"),
        ("x", "d2"),
        ("y", "d1"),
        ("z", "d2"),
        ("no-metric", "d1"),
    ] {
        calls::put_model(&mut client, name, blob, "t1").await;
    }
    insert_epochs(
        &mut client,
        vec![
            epoch("w", 0, &[("loss", 3.0)]),
            epoch("w", 1, &[("loss", 1.0)]),
            epoch("x", 0, &[("loss", 2.0)]),
            epoch("x", 1, &[("loss", 2.5)]),
            epoch("y", 4, &[("loss", 1.0)]),
            epoch("z", 0, &[("loss", f64::NAN)]),
            epoch("z", 1, &[("loss", 0.5)]),
            epoch("no-metric", 0, &[("acc", 0.5)]),
        ],
    )
    .await;
    let board = full_leaderboard(&mut client, leaderboard("loss", Min, 0)).await;
    assert_eq!(
        rows(&board),
        vec![
            row("z", 1, 0.5),
            row("w", 1, 1.0),
            row("y", 4, 1.0),
            row("x", 0, 2.0)
        ]
    );
    let first = &board[1];
    let blob = first.datablob.as_ref().expect("datablob");
    assert_eq!((blob.name.as_str(), blob.group_name.as_str()), ("d1", "dg1"));
    assert_eq!(json(&blob.hyperparams_json), serde_json::json!({"n": 1}));
    let tmpl = first.model_template.as_ref().expect("model_template");
    assert_eq!(tmpl.name, "t1");
    assert!(
        json(&tmpl.hyperparams_json)["depth"].is_f64(),
        "4.0 stays a float"
    );
    assert_eq!(first.model.as_ref().unwrap().datablob_name, "d1");

    let board = full_leaderboard(&mut client, leaderboard("loss", Max, 1)).await;
    assert_eq!(
        rows(&board),
        vec![
            row("w", 0, 3.0),
            row("x", 1, 2.5),
            row("y", 4, 1.0),
            row("z", 1, 0.5)
        ]
    );
    let filtered = GetLeaderboardRequest {
        filter: Some(ModelFilter {
            datablob_group_names: strings(&["dg2"]),
            ..ModelFilter::default()
        }),
        ..leaderboard("loss", Min, 1)
    };
    assert_eq!(
        rows(&full_leaderboard(&mut client, filtered).await),
        vec![row("z", 1, 0.5), row("x", 0, 2.0)]
    );
}

async fn leaderboard_agrees_with_best_model(server: TestServer) {
    let mut client = server.client();
    let mut epochs = Vec::new();
    for i in 0..12_i64 {
        let name = format!("m{:02}", (i * 7) % 12);
        calls::seed_model(&mut client, &name).await;
        for n in 0..4_i64 {
            // Values 0..5 so that many models tie.
            epochs.push(epoch(&name, n, &[("score", ((i * 3 + n * 5) % 6) as f64)]));
        }
    }
    insert_epochs(&mut client, epochs).await;
    for direction in [Max, Min] {
        let board = full_leaderboard(&mut client, leaderboard("score", direction, 5)).await;
        assert_eq!(board.len(), 12);
        let top = client
            .get_best_model(GetBestModelRequest {
                ..best("score", direction, 12)
            })
            .await
            .unwrap()
            .into_inner()
            .models;
        let from_best: Vec<(String, i64, u64)> = top
            .iter()
            .map(|m| {
                (
                    m.model.as_ref().unwrap().name.clone(),
                    m.best_epoch.as_ref().unwrap().epoch_num,
                    m.metric_value.to_bits(),
                )
            })
            .collect();
        assert_eq!(
            rows(&board),
            from_best,
            "leaderboard and GetBestModel disagree ({direction:?})"
        );
    }
}
