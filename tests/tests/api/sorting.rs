//! ListModels `order_by` (ties by name, missing and NaN last in both
//! directions, exact paging under a sort, tokens tied to their sort) and
//! summary `columns` on ListModels, GetBestModel and GetLeaderboard (equal
//! to GetModel's summaries; a missing metric is an empty value).

use mlmeta_proto::column_value::Value;
use mlmeta_proto::{ColumnValue, GetModelRequest, ListModelsRequest, MetricDirection, Model, ModelFilter};
use mlmeta_tests::calls::{self, Client, expect_status, insert_epochs};
use mlmeta_tests::records::{self, epoch};
use mlmeta_tests::{TestServer, backend_tests};
use tonic::Code;

backend_tests! {
    order_by_sorts_with_ties_by_name_and_missing_last,
    paging_under_a_sort_has_no_duplicates_or_gaps,
    bad_order_by_columns_and_foreign_tokens_are_invalid_argument,
    columns_equal_the_summaries_of_get_model,
    last_values_keep_every_double_exactly,
}

const ACC: &str = "val_accuracy";

/// Models a..f (put in that order) with these `val_accuracy` histories:
/// a [0.5, 0.9], b [0.9], c [NaN], d none (3 epochs of loss),
/// e [0.1, 0.7], f [-inf, 0.2].
async fn seed(client: &mut Client) {
    calls::put_datablob(client, "d", "g", "{}").await;
    calls::put_template(client, "t", "g", "{}").await;
    let histories: [(&str, &[f64]); 6] = [
        ("a", &[0.5, 0.9]),
        ("b", &[0.9]),
        ("c", &[f64::NAN]),
        ("d", &[]),
        ("e", &[0.1, 0.7]),
        ("f", &[f64::NEG_INFINITY, 0.2]),
    ];
    for (name, values) in histories {
        calls::put_model(client, name, "d", "t").await;
        let epochs = if values.is_empty() {
            (1..=3).map(|n| epoch(name, n, &[("loss", 1.0)])).collect()
        } else {
            values
                .iter()
                .zip(1..)
                .map(|(value, n)| epoch(name, n, &[(ACC, *value)]))
                .collect()
        };
        insert_epochs(client, epochs).await;
    }
}

fn request(order_by: &str, page_size: u32, page_token: String) -> ListModelsRequest {
    ListModelsRequest {
        order_by: order_by.to_owned(),
        page_size,
        page_token,
        ..Default::default()
    }
}

/// Every model in the order of `order_by`, following pages of `page_size`.
async fn sorted(client: &mut Client, order_by: &str, page_size: u32) -> Vec<String> {
    let mut names = Vec::new();
    let mut token = String::new();
    for _ in 0..100 {
        let page = client
            .list_models(request(order_by, page_size, token))
            .await
            .unwrap_or_else(|s| panic!("{order_by}: {s}"))
            .into_inner();
        assert!(page.models.len() <= page_size as usize);
        names.extend(page.models.into_iter().map(|m| m.name));
        token = page.next_page_token;
        if token.is_empty() {
            return names;
        }
    }
    panic!("{order_by}: the tokens loop");
}

/// The orders of the seed, each written as the server must answer it.
const EXPECTED: &[(&str, &str)] = &[
    ("max(val_accuracy) desc", "a b e f c d"),
    ("max(val_accuracy)", "f e a b c d"),
    ("max(val_accuracy) asc", "f e a b c d"),
    ("min(val_accuracy) asc", "f e a b c d"),
    ("min(val_accuracy) desc", "b a e f c d"),
    // c's last value is NaN: after every number, with the missing d.
    ("last(val_accuracy) desc", "a b e f c d"),
    ("last(val_accuracy) asc", "f e a b c d"),
    ("count(val_accuracy) desc", "a e f b c d"),
    ("count(val_accuracy) asc", "b c a e f d"),
    ("epochs desc", "d a e f b c"),
    ("current_epoch desc", "d a e f b c"),
    ("name desc", "f e d c b a"),
    ("name", "a b c d e f"),
    ("status desc", "a b c d e f"),
    ("created_at desc", "f e d c b a"),
    ("started_at desc", "a b c d e f"),
    ("max(nope) desc", "a b c d e f"),
];

async fn order_by_sorts_with_ties_by_name_and_missing_last(server: TestServer) {
    let mut client = server.client();
    seed(&mut client).await;
    for (order_by, want) in EXPECTED {
        let got = sorted(&mut client, order_by, 100).await.join(" ");
        assert_eq!(&got, want, "order_by {order_by:?}");
    }
}

async fn paging_under_a_sort_has_no_duplicates_or_gaps(server: TestServer) {
    let mut client = server.client();
    seed(&mut client).await;
    for (order_by, want) in EXPECTED {
        for page_size in [1, 2, 4] {
            let got = sorted(&mut client, order_by, page_size).await.join(" ");
            assert_eq!(&got, want, "order_by {order_by:?}, pages of {page_size}");
        }
    }
    // A page boundary inside the missing values and inside a tie, with the
    // filter applied too.
    let filter = ModelFilter {
        r#where: "name != 'e'".to_owned(),
        ..Default::default()
    };
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_models(ListModelsRequest {
                filter: Some(filter.clone()),
                ..request("max(val_accuracy) desc", 1, token)
            })
            .await
            .unwrap()
            .into_inner();
        names.extend(page.models.into_iter().map(|m| m.name));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(names.join(" "), "a b f c d");
}

async fn bad_order_by_columns_and_foreign_tokens_are_invalid_argument(server: TestServer) {
    let mut client = server.client();
    seed(&mut client).await;
    for (order_by, needles) in [
        ("bogus", &["order_by: column 1", "unknown field 'bogus'"][..]),
        ("params.lr desc", &["order_by: column 1", "cannot sort by"]),
        ("tags.team", &["order_by: column 1", "cannot sort by"]),
        (
            "max(acc) sideways",
            &["order_by: column 10", "expected 'asc', 'desc'"],
        ),
        ("max(", &["order_by: column 5", "metric name"]),
    ] {
        let result = client.list_models(request(order_by, 10, String::new())).await;
        expect_status(result, Code::InvalidArgument, needles);
    }
    for (columns, needles) in [
        (vec!["name"], &["columns[0]: column 1", "not a summary"][..]),
        (vec!["epochs", "max(a) desc"], &["columns[1]: column 8"]),
        (vec![""], &["columns[0]", "expected a field"]),
        (vec!["epochs"; 33], &["columns", "at most 32"]),
    ] {
        let columns: Vec<String> = columns.into_iter().map(str::to_owned).collect();
        let result = client
            .list_models(ListModelsRequest {
                columns: columns.clone(),
                ..Default::default()
            })
            .await;
        expect_status(result, Code::InvalidArgument, needles);
        let mut best = records::best(ACC, MetricDirection::Max, 1);
        best.columns = columns.clone();
        expect_status(client.get_best_model(best).await, Code::InvalidArgument, needles);
        let mut board = records::leaderboard(ACC, MetricDirection::Max, 10);
        board.columns = columns;
        expect_status(
            client.get_leaderboard(board).await,
            Code::InvalidArgument,
            needles,
        );
    }
    // A token of one order is not a position in another, nor in the
    // listing by name.
    let first = client
        .list_models(request("max(val_accuracy) desc", 2, String::new()))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.next_page_token.is_empty());
    for other in ["max(val_accuracy) asc", "last(val_accuracy) desc", ""] {
        let result = client
            .list_models(request(other, 2, first.next_page_token.clone()))
            .await;
        expect_status(result, Code::InvalidArgument, &["page_token"]);
    }
    let by_name = client
        .list_models(request("", 2, String::new()))
        .await
        .unwrap()
        .into_inner();
    let result = client
        .list_models(request("name", 2, by_name.next_page_token))
        .await;
    expect_status(result, Code::InvalidArgument, &["page_token"]);
}

/// The column values GetModel's summaries imply for `model`.
async fn expected_columns(client: &mut Client, model: &str, columns: &[&str]) -> Vec<Option<Value>> {
    let detail = client
        .get_model(GetModelRequest {
            model_name: model.to_owned(),
            project: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let stored = detail.model.unwrap();
    let summary = |metric: &str| detail.metrics.iter().find(|m| m.metric_name == metric).cloned();
    columns
        .iter()
        .map(|column| {
            let (function, metric) = match column.split_once('(') {
                Some((function, rest)) => (function, rest.trim_end_matches(')')),
                None => (*column, ""),
            };
            let int = |n: u64| Value::Integer(i64::try_from(n).unwrap());
            match function {
                "epochs" => Some(int(stored.epoch_count)),
                "current_epoch" => stored.current_epoch.map(Value::Integer),
                "max" => summary(metric).and_then(|s| s.max_value).map(Value::Number),
                "min" => summary(metric).and_then(|s| s.min_value).map(Value::Number),
                "last" => summary(metric).map(|s| Value::Number(s.last_value)),
                "count" => summary(metric).map(|s| int(s.count)),
                other => panic!("{other}"),
            }
        })
        .collect()
}

/// Values compared by bits (NaN equals NaN).
fn bits(values: &[Option<Value>]) -> Vec<Option<(bool, u64)>> {
    values
        .iter()
        .map(|value| {
            value.map(|value| match value {
                Value::Integer(int) => (true, int.cast_unsigned()),
                Value::Number(number) => (false, number.to_bits()),
            })
        })
        .collect()
}

fn values(model: &Model) -> Vec<Option<Value>> {
    model.columns.iter().map(|ColumnValue { value }| *value).collect()
}

async fn columns_equal_the_summaries_of_get_model(server: TestServer) {
    let mut client = server.client();
    seed(&mut client).await;
    let columns = [
        "max(val_accuracy)",
        "min(val_accuracy)",
        "last(val_accuracy)",
        "count(val_accuracy)",
        "epochs",
        "current_epoch",
        "last(loss)",
        "max(nope)",
        "count(nope)",
    ];
    let owned: Vec<String> = columns.iter().map(|c| (*c).to_owned()).collect();
    let listed = client
        .list_models(ListModelsRequest {
            columns: owned.clone(),
            page_size: 4,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen = listed.models;
    let rest = client
        .list_models(ListModelsRequest {
            columns: owned.clone(),
            page_size: 4,
            page_token: listed.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    seen.extend(rest.models);
    assert_eq!(seen.len(), 6);
    for model in &seen {
        let want = expected_columns(&mut client, &model.name, &columns).await;
        assert_eq!(bits(&values(model)), bits(&want), "model {}", model.name);
    }
    // Spot checks of the rules: c's NaN last value, d's missing metric.
    let c = seen.iter().find(|m| m.name == "c").unwrap();
    assert!(matches!(c.columns[2].value, Some(Value::Number(n)) if n.is_nan()));
    assert_eq!(c.columns[0].value, None, "all-NaN max is missing");
    assert_eq!(c.columns[3].value, Some(Value::Integer(1)));
    let d = seen.iter().find(|m| m.name == "d").unwrap();
    assert_eq!(bits(&values(d)[..4]), vec![None; 4]);
    assert_eq!(d.columns[4].value, Some(Value::Integer(3)));
    // Without columns: none.
    let plain = calls::list_all_models(&mut client, None, 0).await;
    assert!(plain.iter().all(|m| m.columns.is_empty()));
    // Rankings carry the same values, under a sort too.
    let mut board = records::leaderboard(ACC, MetricDirection::Max, 2);
    board.columns = owned.clone();
    let rows = calls::full_leaderboard(&mut client, board).await;
    assert_eq!(rows.len(), 4);
    for row in &rows {
        let model = row.model.as_ref().unwrap();
        let want = expected_columns(&mut client, &model.name, &columns).await;
        assert_eq!(bits(&values(model)), bits(&want), "leaderboard {}", model.name);
    }
    let mut best = records::best(ACC, MetricDirection::Min, 3);
    best.columns = owned.clone();
    let top = client.get_best_model(best).await.unwrap().into_inner().models;
    assert_eq!(top.len(), 3);
    for entry in &top {
        let model = entry.model.as_ref().unwrap();
        let want = expected_columns(&mut client, &model.name, &columns).await;
        assert_eq!(bits(&values(model)), bits(&want), "best {}", model.name);
    }
    let sorted_page = client
        .list_models(ListModelsRequest {
            columns: owned,
            ..request("max(val_accuracy) desc", 3, String::new())
        })
        .await
        .unwrap()
        .into_inner();
    for model in &sorted_page.models {
        let want = expected_columns(&mut client, &model.name, &columns).await;
        assert_eq!(bits(&values(model)), bits(&want), "sorted {}", model.name);
    }
}

/// Doubles whose text is easy to get wrong (shortest digits, extremes,
/// infinities, a negative zero), as `last(m)` of models written in a
/// small request (PostgreSQL: the one-statement insert, which builds the
/// stored value in SQL), in one large request (the transaction, which
/// builds it here) and over a stored epoch (the merge): the column gives
/// back the very bits, `last(m) = value` finds them, and the counts add.
async fn last_values_keep_every_double_exactly(server: TestServer) {
    const VALUES: [f64; 9] = [
        0.1 + 0.2,
        5e-324,
        1.797_693_134_862_315_7e308,
        -2.225_073_858_507_201_4e-308,
        1e21,
        123_456_789.123_456_78,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
    ];
    let mut client = server.client();
    calls::put_datablob(&mut client, "d", "g", "{}").await;
    calls::put_template(&mut client, "t", "g", "{}").await;
    let mut large = Vec::new();
    for (i, value) in VALUES.iter().enumerate() {
        for kind in ["small", "large", "merged"] {
            calls::put_model(&mut client, &format!("{kind}{i}"), "d", "t").await;
        }
        insert_epochs(
            &mut client,
            vec![epoch(&format!("small{i}"), 3, &[("m", *value)])],
        )
        .await;
        insert_epochs(&mut client, vec![epoch(&format!("merged{i}"), 1, &[("m", 7.0)])]).await;
        large.push(epoch(&format!("large{i}"), 3, &[("m", *value)]));
        large.push(epoch(&format!("merged{i}"), 3, &[("m", *value)]));
    }
    insert_epochs(&mut client, large).await;
    let listed = client
        .list_models(ListModelsRequest {
            columns: vec!["last(m)".to_owned(), "count(m)".to_owned()],
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .models;
    assert_eq!(listed.len(), VALUES.len() * 3);
    for model in &listed {
        let (kind, i) = model
            .name
            .split_at(model.name.find(|c: char| c.is_ascii_digit()).unwrap());
        let value = VALUES[i.parse::<usize>().unwrap()];
        let [last, count] = [&model.columns[0], &model.columns[1]].map(|c| c.value);
        let Some(Value::Number(last)) = last else {
            panic!("{}: last(m) = {last:?}", model.name)
        };
        // PostgreSQL's JSONB has no negative zero: -0.0 reads as 0.0,
        // which compares equal.
        if value == 0.0 {
            assert_eq!(last, 0.0, "{}", model.name);
        } else {
            assert_eq!(
                last.to_bits(),
                value.to_bits(),
                "{}: {last:e} vs {value:e}",
                model.name
            );
        }
        let expected_count = if kind == "merged" { 2 } else { 1 };
        assert_eq!(count, Some(Value::Integer(expected_count)), "{}", model.name);
    }
    for (i, value) in VALUES.iter().enumerate() {
        let literal = match *value {
            f64::INFINITY => "inf".to_owned(),
            f64::NEG_INFINITY => "-inf".to_owned(),
            v => format!("{v:e}"),
        };
        let filter = ModelFilter {
            r#where: format!("last(m) = {literal}"),
            ..Default::default()
        };
        let mut names: Vec<String> = calls::list_all_models(&mut client, Some(filter), 0)
            .await
            .into_iter()
            .map(|m| m.name)
            .collect();
        names.sort();
        let mut expected = vec![format!("large{i}"), format!("merged{i}"), format!("small{i}")];
        if *value == 0.0 {
            expected.clear();
            expected.extend(
                VALUES
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| **v == 0.0)
                    .flat_map(|(j, _)| ["large", "merged", "small"].map(|k| format!("{k}{j}"))),
            );
        }
        assert_eq!(names, expected, "last(m) = {literal}");
    }
}
