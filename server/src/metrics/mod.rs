//! `/metrics`: the Prometheus text exposition of one server.
//!
//! Each server has its own [`Registry`] (tests start several servers in one
//! process, so nothing here is global). Everything is read at scrape time
//! from counters that the recording paths only add to: the gRPC layer's
//! ([`grpc`]), the group commit's, the checkpointer's and the sweeper's
//! (through [`Store::stats`]), the guard's refusals; gauges (pool, queue,
//! WAL size) are read then too.
//!
//! Families (besides go-grpc-prometheus's `grpc_server_*`):
//!
//! | name | type | what |
//! |---|---|---|
//! | `mlmeta_ingest_epochs_inserted_total` | counter | epochs stored |
//! | `mlmeta_ingest_epochs_skipped_total` | counter | epochs already stored (or repeated) |
//! | `mlmeta_ingest_transactions_total` | counter | group-commit transactions committed |
//! | `mlmeta_ingest_batch_epochs` | histogram | epochs per committed transaction |
//! | `mlmeta_ingest_commit_seconds` | histogram | time of each committed transaction |
//! | `mlmeta_ingest_queued_epochs` | gauge | epochs queued or being written |
//! | `mlmeta_ingest_db_statements_total` | counter | statements the group commit sent to the database (PostgreSQL: round trips) |
//! | `mlmeta_db_pool_connections{state}` | gauge | pooled connections, `in_use` / `idle` |
//! | `mlmeta_db_pool_max_connections` | gauge | `--pool-size` |
//! | `mlmeta_sqlite_wal_bytes` | gauge | size of the `-wal` file (SQLite) |
//! | `mlmeta_sqlite_checkpoint_seconds` | histogram | time of each WAL checkpoint (SQLite) |
//! | `mlmeta_sqlite_checkpoint_failures_total` | counter | failed checkpoints (SQLite) |
//! | `mlmeta_sweeper_runs_total` | counter | sweeps for silent runs |
//! | `mlmeta_sweeper_failures_total` | counter | sweeps that failed |
//! | `mlmeta_runs_crashed_total` | counter | runs this server's sweeper marked CRASHED |
//! | `mlmeta_auth_refused_total{reason}` | counter | calls refused for their token: `missing`, `unknown`, `scope` |
//! | `mlmeta_watch_subscribers` | gauge | watch streams (`WatchEpochs`, `WatchModels`) open now |
//! | `http_requests_total{handler,code}` | counter | HTTP requests by route template (`unmatched`: 404 of an unknown path) and status (see [`http`]) |
//! | `http_request_duration_seconds{handler}` | histogram | time until the HTTP response head, by route template |
//! | `mlmeta_watch_reads_total{source}` | counter | `WatchEpochs` reads answered from this process's recent commits (`memory`) or the `database` |

mod grpc;
mod histogram;
mod http;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

pub(crate) use grpc::{GrpcMetrics, GrpcMetricsLayer, Recorded};
pub(crate) use histogram::{AtomicHistogram, EPOCHS, SECONDS};
pub(crate) use http::{HttpMetrics, record as record_http};

use crate::security::Refusals;
use crate::store::Store;

/// Content type of the Prometheus text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One server's registry.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    http: Arc<HttpMetrics>,
}

impl Metrics {
    /// The registry over `grpc` (`None`: `--no-grpc-metrics`), `store`'s
    /// counters and the guard's `refusals`.
    pub(crate) fn new(grpc: Option<Arc<GrpcMetrics>>, store: Store, refusals: Arc<Refusals>) -> Self {
        let mut registry = Registry::default();
        let http = Arc::new(HttpMetrics::default());
        registry.register_collector(Box::new(ServerCollector {
            grpc,
            http: Arc::clone(&http),
            store,
            refusals,
        }));
        Self { registry, http }
    }

    /// The HTTP listener's counters, for [`record_http`].
    pub(crate) fn http(&self) -> Arc<HttpMetrics> {
        Arc::clone(&self.http)
    }

    /// The exposition text.
    pub(crate) fn render(&self) -> String {
        let mut text = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }
}

/// `GET /metrics`.
pub(crate) fn router(metrics: Arc<Metrics>) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state(metrics)
}

async fn scrape(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    ([(CONTENT_TYPE, TEXT_FORMAT)], metrics.render())
}

/// Reads everything at scrape time.
struct ServerCollector {
    grpc: Option<Arc<GrpcMetrics>>,
    http: Arc<HttpMetrics>,
    store: Store,
    refusals: Arc<Refusals>,
}

impl std::fmt::Debug for ServerCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCollector").finish_non_exhaustive()
    }
}

impl Collector for ServerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        if let Some(grpc) = &self.grpc {
            grpc.encode(&mut encoder)?;
        }
        self.http.encode(&mut encoder)?;
        let stats = self.store.stats();
        let ingest = &stats.ingest;
        counter(
            &mut encoder,
            "mlmeta_ingest_epochs_inserted",
            "Epochs stored.",
            &ingest.inserted,
        )?;
        counter(
            &mut encoder,
            "mlmeta_ingest_epochs_skipped",
            "Epochs not stored because they already were (or came twice in one batch).",
            &ingest.skipped,
        )?;
        counter(
            &mut encoder,
            "mlmeta_ingest_transactions",
            "Group-commit transactions committed.",
            &ingest.transactions,
        )?;
        histogram(
            &mut encoder,
            "mlmeta_ingest_batch_epochs",
            "Epochs per committed group-commit transaction.",
            &ingest.batch_epochs,
        )?;
        histogram(
            &mut encoder,
            "mlmeta_ingest_commit_seconds",
            "Time of each committed group-commit transaction, BEGIN to COMMIT.",
            &ingest.commit_seconds,
        )?;
        counter(
            &mut encoder,
            "mlmeta_ingest_db_statements",
            "Statements the group commit sent to the database, BEGIN and COMMIT included (on PostgreSQL each a round trip).",
            &ingest.statements,
        )?;
        gauge(
            &mut encoder,
            "mlmeta_ingest_queued_epochs",
            "Epochs queued for, or being written by, the group commit.",
            stats.queued_epochs as i64,
        )?;
        let mut pool = encoder.encode_descriptor(
            "mlmeta_db_pool_connections",
            "Database connections held by the pool, by state.",
            None,
            MetricType::Gauge,
        )?;
        let in_use = stats.pool_connections.saturating_sub(stats.pool_idle);
        for (state, value) in [("in_use", in_use), ("idle", stats.pool_idle)] {
            pool.encode_family(&[("state", state)])?
                .encode_gauge(&i64::from(value))?;
        }
        gauge(
            &mut encoder,
            "mlmeta_db_pool_max_connections",
            "The most connections the pool opens (--pool-size).",
            i64::from(stats.pool_max),
        )?;
        if let Some(wal) = stats.wal_bytes {
            gauge(
                &mut encoder,
                "mlmeta_sqlite_wal_bytes",
                "Size of the SQLite -wal file.",
                i64::try_from(wal).unwrap_or(i64::MAX),
            )?;
        }
        if let Some(checkpoints) = &stats.checkpoints {
            histogram(
                &mut encoder,
                "mlmeta_sqlite_checkpoint_seconds",
                "Time of each SQLite WAL checkpoint.",
                &checkpoints.seconds,
            )?;
            counter(
                &mut encoder,
                "mlmeta_sqlite_checkpoint_failures",
                "SQLite WAL checkpoints that failed.",
                &checkpoints.failures,
            )?;
        }
        let sweeps = &stats.sweeps;
        counter(
            &mut encoder,
            "mlmeta_sweeper_runs",
            "Sweeps for silent runs.",
            &sweeps.runs,
        )?;
        counter(
            &mut encoder,
            "mlmeta_sweeper_failures",
            "Sweeps that failed.",
            &sweeps.failures,
        )?;
        counter(
            &mut encoder,
            "mlmeta_runs_crashed",
            "Runs this server's sweeper marked CRASHED (heartbeat timeout).",
            &sweeps.crashed,
        )?;
        gauge(
            &mut encoder,
            "mlmeta_watch_subscribers",
            "Watch streams (WatchEpochs, WatchModels) open on this server.",
            i64::try_from(stats.watchers).unwrap_or(i64::MAX),
        )?;
        let mut reads = encoder.encode_descriptor(
            "mlmeta_watch_reads",
            "WatchEpochs reads, answered from this process's recent commits (memory) or from the database.",
            None,
            MetricType::Counter,
        )?;
        let (from_memory, from_database) = stats.watch_reads;
        for (source, value) in [("memory", from_memory), ("database", from_database)] {
            reads
                .encode_family(&[("source", source)])?
                .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
        }
        let mut refused = encoder.encode_descriptor(
            "mlmeta_auth_refused",
            "Calls refused for their token, by reason.",
            None,
            MetricType::Counter,
        )?;
        for (reason, value) in [
            ("missing", &self.refusals.missing),
            ("unknown", &self.refusals.unknown),
            ("scope", &self.refusals.scope),
        ] {
            refused
                .encode_family(&[("reason", reason)])?
                .encode_counter::<NoLabelSet, _, u64>(&value.load(Ordering::Relaxed), None)?;
        }
        Ok(())
    }
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: &AtomicU64) -> std::fmt::Result {
    encoder
        .encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&value.load(Ordering::Relaxed), None)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> std::fmt::Result {
    encoder
        .encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&value)
}

fn histogram(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    histogram: &AtomicHistogram,
) -> std::fmt::Result {
    histogram.encode(encoder.encode_descriptor(name, help, None, MetricType::Histogram)?)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::config::Config;
    use crate::db::DatabaseUrl;

    /// Times `/metrics` rendering with every method of every service
    /// called and every code recorded for each (the largest exposition
    /// the gRPC families can make), on SQLite (so the WAL and checkpoint
    /// families are in). A measurement, not a test: run with
    /// `cargo test --release -p mlmeta-server scrape_with_every -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement; run by hand"]
    fn scrape_with_every_method_and_code_populated() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("m.db").display());
        let store = Store::open(&Config::for_database(DatabaseUrl::parse(&url).unwrap())).unwrap();
        let grpc = Arc::new(GrpcMetrics::new(&[
            mlmeta_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ]));
        let methods = grpc.populate_every_code();
        let metrics = Metrics::new(Some(grpc), store, Arc::default());
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..200 {
            let started = Instant::now();
            bytes = metrics.render().len();
            times.push(started.elapsed());
        }
        times.sort();
        println!(
            "{methods} methods x 17 codes: {bytes} bytes, {} lines; render p50 {:?}, p99 {:?}, max {:?}",
            metrics.render().lines().count(),
            times[100],
            times[198],
            times[199]
        );
    }
}
