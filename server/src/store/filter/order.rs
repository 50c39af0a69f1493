//! `order_by` of ListModels as SQL: the sort key of a parsed [`OrderBy`]
//! (a model column, or a correlated lookup of one summary row by its
//! primary key), the `ORDER BY` with missing values last in both
//! directions and the name as tiebreak, and the keyset condition that
//! continues after the last row of a page. Metric names are bound values.

use diesel::sql_types::{BigInt, Double, Nullable, Text};
use mlmeta_proto::where_lang::{Field, MetricFn, OrderBy};
use serde::{Deserialize, Serialize};

use super::Dialect;
use super::sql::{SqlFragment, WhereSql};

/// The type of a sort key (which decides the column it is selected in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Text,
    Int,
    Float,
}

/// A sort key's value as a page token carries it; a double as its bits
/// (JSON has no infinities).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum SortValue {
    T(String),
    I(i64),
    F(u64),
}

impl SortValue {
    /// Whether the key of a listing of `kind` can be this value.
    pub(crate) fn fits(&self, kind: KeyKind) -> bool {
        match self {
            Self::T(text) => kind == KeyKind::Text && !text.contains('\0') && text.len() <= 1024,
            Self::I(_) => kind == KeyKind::Int,
            Self::F(bits) => kind == KeyKind::Float && !f64::from_bits(*bits).is_nan(),
        }
    }
}

/// A compiled `order_by`.
#[derive(Debug, Clone)]
pub(crate) struct SortSql {
    key: SqlFragment<Nullable<Text>>,
    pub(crate) kind: KeyKind,
    descending: bool,
    dialect: Dialect,
}

/// The key of `order`; `None` for a field `order_by` does not accept
/// (the parser rejects those).
pub(crate) fn sort_sql(order: &OrderBy, dialect: Dialect) -> Option<SortSql> {
    let mut key = SqlFragment::default();
    let kind = match &order.field {
        Field::Name => text_column(&mut key, "models.name"),
        Field::Class => text_column(&mut key, "models.model_class_name"),
        Field::Status => text_column(&mut key, "models.status"),
        Field::CreatedAt => int_column(&mut key, "models.created_at"),
        Field::StartedAt => int_column(&mut key, "models.started_at"),
        Field::EndedAt => int_column(&mut key, "models.ended_at"),
        Field::LastHeartbeatAt => int_column(&mut key, "models.last_heartbeat_at"),
        Field::Epochs => int_column(&mut key, "models.epoch_count"),
        Field::CurrentEpoch => int_column(&mut key, "models.current_epoch"),
        Field::Metric { function, metric } => {
            // One primary-key lookup per model; no row (the model lacks the
            // metric, or every value is NaN for max/min) and a NaN last
            // value (stored as NULL) are NULL, sorted last.
            let (column, table, kind) = match function {
                MetricFn::Max => ("(SELECT s.max_value FROM ", "metric_summaries", KeyKind::Float),
                MetricFn::Min => ("(SELECT s.min_value FROM ", "metric_summaries", KeyKind::Float),
                MetricFn::Last => ("(SELECT s.last_value FROM ", "metric_latest", KeyKind::Float),
                MetricFn::Count => ("(SELECT s.value_count FROM ", "metric_latest", KeyKind::Int),
            };
            key.sql(column)
                .sql(table)
                .sql(" s WHERE s.model_id = models.id AND s.metric_name = ")
                .text(metric.as_str())
                .sql(")");
            kind
        }
        _ => return None,
    };
    Some(SortSql {
        key,
        kind,
        descending: order.descending,
        dialect,
    })
}

fn text_column(key: &mut SqlFragment<Nullable<Text>>, column: &'static str) -> KeyKind {
    key.sql(column);
    KeyKind::Text
}

fn int_column(key: &mut SqlFragment<Nullable<Text>>, column: &'static str) -> KeyKind {
    key.sql(column);
    KeyKind::Int
}

impl SortSql {
    /// The key, or a typed NULL when the key is of another kind: selected
    /// as three columns so that every kind loads into one row type.
    fn selected<ST>(&self, kind: KeyKind, null: &'static str) -> SqlFragment<ST> {
        let mut out = SqlFragment::default();
        if self.kind == kind {
            out.push(&self.key);
        } else {
            out.sql(null);
        }
        out
    }

    pub(crate) fn text_key(&self) -> SqlFragment<Nullable<Text>> {
        self.selected(KeyKind::Text, "CAST(NULL AS TEXT)")
    }

    pub(crate) fn int_key(&self) -> SqlFragment<Nullable<BigInt>> {
        self.selected(KeyKind::Int, "CAST(NULL AS BIGINT)")
    }

    pub(crate) fn float_key(&self) -> SqlFragment<Nullable<Double>> {
        self.selected(KeyKind::Float, "CAST(NULL AS DOUBLE PRECISION)")
    }

    /// The key, with byte-order collation for strings on PostgreSQL (the
    /// order SQLite and the clients use).
    fn collated(&self, out: &mut WhereSql) {
        out.sql("(").push(&self.key).sql(")");
        if self.kind == KeyKind::Text && self.dialect == Dialect::Postgres {
            out.sql(" COLLATE \"C\"");
        }
    }

    /// `ORDER BY` text: the key (missing last), then the name.
    pub(crate) fn order(&self) -> SqlFragment<Text> {
        let mut out = WhereSql::default();
        self.collated(&mut out);
        out.sql(if self.descending {
            " DESC NULLS LAST, models.name ASC"
        } else {
            " ASC NULLS LAST, models.name ASC"
        });
        let mut typed = SqlFragment::default();
        typed.push(&out);
        typed
    }

    /// The rows after the row with key `value` (`None`: missing) and name
    /// `name` in this order.
    pub(crate) fn after(&self, value: Option<&SortValue>, name: &str) -> WhereSql {
        let mut out = WhereSql::default();
        let Some(value) = value else {
            out.sql("(").push(&self.key).sql(" IS NULL AND models.name > ");
            out.text(name).sql(")");
            return out;
        };
        let beyond = if self.descending { " < " } else { " > " };
        out.sql("(");
        self.collated(&mut out);
        out.sql(beyond);
        bind(&mut out, value);
        out.sql(" OR (");
        self.collated(&mut out);
        out.sql(" = ");
        bind(&mut out, value);
        out.sql(" AND models.name > ").text(name).sql(") OR ");
        out.push(&self.key).sql(" IS NULL)");
        out
    }
}

fn bind(out: &mut WhereSql, value: &SortValue) {
    match value {
        SortValue::T(text) => out.text(text.as_str()),
        SortValue::I(int) => out.big_int(*int),
        SortValue::F(bits) => out.double(f64::from_bits(*bits)),
    };
}
