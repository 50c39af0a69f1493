//! Loopback fuzzing: arbitrary request messages of every RPC (puts,
//! InsertEpochs and StreamEpochs with arbitrary epochs and metrics, listings
//! with arbitrary filters, page sizes and page tokens, best model,
//! leaderboard, current epoch, tags and descriptions, params in puts and
//! tags in filters, the run lifecycle: StartRun, Heartbeat, EndRun,
//! GetModel, and status filters, artifact references: PutArtifact,
//! ListArtifacts, DeleteArtifact), with adversarial strings (NUL, control and
//! C1 characters, quotes, SQL, `$`, `..`, unicode, empty, lengths around
//! the 255-byte limit, 100 KB), sent to a real server over loopback.
//!
//! Checked for every call: the status is OK or a client-error code
//! (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION),
//! never INTERNAL, UNKNOWN or a transport error; INVALID_ARGUMENT says
//! "field: rule"; messages stay short; pages and best-model results respect
//! their sizes; and after each case the server still answers.
//! `differential` sends the same calls to a SQLite and a PostgreSQL server
//! and requires the same answers (timestamps aside).
//!
//! Page tokens are empty, arbitrary, or taken from earlier responses of
//! any listing (possibly truncated), or forged: a real token of the call's
//! own listing and filter with its sort key replaced, so that the key gets
//! past the fingerprint check. (Without the checks of decoded keys in
//! `page_token.rs`, the default run finds a NUL key that PostgreSQL
//! rejects; without the cut in `validate::echo`, a 100 KB metric name in
//! an error message that overflows its HTTP/2 header.)
//!
//! Reproducible: a fixed seed. `PROPTEST_CASES` and `PROPTEST_RNG_SEED`
//! override the number of cases and the seed, e.g.
//! `PROPTEST_CASES=2000 PROPTEST_RNG_SEED=7 cargo nextest run -p mlmeta-tests fuzz::`.

use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mlmeta_proto::{
    Artifact, BestModel, DataBlob, DeleteArtifactRequest, DeleteRecordRequest, EndRunRequest, Epoch,
    GetBestModelRequest, GetCurrentEpochRequest, GetLeaderboardRequest, GetModelRequest, GroupedFilter,
    HeartbeatRequest, InsertEpochsRequest, LeaderboardRow, ListArtifactsRequest, ListDataBlobsRequest,
    ListEpochsRequest, ListModelTemplatesRequest, ListModelsRequest, ListProjectsRequest, Model, ModelFilter,
    ModelTemplate, PurgeRequest, PutArtifactRequest, PutDataBlobRequest, PutModelRequest,
    PutModelTemplateRequest, RecordRef, RestoreRecordRequest, RunContext, SetDescriptionRequest,
    StartRunRequest, UpdateTagsRequest, WriteEpochsRequest,
};
use mlmeta_tests::calls::{self, Client, insert_epochs};
use mlmeta_tests::records::epoch;
use mlmeta_tests::{TestServer, backend_tests};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{
    Config, RngSeed, TestCaseError, TestCaseResult, TestRunner, contextualize_config,
};
use serde_json::Value;
use tonic::{Code, Status};

backend_tests! {
    arbitrary_requests_never_break_the_server => 300,
}

/// Cases per backend unless `PROPTEST_CASES` says otherwise.
const CASES_PER_BACKEND: u32 = 256;
/// Cases of the two-backend comparison unless `PROPTEST_CASES` says
/// otherwise.
const DIFFERENTIAL_CASES: u32 = 128;
/// Seed unless `PROPTEST_RNG_SEED` says otherwise.
const SEED: u64 = 0x6d6c_6d65_7461;
/// Longest error message accepted: it travels in an HTTP/2 header and
/// repeats at most a few names.
const MAX_MESSAGE_CHARS: usize = 4_000;

fn config(cases: u32) -> Config {
    contextualize_config(Config {
        cases,
        rng_seed: RngSeed::Fixed(SEED),
        failure_persistence: None,
        // State accumulates across cases, so shrinking only approximates.
        max_shrink_iters: 64,
        ..Config::default()
    })
}

// ---------------------------------------------------------------------
// Generators

/// Valid names that the seeded store holds or that generated puts create
/// (hostile ones among them), so that calls often hit records.
const KNOWN: &[&str] = &[
    "m0",
    "m1",
    "d0",
    "t0",
    "g",
    "acc",
    "loss",
    "x' OR '1'='1",
    "$$",
    "..",
];
const MODELS: &[&str] = &["m0", "m1", "m2", "x' OR '1'='1", "..", "$1"];
const DATABLOBS: &[&str] = &["d0", "d1", "x' OR '1'='1", "%"];
const TEMPLATES: &[&str] = &["t0", "t1", "'; DROP TABLE models; --", "$$"];
const GROUPS: &[&str] = &["g", "h", "\\", "_"];
const METRICS: &[&str] = &["acc", "loss", "x' OR '1'='1", "$1", "..", "模型"];
/// Valid tag keys.
const TAG_KEYS: &[&str] = &["k", "team", "x' OR '1'='1", "模型"];
/// A reserved tag key and invalid ones.
const BAD_TAG_KEYS: &[&str] = &["mlmeta.host", "", "a\0b"];
/// Tag values: the filter compares them exactly.
const TAG_VALUES: &[&str] = &["v", "w", "", "%", "_", "x' OR '1'='1", "a\0b", "模型-ß-😀"];
/// Artifact names.
const ARTIFACTS: &[&str] = &["ckpt", "onnx", "x' OR '1'='1", "模型", "$1"];
/// Valid artifact URIs.
const URIS: &[&str] = &[
    "s3://bucket/run/ckpt.pt",
    "gs://b/o",
    "file:///tmp/model.pt",
    "https://example.com/a?b=c#d",
    "hf:org/model",
    "s3://b/'; DROP TABLE artifacts; --",
];
/// Invalid ones.
const BAD_URIS: &[&str] = &["model.pt", "", "s3://b/a b", "C:\\x.pt", "s3:", "1x://y"];
/// Valid SHA-256 digests (either case).
const DIGESTS: &[&str] = &[
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08",
    "0000000000000000000000000000000000000000000000000000000000000000",
];
/// Valid media types (either case).
const MEDIA_TYPES: &[&str] = &["application/octet-stream", "Application/X-HDF5", "text/csv"];
/// Invalid ones.
const BAD_MEDIA_TYPES: &[&str] = &["text/plain; charset=utf-8", "octet-stream", "", "a/b/c"];

/// Strings aimed at SQL, paths, placeholders and encodings.
const HOSTILE: &[&str] = &[
    "",
    " ",
    "\0",
    "a\0b",
    "m0\0",
    "\n",
    "\t",
    "\u{7f}",
    "\u{85}",
    "\u{9b}",
    "x' OR '1'='1",
    "'; DROP TABLE models; --",
    "\" OR \"\"=\"",
    "'",
    "''",
    "\\",
    "$1",
    "$$",
    "$tag$x$tag$",
    "?",
    ":name",
    "..",
    "../../etc/passwd",
    "%",
    "_",
    "%00",
    "\\u0000",
    "NULL",
    "模型-ß-😀",
    "e\u{301}",
    "\u{200b}",
    "\u{2028}",
    "\u{202e}",
    "\u{feff}",
    "\u{fffd}",
    "\u{10ffff}",
];

/// Any string: known names, hostile strings, arbitrary unicode, lengths
/// around the 255-byte limit and 100 KB.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(KNOWN).prop_map(str::to_owned),
        8 => prop::sample::select(HOSTILE).prop_map(str::to_owned),
        3 => with_control_character(),
        4 => any::<String>(),
        2 => (prop::sample::select(vec!['x', '\'', '$', '模', '😀']), 250_usize..260)
            .prop_map(|(c, bytes)| std::iter::repeat_n(c, bytes / c.len_utf8()).collect()),
        1 => Just("'".repeat(100_000)),
    ]
}

/// A known name with NUL or another control character somewhere in it.
fn with_control_character() -> impl Strategy<Value = String> {
    let control = prop::sample::select(vec!['\0', '\0', '\0', '\n', '\r', '\u{1b}', '\u{7f}', '\u{85}']);
    (prop::sample::select(KNOWN), any::<Index>(), control).prop_map(|(name, at, c)| {
        let mut name = name.to_owned();
        let boundaries: Vec<usize> = name.char_indices().map(|(i, _)| i).chain([name.len()]).collect();
        name.insert(boundaries[at.index(boundaries.len())], c);
        name
    })
}

/// Mostly one of `pool` (valid names of one kind), sometimes any string.
fn name_from(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(pool).prop_map(str::to_owned),
        1 => text(),
    ]
}

fn names_from(pool: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        12 => prop::collection::vec(name_from(pool), 0..3),
        1 => Just((0..1_001).map(|i| format!("v{i}")).collect()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinities", |f| f.is_finite())
            .prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn hyperparams() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => Just(String::new()),
        1 => Just("{}".to_owned()),
        4 => prop::collection::btree_map(text(), json_value(), 0..4)
            .prop_map(|map| Value::Object(map.into_iter().collect()).to_string()),
        2 => text(),
        1 => json_value().prop_map(|v| v.to_string()),
        1 => Just("{\"a\": \"x\0y\"}".to_owned()),
        1 => Just(format!("{{\"k\":\"{}\"}}", "x".repeat(65_536))),
    ]
}

fn epoch_num() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => 0_i64..6,
        2 => any::<i64>(),
        1 => prop::sample::select(vec![i64::MAX, i64::MAX - 1, i64::MIN, -1]),
    ]
}

fn metric_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => any::<f64>(),
        3 => -2.0_f64..2.0,
        2 => prop::sample::select(vec![
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            f64::MIN_POSITIVE / 2.0,
            f64::MAX,
            f64::MIN,
        ]),
    ]
}

fn new_epoch() -> impl Strategy<Value = Epoch> {
    let metrics = prop_oneof![
        20 => prop::collection::btree_map(name_from(METRICS), metric_value(), 0..4),
        1 => Just((0..1_025).map(|i| (format!("m{i}"), 1.0)).collect()),
    ];
    (
        name_from(MODELS),
        epoch_num(),
        metrics,
        prop::option::of(epoch_num()),
        prop::option::of(epoch_num()),
    )
        .prop_map(
            |(model_name, epoch_num, metrics, steps, validation_steps)| Epoch {
                model_name,
                epoch_num,
                metrics,
                steps_per_epoch: steps,
                validation_steps_per_epoch: validation_steps,
                recorded_at: None,
            },
        )
}

fn insert_request() -> impl Strategy<Value = InsertEpochsRequest> {
    prop::collection::vec(new_epoch(), 0..4).prop_map(|epochs| InsertEpochsRequest {
        columns: Vec::new(),
        project: String::new(),
        epochs,
    })
}

fn page_size() -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => Just(0_u32),
        3 => 1_u32..4,
        1 => Just(10_000),
        1 => Just(10_001),
        1 => any::<u32>(),
    ]
}

fn direction() -> impl Strategy<Value = i32> {
    prop_oneof![6 => 0_i32..3, 1 => any::<i32>()]
}

fn grouped_filter(pool: &'static [&'static str]) -> impl Strategy<Value = Option<GroupedFilter>> {
    prop::option::of(
        (names_from(pool), names_from(GROUPS)).prop_map(|(names, group_names)| GroupedFilter {
            names,
            group_names,
            ..Default::default()
        }),
    )
}

fn model_filter() -> impl Strategy<Value = Option<ModelFilter>> {
    let lists = (
        names_from(MODELS),
        names_from(DATABLOBS),
        names_from(GROUPS),
        names_from(TEMPLATES),
        names_from(GROUPS),
        statuses(),
    );
    let tags = prop_oneof![3 => Just(std::collections::BTreeMap::new()), 1 => tag_map()];
    prop::option::of(
        (lists, tags).prop_map(|((a, b, c, d, e, statuses), tags)| ModelFilter {
            names: a,
            datablob_names: b,
            datablob_group_names: c,
            model_template_names: d,
            model_template_group_names: e,
            tags,
            statuses,
            ..Default::default()
        }),
    )
}

/// A tag key, mostly valid.
fn tag_key() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => name_from(TAG_KEYS),
        1 => name_from(BAD_TAG_KEYS),
        1 => text(),
    ]
}

/// A few tags, mostly valid.
fn tag_map() -> impl Strategy<Value = std::collections::BTreeMap<String, String>> {
    let key = tag_key();
    let value = prop_oneof![
        6 => name_from(TAG_VALUES),
        1 => text(),
    ];
    prop::collection::btree_map(key, value, 0..3)
}

/// The record of an UpdateTags or SetDescription call: mostly one that may
/// exist, sometimes an unknown kind or no target at all.
fn record_ref() -> impl Strategy<Value = Option<RecordRef>> {
    let known = prop_oneof![
        3 => name_from(MODELS).prop_map(|name| (1, name)),
        2 => name_from(DATABLOBS).prop_map(|name| (2, name)),
        2 => name_from(TEMPLATES).prop_map(|name| (3, name)),
        1 => (prop_oneof![0_i32..5, any::<i32>()], text()),
    ];
    prop_oneof![
        12 => known.prop_map(|(kind, name)| Some(RecordRef { kind, name })),
        1 => Just(None),
    ]
}

/// A run status: mostly valid (1..=6), sometimes UNSPECIFIED or unknown.
fn run_status() -> impl Strategy<Value = i32> {
    prop_oneof![8 => 1_i32..7, 1 => Just(0), 1 => any::<i32>()]
}

fn statuses() -> impl Strategy<Value = Vec<i32>> {
    prop_oneof![
        6 => Just(Vec::new()),
        4 => prop::collection::vec(run_status(), 1..3),
        1 => Just(vec![2; 1_001]),
    ]
}

fn run_context() -> impl Strategy<Value = Option<RunContext>> {
    prop::option::of(
        (
            text(),
            any::<u32>(),
            text(),
            prop::collection::vec(text(), 0..3),
            text(),
        )
            .prop_map(|(host, pid, user, command_line, git_commit)| RunContext {
                host,
                pid,
                user,
                command_line,
                git_commit,
            }),
    )
}

/// An artifact of a PutArtifact call: mostly valid, sometimes any field
/// broken, sometimes absent.
fn artifact() -> impl Strategy<Value = Option<Artifact>> {
    let uri = prop_oneof![
        12 => prop::sample::select(URIS).prop_map(str::to_owned),
        2 => prop::sample::select(BAD_URIS).prop_map(str::to_owned),
        1 => text(),
        1 => Just(format!("s3://b/{}", "k".repeat(4_096))),
    ];
    let sha256 = prop::option::of(prop_oneof![
        6 => prop::sample::select(DIGESTS).prop_map(str::to_owned),
        1 => text(),
    ]);
    let size = prop::option::of(prop_oneof![
        8 => 0_u64..1_000,
        1 => Just(i64::MAX as u64),
        1 => Just(i64::MAX as u64 + 1),
        1 => any::<u64>(),
    ]);
    let media_type = prop::option::of(prop_oneof![
        6 => prop::sample::select(MEDIA_TYPES).prop_map(str::to_owned),
        1 => prop::sample::select(BAD_MEDIA_TYPES).prop_map(str::to_owned),
        1 => text(),
    ]);
    prop_oneof![
        12 => (name_from(ARTIFACTS), uri, sha256, size, media_type).prop_map(
            |(name, uri, sha256, size_bytes, media_type)| Some(Artifact {
                name,
                uri,
                sha256,
                size_bytes,
                media_type,
                created_at: None,
                content_stored: false,
            })
        ),
        1 => Just(None),
    ]
}

/// The model of an artifact call: mostly one of the seeded ones.
fn artifact_model() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["m0", "m1"]).prop_map(str::to_owned),
        2 => name_from(MODELS),
    ]
}

/// A page token for a listing.
#[derive(Debug, Clone)]
enum Token {
    /// Sent as is.
    Given(String),
    /// One of the tokens earlier responses returned (empty when none yet).
    Reused(Index),
    /// A returned token cut short.
    Truncated(Index, usize),
    /// A token of the same listing and filter (fetched first) whose sort
    /// key is replaced: its fingerprint is right, so the key gets past the
    /// fingerprint check and reaches the listing's own checks.
    Forged(ForgedKey),
}

/// The sort key of a forged token.
#[derive(Debug, Clone)]
enum ForgedKey {
    /// A key of the listing's shape: a name (components, models); a model
    /// name and epoch_num (epochs); a value's bits, an epoch_num and a
    /// model name (leaderboard).
    Shaped(String, i64, u64),
    /// Any JSON.
    Raw(Value),
}

impl ForgedKey {
    fn for_call(&self, call: &Call) -> Value {
        match (self, call) {
            (ForgedKey::Raw(value), _) => value.clone(),
            (ForgedKey::Shaped(name, num, _), Call::ListEpochs(..)) => serde_json::json!([name, num]),
            (ForgedKey::Shaped(name, num, bits), Call::GetLeaderboard(..)) => {
                serde_json::json!([bits, num, name])
            }
            (ForgedKey::Shaped(name, ..), _) => Value::from(name.as_str()),
        }
    }
}

/// The name in a forged sort key: NUL and control characters are what
/// a database may choke on.
fn key_name() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => with_control_character(),
        1 => name_from(KNOWN),
        1 => text(),
    ]
}

fn token() -> impl Strategy<Value = Token> {
    let bits = prop_oneof![metric_value().prop_map(f64::to_bits), any::<u64>()];
    let key = prop_oneof![
        4 => (key_name(), epoch_num(), bits).prop_map(|(name, num, bits)| ForgedKey::Shaped(name, num, bits)),
        1 => json_value().prop_map(ForgedKey::Raw),
    ];
    prop_oneof![
        4 => Just(Token::Given(String::new())),
        2 => text().prop_map(Token::Given),
        1 => prop::collection::vec(any::<u8>(), 0..48).prop_map(|b| Token::Given(URL_SAFE_NO_PAD.encode(b))),
        3 => any::<Index>().prop_map(Token::Reused),
        1 => (any::<Index>(), 0_usize..80).prop_map(|(i, n)| Token::Truncated(i, n)),
        4 => key.prop_map(Token::Forged),
    ]
}

/// One RPC with its request.
#[derive(Debug, Clone)]
enum Call {
    PutDataBlob(PutDataBlobRequest),
    PutModelTemplate(PutModelTemplateRequest),
    PutModel(PutModelRequest),
    InsertEpochs(InsertEpochsRequest),
    StreamEpochs(Vec<InsertEpochsRequest>),
    WriteEpochs(Vec<WriteEpochsRequest>),
    ListDataBlobs(ListDataBlobsRequest, Token),
    ListModelTemplates(ListModelTemplatesRequest, Token),
    ListModels(ListModelsRequest, Token),
    ListEpochs(ListEpochsRequest, Token),
    GetCurrentEpoch(GetCurrentEpochRequest),
    GetBestModel(GetBestModelRequest),
    GetLeaderboard(GetLeaderboardRequest, Token),
    ListProjects(ListProjectsRequest),
    UpdateTags(UpdateTagsRequest),
    SetDescription(SetDescriptionRequest),
    StartRun(StartRunRequest),
    Heartbeat(HeartbeatRequest),
    EndRun(EndRunRequest),
    GetModel(GetModelRequest),
    PutArtifact(PutArtifactRequest),
    ListArtifacts(ListArtifactsRequest),
    DeleteArtifact(DeleteArtifactRequest),
    DeleteRecord(DeleteRecordRequest),
    RestoreRecord(RestoreRecordRequest),
    Purge(PurgeRequest),
}

/// The project of a call: mostly the default or one other, sometimes a
/// hostile or an invalid name.
fn project() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        1 => Just("default".to_owned()),
        3 => Just("vision".to_owned()),
        1 => Just("x' OR '1'='1".to_owned()),
        1 => Just("a\u{0}b".to_owned()),
        1 => Just("p".repeat(256)),
    ]
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        20 => (call_in_a_project(), project()).prop_map(|(call, project)| call.in_project(project)),
        1 => page_size().prop_map(|page_size| Call::ListProjects(ListProjectsRequest {
            page_size,
            page_token: String::new(),
        })),
    ]
}

fn call_in_a_project() -> impl Strategy<Value = Call> {
    let datablob = (
        name_from(DATABLOBS),
        name_from(GROUPS),
        hyperparams(),
        any::<bool>(),
    )
        .prop_map(|(name, group, h, ignore)| {
            Call::PutDataBlob(PutDataBlobRequest {
                project: String::new(),
                datablob: Some(DataBlob {
                    name,
                    group_name: group,
                    hyperparams_json: h,
                    ..DataBlob::default()
                }),
                ignore_existing: ignore,
            })
        });
    let template = (
        name_from(TEMPLATES),
        name_from(GROUPS),
        hyperparams(),
        any::<bool>(),
    )
        .prop_map(|(name, group, h, ignore)| {
            Call::PutModelTemplate(PutModelTemplateRequest {
                project: String::new(),
                model_template: Some(ModelTemplate {
                    name,
                    group_name: group,
                    hyperparams_json: h,
                    ..ModelTemplate::default()
                }),
                ignore_existing: ignore,
            })
        });
    let model = (
        name_from(MODELS),
        name_from(KNOWN),
        name_from(DATABLOBS),
        name_from(TEMPLATES),
        any::<bool>(),
        prop_oneof![2 => Just(String::new()), 1 => hyperparams()],
    )
        .prop_map(|(name, class, d, t, ignore, params_json)| {
            Call::PutModel(PutModelRequest {
                project: String::new(),
                model: Some(Model {
                    name,
                    model_class_name: class,
                    datablob_name: d,
                    model_template_name: t,
                    params_json,
                    ..Model::default()
                }),
                ignore_existing: ignore,
            })
        });
    let missing_record = prop_oneof![
        Just(Call::PutDataBlob(PutDataBlobRequest::default())),
        Just(Call::PutModelTemplate(PutModelTemplateRequest::default())),
        Just(Call::PutModel(PutModelRequest::default())),
    ];
    let list_epochs = (
        names_from(MODELS),
        prop::option::of(epoch_num()),
        prop::option::of(epoch_num()),
        page_size(),
        token(),
    )
        .prop_map(|(model_names, min, max, page_size, token)| {
            Call::ListEpochs(
                ListEpochsRequest {
                    project: String::new(),
                    model_names,
                    min_epoch_num: min,
                    max_epoch_num: max,
                    page_size,
                    page_token: String::new(),
                },
                token,
            )
        });
    let best = (
        name_from(METRICS),
        direction(),
        model_filter(),
        prop_oneof![0_u32..4, Just(1_000), Just(1_001), any::<u32>()],
    )
        .prop_map(|(metric_name, direction, filter, top_k)| {
            Call::GetBestModel(GetBestModelRequest {
                project: String::new(),
                metric_name,
                direction,
                filter,
                top_k,
                ..Default::default()
            })
        });
    let leaderboard = (
        name_from(METRICS),
        direction(),
        model_filter(),
        page_size(),
        token(),
    )
        .prop_map(|(metric_name, direction, filter, page_size, token)| {
            Call::GetLeaderboard(
                GetLeaderboardRequest {
                    project: String::new(),
                    metric_name,
                    direction,
                    filter,
                    page_size,
                    page_token: String::new(),
                    ..Default::default()
                },
                token,
            )
        });
    let update_tags =
        (record_ref(), tag_map(), prop::collection::vec(tag_key(), 0..3)).prop_map(|(target, set, unset)| {
            Call::UpdateTags(UpdateTagsRequest {
                project: String::new(),
                target,
                set,
                unset,
            })
        });
    let set_description = (record_ref(), prop_oneof![3 => name_from(TAG_VALUES), 2 => text()]).prop_map(
        |(target, description)| {
            Call::SetDescription(SetDescriptionRequest {
                project: String::new(),
                target,
                description,
            })
        },
    );
    let start = (
        name_from(MODELS),
        prop_oneof![3 => Just(None), 2 => prop::option::of(any::<u32>()), 1 => Just(Some(0))],
        run_context(),
    )
        .prop_map(|(model_name, heartbeat_timeout_secs, run_context)| {
            Call::StartRun(StartRunRequest {
                project: String::new(),
                model_name,
                heartbeat_timeout_secs,
                run_context,
            })
        });
    let run_calls = prop_oneof![
        3 => start,
        2 => name_from(MODELS).prop_map(|model_name| Call::Heartbeat(HeartbeatRequest { project: String::new(), model_name })),
        3 => (name_from(MODELS), run_status()).prop_map(|(model_name, status)| {
            Call::EndRun(EndRunRequest { project: String::new(), model_name, status })
        }),
        2 => name_from(MODELS).prop_map(|model_name| Call::GetModel(GetModelRequest { project: String::new(), model_name })),
    ];
    let artifact_calls = prop_oneof![
        4 => (artifact_model(), artifact(), any::<bool>()).prop_map(|(model_name, artifact, overwrite)| {
            Call::PutArtifact(PutArtifactRequest { project: String::new(), model_name, artifact, overwrite })
        }),
        2 => artifact_model().prop_map(|model_name| {
            Call::ListArtifacts(ListArtifactsRequest { project: String::new(), model_name })
        }),
        2 => (artifact_model(), name_from(ARTIFACTS)).prop_map(|(model_name, name)| {
            Call::DeleteArtifact(DeleteArtifactRequest { project: String::new(), model_name, name })
        }),
    ];
    let deletion_calls = prop_oneof![
        3 => record_ref().prop_map(|target| Call::DeleteRecord(DeleteRecordRequest { project: String::new(), target })),
        3 => record_ref().prop_map(|target| Call::RestoreRecord(RestoreRecordRequest { project: String::new(), target })),
        1 => prop_oneof![2 => Just(String::new()), 3 => name_from(MODELS)]
            .prop_map(|model_name| Call::Purge(PurgeRequest { project: String::new(), model_name })),
    ];
    prop_oneof![
        2 => datablob,
        2 => template,
        2 => model,
        4 => artifact_calls,
        2 => deletion_calls,
        2 => update_tags,
        1 => set_description,
        4 => run_calls,
        1 => missing_record,
        4 => insert_request().prop_map(Call::InsertEpochs),
        1 => prop::collection::vec(insert_request(), 0..3).prop_map(Call::StreamEpochs),
        2 => prop::collection::vec((insert_request(), prop::bool::weighted(0.2)), 0..4).prop_map(|batches| {
            Call::WriteEpochs(
                batches
                    .into_iter()
                    .enumerate()
                    .map(|(i, (request, stop_on_error))| WriteEpochsRequest { columns: Vec::new(),
                        sequence: i as u64,
                        epochs: request.epochs,
                        project: request.project,
                        stop_on_error,
                    })
                    .collect(),
            )
        }),
        2 => (grouped_filter(DATABLOBS), page_size(), token()).prop_map(|(filter, page_size, token)| {
            Call::ListDataBlobs(ListDataBlobsRequest { project: String::new(), filter, page_size, page_token: String::new() }, token)
        }),
        1 => (grouped_filter(TEMPLATES), page_size(), token()).prop_map(|(filter, page_size, token)| {
            Call::ListModelTemplates(
                ListModelTemplatesRequest { project: String::new(), filter, page_size, page_token: String::new() },
                token,
            )
        }),
        2 => (model_filter(), page_size(), token()).prop_map(|(filter, page_size, token)| {
            Call::ListModels(ListModelsRequest { project: String::new(), filter, page_size, page_token: String::new(),
                ..Default::default() }, token)
        }),
        2 => list_epochs,
        1 => name_from(MODELS).prop_map(|model_name| Call::GetCurrentEpoch(GetCurrentEpochRequest { project: String::new(), model_name })),
        2 => best,
        2 => leaderboard,
    ]
}

// ---------------------------------------------------------------------
// Running calls

/// What a call returned, comparable across backends.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Ok {
        /// Rows returned (listings, best models).
        rows: usize,
        /// Most rows the request allows.
        limit: usize,
        /// The response with server-set timestamps cleared.
        response: String,
        /// The next page token of a listing.
        next_token: String,
    },
    Err {
        code: Code,
        message: String,
    },
}

/// How often each RPC ended with each code, to show (and check) that
/// the generated calls reach the store rather than bouncing off validation.
#[derive(Default)]
struct Stats(Mutex<std::collections::BTreeMap<(&'static str, String), usize>>);

impl Stats {
    fn count(&self, call: &Call, outcome: &Outcome) {
        let code = match outcome {
            Outcome::Ok { .. } => "Ok".to_owned(),
            Outcome::Err { code, .. } => format!("{code:?}"),
        };
        *self.0.lock().unwrap().entry((call.rpc(), code)).or_default() += 1;
    }

    /// RPCs that succeeded at least once.
    fn succeeded(&self) -> std::collections::BTreeSet<&'static str> {
        let counts = self.0.lock().unwrap();
        counts
            .keys()
            .filter(|(_, code)| code == "Ok")
            .map(|(rpc, _)| *rpc)
            .collect()
    }
}

impl Call {
    /// The same call in `project`.
    fn in_project(mut self, project: String) -> Self {
        match &mut self {
            Call::PutDataBlob(r) => r.project = project,
            Call::PutModelTemplate(r) => r.project = project,
            Call::PutModel(r) => r.project = project,
            Call::InsertEpochs(r) => r.project = project,
            Call::StreamEpochs(messages) => messages.iter_mut().for_each(|m| m.project.clone_from(&project)),
            Call::WriteEpochs(batches) => batches.iter_mut().for_each(|b| b.project.clone_from(&project)),
            Call::ListDataBlobs(r, _) => r.project = project,
            Call::ListModelTemplates(r, _) => r.project = project,
            Call::ListModels(r, _) => r.project = project,
            Call::ListEpochs(r, _) => r.project = project,
            Call::GetCurrentEpoch(r) => r.project = project,
            Call::GetBestModel(r) => r.project = project,
            Call::GetLeaderboard(r, _) => r.project = project,
            Call::UpdateTags(r) => r.project = project,
            Call::SetDescription(r) => r.project = project,
            Call::ListProjects(_) => {}
            Call::StartRun(r) => r.project = project,
            Call::Heartbeat(r) => r.project = project,
            Call::EndRun(r) => r.project = project,
            Call::GetModel(r) => r.project = project,
            Call::PutArtifact(r) => r.project = project,
            Call::ListArtifacts(r) => r.project = project,
            Call::DeleteArtifact(r) => r.project = project,
            Call::DeleteRecord(r) => r.project = project,
            Call::RestoreRecord(r) => r.project = project,
            Call::Purge(r) => r.project = project,
        }
        self
    }

    /// The page token, for listings.
    fn token(&self) -> Option<&Token> {
        match self {
            Call::ListDataBlobs(_, t)
            | Call::ListModelTemplates(_, t)
            | Call::ListModels(_, t)
            | Call::ListEpochs(_, t)
            | Call::GetLeaderboard(_, t) => Some(t),
            _ => None,
        }
    }

    /// The same listing with pages of one row (tokens do not depend on the
    /// page size).
    fn first_page(&self) -> Call {
        let mut call = self.clone();
        match &mut call {
            Call::ListDataBlobs(r, _) => r.page_size = 1,
            Call::ListModelTemplates(r, _) => r.page_size = 1,
            Call::ListModels(r, _) => r.page_size = 1,
            Call::ListEpochs(r, _) => r.page_size = 1,
            Call::GetLeaderboard(r, _) => r.page_size = 1,
            _ => {}
        }
        call
    }

    fn rpc(&self) -> &'static str {
        match self {
            Call::PutDataBlob(_) => "PutDataBlob",
            Call::PutModelTemplate(_) => "PutModelTemplate",
            Call::PutModel(_) => "PutModel",
            Call::InsertEpochs(_) => "InsertEpochs",
            Call::StreamEpochs(_) => "StreamEpochs",
            Call::WriteEpochs(_) => "WriteEpochs",
            Call::ListDataBlobs(..) => "ListDataBlobs",
            Call::ListModelTemplates(..) => "ListModelTemplates",
            Call::ListModels(..) => "ListModels",
            Call::ListEpochs(..) => "ListEpochs",
            Call::GetCurrentEpoch(_) => "GetCurrentEpoch",
            Call::GetBestModel(_) => "GetBestModel",
            Call::GetLeaderboard(..) => "GetLeaderboard",
            Call::ListProjects(_) => "ListProjects",
            Call::UpdateTags(_) => "UpdateTags",
            Call::SetDescription(_) => "SetDescription",
            Call::StartRun(_) => "StartRun",
            Call::Heartbeat(_) => "Heartbeat",
            Call::EndRun(_) => "EndRun",
            Call::GetModel(_) => "GetModel",
            Call::PutArtifact(_) => "PutArtifact",
            Call::ListArtifacts(_) => "ListArtifacts",
            Call::DeleteArtifact(_) => "DeleteArtifact",
            Call::DeleteRecord(_) => "DeleteRecord",
            Call::RestoreRecord(_) => "RestoreRecord",
            Call::Purge(_) => "Purge",
        }
    }
}

/// Tokens returned so far, for [`Token::Reused`] and friends.
#[derive(Default)]
struct Tokens(Mutex<Vec<String>>);

impl Tokens {
    const KEPT: usize = 64;

    fn pick(&self, index: &Index) -> String {
        let tokens = self.0.lock().unwrap();
        if tokens.is_empty() {
            return String::new();
        }
        tokens[index.index(tokens.len())].clone()
    }

    /// The token to send for `call`; `own` is a real token of the call's
    /// own listing and filter, for [`Token::Forged`].
    fn resolve(&self, call: &Call, token: &Token, own: &str) -> String {
        match token {
            Token::Given(token) => token.clone(),
            Token::Reused(index) => self.pick(index),
            Token::Truncated(index, keep) => {
                let token = self.pick(index);
                token[..(*keep).min(token.len())].to_owned()
            }
            Token::Forged(key) => {
                let token = own.to_owned();
                let Some(mut envelope) = URL_SAFE_NO_PAD
                    .decode(&token)
                    .ok()
                    .and_then(|json| serde_json::from_slice::<Value>(&json).ok())
                else {
                    return token;
                };
                envelope["k"] = key.for_call(call);
                URL_SAFE_NO_PAD.encode(envelope.to_string())
            }
        }
    }

    fn remember(&self, token: &str) {
        if token.is_empty() {
            return;
        }
        let mut tokens = self.0.lock().unwrap();
        if tokens.len() == Self::KEPT {
            tokens.remove(0);
        }
        tokens.push(token.to_owned());
    }
}

/// Most tags on one record (the documented limit).
const MAX_TAGS: usize = 1_000;
/// Most artifacts of one model (the documented limit).
const MAX_ARTIFACTS: usize = 256;

fn page_limit(page_size: u32) -> usize {
    if page_size == 0 { 100 } else { page_size as usize }
}

fn clear_model(m: &mut Model) {
    m.created_at = None;
    m.last_modified_at = None;
    // Run times are the database clock: present or not is compared.
    for time in [
        &mut m.started_at,
        &mut m.ended_at,
        &mut m.last_heartbeat_at,
        &mut m.deleted_at,
    ]
    .into_iter()
    .flatten()
    {
        *time = prost_types::Timestamp::default();
    }
}

fn clear_artifact(a: &mut Artifact) {
    // The database clock: present or not is compared.
    if a.created_at.is_some() {
        a.created_at = Some(prost_types::Timestamp::default());
    }
}

fn clear_datablob(d: &mut DataBlob) {
    d.created_at = None;
    d.last_modified_at = None;
    d.deleted_at = d.deleted_at.map(|_| prost_types::Timestamp::default());
}

fn clear_template(t: &mut ModelTemplate) {
    t.created_at = None;
    t.last_modified_at = None;
    t.deleted_at = t.deleted_at.map(|_| prost_types::Timestamp::default());
}

fn clear_best(b: &mut BestModel) {
    b.model.iter_mut().for_each(clear_model);
    b.datablob.iter_mut().for_each(clear_datablob);
    b.model_template.iter_mut().for_each(clear_template);
    b.best_epoch.iter_mut().for_each(|e| e.recorded_at = None);
}

fn clear_row(r: &mut LeaderboardRow) {
    r.model.iter_mut().for_each(clear_model);
    r.datablob.iter_mut().for_each(clear_datablob);
    r.model_template.iter_mut().for_each(clear_template);
}

fn ok(rows: usize, limit: usize, response: impl std::fmt::Debug, next_token: String) -> Outcome {
    Outcome::Ok {
        rows,
        limit,
        response: format!("{response:?}"),
        next_token,
    }
}

/// Sends `call` (with `token` as its page token, where it has one).
async fn send(mut client: Client, call: &Call, token: &str) -> Outcome {
    let token = token.to_owned();
    let result: Result<Outcome, Status> = async {
        Ok(match call.clone() {
            Call::PutDataBlob(r) => {
                let mut reply = client.put_data_blob(r).await?.into_inner();
                reply.datablob.iter_mut().for_each(clear_datablob);
                ok(1, 1, reply, String::new())
            }
            Call::PutModelTemplate(r) => {
                let mut reply = client.put_model_template(r).await?.into_inner();
                reply.model_template.iter_mut().for_each(clear_template);
                ok(1, 1, reply, String::new())
            }
            Call::PutModel(r) => {
                let mut reply = client.put_model(r).await?.into_inner();
                reply.model.iter_mut().for_each(clear_model);
                ok(1, 1, reply, String::new())
            }
            Call::InsertEpochs(r) => {
                let epochs = r.epochs.len();
                let reply = client.insert_epochs(r).await?.into_inner();
                ok(
                    (reply.inserted + reply.skipped) as usize,
                    epochs,
                    reply,
                    String::new(),
                )
            }
            Call::StreamEpochs(messages) => {
                let epochs = messages.iter().map(|m| m.epochs.len()).sum();
                let reply = client
                    .stream_epochs(futures::stream::iter(messages))
                    .await?
                    .into_inner();
                ok(
                    (reply.inserted + reply.skipped) as usize,
                    epochs,
                    reply,
                    String::new(),
                )
            }
            Call::WriteEpochs(batches) => {
                let sent = batches.len();
                let mut answers = client
                    .write_epochs(futures::stream::iter(batches))
                    .await?
                    .into_inner();
                // Every answer in order, then how the stream ended.
                let mut got = Vec::new();
                let end = loop {
                    match answers.message().await {
                        Ok(Some(answer)) => got.push(answer),
                        Ok(None) => break None,
                        Err(status) => break Some((status.code(), status.message().to_owned())),
                    }
                };
                ok(got.len(), sent, (got, end), String::new())
            }
            Call::ListDataBlobs(r, _) => {
                let limit = page_limit(r.page_size);
                let mut reply = client
                    .list_data_blobs(ListDataBlobsRequest {
                        page_token: token,
                        ..r
                    })
                    .await?
                    .into_inner();
                reply.datablobs.iter_mut().for_each(clear_datablob);
                let next = reply.next_page_token.clone();
                ok(reply.datablobs.len(), limit, reply, next)
            }
            Call::ListModelTemplates(r, _) => {
                let limit = page_limit(r.page_size);
                let mut reply = client
                    .list_model_templates(ListModelTemplatesRequest {
                        page_token: token,
                        ..r
                    })
                    .await?
                    .into_inner();
                reply.model_templates.iter_mut().for_each(clear_template);
                let next = reply.next_page_token.clone();
                ok(reply.model_templates.len(), limit, reply, next)
            }
            Call::ListModels(r, _) => {
                let limit = page_limit(r.page_size);
                let mut reply = client
                    .list_models(ListModelsRequest {
                        page_token: token,
                        ..r
                    })
                    .await?
                    .into_inner();
                reply.models.iter_mut().for_each(clear_model);
                let next = reply.next_page_token.clone();
                ok(reply.models.len(), limit, reply, next)
            }
            Call::ListEpochs(r, _) => {
                let limit = page_limit(r.page_size);
                let mut reply = client
                    .list_epochs(ListEpochsRequest {
                        page_token: token,
                        ..r
                    })
                    .await?
                    .into_inner();
                reply.epochs.iter_mut().for_each(|e| e.recorded_at = None);
                let next = reply.next_page_token.clone();
                ok(reply.epochs.len(), limit, reply, next)
            }
            Call::ListProjects(r) => {
                let limit = page_limit(r.page_size);
                let mut reply = client.list_projects(r).await?.into_inner();
                reply.projects.iter_mut().for_each(|p| p.created_at = None);
                let next = reply.next_page_token.clone();
                ok(reply.projects.len(), limit, reply, next)
            }
            Call::UpdateTags(r) => {
                let reply = client.update_tags(r).await?.into_inner();
                ok(reply.tags.len(), MAX_TAGS, reply, String::new())
            }
            Call::SetDescription(r) => {
                let reply = client.set_description(r).await?.into_inner();
                ok(0, 0, reply, String::new())
            }
            Call::StartRun(r) => {
                let mut reply = client.start_run(r).await?.into_inner();
                reply.model.iter_mut().for_each(clear_model);
                ok(1, 1, reply, String::new())
            }
            Call::Heartbeat(r) => {
                let mut reply = client.heartbeat(r).await?.into_inner();
                reply.model.iter_mut().for_each(clear_model);
                ok(1, 1, reply, String::new())
            }
            Call::EndRun(r) => {
                let mut reply = client.end_run(r).await?.into_inner();
                reply.model.iter_mut().for_each(clear_model);
                ok(1, 1, reply, String::new())
            }
            Call::GetModel(r) => {
                let mut reply = client.get_model(r).await?.into_inner();
                reply.model.iter_mut().for_each(clear_model);
                reply.status_changes.iter_mut().for_each(|c| c.changed_at = None);
                reply.artifacts.iter_mut().for_each(clear_artifact);
                ok(1, 1, reply, String::new())
            }
            Call::PutArtifact(r) => {
                let mut reply = client.put_artifact(r).await?.into_inner();
                reply.artifact.iter_mut().for_each(clear_artifact);
                ok(1, 1, reply, String::new())
            }
            Call::ListArtifacts(r) => {
                let mut reply = client.list_artifacts(r).await?.into_inner();
                reply.artifacts.iter_mut().for_each(clear_artifact);
                ok(reply.artifacts.len(), MAX_ARTIFACTS, reply, String::new())
            }
            Call::DeleteArtifact(r) => {
                let reply = client.delete_artifact(r).await?.into_inner();
                ok(usize::from(reply.deleted), 1, reply, String::new())
            }
            Call::DeleteRecord(r) => {
                let mut reply = client.delete_record(r).await?.into_inner();
                reply.deleted_at = reply.deleted_at.map(|_| prost_types::Timestamp::default());
                ok(1, 1, reply, String::new())
            }
            Call::RestoreRecord(r) => {
                let reply = client.restore_record(r).await?.into_inner();
                ok(1, 1, reply, String::new())
            }
            Call::Purge(r) => {
                let reply = client.purge(r).await?.into_inner();
                ok(1, 1, reply, String::new())
            }
            Call::GetCurrentEpoch(r) => {
                let reply = client.get_current_epoch(r).await?.into_inner();
                ok(usize::from(reply.model_exists), 1, reply, String::new())
            }
            Call::GetBestModel(r) => {
                let limit = (r.top_k as usize).max(1);
                let mut reply = client.get_best_model(r).await?.into_inner();
                reply.models.iter_mut().for_each(clear_best);
                ok(reply.models.len(), limit, reply, String::new())
            }
            Call::GetLeaderboard(r, _) => {
                let limit = page_limit(r.page_size);
                let mut reply = client
                    .get_leaderboard(GetLeaderboardRequest {
                        page_token: token,
                        ..r
                    })
                    .await?
                    .into_inner();
                reply.rows.iter_mut().for_each(clear_row);
                let next = reply.next_page_token.clone();
                ok(reply.rows.len(), limit, reply, next)
            }
        })
    }
    .await;
    result.unwrap_or_else(|status| Outcome::Err {
        code: status.code(),
        message: status.message().to_owned(),
    })
}

/// A description of `value` short enough for a failure message.
fn short(value: &impl std::fmt::Debug) -> String {
    let text = format!("{value:?}");
    match text.char_indices().nth(600) {
        Some((cut, _)) => format!("{}... ({} bytes)", &text[..cut], text.len()),
        None => text,
    }
}

fn check(call: &Call, token: &str, outcome: &Outcome) -> TestCaseResult {
    match outcome {
        Outcome::Ok { rows, limit, .. } => {
            prop_assert!(
                rows <= limit,
                "{} rows for a limit of {limit}: {} (token {token:?})",
                rows,
                short(call)
            );
        }
        Outcome::Err { code, message } => {
            let client_error = matches!(
                code,
                Code::InvalidArgument | Code::NotFound | Code::AlreadyExists | Code::FailedPrecondition
            );
            prop_assert!(
                client_error,
                "{code:?} {:?} for {} (token {:?})",
                short(message),
                short(call),
                short(&token)
            );
            prop_assert!(!message.is_empty(), "empty {code:?} message for {}", short(call));
            if *code == Code::InvalidArgument {
                let (field, rule) = message.split_once(": ").unwrap_or_default();
                prop_assert!(
                    !field.is_empty() && !rule.is_empty(),
                    "INVALID_ARGUMENT {:?} is not \"field: rule\" for {}",
                    short(message),
                    short(call)
                );
            }
            prop_assert!(
                message.chars().count() <= MAX_MESSAGE_CHARS,
                "{code:?} message of {} characters for {}",
                message.chars().count(),
                short(call)
            );
        }
    }
    Ok(())
}

/// Runs one case: each call on every server, then a liveness probe.
async fn run_case(clients: &[Client], tokens: &Tokens, stats: &Stats, calls: Vec<Call>) -> TestCaseResult {
    for call in &calls {
        let token = match call.token() {
            Some(token @ Token::Forged(_)) => {
                let own = match send(clients[0].clone(), &call.first_page(), "").await {
                    Outcome::Ok { next_token, .. } => next_token,
                    Outcome::Err { .. } => String::new(),
                };
                tokens.resolve(call, token, &own)
            }
            Some(token) => tokens.resolve(call, token, ""),
            None => String::new(),
        };
        let mut outcomes = Vec::with_capacity(clients.len());
        for client in clients {
            let outcome = send(client.clone(), call, &token).await;
            check(call, &token, &outcome)?;
            stats.count(call, &outcome);
            outcomes.push(outcome);
        }
        if let [first, second] = &outcomes[..] {
            prop_assert_eq!(
                first,
                second,
                "SQLite and PostgreSQL disagree on {} (token {:?})",
                short(call),
                short(&token)
            );
        }
        if let Some(Outcome::Ok { next_token, .. }) = outcomes.first() {
            tokens.remember(next_token);
        }
    }
    for client in clients {
        // The seeded model may be gone (the calls include deletes and
        // purges): only that the server still answers is checked.
        client
            .clone()
            .get_current_epoch(GetCurrentEpochRequest {
                project: String::new(),
                model_name: "m0".to_owned(),
            })
            .await
            .map_err(|s| TestCaseError::fail(format!("server stopped answering: {s}")))?;
    }
    Ok(())
}

/// Records the generated calls often name, with some epochs.
async fn seed(client: &mut Client) {
    calls::put_datablob(client, "d0", "g", r#"{"rows": 10}"#).await;
    calls::put_template(client, "t0", "g", r#"{"layers": 2}"#).await;
    for name in ["m0", "m1"] {
        calls::put_model(client, name, "d0", "t0").await;
    }
    client
        .update_tags(UpdateTagsRequest {
            target: Some(RecordRef {
                kind: mlmeta_proto::RecordKind::Model as i32,
                name: "m0".into(),
            }),
            set: [("k".to_owned(), "v".to_owned())].into(),
            ..UpdateTagsRequest::default()
        })
        .await
        .unwrap();
    client
        .put_artifact(PutArtifactRequest {
            model_name: "m0".into(),
            artifact: Some(Artifact {
                name: "ckpt".into(),
                uri: "s3://bucket/run/ckpt.pt".into(),
                size_bytes: Some(7),
                ..Artifact::default()
            }),
            ..PutArtifactRequest::default()
        })
        .await
        .unwrap();
    insert_epochs(
        client,
        (0..3)
            .flat_map(|n| {
                [
                    epoch("m0", n, &[("acc", 0.5 + n as f64 / 10.0), ("loss", 1.0)]),
                    epoch("m1", n, &[("acc", 0.4), ("loss", f64::NAN)]),
                ]
            })
            .collect(),
    )
    .await;
}

/// Fuzzes `servers` (one, or SQLite and PostgreSQL to compare) with
/// `cases` cases of a few calls each.
async fn fuzz(servers: &[&TestServer], cases: u32) {
    let mut clients = Vec::new();
    for server in servers {
        let mut client = server.client();
        seed(&mut client).await;
        clients.push(client);
    }
    let tokens = Tokens::default();
    let stats = Stats::default();
    let handle = tokio::runtime::Handle::current();
    let strategy = prop::collection::vec(call(), 1..6);
    let mut runner = TestRunner::new(config(cases));
    // The runner is synchronous: leave the async context, then drive each
    // case's calls on this runtime.
    let result = tokio::task::block_in_place(|| {
        runner.run(&strategy, |calls| {
            handle.block_on(run_case(&clients, &tokens, &stats, calls))
        })
    });
    if let Err(error) = result {
        // The failing input may hold 100 KB strings.
        let report = error.to_string();
        match report.char_indices().nth(20_000) {
            Some((cut, _)) => panic!("{}... ({} bytes)", &report[..cut], report.len()),
            None => panic!("{report}"),
        }
    }
    let counts = stats.0.lock().unwrap().clone();
    eprintln!("outcomes per RPC and code: {counts:#?}");
    // Whatever was stored reads back whole, and more than the seed was.
    for client in &mut clients {
        let stored = calls::Snapshot::take(client).await;
        eprintln!(
            "stored: {} datablobs, {} templates, {} models, {} epochs",
            stored.datablobs.len(),
            stored.templates.len(),
            stored.models.len(),
            stored.epochs.len()
        );
    }
    // Without this, generators that only produce invalid requests would
    // pass while testing nothing but validation.
    let succeeded = stats.succeeded();
    if counts.values().sum::<usize>() >= 200 {
        assert!(succeeded.len() >= 10, "only {succeeded:?} ever succeeded");
    }
}

async fn arbitrary_requests_never_break_the_server(server: TestServer) {
    fuzz(&[&server], CASES_PER_BACKEND).await;
}

/// The same calls on SQLite and PostgreSQL get the same answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn differential() {
    let Some(postgres) = TestServer::postgres().await else {
        return;
    };
    let sqlite = TestServer::sqlite().await;
    mlmeta_tests::run_bounded(
        "fuzz::differential",
        std::time::Duration::from_secs(300),
        fuzz(&[&sqlite, &postgres], DIFFERENTIAL_CASES),
    )
    .await;
}
