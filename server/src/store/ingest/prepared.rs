//! Statements of the epoch-insert path with a fixed SQL text, so that each
//! connection prepares them once and reuses them.
//!
//! Diesel caches a prepared statement only when its query type has a
//! static id; batch inserts of a `Vec` and `sql_query` never do, and
//! preparing (parsing and planning) was a large share of a small insert.
//! Each type here writes one fixed text with its binds.
//!
//! SQLite runs them once per row (a prepared step costs microseconds);
//! PostgreSQL once per batch, with every column bound as one array and
//! expanded by `unnest`, so the text stays the same for any number of rows.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Binary, Double, Nullable, Text};
use diesel::sqlite::Sqlite;
use diesel::{QueryResult, RunQueryDsl};

/// Implements what diesel needs to run `$name` as a cached statement on
/// `$backend`; `$walk` writes its text and binds.
macro_rules! prepared_statement {
    ($name:ident on $backend:ty, |$this:ident, $out:ident| $walk:block) => {
        impl QueryId for $name<'_> {
            type QueryId = $name<'static>;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        impl QueryFragment<$backend> for $name<'_> {
            fn walk_ast<'b>(&'b self, mut $out: AstPass<'_, 'b, $backend>) -> QueryResult<()> {
                let $this = self;
                $walk
                Ok(())
            }
        }

        impl<Conn> RunQueryDsl<Conn> for $name<'_> {}
    };
}

/// The merge of a new (max, min) into a stored summary row: a side is
/// replaced when the new value is better, or equal at a lower epoch. Rows
/// improving on neither side are not touched: a no-op update would still
/// rewrite the row and its index entries. Same text on both backends.
macro_rules! merge_summary {
    () => {
        " ON CONFLICT (model_id, metric_name) DO UPDATE SET \
    max_value = CASE WHEN excluded.max_value > metric_summaries.max_value \
        OR (excluded.max_value = metric_summaries.max_value AND excluded.max_epoch_num < metric_summaries.max_epoch_num) \
        THEN excluded.max_value ELSE metric_summaries.max_value END, \
    max_epoch_num = CASE WHEN excluded.max_value > metric_summaries.max_value \
        OR (excluded.max_value = metric_summaries.max_value AND excluded.max_epoch_num < metric_summaries.max_epoch_num) \
        THEN excluded.max_epoch_num ELSE metric_summaries.max_epoch_num END, \
    min_value = CASE WHEN excluded.min_value < metric_summaries.min_value \
        OR (excluded.min_value = metric_summaries.min_value AND excluded.min_epoch_num < metric_summaries.min_epoch_num) \
        THEN excluded.min_value ELSE metric_summaries.min_value END, \
    min_epoch_num = CASE WHEN excluded.min_value < metric_summaries.min_value \
        OR (excluded.min_value = metric_summaries.min_value AND excluded.min_epoch_num < metric_summaries.min_epoch_num) \
        THEN excluded.min_epoch_num ELSE metric_summaries.min_epoch_num END \
    WHERE excluded.max_value > metric_summaries.max_value \
        OR (excluded.max_value = metric_summaries.max_value AND excluded.max_epoch_num < metric_summaries.max_epoch_num) \
        OR excluded.min_value < metric_summaries.min_value \
        OR (excluded.min_value = metric_summaries.min_value AND excluded.min_epoch_num < metric_summaries.min_epoch_num)"
    };
}

/// One summary row to merge: a model's best values of one metric among
/// the epochs being inserted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct SummaryRow<'a> {
    pub model_id: i64,
    pub metric_name: &'a str,
    pub max_value: f64,
    pub max_epoch_num: i64,
    pub min_value: f64,
    pub min_epoch_num: i64,
}

/// One epoch row to insert (`Insertable` for PostgreSQL's binary COPY).
#[derive(diesel::Insertable)]
#[diesel(table_name = crate::db::schema::epochs)]
#[diesel(treat_none_as_default_value = false)]
pub(super) struct EpochRow {
    pub model_id: i64,
    pub epoch_num: i64,
    pub metrics: Vec<u8>,
    pub steps_per_epoch: Option<i64>,
    pub validation_steps_per_epoch: Option<i64>,
    pub recorded_at: i64,
}

/// SQLite: inserts one epoch (the caller has checked that it is new).
pub(super) struct SqliteInsertEpoch<'a>(pub &'a EpochRow);

prepared_statement!(SqliteInsertEpoch on Sqlite, |this, out| {
    let row = this.0;
    out.push_sql(
        "INSERT INTO epochs (model_id, epoch_num, metrics, steps_per_epoch, validation_steps_per_epoch, recorded_at) VALUES (",
    );
    out.push_bind_param::<BigInt, _>(&row.model_id)?;
    out.push_sql(", ");
    out.push_bind_param::<BigInt, _>(&row.epoch_num)?;
    out.push_sql(", ");
    out.push_bind_param::<Binary, _>(&row.metrics)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<BigInt>, _>(&row.steps_per_epoch)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<BigInt>, _>(&row.validation_steps_per_epoch)?;
    out.push_sql(", ");
    out.push_bind_param::<BigInt, _>(&row.recorded_at)?;
    out.push_sql(")");
});

/// SQLite: merges one summary row.
pub(super) struct SqliteMergeSummary<'a>(pub &'a SummaryRow<'a>);

prepared_statement!(SqliteMergeSummary on Sqlite, |this, out| {
    let row = this.0;
    out.push_sql(
        "INSERT INTO metric_summaries (model_id, metric_name, max_value, max_epoch_num, min_value, min_epoch_num) VALUES (",
    );
    out.push_bind_param::<BigInt, _>(&row.model_id)?;
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(&row.metric_name)?;
    out.push_sql(", ");
    out.push_bind_param::<Double, _>(&row.max_value)?;
    out.push_sql(", ");
    out.push_bind_param::<BigInt, _>(&row.max_epoch_num)?;
    out.push_sql(", ");
    out.push_bind_param::<Double, _>(&row.min_value)?;
    out.push_sql(", ");
    out.push_bind_param::<BigInt, _>(&row.min_epoch_num)?;
    out.push_sql(")");
    out.push_sql(merge_summary!());
});

/// PostgreSQL: inserts many epochs, skipping (model, epoch_num) pairs that
/// are stored already (racing writers skip instead of failing), and returns
/// the keys of the rows it stored.
pub(super) struct PgInsertEpochs<'a> {
    pub epochs: EpochArrays<'a>,
    /// Per row (imported epochs keep their own time).
    pub recorded_at: &'a [i64],
}

/// The columns of epoch rows, each bound as one array and expanded by
/// `unnest` (in this order: model_id, epoch_num, metrics, steps,
/// validation steps), so that a statement's text is the same for any
/// number of rows.
pub(super) struct EpochArrays<'a> {
    pub model_ids: &'a [i64],
    pub epoch_nums: &'a [i64],
    pub metrics: &'a [&'a [u8]],
    pub steps_per_epoch: &'a [Option<i64>],
    pub validation_steps_per_epoch: &'a [Option<i64>],
}

impl EpochArrays<'_> {
    /// Binds the arrays as the arguments of an `unnest(...)`.
    fn push_unnest<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_bind_param::<Array<BigInt>, _>(&self.model_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.epoch_nums)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Binary>, _>(&self.metrics)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.steps_per_epoch)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.validation_steps_per_epoch)
    }
}

impl Query for PgInsertEpochs<'_> {
    type SqlType = (BigInt, BigInt);
}

prepared_statement!(PgInsertEpochs on Pg, |this, out| {
    out.push_sql(
        "INSERT INTO epochs (model_id, epoch_num, metrics, steps_per_epoch, validation_steps_per_epoch, recorded_at) \
         SELECT u.model_id, u.epoch_num, u.metrics, u.steps, u.validation_steps, u.recorded_at FROM unnest(",
    );
    this.epochs.push_unnest(&mut out)?;
    out.push_sql(", ");
    out.push_bind_param::<Array<BigInt>, _>(&this.recorded_at)?;
    out.push_sql(
        ") AS u(model_id, epoch_num, metrics, steps, validation_steps, recorded_at) \
         ON CONFLICT (model_id, epoch_num) DO NOTHING \
         RETURNING model_id, epoch_num",
    );
});

/// The merge of a new (count, last) into a stored `metric_latest` row:
/// the counts add up (only epochs this transaction stored are counted),
/// the last value is the one at the higher epoch. `SET` expressions read
/// the stored row as it was. `$greatest` is the backend's two-argument
/// maximum.
macro_rules! merge_latest {
    ($greatest:literal) => {
        concat!(
            " ON CONFLICT (model_id, metric_name) DO UPDATE SET \
    value_count = metric_latest.value_count + excluded.value_count, \
    last_value = CASE WHEN excluded.last_epoch_num > metric_latest.last_epoch_num \
        THEN excluded.last_value ELSE metric_latest.last_value END, \
    last_epoch_num = ",
            $greatest,
            "(metric_latest.last_epoch_num, excluded.last_epoch_num)"
        )
    };
}

/// One `metric_latest` row to merge: among the epochs being inserted of a
/// model, how many carry the metric and its value at the highest of them
/// (`None`: NaN).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct LatestRow<'a> {
    pub model_id: i64,
    pub metric_name: &'a str,
    pub value_count: i64,
    pub last_epoch_num: i64,
    pub last_value: Option<f64>,
}

/// SQLite: merges one `metric_latest` row.
pub(super) struct SqliteMergeLatest<'a>(pub &'a LatestRow<'a>);

prepared_statement!(SqliteMergeLatest on Sqlite, |this, out| {
    let row = this.0;
    out.push_sql(
        "INSERT INTO metric_latest (model_id, metric_name, value_count, last_epoch_num, last_value) VALUES (",
    );
    out.push_bind_param::<BigInt, _>(&row.model_id)?;
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(&row.metric_name)?;
    out.push_sql(", ");
    out.push_bind_param::<BigInt, _>(&row.value_count)?;
    out.push_sql(", ");
    out.push_bind_param::<BigInt, _>(&row.last_epoch_num)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<Double>, _>(&row.last_value)?;
    out.push_sql(")");
    out.push_sql(merge_latest!("max"));
});

/// PostgreSQL: merges many `metric_latest` rows and many summary rows (each
/// set with distinct keys, in key order) in one statement, one round trip.
/// Their row locks cannot deadlock: the writer holds the lock of every
/// model of the batch (`PgTouchModels`) before it gets here.
pub(super) struct PgMergeSummaries<'a> {
    pub model_ids: &'a [i64],
    pub metric_names: &'a [&'a str],
    pub max_values: &'a [f64],
    pub max_epoch_nums: &'a [i64],
    pub min_values: &'a [f64],
    pub min_epoch_nums: &'a [i64],
    pub latest_model_ids: &'a [i64],
    pub latest_metric_names: &'a [&'a str],
    pub latest_counts: &'a [i64],
    pub latest_epoch_nums: &'a [i64],
    pub latest_values: &'a [Option<f64>],
}

prepared_statement!(PgMergeSummaries on Pg, |this, out| {
    out.push_sql(
        "WITH latest AS (INSERT INTO metric_latest (model_id, metric_name, value_count, last_epoch_num, last_value) \
         SELECT * FROM unnest(",
    );
    out.push_bind_param::<Array<BigInt>, _>(&this.latest_model_ids)?;
    out.push_sql(", ");
    out.push_bind_param::<Array<Text>, _>(&this.latest_metric_names)?;
    out.push_sql(", ");
    out.push_bind_param::<Array<BigInt>, _>(&this.latest_counts)?;
    out.push_sql(", ");
    out.push_bind_param::<Array<BigInt>, _>(&this.latest_epoch_nums)?;
    out.push_sql(", ");
    out.push_bind_param::<Array<Nullable<Double>>, _>(&this.latest_values)?;
    out.push_sql(")");
    out.push_sql(merge_latest!("GREATEST"));
    out.push_sql(
        ") INSERT INTO metric_summaries (model_id, metric_name, max_value, max_epoch_num, min_value, min_epoch_num) \
         SELECT * FROM unnest(",
    );
    out.push_bind_param::<Array<BigInt>, _>(&this.model_ids)?;
    out.push_sql(", ");
    out.push_bind_param::<Array<Text>, _>(&this.metric_names)?;
    out.push_sql(", ");
    out.push_bind_param::<Array<Double>, _>(&this.max_values)?;
    out.push_sql(", ");
    out.push_bind_param::<Array<BigInt>, _>(&this.max_epoch_nums)?;
    out.push_sql(", ");
    out.push_bind_param::<Array<Double>, _>(&this.min_values)?;
    out.push_sql(", ");
    out.push_bind_param::<Array<BigInt>, _>(&this.min_epoch_nums)?;
    out.push_sql(")");
    out.push_sql(merge_summary!());
});

/// SQL for the new `last_heartbeat_at` of a model that received epochs:
/// the database's `$now` for a run that has a heartbeat (RUNNING, or
/// CRASHED: revived) unless it is less than 0.1 s old; otherwise it stays.
/// An unchanged value keeps the row update HOT on PostgreSQL (no index
/// entry written; `last_heartbeat_at` is in the sweeper's index), which
/// most epoch batches are: runs never started, and trainers logging many
/// epochs a second. A heartbeat is thus at most 0.1 s older than the last
/// epoch, against timeouts of at least 1 s.
macro_rules! heartbeat_refresh {
    ($status:literal, $last:literal, $now:literal) => {
        concat!(
            "CASE WHEN ",
            $status,
            " IN ('RUNNING', 'CRASHED') AND (",
            $last,
            " IS NULL OR ",
            $last,
            " < ",
            $now,
            " - 100000) THEN ",
            $now,
            " ELSE ",
            $last,
            " END"
        )
    };
}

/// The `SET` list of the models touch, shared by [`PgTouchModels`] and
/// [`PgStoreEpochs`]: heartbeat (see [`heartbeat_refresh`]), a CRASHED run
/// RUNNING again, the epoch count, the current epoch and the next
/// `epoch_seq`. It reads `locked` (the locked rows with their status),
/// `batch` (per model `n`, `max_epoch_num`, `nums`) and `now`; it follows
/// a bound `last_modified_at` value.
macro_rules! touch_set {
    () => {
        concat!(
            ", last_heartbeat_at = ",
            heartbeat_refresh!("locked.status", "models.last_heartbeat_at", "now.micros"),
            ", status = CASE WHEN locked.status = 'CRASHED' THEN 'RUNNING' ELSE models.status END, \
             epoch_count = models.epoch_count + batch.n, \
             current_epoch = GREATEST(models.current_epoch, batch.max_epoch_num), \
             epoch_seq = models.epoch_seq + 1"
        )
    };
}

/// The end of the `touched` CTE and what follows from it, shared like
/// [`touch_set`]: the revived runs' status changes and the batches'
/// `epoch_batches` rows, numbered by the new `epoch_seq` under the lock.
macro_rules! touch_returning {
    () => {
        "WHERE models.id = locked.id \
         RETURNING models.id, locked.status AS old_status, models.last_heartbeat_at, models.epoch_seq, batch.nums), \
         revived AS (INSERT INTO status_changes (model_id, changed_at, from_status, to_status, cause) \
         SELECT id, last_heartbeat_at, 'CRASHED', 'RUNNING', 'epoch after crash' \
         FROM touched WHERE old_status = 'CRASHED' ORDER BY id), \
         batched AS (INSERT INTO epoch_batches (model_id, seq, epoch_nums) \
         SELECT id, epoch_seq, nums FROM touched ORDER BY id)"
    };
}

/// PostgreSQL: moves `last_modified_at` of many models in one statement
/// (one round trip instead of one per model), and counts the epochs as the
/// runs' heartbeat (see [`heartbeat_refresh`]), a
/// CRASHED run becomes RUNNING again and that change is recorded, all in
/// the same statement (data-modifying CTEs). The row locks are taken by
/// the ordered `FOR UPDATE` subquery, in id order, like the rest of the
/// epoch insert, so concurrent writers cannot deadlock on them; it also
/// reads each row's status after its lock, so a sweep racing with the
/// insert is seen.
pub(super) struct PgTouchModels<'a> {
    pub ids: &'a [i64],
    /// Epochs inserted per model of `ids`.
    pub counts: &'a [i64],
    /// Highest epoch_num inserted per model of `ids`.
    pub max_epoch_nums: &'a [i64],
    /// The epoch_nums inserted per model of `ids`, ascending,
    /// comma-separated (its row of `epoch_batches`).
    pub epoch_lists: &'a [String],
    pub now: i64,
}

/// Returns the ids of the live models it touched, each with whether its
/// run was CRASHED (and is now RUNNING again) and its new `epoch_seq`.
impl Query for PgTouchModels<'_> {
    type SqlType = (BigInt, diesel::sql_types::Bool, BigInt);
}

prepared_statement!(PgTouchModels on Pg, |this, out| {
    // The lock reads the rows by primary key (`= ANY`), and only the locked
    // rows join the per-model counts: a join of `models` with the unnested
    // batch let the planner hash the whole table on every insert.
    out.push_sql("WITH locked AS (SELECT id, status FROM models WHERE deleted_at IS NULL AND id = ANY(");
    out.push_bind_param::<Array<BigInt>, _>(&this.ids)?;
    out.push_sql(
        ") ORDER BY id FOR UPDATE), \
         now AS (SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT AS micros), \
         touched AS (UPDATE models SET last_modified_at = ",
    );
    out.push_bind_param::<BigInt, _>(&this.now)?;
    out.push_sql(concat!(touch_set!(), " FROM locked JOIN unnest("));
    out.push_bind_param::<Array<BigInt>, _>(&this.ids)?;
    out.push_sql(", ");
    out.push_bind_param::<Array<BigInt>, _>(&this.counts)?;
    out.push_sql(", ");
    out.push_bind_param::<Array<BigInt>, _>(&this.max_epoch_nums)?;
    out.push_sql(", ");
    out.push_bind_param::<Array<Text>, _>(&this.epoch_lists)?;
    // The batch rows take the new `epoch_seq` under the row lock (so one
    // model's numbers follow its commits). No `pg_notify` here: it would
    // make every commit take PostgreSQL's global notification lock; the
    // watch notifier sends it after the commit (store/watch/notifier.rs).
    out.push_sql(concat!(
        ") AS batch (id, n, max_epoch_num, nums) ON batch.id = locked.id, now ",
        touch_returning!(),
        " SELECT id, old_status = 'CRASHED', epoch_seq FROM touched"
    ));
});

/// PostgreSQL: counts imported epochs of many models as [`PgTouchModels`]
/// does (epoch count, current epoch, `epoch_seq`, `epoch_batches` row),
/// without touching their runs: no heartbeat, no status change,
/// `last_modified_at` kept. Run only for batches holding imported epochs,
/// after the models are locked (`PgLockModels`). Returns what
/// [`PgTouchModels`] returns (never revived).
pub(super) struct PgTouchImported<'a> {
    pub ids: &'a [i64],
    pub counts: &'a [i64],
    pub max_epoch_nums: &'a [i64],
    pub epoch_lists: &'a [String],
}

impl Query for PgTouchImported<'_> {
    type SqlType = (BigInt, diesel::sql_types::Bool, BigInt);
}

prepared_statement!(PgTouchImported on Pg, |this, out| {
    // Deleted models too: an import stores the epochs of models it
    // imported deleted.
    out.push_sql("WITH locked AS (SELECT id FROM models WHERE id = ANY(");
    out.push_bind_param::<Array<BigInt>, _>(&this.ids)?;
    out.push_sql(
        ") ORDER BY id FOR UPDATE), \
         touched AS (UPDATE models SET epoch_count = models.epoch_count + batch.n, \
         current_epoch = GREATEST(models.current_epoch, batch.max_epoch_num), \
         epoch_seq = models.epoch_seq + 1 FROM locked JOIN unnest(",
    );
    out.push_bind_param::<Array<BigInt>, _>(&this.ids)?;
    out.push_sql(", ");
    out.push_bind_param::<Array<BigInt>, _>(&this.counts)?;
    out.push_sql(", ");
    out.push_bind_param::<Array<BigInt>, _>(&this.max_epoch_nums)?;
    out.push_sql(", ");
    out.push_bind_param::<Array<Text>, _>(&this.epoch_lists)?;
    out.push_sql(
        ") AS batch (id, n, max_epoch_num, nums) ON batch.id = locked.id \
         WHERE models.id = locked.id RETURNING models.id, models.epoch_seq, batch.nums), \
         batched AS (INSERT INTO epoch_batches (model_id, seq, epoch_nums) \
         SELECT id, epoch_seq, nums FROM touched ORDER BY id) \
         SELECT id, false, epoch_seq FROM touched",
    );
});

/// SQLite: records that an epoch revives model `id` if its run is CRASHED
/// (inserts nothing otherwise); runs just before [`SqliteTouchModel`],
/// under the same write lock.
pub(super) struct SqliteReviveModel<'a> {
    pub id: &'a i64,
}

prepared_statement!(SqliteReviveModel on Sqlite, |this, out| {
    out.push_sql(
        "INSERT INTO status_changes (model_id, changed_at, from_status, to_status, cause) \
         SELECT id, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER), 'CRASHED', 'RUNNING', 'epoch after crash' \
         FROM models WHERE deleted_at IS NULL AND id = ",
    );
    out.push_bind_param::<BigInt, _>(this.id)?;
    out.push_sql(" AND status = 'CRASHED'");
});

/// SQLite: moves `last_modified_at` of model `id` and counts its epochs as
/// its run's heartbeat (database clock; a CRASHED run becomes RUNNING);
/// returns its new `epoch_seq` (no row: the model is not live).
pub(super) struct SqliteTouchModel<'a> {
    pub id: &'a i64,
    pub now: &'a i64,
    /// Epochs inserted.
    pub count: &'a i64,
    /// Highest epoch_num inserted.
    pub max_epoch_num: &'a i64,
}

impl Query for SqliteTouchModel<'_> {
    type SqlType = BigInt;
}

prepared_statement!(SqliteTouchModel on Sqlite, |this, out| {
    out.push_sql("UPDATE models SET last_modified_at = ");
    out.push_bind_param::<BigInt, _>(this.now)?;
    out.push_sql(
        concat!(
            ", last_heartbeat_at = ",
            heartbeat_refresh!(
                "status",
                "last_heartbeat_at",
                "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)"
            ),
            ", \
         status = CASE WHEN status = 'CRASHED' THEN 'RUNNING' ELSE status END, \
         epoch_seq = epoch_seq + 1, \
         epoch_count = epoch_count + ",
        ),
    );
    out.push_bind_param::<BigInt, _>(this.count)?;
    // SQLite's two-argument max() is NULL when either is.
    out.push_sql(", current_epoch = max(coalesce(current_epoch, ");
    out.push_bind_param::<BigInt, _>(this.max_epoch_num)?;
    out.push_sql("), ");
    out.push_bind_param::<BigInt, _>(this.max_epoch_num)?;
    out.push_sql(") WHERE deleted_at IS NULL AND id = ");
    out.push_bind_param::<BigInt, _>(this.id)?;
    out.push_sql(" RETURNING epoch_seq");
});

/// SQLite: counts imported epochs of model `id` (the `epoch_seq`, epoch
/// count and current epoch of [`SqliteTouchModel`]) without touching its
/// run: no heartbeat, no status change, `last_modified_at` kept; returns
/// its new `epoch_seq` (no row: the model was purged). Deleted models
/// count too: an import stores the epochs of models it imported deleted.
pub(super) struct SqliteTouchImported<'a> {
    pub id: &'a i64,
    /// Epochs inserted.
    pub count: &'a i64,
    /// Highest epoch_num inserted.
    pub max_epoch_num: &'a i64,
}

impl Query for SqliteTouchImported<'_> {
    type SqlType = BigInt;
}

prepared_statement!(SqliteTouchImported on Sqlite, |this, out| {
    out.push_sql("UPDATE models SET epoch_seq = epoch_seq + 1, epoch_count = epoch_count + ");
    out.push_bind_param::<BigInt, _>(this.count)?;
    out.push_sql(", current_epoch = max(coalesce(current_epoch, ");
    out.push_bind_param::<BigInt, _>(this.max_epoch_num)?;
    out.push_sql("), ");
    out.push_bind_param::<BigInt, _>(this.max_epoch_num)?;
    // Deleted models too (see `PgTouchImported`).
    out.push_sql(") WHERE id = ");
    out.push_bind_param::<BigInt, _>(this.id)?;
    out.push_sql(" RETURNING epoch_seq");
});

/// SQLite: the `epoch_batches` row of the transaction for model `id`,
/// numbered with the `epoch_seq` that [`SqliteTouchModel`] just bumped
/// (under the same write lock).
pub(super) struct SqliteInsertBatch<'a> {
    pub id: &'a i64,
    /// The epoch_nums inserted, ascending, comma-separated.
    pub epoch_nums: &'a String,
}

prepared_statement!(SqliteInsertBatch on Sqlite, |this, out| {
    out.push_sql("INSERT INTO epoch_batches (model_id, seq, epoch_nums) SELECT id, epoch_seq, ");
    out.push_bind_param::<Text, _>(this.epoch_nums)?;
    out.push_sql(" FROM models WHERE id = ");
    out.push_bind_param::<BigInt, _>(this.id)?;
});

/// PostgreSQL: the whole epoch insert of a small batch as one statement,
/// run outside any transaction (the statement commits on its own), so
/// that a trainer's call costs the writer one round trip instead of six
/// (BEGIN, insert, summaries read, summaries merge, models touch, COMMIT).
///
/// The data-modifying CTEs, in the order they take effect:
/// - `locked`: the models of the batch, locked in id order (the one lock
///   order of every epoch writer) and read after their locks, so a sweep
///   or a delete racing with the insert is seen;
/// - `live`: whether every model is still live. If one was deleted or
///   purged since its id was cached, nothing at all is written (the
///   statement is all or nothing like the transaction it replaces): the
///   caller drops the stale ids and tries again. `ins` reads it through an
///   uncorrelated subquery, which runs first, so all the model locks are
///   held before the first epoch row is written;
/// - `ins`: the new epochs, `ON CONFLICT DO NOTHING` (racing writers skip
///   instead of failing), returning the keys it stored;
/// - `agg`: per (model, metric), over the stored epochs only (so counts
///   add up exactly): how many carry it, its value at the highest of them,
///   and its best non-NaN value each way with the lowest epoch reaching it
///   (the rules of `summaries.rs`; in PostgreSQL NaN equals NaN and is
///   above every number, hence `<> 'NaN'` to leave it out);
/// - `latest`, `best`: merged into `metric_latest` and `metric_summaries`
///   with the same `ON CONFLICT` merges as the multi-statement path; the
///   summary rows that improve on nothing stored are left out first (a
///   conflicting insert that changes nothing still costs a speculative
///   insertion and a row lock). The stored rows are read from the
///   statement's snapshot, which may predate a commit it waited for, but
///   summaries only ever improve: what does not beat an older value cannot
///   beat a newer one, and what passes is settled by the merge;
/// - `touched`, `revived`, `batched`: the models touched as in
///   [`PgTouchModels`], for the epochs actually stored.
///
/// Returns one row: whether every model was live, the locked ids, the
/// stored keys (parallel arrays, in key order), and the touched models
/// with their new `epoch_seq` and whether their run was revived (parallel
/// arrays, in id order).
pub(super) struct PgStoreEpochs<'a> {
    /// The distinct model ids of the batch, ascending.
    pub model_ids: &'a [i64],
    /// The epoch rows, in (model_id, epoch_num) order, without repeats.
    pub epochs: EpochArrays<'a>,
    /// Per (epoch, metric) value of the rows above.
    pub value_model_ids: &'a [i64],
    pub value_epoch_nums: &'a [i64],
    pub value_names: &'a [&'a str],
    pub values: &'a [f64],
    pub now: i64,
}

impl Query for PgStoreEpochs<'_> {
    type SqlType = (
        diesel::sql_types::Bool,
        Array<BigInt>,
        Array<BigInt>,
        Array<BigInt>,
        Array<BigInt>,
        Array<BigInt>,
        Array<diesel::sql_types::Bool>,
    );
}

prepared_statement!(PgStoreEpochs on Pg, |this, out| {
    out.push_sql(
        "WITH locked AS MATERIALIZED (SELECT id, status FROM models WHERE deleted_at IS NULL AND id = ANY(",
    );
    out.push_bind_param::<Array<BigInt>, _>(&this.model_ids)?;
    out.push_sql(") ORDER BY id FOR UPDATE), live AS (SELECT count(*) = cardinality(");
    out.push_bind_param::<Array<BigInt>, _>(&this.model_ids)?;
    out.push_sql(
        ") AS all_live FROM locked), \
         ins AS (INSERT INTO epochs (model_id, epoch_num, metrics, steps_per_epoch, validation_steps_per_epoch, recorded_at) \
         SELECT u.model_id, u.epoch_num, u.metrics, u.steps, u.validation_steps, ",
    );
    out.push_bind_param::<BigInt, _>(&this.now)?;
    out.push_sql(" FROM unnest(");
    this.epochs.push_unnest(&mut out)?;
    out.push_sql(
        ") AS u(model_id, epoch_num, metrics, steps, validation_steps) \
         WHERE (SELECT all_live FROM live) \
         ON CONFLICT (model_id, epoch_num) DO NOTHING \
         RETURNING model_id, epoch_num), \
         vals AS (SELECT v.model_id, v.metric_name, v.epoch_num, v.value FROM unnest(",
    );
    out.push_bind_param::<Array<BigInt>, _>(&this.value_model_ids)?;
    out.push_sql(", ");
    out.push_bind_param::<Array<BigInt>, _>(&this.value_epoch_nums)?;
    out.push_sql(", ");
    out.push_bind_param::<Array<Text>, _>(&this.value_names)?;
    out.push_sql(", ");
    out.push_bind_param::<Array<Double>, _>(&this.values)?;
    out.push_sql(concat!(
        ") AS v(model_id, epoch_num, metric_name, value) \
         JOIN ins ON ins.model_id = v.model_id AND ins.epoch_num = v.epoch_num), \
         agg AS (SELECT model_id, metric_name, count(*) AS value_count, max(epoch_num) AS last_epoch_num, \
         (array_agg(value ORDER BY epoch_num DESC))[1] AS last_value, \
         (array_agg(value ORDER BY value DESC, epoch_num) FILTER (WHERE value <> 'NaN'))[1] AS max_value, \
         (array_agg(epoch_num ORDER BY value DESC, epoch_num) FILTER (WHERE value <> 'NaN'))[1] AS max_epoch_num, \
         (array_agg(value ORDER BY value, epoch_num) FILTER (WHERE value <> 'NaN'))[1] AS min_value, \
         (array_agg(epoch_num ORDER BY value, epoch_num) FILTER (WHERE value <> 'NaN'))[1] AS min_epoch_num \
         FROM vals GROUP BY model_id, metric_name), \
         latest AS (INSERT INTO metric_latest (model_id, metric_name, value_count, last_epoch_num, last_value) \
         SELECT model_id, metric_name, value_count, last_epoch_num, NULLIF(last_value, 'NaN') \
         FROM agg ORDER BY model_id, metric_name",
        merge_latest!("GREATEST"),
        "), best AS (INSERT INTO metric_summaries (model_id, metric_name, max_value, max_epoch_num, min_value, min_epoch_num) \
         SELECT agg.model_id, agg.metric_name, agg.max_value, agg.max_epoch_num, agg.min_value, agg.min_epoch_num \
         FROM agg LEFT JOIN metric_summaries s ON s.model_id = agg.model_id AND s.metric_name = agg.metric_name \
         WHERE agg.max_value IS NOT NULL AND (s.model_id IS NULL \
         OR agg.max_value > s.max_value OR (agg.max_value = s.max_value AND agg.max_epoch_num < s.max_epoch_num) \
         OR agg.min_value < s.min_value OR (agg.min_value = s.min_value AND agg.min_epoch_num < s.min_epoch_num)) \
         ORDER BY agg.model_id, agg.metric_name",
        merge_summary!(),
        "), batch AS (SELECT model_id AS id, count(*) AS n, max(epoch_num) AS max_epoch_num, \
         string_agg(epoch_num::text, ',' ORDER BY epoch_num) AS nums FROM ins GROUP BY model_id), \
         now AS (SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT AS micros), \
         touched AS (UPDATE models SET last_modified_at = "
    ));
    out.push_bind_param::<BigInt, _>(&this.now)?;
    out.push_sql(concat!(
        touch_set!(),
        " FROM locked JOIN batch ON batch.id = locked.id, now ",
        touch_returning!(),
        " SELECT (SELECT all_live FROM live), \
         COALESCE((SELECT array_agg(id ORDER BY id) FROM locked), '{}'), \
         COALESCE((SELECT array_agg(model_id ORDER BY model_id, epoch_num) FROM ins), '{}'), \
         COALESCE((SELECT array_agg(epoch_num ORDER BY model_id, epoch_num) FROM ins), '{}'), \
         COALESCE((SELECT array_agg(id ORDER BY id) FROM touched), '{}'), \
         COALESCE((SELECT array_agg(epoch_seq ORDER BY id) FROM touched), '{}'), \
         COALESCE((SELECT array_agg(old_status = 'CRASHED' ORDER BY id) FROM touched), '{}')"
    ));
});

/// PostgreSQL: locks the models of a large batch in id order before its
/// epochs are written, the lock order of [`PgStoreEpochs`] too: every
/// epoch writer takes the model locks first, then the epochs' keys, so a
/// COPY batch and a one-statement batch carrying the same epochs cannot
/// wait on each other in opposite orders.
pub(super) struct PgLockModels<'a> {
    /// Ascending.
    pub ids: &'a [i64],
}

prepared_statement!(PgLockModels on Pg, |this, out| {
    out.push_sql("SELECT id FROM models WHERE id = ANY(");
    out.push_bind_param::<Array<BigInt>, _>(&this.ids)?;
    out.push_sql(") ORDER BY id FOR UPDATE");
});
