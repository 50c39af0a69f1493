//! Several `mlmeta-server` processes on one database, with writers spread
//! over them racing on the same models and epoch numbers: no error reaches
//! a writer, the stored epochs are exactly the union of what was sent, and
//! the leaderboards equal a brute-force computation over the sent data.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;
use mlmeta_proto::MetricDirection;
use mlmeta_tests::calls::{self, epochs_of, full_leaderboard};
use mlmeta_tests::process::{ServerProcess, server_binary};
use mlmeta_tests::records::{epoch, insert, leaderboard};
use mlmeta_tests::{TestDatabase, run_bounded};

const LIMIT: Duration = Duration::from_secs(180);
const READY: Duration = Duration::from_secs(60);
const SERVERS: usize = 3;
/// Writers, spread round-robin over the servers.
const WRITERS: usize = 18;
const MODELS: usize = 4;
/// Epochs each writer sends per model; writer `w` starts at `w * 10`, so
/// neighbouring writers overlap on most of their epochs.
const EPOCHS: i64 = 60;
const METRICS: [&str; 3] = ["loss", "acc", "lr"];

/// The value of a metric at an epoch: the same whoever sends it, with
/// many ties (to exercise the lower-epoch rule) and a NaN now and then.
fn value(model: usize, epoch_num: i64, metric: usize) -> f64 {
    let x = (epoch_num * 7919 + model as i64 * 104_729 + metric as i64 * 1_299_709) % 97;
    if x == 13 { f64::NAN } else { (x % 23) as f64 / 4.0 }
}

fn model_name(model: usize) -> String {
    format!("shared-{model}")
}

/// Expected leaderboard rows (model, best epoch, value) over every epoch
/// any writer sent, best first with ties by lower epoch, then name.
fn brute_force(metric: usize, direction: MetricDirection) -> Vec<(String, i64, f64)> {
    let last = (WRITERS as i64 - 1) * 10 + EPOCHS - 1;
    let mut rows: Vec<(String, i64, f64)> = (0..MODELS)
        .filter_map(|model| {
            let mut best: Option<(i64, f64)> = None;
            for epoch_num in 0..=last {
                let v = value(model, epoch_num, metric);
                if v.is_nan() {
                    continue;
                }
                let better = match (best, direction) {
                    (None, _) => true,
                    (Some((_, b)), MetricDirection::Max) => v > b,
                    (Some((_, b)), _) => v < b,
                };
                if better {
                    best = Some((epoch_num, v));
                }
            }
            best.map(|(epoch_num, v)| (model_name(model), epoch_num, v))
        })
        .collect();
    rows.sort_by(|a, b| {
        let by_value = match direction {
            MetricDirection::Max => b.2.total_cmp(&a.2),
            _ => a.2.total_cmp(&b.2),
        };
        by_value.then(a.1.cmp(&b.1)).then(a.0.cmp(&b.0))
    });
    rows
}

async fn writers_racing_through_three_servers(url: &str) {
    let mut servers: Vec<ServerProcess> = (0..SERVERS).map(|_| ServerProcess::start(url)).collect();
    for (i, server) in servers.iter_mut().enumerate() {
        if let Err(error) = server.wait_healthy(READY).await {
            panic!("server {i} of {SERVERS} on {url}: {error}");
        }
    }
    let mut client = servers[0].client();
    for model in 0..MODELS {
        calls::seed_model(&mut client, &model_name(model)).await;
    }

    // Each writer sends one epoch of every model per call, in epoch order,
    // like trainers that log as they go.
    let writers = (0..WRITERS).map(|w| {
        let mut client = servers[w % SERVERS].client();
        async move {
            let start = w as i64 * 10;
            for epoch_num in start..start + EPOCHS {
                let epochs = (0..MODELS)
                    .map(|model| {
                        let metrics: Vec<(&str, f64)> = METRICS
                            .iter()
                            .enumerate()
                            .map(|(m, name)| (*name, value(model, epoch_num, m)))
                            .collect();
                        epoch(&model_name(model), epoch_num, &metrics)
                    })
                    .collect();
                if let Err(status) = client.insert_epochs(insert(epochs)).await {
                    panic!("writer {w} at epoch {epoch_num}: {status}");
                }
            }
        }
    });
    join_all(writers).await;

    let last = (WRITERS as i64 - 1) * 10 + EPOCHS - 1;
    let stored = epochs_of(&mut client, &[]).await;
    assert_eq!(
        stored.len(),
        MODELS * (last as usize + 1),
        "stored = union of the sent epochs"
    );
    let mut seen: BTreeMap<(String, i64), ()> = BTreeMap::new();
    for e in &stored {
        assert!(
            seen.insert((e.model_name.clone(), e.epoch_num), ()).is_none(),
            "duplicate {e:?}"
        );
        let model: usize = e.model_name.trim_start_matches("shared-").parse().unwrap();
        for (m, name) in METRICS.iter().enumerate() {
            let want = value(model, e.epoch_num, m);
            assert_eq!(e.metrics[*name].to_bits(), want.to_bits(), "{name} of {e:?}");
        }
    }
    for (m, name) in METRICS.iter().enumerate() {
        for direction in [MetricDirection::Max, MetricDirection::Min] {
            // Asked through another server than the one that seeded.
            let mut other = servers[m % SERVERS].client();
            let rows = full_leaderboard(&mut other, leaderboard(name, direction, 2)).await;
            let got: Vec<(String, i64, f64)> = rows
                .iter()
                .map(|r| {
                    (
                        r.model.as_ref().unwrap().name.clone(),
                        r.best_epoch_num,
                        r.best_value,
                    )
                })
                .collect();
            assert_eq!(got, brute_force(m, direction), "{name} {direction:?}");
        }
    }
    for server in &servers {
        server.terminate();
    }
    for (i, server) in servers.iter_mut().enumerate() {
        let status = server.wait_exit(Duration::from_secs(15)).await;
        assert!(
            status.is_some_and(|s| s.success()),
            "server {i} after SIGTERM: {status:?}; stderr:\n{}",
            server.stderr()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_racing_through_three_servers_on_postgres() {
    server_binary();
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    run_bounded(
        "replicas::postgres",
        LIMIT,
        writers_racing_through_three_servers(database.url()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_racing_through_three_servers_on_one_sqlite_file() {
    server_binary();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    run_bounded(
        "replicas::sqlite",
        LIMIT,
        writers_racing_through_three_servers(&url),
    )
    .await;
}
