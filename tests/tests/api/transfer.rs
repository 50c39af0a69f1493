//! Export and Import over gRPC directly on both backends (issue 18): the
//! selection, exact values (NaN, ±inf, big integers in hyperparameters),
//! deleted records, epochs' recorded_at, idempotent reimport counts,
//! conflicts, bad records, and an import cut off in the middle of a model.

use std::time::Duration;

use mlmeta_proto::export_record::Record;
use mlmeta_proto::{
    DeleteRecordRequest, EndRunRequest, EpochBatch, ExportRecord, ExportRequest, GetModelRequest,
    ImportRequest, ImportResponse, RecordKind, RecordRef, RunStatus, StartRunRequest, StatusChange,
};
use mlmeta_tests::calls::{
    Client, epochs_of, expect_status, insert_epochs, put_datablob, put_model, put_template, seed_model,
};
use mlmeta_tests::records::epoch;
use mlmeta_tests::{TestServer, backend_tests};
use prost::Message as _;
use tonic::{Code, Status};

backend_tests! {
    round_trip_is_exact_with_deleted_records_and_reimport_skips_everything,
    selection_exports_only_the_models_named_and_what_they_use,
    conflicts_are_reported_and_bad_records_name_their_field,
    an_import_cut_off_mid_model_keeps_its_exported_status => 180,
}

async fn another(server: &TestServer) -> TestServer {
    if server.is_postgres() {
        TestServer::postgres().await.expect("PostgreSQL is up")
    } else {
        TestServer::sqlite().await
    }
}

async fn export(client: &mut Client, model_names: &[&str]) -> Vec<ExportRecord> {
    let mut stream = client
        .export(ExportRequest {
            project: String::new(),
            model_names: model_names.iter().map(|n| (*n).to_owned()).collect(),
            r#where: String::new(),
            with_artifacts: false,
        })
        .await
        .unwrap()
        .into_inner();
    let mut records = Vec::new();
    while let Some(record) = stream.message().await.unwrap() {
        records.push(record);
    }
    records
}

fn messages(records: &[ExportRecord]) -> Vec<ImportRequest> {
    records
        .chunks(3)
        .map(|chunk| ImportRequest {
            project: String::new(),
            overwrite_mutable: false,
            records: chunk.to_vec(),
        })
        .collect()
}

async fn import(client: &mut Client, records: &[ExportRecord]) -> Result<ImportResponse, Status> {
    client
        .import(futures::stream::iter(messages(records)))
        .await
        .map(tonic::Response::into_inner)
}

/// The records after the header, encoded (NaN compares equal this way).
fn bytes(records: &[ExportRecord]) -> Vec<Vec<u8>> {
    records[1..].iter().map(|r| r.encode_to_vec()).collect()
}

async fn delete(client: &mut Client, kind: RecordKind, name: &str) {
    client
        .delete_record(DeleteRecordRequest {
            target: Some(RecordRef {
                kind: kind as i32,
                name: name.to_owned(),
            }),
            project: String::new(),
        })
        .await
        .unwrap();
}

async fn start(client: &mut Client, name: &str) {
    client
        .start_run(StartRunRequest {
            model_name: name.to_owned(),
            heartbeat_timeout_secs: Some(3600),
            run_context: None,
            project: String::new(),
        })
        .await
        .unwrap();
}

/// Models "a" (a RUNNING run, exact values), "b" (FINISHED), and "gone"
/// (deleted, with its deleted datablob).
async fn seed(client: &mut Client) {
    put_datablob(
        client,
        "a-data",
        "dg",
        r#"{"n":123456789012345678901234567890,"x":-9007199254740993}"#,
    )
    .await;
    put_template(client, "a-tmpl", "tg", r#"{"big":18446744073709551615}"#).await;
    put_model(client, "a", "a-data", "a-tmpl").await;
    seed_model(client, "b").await;
    seed_model(client, "gone").await;
    start(client, "a").await;
    start(client, "b").await;
    insert_epochs(
        client,
        vec![
            epoch("a", 0, &[("loss", f64::NAN), ("acc", f64::INFINITY)]),
            epoch(
                "a",
                1,
                &[("loss", 0.30000000000000004), ("acc", f64::NEG_INFINITY)],
            ),
            epoch("a", 2, &[("loss", 5e-324)]),
            epoch("b", 0, &[("loss", 1.0)]),
            epoch("gone", 0, &[("loss", 2.0)]),
            epoch("gone", 1, &[("loss", 1.5)]),
        ],
    )
    .await;
    client
        .end_run(EndRunRequest {
            model_name: "b".into(),
            status: RunStatus::Finished.into(),
            project: String::new(),
        })
        .await
        .unwrap();
    delete(client, RecordKind::Model, "gone").await;
    delete(client, RecordKind::Datablob, "gone-data").await;
}

fn names_of(records: &[ExportRecord]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| match r.record.as_ref()? {
            Record::Datablob(c) => Some(format!("datablob {}", c.name)),
            Record::ModelTemplate(c) => Some(format!("template {}", c.name)),
            Record::Model(m) => Some(format!("model {}", m.model.as_ref()?.name)),
            _ => None,
        })
        .collect()
}

async fn round_trip_is_exact_with_deleted_records_and_reimport_skips_everything(server: TestServer) {
    let mut source = server.client();
    seed(&mut source).await;
    let first = export(&mut source, &[]).await;
    assert!(matches!(first[0].record, Some(Record::Header(_))));
    assert_eq!(
        names_of(&first),
        [
            "datablob a-data",
            "datablob b-data",
            "datablob gone-data",
            "template a-tmpl",
            "template b-tmpl",
            "template gone-tmpl",
            "model a",
            "model b",
            "model gone"
        ]
    );
    // Deleted records carry their deletion; every epoch its recorded_at.
    for record in &first {
        match record.record.as_ref().unwrap() {
            Record::Datablob(c) => assert_eq!(c.deleted_at.is_some(), c.name == "gone-data", "{c:?}"),
            Record::Model(m) => {
                let m = m.model.as_ref().unwrap();
                assert_eq!(m.deleted_at.is_some(), m.name == "gone", "{m:?}");
            }
            Record::Epochs(batch) => assert!(batch.epochs.iter().all(|e| e.recorded_at.is_some())),
            _ => {}
        }
    }
    let epochs = |records: &[ExportRecord]| -> usize {
        records
            .iter()
            .map(|r| match &r.record {
                Some(Record::Epochs(b)) => b.epochs.len(),
                _ => 0,
            })
            .sum()
    };
    assert_eq!(epochs(&first), 6);

    // Whatever time it is now, the import keeps the exported times.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let target = another(&server).await;
    let mut client = target.client();
    let answer = import(&mut client, &first).await.unwrap();
    assert_eq!(answer.datablobs.unwrap().inserted, 3, "{answer:?}");
    assert_eq!(answer.model_templates.unwrap().inserted, 3);
    assert_eq!(answer.models.unwrap().inserted, 3);
    assert_eq!(answer.epochs.unwrap().inserted, 6);
    assert!(answer.conflicts.is_empty(), "{:?}", answer.conflicts);
    assert_eq!(answer.records, first.len() as u64);

    // The target exports the same records, bit for bit (NaN, infinities,
    // big integers, recorded_at, deleted_at, run state and history).
    let second = export(&mut client, &[]).await;
    assert!(bytes(&second) == bytes(&first), "{second:#?}\n!=\n{first:#?}");
    // Deleted on the target too: not listed, and frozen.
    let listed = epochs_of(&mut client, &["a", "b"]).await;
    assert_eq!(listed.len(), 4);
    let error = client
        .get_model(GetModelRequest {
            model_name: "gone".into(),
            project: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(error.model.unwrap().deleted_at.is_some());

    // Again: nothing new, all counted as skipped.
    let again = import(&mut client, &first).await.unwrap();
    let counts = |c: Option<mlmeta_proto::ImportCounts>| {
        let c = c.unwrap();
        (c.inserted, c.skipped, c.updated, c.conflicts)
    };
    assert_eq!(counts(again.datablobs), (0, 3, 0, 0));
    assert_eq!(counts(again.model_templates), (0, 3, 0, 0));
    assert_eq!(counts(again.models), (0, 3, 0, 0));
    assert_eq!(counts(again.epochs), (0, 6, 0, 0));
    assert!(bytes(&export(&mut client, &[]).await) == bytes(&first));
}

async fn selection_exports_only_the_models_named_and_what_they_use(server: TestServer) {
    let mut client = server.client();
    seed(&mut client).await;
    let records = export(&mut client, &["b"]).await;
    assert_eq!(
        names_of(&records),
        ["datablob b-data", "template b-tmpl", "model b"]
    );
    let Some(Record::Header(header)) = &records[0].record else {
        panic!("no header first: {records:?}");
    };
    assert_eq!(header.model_names, ["b"]);
    assert_eq!(header.format_version, 1);
    let epochs: Vec<i64> = records
        .iter()
        .filter_map(|r| match &r.record {
            Some(Record::Epochs(b)) => Some(b.epochs.iter().map(|e| e.epoch_num)),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(epochs, [0]);
    let error = client
        .export(ExportRequest {
            project: String::new(),
            model_names: vec![],
            r#where: "status = ".into(),
            with_artifacts: false,
        })
        .await;
    expect_status(error.map(|_| ()), Code::InvalidArgument, &["where"]);
}

/// `records` with the record at `index` changed by `change`.
fn with(records: &[ExportRecord], index: usize, change: impl FnOnce(&mut Record)) -> Vec<ExportRecord> {
    let mut records = records.to_vec();
    change(records[index].record.as_mut().unwrap());
    records
}

async fn conflicts_are_reported_and_bad_records_name_their_field(server: TestServer) {
    let mut source = server.client();
    seed(&mut source).await;
    let records = export(&mut source, &["a", "b"]).await;
    let model_a = records
        .iter()
        .position(|r| matches!(&r.record, Some(Record::Model(m)) if m.model.as_ref().unwrap().name == "a"))
        .unwrap();

    // The target holds "a" with another class: reported, not overwritten,
    // and its epochs are not imported.
    let target = another(&server).await;
    let mut client = target.client();
    put_datablob(
        &mut client,
        "a-data",
        "dg",
        r#"{"n":123456789012345678901234567890,"x":-9007199254740993}"#,
    )
    .await;
    put_template(&mut client, "a-tmpl", "tg", r#"{"big":18446744073709551615}"#).await;
    let mut other = mlmeta_tests::records::model("a", "a-data", "a-tmpl");
    other.model_class_name = "OtherNet".into();
    client
        .put_model(mlmeta_tests::records::put_model(other, false))
        .await
        .unwrap();
    let answer = import(&mut client, &records).await.unwrap();
    let models = answer.models.unwrap();
    assert_eq!((models.inserted, models.conflicts), (1, 1), "{answer:?}");
    assert_eq!(answer.conflicts.len(), 1);
    let conflict = &answer.conflicts[0];
    assert_eq!((conflict.kind.as_str(), conflict.name.as_str()), ("model", "a"));
    assert_eq!(conflict.record_index, model_a as u64);
    assert!(conflict.message.contains("model_class_name"), "{conflict:?}");
    assert_eq!(answer.epochs_of_conflicts, 3);
    assert!(epochs_of(&mut client, &["a"]).await.is_empty());

    // Bad records: INVALID_ARGUMENT naming the record and the field.
    let fresh = another(&server).await;
    let mut client = fresh.client();
    let epochs_at = records
        .iter()
        .position(|r| matches!(&r.record, Some(Record::Epochs(_))))
        .unwrap();
    let cases: Vec<(Vec<ExportRecord>, Vec<String>)> = vec![
        (
            records[1..].to_vec(),
            vec!["records[0]".into(), "first record must be the header".into()],
        ),
        (
            with(&records, 0, |r| {
                if let Record::Header(h) = r {
                    h.format_version = 2;
                }
            }),
            vec!["header.format_version".into()],
        ),
        (
            with(&records, model_a, |r| {
                if let Record::Model(m) = r {
                    m.model.as_mut().unwrap().heartbeat_timeout_secs = Some(0);
                }
            }),
            vec![
                format!("records[{model_a}]"),
                "model.heartbeat_timeout_secs".into(),
            ],
        ),
        (
            with(&records, model_a, |r| {
                if let Record::Model(m) = r {
                    m.status_changes.push(StatusChange {
                        changed_at: None,
                        from: RunStatus::Running.into(),
                        to: RunStatus::Finished.into(),
                        cause: String::new(),
                    });
                }
            }),
            vec!["status_changes[".into(), "changed_at".into()],
        ),
        (
            with(&records, epochs_at, |r| {
                if let Record::Epochs(b) = r {
                    b.epochs[0].epoch_num = -1;
                }
            }),
            vec![format!("records[{epochs_at}]"), "epochs[0].epoch_num".into()],
        ),
        (
            with(&records, epochs_at, |r| {
                if let Record::Epochs(b) = r {
                    b.epochs[0].recorded_at.as_mut().unwrap().nanos = -5;
                }
            }),
            vec!["epochs.epochs[0].recorded_at".into()],
        ),
        (
            with(&records, 1, |r| {
                if let Record::Datablob(c) = r {
                    c.hyperparams_json = "[1".into();
                }
            }),
            vec!["records[1]".into(), "datablob".into()],
        ),
    ];
    for (case, needles) in cases {
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        expect_status(import(&mut client, &case).await, Code::InvalidArgument, &needles);
    }
}

/// The model record named `name`, its index.
fn model_index(records: &[ExportRecord], name: &str) -> usize {
    records
        .iter()
        .position(|r| matches!(&r.record, Some(Record::Model(m)) if m.model.as_ref().unwrap().name == name))
        .unwrap()
}

async fn an_import_cut_off_mid_model_keeps_its_exported_status(server: TestServer) {
    let mut source = server.client();
    put_datablob(&mut source, "d", "g", "{}").await;
    put_template(&mut source, "t", "g", "{}").await;
    put_model(&mut source, "r", "d", "t").await;
    start(&mut source, "r").await;
    insert_epochs(
        &mut source,
        (0..20).map(|n| epoch("r", n, &[("loss", n as f64)])).collect(),
    )
    .await;
    let exported = export(&mut source, &[]).await;
    // As if its run had crashed: live epochs would make it RUNNING again.
    let at = model_index(&exported, "r");
    let mut records = with(&exported, at, |r| {
        if let Record::Model(m) = r {
            let model = m.model.as_mut().unwrap();
            model.status = RunStatus::Crashed.into();
            m.status_changes.push(StatusChange {
                changed_at: model.last_heartbeat_at,
                from: RunStatus::Running.into(),
                to: RunStatus::Crashed.into(),
                cause: "heartbeat timeout".into(),
            });
        }
    });
    // The epochs in two records of 10.
    let Some(Record::Epochs(batch)) = records.pop().unwrap().record else {
        panic!("the last record is not the epochs: {records:?}");
    };
    let (first_half, second_half) = batch.epochs.split_at(10);
    for half in [first_half, second_half] {
        records.push(ExportRecord {
            record: Some(Record::Epochs(EpochBatch {
                epochs: half.to_vec(),
            })),
        });
    }
    let Some(Record::Model(model_record)) = &records[at].record else {
        unreachable!()
    };
    let want = model_record.clone();

    let target = another(&server).await;
    let mut client = target.client();
    // Everything up to the first half of the epochs, then the client goes
    // away with the stream open.
    let (sender, receiver) = futures::channel::mpsc::unbounded();
    let head = records.len() - 1;
    for message in messages(&records[..head]) {
        sender.unbounded_send(message).unwrap();
    }
    let call = tokio::spawn({
        let mut client = client.clone();
        async move { client.import(receiver).await }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let count = client
            .get_model(GetModelRequest {
                model_name: "r".into(),
                project: String::new(),
            })
            .await
            .map_or(0, |r| r.into_inner().model.map_or(0, |m| m.epoch_count));
        if count >= 10 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first epochs never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    call.abort();
    drop(sender);
    let _ = call.await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    // At every moment the model's run state is the exported one.
    let stored = |client: &mut Client| {
        let mut client = client.clone();
        async move {
            client
                .get_model(GetModelRequest {
                    model_name: "r".into(),
                    project: String::new(),
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let partial = stored(&mut client).await;
    let model = partial.model.clone().unwrap();
    let wanted = want.model.clone().unwrap();
    assert_eq!(model.status, i32::from(RunStatus::Crashed), "{model:?}");
    assert_eq!(model.last_heartbeat_at, wanted.last_heartbeat_at);
    assert_eq!(model.last_modified_at, wanted.last_modified_at);
    assert_eq!(model.started_at, wanted.started_at);
    assert_eq!(partial.status_changes, want.status_changes);
    assert_eq!(epochs_of(&mut client, &["r"]).await.len(), 10);

    // The full import completes it; once more changes nothing.
    let answer = import(&mut client, &records).await.unwrap();
    let counts = answer.epochs.unwrap();
    assert_eq!((counts.inserted, counts.skipped), (10, 10), "{answer:?}");
    assert_eq!(answer.models.unwrap().skipped, 1);
    let complete = stored(&mut client).await;
    assert_eq!(
        complete.model.as_ref().unwrap().status,
        i32::from(RunStatus::Crashed)
    );
    assert_eq!(complete.status_changes, want.status_changes);
    let again = import(&mut client, &records).await.unwrap();
    assert_eq!(again.epochs.unwrap().inserted, 0);
    // The target exports what the (crashed) records say.
    let mut expected = records.clone();
    let epochs: Vec<_> = expected
        .drain(head - 1..)
        .flat_map(|r| match r.record {
            Some(Record::Epochs(b)) => b.epochs,
            _ => Vec::new(),
        })
        .collect();
    expected.push(ExportRecord {
        record: Some(Record::Epochs(EpochBatch { epochs })),
    });
    let exported_model = export(&mut client, &[]).await;
    assert!(
        bytes(&exported_model) == bytes(&expected),
        "{exported_model:#?}\n!=\n{expected:#?}"
    );
}
