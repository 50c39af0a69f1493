//! The `where` filter language over gRPC: random expressions over random
//! data (mixed JSON types, NaN, missing keys, big integers, ties) answered
//! by ListModels, GetBestModel and GetLeaderboard exactly as an in-memory
//! evaluation of the same rules; positioned errors; pages.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use mlmeta_proto::where_lang::{
    CmpOp, Expr, Field, JsonSource, MetricFn, Number, Predicate, TimeValue, Value, parse,
};
use mlmeta_proto::{
    DeleteRecordRequest, ListModelsRequest, MetricDirection, ModelFilter, PurgeRequest, RecordKind,
    RecordRef, RestoreRecordRequest, UpdateTagsRequest,
};
use mlmeta_tests::calls::{self, Client, expect_status, full_leaderboard, insert_epochs, list_all_models};
use mlmeta_tests::records::{self, best, epoch, leaderboard};
use mlmeta_tests::{TestServer, backend_tests};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use tonic::Code;

backend_tests! {
    random_where_matches_in_memory_evaluation => 300,
    the_question_of_the_issue,
    where_errors_name_the_column,
    where_pages_follow_the_filter,
    last_and_count_through_nan_delete_restore_and_purge,
    rankings_through_and_past_the_probed_head_match_in_memory => 300,
}

/// JSON values the generated documents hold: every type, integers around
/// 2^53, an integer beyond 64 bits, equal values of different types.
const JSON_VALUES: &[&str] = &[
    "0.01",
    "0.001",
    "1",
    "1.0",
    "\"1\"",
    "9007199254740993",
    "9007199254740992",
    "-5",
    "1e300",
    "123456789012345678901234567890",
    "true",
    "false",
    "null",
    "\"adam\"",
    "\"Adam\"",
    "\"ad_m\"",
    "{\"beta\": 0.9}",
    "[1, \"two\"]",
];
const JSON_KEYS: &[&str] = &["lr", "n", "s", "flag", "opt", "a.b"];
const PATHS: &[&str] = &[
    "lr",
    "n",
    "s",
    "flag",
    "opt",
    "opt.beta",
    "`a.b`",
    "missing",
    "opt.beta.x",
];
const LITERALS: &[&str] = &[
    "0.01",
    "1",
    "1.0",
    "'1'",
    "9007199254740993",
    "9007199254740992",
    "-5",
    "1e300",
    "inf",
    "-inf",
    "true",
    "false",
    "'adam'",
    "'b'",
    "0.9",
    "123456789012345678901234567890",
];
const METRICS: [&str; 3] = ["m0", "m1", "m2"];
const OPS: [&str; 6] = ["=", "!=", "<", "<=", ">", ">="];

/// One model as generated.
#[derive(Debug, Clone)]
struct Rec {
    name: String,
    datablob: String,
    datablob_group: String,
    datablob_hp: serde_json::Value,
    template: String,
    template_group: String,
    template_hp: serde_json::Value,
    params: serde_json::Value,
    tags: BTreeMap<String, String>,
    /// epoch -> metric -> value.
    epochs: BTreeMap<i64, BTreeMap<String, f64>>,
}

fn document(rng: &mut StdRng) -> serde_json::Value {
    let mut text = String::from("{");
    let mut first = true;
    for key in JSON_KEYS {
        if rng.random_bool(0.6) {
            if !first {
                text.push(',');
            }
            first = false;
            let value = JSON_VALUES.choose(rng).copied().unwrap_or("1");
            text.push_str(&format!("{}: {value}", serde_json::Value::from(*key)));
        }
    }
    text.push('}');
    serde_json::from_str(&text).unwrap()
}

async fn seed(client: &mut Client, rng: &mut StdRng) -> Vec<Rec> {
    let mut blobs = Vec::new();
    for i in 0..4 {
        let (name, group, hp) = (format!("d{i}"), format!("g{}", i % 2), document(rng));
        calls::put_datablob(client, &name, &group, &hp.to_string()).await;
        blobs.push((name, group, hp));
    }
    let mut templates = Vec::new();
    for i in 0..3 {
        let (name, group, hp) = (format!("t{i}"), format!("tg{}", i % 2), document(rng));
        calls::put_template(client, &name, &group, &hp.to_string()).await;
        templates.push((name, group, hp));
    }
    let mut recs = Vec::new();
    for i in 0..20 {
        let blob = blobs[rng.random_range(0..blobs.len())].clone();
        let template = templates[rng.random_range(0..templates.len())].clone();
        let params = document(rng);
        let name = format!("m-{i}");
        let mut model = records::model(&name, &blob.0, &template.0);
        model.params_json = params.to_string();
        client
            .put_model(records::put_model(model, false))
            .await
            .unwrap_or_else(|s| panic!("PutModel {name}: {s}"));
        let mut tags = BTreeMap::new();
        for (key, values) in [("team", ["a", "b", "B"]), ("t2", ["x", "1", "y"])] {
            if rng.random_bool(0.6) {
                tags.insert(
                    key.to_owned(),
                    values.choose(rng).copied().unwrap_or("a").to_owned(),
                );
            }
        }
        if !tags.is_empty() {
            client
                .update_tags(UpdateTagsRequest {
                    target: Some(RecordRef {
                        kind: RecordKind::Model as i32,
                        name: name.clone(),
                    }),
                    set: tags.clone().into_iter().collect(),
                    unset: Vec::new(),
                    project: String::new(),
                })
                .await
                .unwrap();
        }
        let mut epochs = BTreeMap::new();
        let mut sent = Vec::new();
        for e in 0..rng.random_range(0..8) {
            let mut metrics = BTreeMap::new();
            for metric in METRICS {
                if rng.random_bool(0.7) {
                    let value = match rng.random_range(0..10) {
                        0 => f64::NAN,
                        1 => 0.5,
                        2 => f64::INFINITY,
                        _ => f64::from(rng.random_range(0..5)) / 4.0,
                    };
                    metrics.insert(metric.to_owned(), value);
                }
            }
            let pairs: Vec<(&str, f64)> = metrics.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            sent.push(epoch(&name, e, &pairs));
            epochs.insert(e, metrics);
        }
        race_epochs(client, rng, &name, sent).await;
        recs.push(Rec {
            name,
            datablob: blob.0,
            datablob_group: blob.1,
            datablob_hp: blob.2,
            template: template.0,
            template_group: template.1,
            template_hp: template.2,
            params,
            tags,
            epochs,
        });
    }
    recs
}

/// Stores `sent` (the epochs of model `name`) the hard way: in random
/// order, split over writers racing each other, each also carrying epochs
/// of the others (only one copy may count), then again with other values
/// (stored epochs are skipped, so the first values stay).
async fn race_epochs(client: &mut Client, rng: &mut StdRng, name: &str, mut sent: Vec<mlmeta_proto::Epoch>) {
    if sent.is_empty() {
        return;
    }
    sent.shuffle(rng);
    let writers = rng.random_range(1..=3);
    let mut batches: Vec<Vec<mlmeta_proto::Epoch>> = vec![Vec::new(); writers];
    for (i, e) in sent.iter().enumerate() {
        batches[i % writers].push(e.clone());
        if rng.random_bool(0.3) {
            batches[rng.random_range(0..writers)].push(e.clone());
        }
    }
    let tasks: Vec<_> = batches
        .into_iter()
        .filter(|batch| !batch.is_empty())
        .map(|mut batch| {
            batch.sort_by_key(|e| e.epoch_num);
            batch.dedup_by_key(|e| e.epoch_num);
            let mut client = client.clone();
            tokio::spawn(async move { insert_epochs(&mut client, batch).await })
        })
        .collect();
    let mut inserted = 0;
    for task in tasks {
        inserted += task.await.unwrap().0;
    }
    assert_eq!(
        inserted,
        sent.len() as u64,
        "model {name}: each epoch stored once"
    );
    let again: Vec<_> = sent
        .iter()
        .filter(|_| rng.random_bool(0.5))
        .map(|e| {
            let pairs: Vec<(&str, f64)> = METRICS.iter().map(|m| (*m, -1.0)).collect();
            epoch(name, e.epoch_num, &pairs)
        })
        .collect();
    if !again.is_empty() {
        let count = again.len() as u64;
        assert_eq!(insert_epochs(client, again).await, (0, count));
    }
}

/// A value a field of a model has, as the evaluator sees it.
#[derive(Debug, Clone)]
enum Have {
    Num(Number),
    Str(String),
    Bool(bool),
    /// JSON null, objects and arrays: present, never equal to a literal.
    Other,
    Time(i64),
}

fn json_at<'a>(doc: &'a serde_json::Value, path: &[String]) -> Option<&'a serde_json::Value> {
    let mut at = doc;
    for key in path {
        at = match at {
            serde_json::Value::Object(map) => map.get(key)?,
            serde_json::Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(at)
}

fn have_json(value: &serde_json::Value) -> Have {
    match value {
        serde_json::Value::Number(n) => {
            let text = n.to_string();
            let integral = !text.contains(['.', 'e', 'E']);
            Have::Num(Number {
                float: text.parse().unwrap(),
                int: if integral { text.parse().ok() } else { None },
            })
        }
        serde_json::Value::String(s) => Have::Str(s.clone()),
        serde_json::Value::Bool(b) => Have::Bool(*b),
        _ => Have::Other,
    }
}

fn metric_values<'a>(rec: &'a Rec, metric: &'a str) -> impl Iterator<Item = (i64, f64)> + 'a {
    rec.epochs
        .iter()
        .filter_map(move |(e, metrics)| metrics.get(metric).map(|v| (*e, *v)))
}

/// The field's value of `rec`; `None` when missing.
fn value_of(rec: &Rec, field: &Field) -> Option<Have> {
    let text = |s: &str| Some(Have::Str(s.to_owned()));
    match field {
        Field::Name => text(&rec.name),
        Field::Class => text("Net"),
        Field::Project => text("default"),
        Field::Status => text("CREATED"),
        Field::CreatedAt => Some(Have::Time(i64::MAX / 2)),
        Field::StartedAt | Field::EndedAt | Field::LastHeartbeatAt => None,
        Field::Datablob => text(&rec.datablob),
        Field::DatablobGroup => text(&rec.datablob_group),
        Field::Template => text(&rec.template),
        Field::TemplateGroup => text(&rec.template_group),
        Field::Json { source, path } => {
            let doc = match source {
                JsonSource::Datablob => &rec.datablob_hp,
                JsonSource::Template => &rec.template_hp,
                JsonSource::Params => &rec.params,
            };
            json_at(doc, path).map(have_json)
        }
        Field::Tag(key) => rec.tags.get(key).map(|v| Have::Str(v.clone())),
        Field::Metric { function, metric } => {
            let finite = metric_values(rec, metric).map(|(_, v)| v).filter(|v| !v.is_nan());
            // NaN is a value for `last` and `count` (it never compares
            // equal, below or above anything), never best for max/min.
            let value = match function {
                MetricFn::Max => finite.fold(None, |best: Option<f64>, v| Some(best.map_or(v, |b| b.max(v)))),
                MetricFn::Min => finite.fold(None, |best: Option<f64>, v| Some(best.map_or(v, |b| b.min(v)))),
                MetricFn::Last => metric_values(rec, metric).last().map(|(_, v)| v),
                MetricFn::Count => {
                    let n = metric_values(rec, metric).count();
                    if n == 0 {
                        return None;
                    }
                    let n = i64::try_from(n).unwrap();
                    return Some(Have::Num(Number {
                        float: n as f64,
                        int: Some(n),
                    }));
                }
            }?;
            Some(Have::Num(Number {
                float: value,
                int: None,
            }))
        }
        Field::Epochs => {
            let n = i64::try_from(rec.epochs.len()).unwrap();
            Some(Have::Num(Number {
                float: n as f64,
                int: Some(n),
            }))
        }
        Field::CurrentEpoch => rec.epochs.keys().next_back().map(|e| {
            Have::Num(Number {
                float: *e as f64,
                int: Some(*e),
            })
        }),
    }
}

fn compare(have: &Have, op: CmpOp, value: &Value) -> bool {
    let ordering: Option<Ordering> = match (have, value) {
        (Have::Num(a), Value::Number(b)) => a.compare(b),
        (Have::Str(a), Value::Str(b)) => Some(a.as_str().cmp(b.as_str())),
        (Have::Str(a), Value::Status(b)) => Some(a.as_str().cmp(b)),
        (Have::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Have::Time(a), Value::Time(TimeValue::At(b))) => Some(a.cmp(b)),
        // Every model was created moments ago: after any `now() - d`.
        (Have::Time(_), Value::Time(TimeValue::Now(_))) => Some(Ordering::Greater),
        _ => None,
    };
    ordering.is_some_and(|o| op.holds(o))
}

fn eval(expr: &Expr, rec: &Rec) -> bool {
    match expr {
        Expr::Or(parts) => parts.iter().any(|p| eval(p, rec)),
        Expr::And(parts) => parts.iter().all(|p| eval(p, rec)),
        Expr::Not(inner) => !eval(inner, rec),
        Expr::Pred(pred) => match pred {
            Predicate::Compare { field, op, value } => {
                value_of(rec, field).is_some_and(|have| compare(&have, *op, value))
            }
            Predicate::In {
                field,
                negated,
                values,
            } => value_of(rec, field).is_some_and(|have| {
                if *negated {
                    values.iter().all(|v| compare(&have, CmpOp::Ne, v))
                } else {
                    values.iter().any(|v| compare(&have, CmpOp::Eq, v))
                }
            }),
            Predicate::Like { field, pattern } => {
                matches!(value_of(rec, field), Some(Have::Str(s)) if pattern.matches(&s))
            }
            Predicate::Exists { field } => value_of(rec, field).is_some(),
        },
    }
}

fn random_predicate(rng: &mut StdRng) -> String {
    let op = *OPS.choose(rng).unwrap();
    let literal = *LITERALS.choose(rng).unwrap();
    let path = *PATHS.choose(rng).unwrap();
    let metric = *METRICS.choose(rng).unwrap();
    let source = *["datablob", "template", "params"].choose(rng).unwrap();
    match rng.random_range(0..16) {
        0..=3 => format!("{source}.{path} {op} {literal}"),
        4 => format!(
            "{source}.{path} in ({literal}, {})",
            LITERALS.choose(rng).unwrap()
        ),
        5 => format!(
            "{source}.{path} not in ({literal}, {})",
            LITERALS.choose(rng).unwrap()
        ),
        6 => format!("exists {source}.{path}"),
        7 => format!(
            "{source}.{path} like '{}'",
            ["ad%", "%m", "_dam", "ad\\_m", "%"].choose(rng).unwrap()
        ),
        8 => format!(
            "tags.{} {op} '{}'",
            ["team", "t2"].choose(rng).unwrap(),
            ["a", "b", "1", "x"].choose(rng).unwrap()
        ),
        9 => format!("exists tags.{}", ["team", "t2", "none"].choose(rng).unwrap()),
        10 => match rng.random_range(0..4) {
            0 => format!(
                "count({metric}) {op} {}",
                ["0", "1", "2", "3", "2.5", "inf"].choose(rng).unwrap()
            ),
            _ => format!(
                "{}({metric}) {op} {}",
                ["max", "min", "last"].choose(rng).unwrap(),
                ["0.5", "0", "1", "inf", "-inf", "0.25", "0.75", "-1"]
                    .choose(rng)
                    .unwrap()
            ),
        },
        11 => format!(
            "exists {}({metric})",
            ["max", "min", "last", "count"].choose(rng).unwrap()
        ),
        12 => format!(
            "{} {op} {}",
            ["epochs", "current_epoch"].choose(rng).unwrap(),
            ["0", "2", "3", "4.5", "-inf"].choose(rng).unwrap()
        ),
        13 => format!(
            "{} {op} '{}'",
            ["name", "datablob", "datablob.group", "template", "template.group"]
                .choose(rng)
                .unwrap(),
            ["m-1", "m-15", "d1", "g0", "t2", "tg1", "m"].choose(rng).unwrap()
        ),
        14 => format!("name like '{}'", ["m-1%", "m-_", "%5", "M%"].choose(rng).unwrap()),
        _ => [
            "status = 'created'",
            "status != 'created'",
            "exists started_at",
            "created_at > '2020-01-01'",
            "created_at < now() - 7d",
            "class = 'Net'",
            "exists current_epoch",
        ]
        .choose(rng)
        .unwrap()
        .to_string(),
    }
}

fn random_expr(rng: &mut StdRng, depth: u32) -> String {
    if depth == 0 || rng.random_bool(0.4) {
        return random_predicate(rng);
    }
    match rng.random_range(0..3) {
        0 => format!(
            "{} and {}",
            random_expr(rng, depth - 1),
            random_expr(rng, depth - 1)
        ),
        1 => format!(
            "({} or {})",
            random_expr(rng, depth - 1),
            random_expr(rng, depth - 1)
        ),
        _ => format!("not ({})", random_expr(rng, depth - 1)),
    }
}

fn where_filter(text: &str) -> Option<ModelFilter> {
    Some(ModelFilter {
        r#where: text.to_owned(),
        ..Default::default()
    })
}

async fn random_where_matches_in_memory_evaluation(server: TestServer) {
    let mut client = server.client();
    let mut rng = StdRng::seed_from_u64(16);
    let recs = seed(&mut client, &mut rng).await;
    let mut checked = 0;
    let mut matched_some = 0;
    for round in 0..250 {
        let text = random_expr(&mut rng, 3);
        let Ok(expr) = parse(&text) else {
            // Ill-typed combinations (a boolean with '<') are refused;
            // the server must refuse them the same way.
            let refused = client
                .list_models(ListModelsRequest {
                    filter: where_filter(&text),
                    ..Default::default()
                })
                .await;
            expect_status(refused, Code::InvalidArgument, &["filter.where: column"]);
            continue;
        };
        let want: Vec<&str> = recs
            .iter()
            .filter(|rec| eval(&expr, rec))
            .map(|rec| rec.name.as_str())
            .collect();
        let mut got: Vec<String> = list_all_models(&mut client, where_filter(&text), 7)
            .await
            .into_iter()
            .map(|m| m.name)
            .collect();
        got.sort();
        let mut want: Vec<String> = want.into_iter().map(str::to_owned).collect();
        want.sort();
        assert_eq!(got, want, "round {round}: {text}");
        checked += 1;
        if !want.is_empty() && want.len() < recs.len() {
            matched_some += 1;
        }
        if round % 10 == 0 {
            // The leaderboard ranks exactly the matching models that have
            // a non-NaN value of the metric.
            let mut request = leaderboard("m0", MetricDirection::Max, 5);
            request.filter = where_filter(&text);
            let mut ranked: Vec<String> = full_leaderboard(&mut client, request)
                .await
                .into_iter()
                .map(|row| row.model.unwrap().name)
                .collect();
            ranked.sort();
            let mut want_ranked: Vec<String> = recs
                .iter()
                .filter(|rec| eval(&expr, rec) && metric_values(rec, "m0").any(|(_, v)| !v.is_nan()))
                .map(|rec| rec.name.clone())
                .collect();
            want_ranked.sort();
            assert_eq!(ranked, want_ranked, "leaderboard, round {round}: {text}");
        }
    }
    assert!(checked > 150, "only {checked} expressions parsed");
    assert!(
        matched_some > 40,
        "only {matched_some} expressions split the models"
    );
}

/// The issue's own question, on data made for it.
async fn the_question_of_the_issue(server: TestServer) {
    let mut client = server.client();
    calls::put_datablob(&mut client, "mnist-a", "mnist", r#"{"rows": 60000}"#).await;
    calls::put_datablob(&mut client, "cifar", "cifar", "{}").await;
    calls::put_template(&mut client, "resnet18", "resnet", r#"{"depth": 18}"#).await;
    calls::put_template(&mut client, "mlp", "mlp", "{}").await;
    for (name, blob, tmpl, lr, acc, tag) in [
        ("hit-resnet", "mnist-a", "resnet18", "0.001", 0.95, None),
        ("hit-tagged", "mnist-a", "mlp", "0.005", 0.92, Some("baseline")),
        ("slow-lr", "mnist-a", "resnet18", "0.1", 0.99, None),
        ("string-lr", "mnist-a", "resnet18", "\"0.001\"", 0.99, None),
        ("low-acc", "mnist-a", "resnet18", "0.001", 0.5, None),
        ("not-mnist", "cifar", "resnet18", "0.001", 0.99, None),
        ("untagged-mlp", "mnist-a", "mlp", "0.001", 0.99, None),
    ] {
        let mut model = records::model(name, blob, tmpl);
        model.params_json = format!(r#"{{"lr": {lr}}}"#);
        client.put_model(records::put_model(model, false)).await.unwrap();
        if let Some(tag) = tag {
            client
                .update_tags(UpdateTagsRequest {
                    target: Some(RecordRef {
                        kind: RecordKind::Model as i32,
                        name: name.to_owned(),
                    }),
                    set: [("role".to_owned(), tag.to_owned())].into_iter().collect(),
                    unset: Vec::new(),
                    project: String::new(),
                })
                .await
                .unwrap();
        }
        insert_epochs(
            &mut client,
            vec![
                epoch(name, 0, &[("val_accuracy", 0.1)]),
                epoch(name, 1, &[("val_accuracy", acc)]),
            ],
        )
        .await;
    }
    let question = "params.lr < 0.01 and datablob.group like 'mnist%' \
                    and (tags.role = 'baseline' or template.group = 'resnet') \
                    and max(val_accuracy) > 0.9 and status != 'running'";
    let listed: Vec<String> = list_all_models(&mut client, where_filter(question), 0)
        .await
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(listed, ["hit-resnet", "hit-tagged"]);
    let mut request = best("val_accuracy", MetricDirection::Max, 5);
    request.filter = where_filter(question);
    let best: Vec<String> = client
        .get_best_model(request)
        .await
        .unwrap()
        .into_inner()
        .models
        .into_iter()
        .map(|b| b.model.unwrap().name)
        .collect();
    assert_eq!(best, ["hit-resnet", "hit-tagged"]);
    let mut request = best_request_none();
    request.filter = where_filter("name = 'nobody'");
    expect_status(
        client.get_best_model(request).await,
        Code::NotFound,
        &["no model matching the filter"],
    );
    // ANDed with the structured filter.
    let both = Some(ModelFilter {
        r#where: question.to_owned(),
        names: vec!["hit-tagged".to_owned(), "slow-lr".to_owned()],
        ..Default::default()
    });
    let listed: Vec<String> = list_all_models(&mut client, both, 0)
        .await
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(listed, ["hit-tagged"]);
}

/// Rankings with a `where` first look at the head of the ranking index
/// (the best 256 rows) with correlated probes and read everything only
/// when the head does not fill the answer (store/summaries.rs). With 700
/// models, many tied values and filters of every selectivity, best and
/// every leaderboard page equal the in-memory ranking: answered from the
/// head, past it, and on pages that start deep in the ranking.
async fn rankings_through_and_past_the_probed_head_match_in_memory(server: TestServer) {
    /// Whether the model with params.i = i matches.
    type ModelTest = fn(i64) -> bool;
    let mut client = server.client();
    calls::put_datablob(&mut client, "d", "dg", "{}").await;
    calls::put_template(&mut client, "t", "tg", "{}").await;
    // (name, i, best acc, the epoch that reached it)
    let mut models: Vec<(String, i64, f64, i64)> = Vec::new();
    let mut epochs = Vec::new();
    for i in 0..700_i64 {
        let name = format!("m-{i:03}");
        let mut model = records::model(&name, "d", "t");
        model.params_json = format!(r#"{{"i": {i}, "lr": {}}}"#, (i % 10) as f64 / 1000.0);
        client.put_model(records::put_model(model, false)).await.unwrap();
        if i % 7 == 0 {
            client
                .update_tags(UpdateTagsRequest {
                    target: Some(RecordRef {
                        kind: RecordKind::Model as i32,
                        name: name.clone(),
                    }),
                    set: [("team".to_owned(), "a".to_owned())].into_iter().collect(),
                    unset: Vec::new(),
                    project: String::new(),
                })
                .await
                .unwrap();
        }
        // 50 distinct values: every value is tied by 14 models, and a
        // third of those reach it only at epoch 2.
        let acc = ((i * 37) % 50) as f64 / 50.0;
        let best_epoch = if i % 3 == 0 { 2 } else { 1 };
        for epoch_num in 1..=2 {
            let value = if epoch_num == best_epoch { acc } else { acc - 1.0 };
            epochs.push(epoch(&name, epoch_num, &[("acc", value), ("loss", -value)]));
        }
        models.push((name, i, acc, best_epoch));
    }
    insert_epochs(&mut client, epochs).await;
    let filters: [(&str, ModelTest); 7] = [
        ("params.i >= 0", |_| true),
        ("tags.team = 'a'", |i| i % 7 == 0),
        ("tags.team = 'a' or params.lr < 0.002", |i| {
            i % 7 == 0 || i % 10 < 2
        }),
        ("params.i >= 690", |i| i >= 690),
        ("params.i = 5", |i| i == 5),
        ("params.i < 0", |_| false),
        (
            "not (params.lr = 0.005) and max(acc) < 0.9 and count(acc) = 2",
            |i| i % 10 != 5 && ((i * 37) % 50) < 45,
        ),
    ];
    for (text, matches) in filters {
        for (metric, direction) in [("acc", MetricDirection::Max), ("loss", MetricDirection::Min)] {
            // Best value first, then the lower epoch, then the name (the
            // loss is the negated accuracy, so both rankings agree).
            let mut want: Vec<&(String, i64, f64, i64)> =
                models.iter().filter(|(_, i, _, _)| matches(*i)).collect();
            want.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.3.cmp(&b.3)).then(a.0.cmp(&b.0)));
            let want: Vec<&str> = want.iter().map(|(name, ..)| name.as_str()).collect();
            for top_k in [1_usize, 3, 32] {
                let mut request = best(metric, direction, top_k as u32);
                request.filter = where_filter(text);
                let got = client.get_best_model(request).await;
                if want.is_empty() {
                    expect_status(got, Code::NotFound, &["no model matching the filter"]);
                    continue;
                }
                let got: Vec<String> = got
                    .unwrap_or_else(|s| panic!("best {metric} top {top_k} where {text}: {s}"))
                    .into_inner()
                    .models
                    .into_iter()
                    .map(|b| b.model.unwrap().name)
                    .collect();
                let expected = &want[..top_k.min(want.len())];
                assert_eq!(got, expected, "best {metric} top {top_k} where {text}");
            }
            let mut request = leaderboard(metric, direction, 9);
            request.filter = where_filter(text);
            let ranked: Vec<String> = full_leaderboard(&mut client, request)
                .await
                .into_iter()
                .map(|row| row.model.unwrap().name)
                .collect();
            assert_eq!(ranked, want, "leaderboard {metric} where {text}");
        }
    }
}

fn best_request_none() -> mlmeta_proto::GetBestModelRequest {
    best("val_accuracy", MetricDirection::Max, 1)
}

async fn where_errors_name_the_column(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let listed = client
        .list_models(ListModelsRequest {
            filter: where_filter("epochs = 1 and max(loss) <"),
            ..Default::default()
        })
        .await;
    expect_status(
        listed,
        Code::InvalidArgument,
        &["filter.where: column 27: expected a value after '<'"],
    );
    let mut request = best("loss", MetricDirection::Min, 1);
    request.filter = where_filter("colour = 'red'");
    expect_status(
        client.get_best_model(request).await,
        Code::InvalidArgument,
        &["filter.where: column 1: unknown field 'colour'"],
    );
    let mut request = leaderboard("loss", MetricDirection::Min, 1);
    request.filter = where_filter("status < 'running'");
    expect_status(
        client.get_leaderboard(request).await,
        Code::InvalidArgument,
        &["filter.where: column 10"],
    );
}

async fn where_pages_follow_the_filter(server: TestServer) {
    let mut client = server.client();
    calls::put_datablob(&mut client, "d", "g", "{}").await;
    calls::put_template(&mut client, "t", "g", "{}").await;
    for i in 0..9 {
        let mut model = records::model(&format!("m{i}"), "d", "t");
        model.params_json = format!(r#"{{"i": {i}}}"#);
        client.put_model(records::put_model(model, false)).await.unwrap();
    }
    let paged: Vec<String> = list_all_models(&mut client, where_filter("params.i >= 3"), 2)
        .await
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(paged, ["m3", "m4", "m5", "m6", "m7", "m8"]);
    let first = client
        .list_models(ListModelsRequest {
            filter: where_filter("params.i >= 3"),
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // A token belongs to its expression.
    let other = client
        .list_models(ListModelsRequest {
            filter: where_filter("params.i >= 4"),
            page_size: 2,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await;
    expect_status(other, Code::InvalidArgument, &["page_token"]);
}

async fn names_where(client: &mut Client, text: &str) -> Vec<String> {
    list_all_models(client, where_filter(text), 0)
        .await
        .into_iter()
        .map(|m| m.name)
        .collect()
}

/// Concrete values of `last` and `count`: NaN counts and can be last, a
/// metric of NaN only has a count but no max; deleted models keep theirs
/// and continue from them when restored; a purged name starts afresh.
async fn last_and_count_through_nan_delete_restore_and_purge(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "a").await;
    calls::seed_model(&mut client, "b").await;
    // Out of order, with a repeat: epoch 2 (NaN) is the last one.
    insert_epochs(
        &mut client,
        vec![
            epoch("a", 2, &[("m", f64::NAN)]),
            epoch("a", 0, &[("m", 1.0), ("n", 5.0)]),
        ],
    )
    .await;
    insert_epochs(
        &mut client,
        vec![epoch("a", 1, &[("m", 3.0)]), epoch("a", 2, &[("m", 9.0)])],
    )
    .await;
    insert_epochs(
        &mut client,
        vec![
            epoch("b", 0, &[("m", f64::NAN)]),
            epoch("b", 1, &[("m", f64::NAN)]),
        ],
    )
    .await;
    assert_eq!(names_where(&mut client, "count(m) = 3").await, ["a"]);
    assert_eq!(names_where(&mut client, "count(m) = 2").await, ["b"]);
    assert_eq!(
        names_where(&mut client, "count(n) = 1 and last(n) = 5").await,
        ["a"]
    );
    assert!(
        names_where(&mut client, "last(m) >= -inf or last(m) <= inf or last(m) = 9")
            .await
            .is_empty()
    );
    assert_eq!(
        names_where(&mut client, "not (last(m) < 0) and exists last(m)").await,
        ["a", "b"]
    );
    assert_eq!(
        names_where(&mut client, "exists count(m) and not exists max(m)").await,
        ["b"]
    );

    client
        .delete_record(DeleteRecordRequest {
            target: Some(RecordRef {
                kind: RecordKind::Model as i32,
                name: "a".to_owned(),
            }),
            project: String::new(),
        })
        .await
        .unwrap();
    assert!(names_where(&mut client, "count(m) = 3").await.is_empty());
    client
        .restore_record(RestoreRecordRequest {
            target: Some(RecordRef {
                kind: RecordKind::Model as i32,
                name: "a".to_owned(),
            }),
            project: String::new(),
        })
        .await
        .unwrap();
    insert_epochs(&mut client, vec![epoch("a", 7, &[("m", 0.5)])]).await;
    assert_eq!(
        names_where(&mut client, "count(m) = 4 and last(m) = 0.5").await,
        ["a"]
    );

    client
        .delete_record(DeleteRecordRequest {
            target: Some(RecordRef {
                kind: RecordKind::Model as i32,
                name: "a".to_owned(),
            }),
            project: String::new(),
        })
        .await
        .unwrap();
    client
        .purge(PurgeRequest {
            model_name: "a".to_owned(),
            project: String::new(),
        })
        .await
        .unwrap();
    calls::seed_model(&mut client, "a").await;
    insert_epochs(&mut client, vec![epoch("a", 0, &[("m", 2.0)])]).await;
    assert_eq!(
        names_where(&mut client, "count(m) = 1 and last(m) = 2").await,
        ["a"]
    );
}

/// PostgreSQL: the server analyzes the tables that changed much since
/// their last analysis (autovacuum checks once a minute; until then the
/// planner guesses the size of freshly loaded tables and filters ran 16x
/// slower), and leaves the untouched ones alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_planner_statistics_fresh() {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Analyzed {
        #[diesel(sql_type = diesel::sql_types::Text)]
        relname: String,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        analyzed: bool,
    }
    let Some(server) = TestServer::with(
        mlmeta_tests::Backend::Postgres,
        |c| c.sweep_interval_ms = 100,
        None,
    )
    .await
    else {
        return;
    };
    let mut client = server.client();
    calls::put_datablob(&mut client, "d", "dg", "{}").await;
    calls::put_template(&mut client, "t", "tg", "{}").await;
    for i in 0..700 {
        calls::put_model(&mut client, &format!("m{i}"), "d", "t").await;
    }
    let url = server.database_url().expose_secret().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let mut conn = PgConnection::establish(&url).unwrap();
        let rows: Vec<Analyzed> = diesel::sql_query(
            "SELECT relname::TEXT AS relname, last_analyze IS NOT NULL AS analyzed \
             FROM pg_stat_user_tables WHERE relname IN ('models', 'tags')",
        )
        .load(&mut conn)
        .unwrap();
        let analyzed = |table: &str| rows.iter().any(|r| r.relname == table && r.analyzed);
        if analyzed("models") {
            assert!(!analyzed("tags"), "an empty table was analyzed");
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "models not analyzed after 60 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
