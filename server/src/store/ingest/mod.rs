//! The ingest path: everything that runs when epochs arrive.
//!
//! - [`GroupCommit`] (`group_commit.rs`): the queue every `InsertEpochs`
//!   request, `StreamEpochs` message and `WriteEpochs` batch joins, and
//!   the writer threads that store what queued up in one transaction;
//! - the insert orchestration (`insert.rs`): model names to ids (with the
//!   id cache of `model_ids.rs` and its stale-id checks), new epochs
//!   stored, the models touched (their runs' heartbeat, inside the
//!   transaction) and the summaries updated (`summaries.rs`);
//! - the statements with a fixed text that each connection prepares once
//!   (`prepared.rs`).
//!
//! Its one exit is the [`CommitHook`]: after each committed transaction,
//! it is told what that transaction stored, per model. Watch
//! notifications hang off it; nothing else learns of a commit. The
//! counters of `/metrics` ([`IngestStats`]) are added to by the writers
//! themselves, since they also count what the hook is not told (skipped
//! epochs, commit times).
//! The table files (`epochs.rs`, `summaries.rs`) only read.

mod group_commit;
pub(crate) mod hook;
mod insert;
mod model_ids;
mod prepared;
mod stats;
mod summaries;

pub(super) use group_commit::GroupCommit;
pub use hook::{CommitHook, CommitHooks, TraceHook};
pub(crate) use stats::IngestStats;

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use diesel::{Connection, PgConnection, RunQueryDsl};

    use super::hook::{Committed, CommittedModel};
    use crate::config::Config;
    use crate::db::DatabaseUrl;
    use crate::error::Error;
    use crate::security::{Caller, ProjectScope};
    use crate::store::Store;
    use crate::store::records::{ComponentKind, InsertCounts, NewComponent, NewEpoch, NewModel, RecordKind};

    /// Every `Committed` the hook was given, in order.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Committed>>);

    impl Recorder {
        fn take(&self) -> Vec<Committed> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    fn epoch(model: &str, epoch_num: i64) -> NewEpoch {
        NewEpoch {
            model_name: model.into(),
            epoch_num,
            metrics: [("loss".to_owned(), 1.0 / (epoch_num + 1) as f64)].into(),
            steps_per_epoch: None,
            validation_steps_per_epoch: None,
            recorded_at: None,
        }
    }

    fn put_model(store: &Store, project: &ProjectScope, name: &str) {
        let model = NewModel {
            name: name.into(),
            model_class_name: "Net".into(),
            datablob_name: "c".into(),
            model_template_name: "c".into(),
            params: "{}".into(),
        };
        store.put_model(project, &model, false).unwrap();
    }

    fn committed(
        project: &ProjectScope,
        model_id: i64,
        name: &str,
        epoch_nums: &[i64],
        seq: i64,
    ) -> CommittedModel {
        CommittedModel {
            project: project.clone(),
            model_id,
            model_name: name.into(),
            epoch_nums: epoch_nums.to_vec(),
            max_epoch_num: *epoch_nums.iter().max().unwrap(),
            revived: false,
            seq,
            epochs: None,
        }
    }

    /// The hook is told, once per committed transaction, exactly the new
    /// epochs it stored per model; never what a transaction that rolled
    /// back wrote (a stale cached id: the model deleted, or purged and its
    /// name reused, after the writer cached its id).
    async fn hook_sees_exactly_the_committed_batches(url: &str) {
        let recorder = Arc::new(Recorder::default());
        let hook = Arc::clone(&recorder);
        let store = Store::open_with_hook(
            &Config::for_database(DatabaseUrl::parse(url).unwrap()),
            Arc::new(move |committed: &Committed| hook.0.lock().unwrap().push(committed.clone())),
        )
        .unwrap();
        let project = Caller::anonymous().project("project", "vision").unwrap();
        for kind in [ComponentKind::DataBlob, ComponentKind::ModelTemplate] {
            let new = NewComponent {
                name: "c".into(),
                group_name: "g".into(),
                hyperparams: "{}".into(),
            };
            store.put_component(&project, kind, &new, false).unwrap();
        }
        put_model(&store, &project, "a");
        put_model(&store, &project, "b");
        let insert = |epochs: Vec<NewEpoch>| store.insert_epochs(project.clone(), epochs);

        let counts = insert(vec![epoch("a", 1), epoch("a", 2)]).await.unwrap();
        assert_eq!(
            counts,
            InsertCounts {
                inserted: 2,
                skipped: 0
            }
        );
        let first = recorder.take();
        assert_eq!(first.len(), 1, "{first:?}");
        let a = first[0].models[0].model_id;
        assert_eq!(first[0].models, [committed(&project, a, "a", &[1, 2], 1)]);

        // Stored epochs and repeats are left out; models in id order.
        let counts = insert(vec![epoch("b", 7), epoch("a", 2), epoch("a", 3), epoch("b", 7)])
            .await
            .unwrap();
        assert_eq!(
            counts,
            InsertCounts {
                inserted: 2,
                skipped: 2
            }
        );
        let second = recorder.take();
        assert_eq!(second.len(), 1, "{second:?}");
        let b = second[0].models[1].model_id;
        assert_eq!(
            second[0].models,
            [
                committed(&project, a, "a", &[3], 2),
                committed(&project, b, "b", &[7], 1)
            ]
        );

        // Nothing new: a commit that stored nothing.
        insert(vec![epoch("a", 1)]).await.unwrap();
        assert_eq!(recorder.take(), [Committed::default()]);

        // "b" deleted after its id was cached: the first transaction writes
        // its epoch, meets the stale id and rolls back; the retry refuses it.
        store.delete_record(&project, RecordKind::Model, "b").unwrap();
        let error = insert(vec![epoch("b", 8)]).await.unwrap_err();
        assert!(matches!(error, Error::FailedPrecondition(_)), "{error}");
        assert_eq!(recorder.take(), [Committed::default()]);

        // Purged and its name reused (a new id): only the retry with the
        // new id committed.
        store.purge(&project, Some("b")).unwrap();
        put_model(&store, &project, "b");
        insert(vec![epoch("b", 9)]).await.unwrap();
        let reused = recorder.take();
        assert_eq!(reused.len(), 1, "{reused:?}");
        let new_b = reused[0].models[0].model_id;
        assert_ne!(new_b, b);
        assert_eq!(reused[0].models, [committed(&project, new_b, "b", &[9], 1)]);

        // A request refused whole (unknown model) next to one stored.
        let other = Caller::anonymous().project("project", "").unwrap();
        let (refused, stored) = tokio::join!(
            store.insert_epochs(other.clone(), vec![epoch("nope", 1)]),
            insert(vec![epoch("a", 4)])
        );
        assert!(matches!(refused, Err(Error::NotFound(_))), "{refused:?}");
        assert_eq!(stored.unwrap().inserted, 1);
        let models: Vec<CommittedModel> = recorder.take().into_iter().flat_map(|c| c.models).collect();
        assert_eq!(models, [committed(&project, a, "a", &[4], 3)]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hook_sees_exactly_the_committed_batches_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("hook.db").display());
        hook_sees_exactly_the_committed_batches(&url).await;
    }

    /// On a fresh database of the PostgreSQL server of the integration
    /// tests (`MLMETA_TEST_POSTGRES_URL`); skipped when it is unreachable,
    /// unless `MLMETA_REQUIRE_POSTGRES=1`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hook_sees_exactly_the_committed_batches_on_postgres() {
        let admin = std::env::var("MLMETA_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let mut conn = match PgConnection::establish(&admin) {
            Ok(conn) => conn,
            Err(error) if std::env::var("MLMETA_REQUIRE_POSTGRES").as_deref() != Ok("1") => {
                eprintln!("SKIPPED: PostgreSQL unreachable: {error}");
                return;
            }
            Err(error) => panic!("PostgreSQL unreachable: {error}"),
        };
        let name = format!("mlmeta_hook_{}_{}", std::process::id(), rand::random::<u32>());
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .unwrap();
        let url = match admin.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("no database in {admin}"),
        };
        hook_sees_exactly_the_committed_batches(&url).await;
        diesel::sql_query(format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut conn)
            .unwrap();
    }
}
