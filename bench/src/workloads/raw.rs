//! `raw`: the floor that `bulk` is measured against. The same `--models` x
//! `--epochs` epochs of 8 metrics as bulk's "2 in flight" run (same names,
//! same values), in the same batches of `--batch` epochs, written straight
//! into a fresh database of the spawned backend with diesel, in this
//! process: no gRPC, no server, one transaction per batch.
//!
//! The floor writes the rows the server writes for those epochs, so that
//! `bulk`'s ratio to it measures the service and not a smaller job:
//! - the `epochs` rows, metrics encoded as the server encodes them: on
//!   SQLite one multi-row INSERT per 5,000 rows, on PostgreSQL one binary
//!   COPY (the fastest way into each backend);
//! - the `metric_summaries` rows the batch improves, as one upsert. Being
//!   the only writer, the floor keeps the best values in memory and
//!   overwrites rows, where the server reads the stored rows and merges in
//!   SQL to stay right beside concurrent writers;
//! - `models.last_modified_at` of the batch's models.
//!
//! It skips what only a shared service needs: validation, skipping stored
//! epochs, resolving model names in the database. The SQLite connection
//! has the server's settings (WAL, `synchronous = NORMAL`), so both commit
//! with the same durability.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use diesel::upsert::excluded;
use mlmeta_proto::InsertEpochsRequest;
use mlmeta_server::embedded::schema::{components, epochs, metric_summaries, models};
use mlmeta_server::embedded::{self, DatabaseUrl, DbConnection};

use crate::BenchResult;
use crate::data::{METRICS_PER_EPOCH, ModelSet};
use crate::report::Report;
use crate::server::fresh_database;
use crate::stats::{Latencies, millis, rate};
use crate::workloads::Ctx;

/// Datablob groups of the models, as in `bulk`.
const GROUPS: usize = 4;

/// Model templates, as in `bulk`.
const TEMPLATES: usize = 2;

/// Rows per INSERT statement: 6 columns x 5,000 stays within SQLite's
/// 32,766 bind parameters (and PostgreSQL's 65,535).
const ROWS_PER_STATEMENT: usize = 5_000;

/// One `epochs` row.
#[derive(Insertable)]
#[diesel(table_name = epochs)]
#[diesel(treat_none_as_default_value = false)]
struct EpochRow {
    model_id: i64,
    epoch_num: i64,
    metrics: Vec<u8>,
    steps_per_epoch: Option<i64>,
    validation_steps_per_epoch: Option<i64>,
    recorded_at: i64,
}

/// One `metric_summaries` row: a model's best values of one metric.
#[derive(Insertable, Debug, Clone, PartialEq)]
#[diesel(table_name = metric_summaries)]
#[diesel(treat_none_as_default_value = false)]
struct SummaryRow {
    model_id: i64,
    metric_name: String,
    max_value: f64,
    max_epoch_num: i64,
    min_value: f64,
    min_epoch_num: i64,
}

impl SummaryRow {
    /// Folds in one more value with the server's rules: NaN never counts,
    /// ties go to the lower epoch. True when the row changed.
    fn merge(&mut self, value: f64, epoch_num: i64) -> bool {
        let mut changed = false;
        if value > self.max_value || (value == self.max_value && epoch_num < self.max_epoch_num) {
            (self.max_value, self.max_epoch_num) = (value, epoch_num);
            changed = true;
        }
        if value < self.min_value || (value == self.min_value && epoch_num < self.min_epoch_num) {
            (self.min_value, self.min_epoch_num) = (value, epoch_num);
            changed = true;
        }
        changed
    }
}

/// Everything one batch's transaction writes.
struct Batch {
    epochs: Vec<EpochRow>,
    summaries: Vec<SummaryRow>,
    model_ids: Vec<i64>,
    now: i64,
}

/// What the timed part did.
struct Outcome {
    elapsed: Duration,
    latencies: Latencies,
    epochs: u64,
    stored_epochs: i64,
    stored_summaries: i64,
}

/// Measures the floor and keeps its values/s for `bulk`'s ratio.
pub async fn run(ctx: &mut Ctx, report: &mut Report) -> BenchResult<()> {
    let backend = ctx
        .args
        .spawn_backend()
        .ok_or("the raw workload needs --spawn sqlite|postgres")?;
    let (models, epochs, batch) = (ctx.args.models, ctx.args.epochs, ctx.args.batch);
    eprintln!(
        "  {models} models x {epochs} epochs, {batch} epochs per transaction, straight into {}",
        backend.name()
    );
    let dir = tempfile::Builder::new().prefix("mlmeta-bench-raw-").tempdir()?;
    let (url, postgres) = fresh_database(backend, dir.path(), "raw")?;
    let set = ModelSet::planned(&ctx.tag, "bulk", models, GROUPS);
    let requests: Vec<InsertEpochsRequest> = ctx.metrics.requests(&set, epochs, batch).collect();
    let outcome = tokio::task::spawn_blocking(move || write_all(&url, &set, &requests)).await??;
    drop(postgres);

    let values_per_s = rate(outcome.epochs * METRICS_PER_EPOCH, outcome.elapsed);
    report.add("raw", "metric values/s", values_per_s, "values/s");
    report.add(
        "raw",
        "epochs/s",
        rate(outcome.epochs, outcome.elapsed),
        "epochs/s",
    );
    let mut latencies = outcome.latencies;
    report.add("raw", "transaction p50", millis(latencies.percentile(50.0)), "ms");
    report.add("raw", "transaction p99", millis(latencies.percentile(99.0)), "ms");
    report.add(
        "raw",
        "epochs stored (checked)",
        outcome.stored_epochs as f64,
        "epochs",
    );
    let expected_epochs = (models * epochs) as i64;
    let expected_summaries = (models as u64 * METRICS_PER_EPOCH) as i64;
    if outcome.stored_epochs != expected_epochs || outcome.stored_summaries != expected_summaries {
        report.problem(format!(
            "raw: {} epochs and {} summary rows stored, expected {expected_epochs} and {expected_summaries}",
            outcome.stored_epochs, outcome.stored_summaries
        ));
    }
    ctx.raw_values_per_s = Some(values_per_s);
    Ok(())
}

/// Opens `url` (migrating it), stores the models (untimed), then writes
/// every request in its own transaction (timed) and counts what is stored.
fn write_all(url: &DatabaseUrl, set: &ModelSet, requests: &[InsertEpochsRequest]) -> BenchResult<Outcome> {
    let mut conn = embedded::open(url)?;
    let ids = setup(&mut conn, set)?;
    let mut best: BTreeMap<(i64, String), SummaryRow> = BTreeMap::new();
    let mut latencies = Latencies::with_capacity(requests.len());
    let mut epochs_written = 0;
    let start = Instant::now();
    for request in requests {
        let began = Instant::now();
        let batch = prepare(request, &ids, &mut best)?;
        match &mut conn {
            DbConnection::Sqlite(c) => c.transaction(|c| write_sqlite(c, &batch))?,
            DbConnection::Postgres(c) => c.transaction(|c| write_postgres(c, &batch))?,
        }
        latencies.push(began.elapsed());
        epochs_written += batch.epochs.len() as u64;
    }
    let elapsed = start.elapsed();
    let stored_epochs = epochs::table.count().get_result(&mut conn)?;
    let stored_summaries = metric_summaries::table.count().get_result(&mut conn)?;
    Ok(Outcome {
        elapsed,
        latencies,
        epochs: epochs_written,
        stored_epochs,
        stored_summaries,
    })
}

/// The rows of one request: its epochs encoded, the summary rows it
/// improves (merged into `best`), and its models.
fn prepare(
    request: &InsertEpochsRequest,
    ids: &HashMap<String, i64>,
    best: &mut BTreeMap<(i64, String), SummaryRow>,
) -> BenchResult<Batch> {
    let now = now_micros();
    let mut changed = BTreeSet::new();
    let mut epoch_rows = Vec::with_capacity(request.epochs.len());
    for epoch in &request.epochs {
        let model_id = *ids
            .get(&epoch.model_name)
            .ok_or_else(|| format!("model {} was not stored", epoch.model_name))?;
        for (name, &value) in epoch.metrics.iter().filter(|(_, v)| !v.is_nan()) {
            let key = (model_id, name.clone());
            let improved = match best.get_mut(&key) {
                Some(row) => row.merge(value, epoch.epoch_num),
                None => {
                    best.insert(
                        key.clone(),
                        SummaryRow {
                            model_id,
                            metric_name: name.clone(),
                            max_value: value,
                            max_epoch_num: epoch.epoch_num,
                            min_value: value,
                            min_epoch_num: epoch.epoch_num,
                        },
                    );
                    true
                }
            };
            if improved {
                changed.insert(key);
            }
        }
        epoch_rows.push(EpochRow {
            model_id,
            epoch_num: epoch.epoch_num,
            metrics: embedded::encode_metrics(&epoch.metrics),
            steps_per_epoch: epoch.steps_per_epoch,
            validation_steps_per_epoch: epoch.validation_steps_per_epoch,
            recorded_at: now,
        });
    }
    let mut model_ids: Vec<i64> = epoch_rows.iter().map(|row| row.model_id).collect();
    model_ids.sort_unstable();
    model_ids.dedup();
    Ok(Batch {
        epochs: epoch_rows,
        summaries: changed.iter().filter_map(|key| best.get(key).cloned()).collect(),
        model_ids,
        now,
    })
}

/// Upserts the changed summaries and moves the models' `last_modified_at`;
/// the same statements on both backends, written against the concrete
/// connection `$c` (the multi-backend connection has no batch upsert).
macro_rules! write_summaries_and_touch {
    ($c:expr, $batch:expr) => {{
        for chunk in $batch.summaries.chunks(ROWS_PER_STATEMENT) {
            diesel::insert_into(metric_summaries::table)
                .values(chunk)
                .on_conflict((metric_summaries::model_id, metric_summaries::metric_name))
                .do_update()
                .set((
                    metric_summaries::max_value.eq(excluded(metric_summaries::max_value)),
                    metric_summaries::max_epoch_num.eq(excluded(metric_summaries::max_epoch_num)),
                    metric_summaries::min_value.eq(excluded(metric_summaries::min_value)),
                    metric_summaries::min_epoch_num.eq(excluded(metric_summaries::min_epoch_num)),
                ))
                .execute($c)?;
        }
        for chunk in $batch.model_ids.chunks(ROWS_PER_STATEMENT) {
            diesel::update(models::table.filter(models::id.eq_any(chunk)))
                .set(models::last_modified_at.eq($batch.now))
                .execute($c)?;
        }
        Ok(())
    }};
}

/// SQLite: multi-row INSERTs of the epochs, then the summaries.
fn write_sqlite(c: &mut SqliteConnection, batch: &Batch) -> QueryResult<()> {
    for chunk in batch.epochs.chunks(ROWS_PER_STATEMENT) {
        diesel::insert_into(epochs::table).values(chunk).execute(c)?;
    }
    write_summaries_and_touch!(c, batch)
}

/// PostgreSQL: one binary COPY of the epochs, then the summaries.
fn write_postgres(c: &mut PgConnection, batch: &Batch) -> QueryResult<()> {
    diesel::copy_from(epochs::table)
        .from_insertable(&batch.epochs)
        .execute(c)?;
    write_summaries_and_touch!(c, batch)
}

/// The body of [`setup`] for the concrete connection `$c`.
macro_rules! setup_on {
    ($c:expr, $set:expr, $components:expr, $now:expr) => {{
        diesel::insert_into(components::table)
            .values(&$components)
            .execute($c)?;
        let ids: Vec<(String, i64)> = components::table
            .select((components::kind, components::id))
            .order(components::id)
            .load($c)?;
        let blobs: Vec<i64> = ids
            .iter()
            .filter(|(k, _)| k == "datablob")
            .map(|(_, id)| *id)
            .collect();
        let templates: Vec<i64> = ids
            .iter()
            .filter(|(k, _)| k != "datablob")
            .map(|(_, id)| *id)
            .collect();
        let model_rows: Vec<_> = $set
            .names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                (
                    models::name.eq(name.clone()),
                    models::model_class_name.eq("Sequential"),
                    models::datablob_id.eq(blobs[i % blobs.len()]),
                    models::model_template_id.eq(templates[i % templates.len()]),
                    models::created_at.eq($now),
                    models::last_modified_at.eq($now),
                    // The `default` project, which the migrations create.
                    models::project_id.eq(1_i64),
                )
            })
            .collect();
        for chunk in model_rows.chunks(ROWS_PER_STATEMENT) {
            diesel::insert_into(models::table).values(chunk).execute($c)?;
        }
        models::table
            .select((models::name, models::id))
            .load::<(String, i64)>($c)?
            .into_iter()
            .collect::<HashMap<String, i64>>()
    }};
}

/// Stores the datablobs, templates and models of `set` (as `bulk`'s setup
/// does through the API) and returns the model ids by name.
fn setup(conn: &mut DbConnection, set: &ModelSet) -> BenchResult<HashMap<String, i64>> {
    let now = now_micros();
    let component = |kind: &str, name: String, group: String, hyperparams: &str| {
        (
            components::kind.eq(kind.to_owned()),
            components::name.eq(name),
            components::group_name.eq(group),
            components::hyperparams.eq(hyperparams.to_owned()),
            components::created_at.eq(now),
            components::last_modified_at.eq(now),
            // The `default` project, which the migrations create.
            components::project_id.eq(1_i64),
        )
    };
    let mut rows: Vec<_> = set
        .groups
        .iter()
        .map(|group| {
            component(
                "datablob",
                format!("{group}-data"),
                group.clone(),
                r#"{"source":"synthetic"}"#,
            )
        })
        .collect();
    rows.extend((0..TEMPLATES).map(|t| {
        component(
            "model_template",
            format!("{}-tmpl-{t}", set.groups[0]),
            "arch".to_owned(),
            r#"{"optimizer":"adam"}"#,
        )
    }));
    let ids = match conn {
        DbConnection::Sqlite(c) => setup_on!(c, set, rows, now),
        DbConnection::Postgres(c) => setup_on!(c, set, rows, now),
    };
    Ok(ids)
}

/// Microseconds since the Unix epoch, as the server stamps rows.
fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_keep_best_values_and_lowest_epochs() {
        let mut row = SummaryRow {
            model_id: 1,
            metric_name: "m".to_owned(),
            max_value: 0.5,
            max_epoch_num: 3,
            min_value: 0.5,
            min_epoch_num: 3,
        };
        assert!(row.merge(0.5, 1));
        assert!(!row.merge(0.5, 2));
        assert!(row.merge(0.9, 7));
        assert!(!row.merge(0.9, 8));
        assert!(row.merge(0.1, 9));
        assert_eq!((row.max_value, row.max_epoch_num), (0.9, 7));
        assert_eq!((row.min_value, row.min_epoch_num), (0.1, 9));
    }
}
