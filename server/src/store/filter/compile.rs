//! Compiles a parsed `where` expression ([`Expr`]) to a [`WhereSql`] over
//! the `models` table: model columns directly, components and projects by
//! correlated subqueries on their ids, JSON values through the typed index
//! (`json_values`), tags through `tags`, metrics through
//! `metric_summaries`. Those are written either as `id IN (uncorrelated
//! subquery)`, which the database answers from an index once per query,
//! or as correlated `EXISTS`, one index probe per model looked at
//! ([`Membership`]). Every predicate yields TRUE or FALSE, never NULL, so
//! that `not` is the exact complement.

use mlmeta_proto::where_lang::{
    CmpOp, Expr, Field, JsonSource, LikePattern, MetricFn, Number, Predicate, Value,
};

use super::index::{Owner, kind, stored_path};
use super::sql::WhereSql;
use crate::error::{Error, Result};
use crate::store::records::RecordKind;

/// Which SQL dialect to write (string ordering and `like` differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// SQLite: byte-order strings already; `GLOB` for case-sensitive `like`.
    Sqlite,
    /// PostgreSQL: `COLLATE "C"` for byte-order string comparisons.
    Postgres,
}

fn op_sql(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => " = ",
        CmpOp::Ne => " <> ",
        CmpOp::Lt => " < ",
        CmpOp::Le => " <= ",
        CmpOp::Gt => " > ",
        CmpOp::Ge => " >= ",
    }
}

/// How a test of a JSON value, tag or metric summary joins the model.
/// Both forms select the same models (ids are never NULL, so `NOT IN` is
/// as exact as `NOT EXISTS`); they differ in cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Membership {
    /// `models.id IN (SELECT ...)`: the subquery's matches are read once
    /// per query, whatever the number of models looked at. Right when most
    /// models are looked at (listings, rankings that must go deep).
    Uncorrelated,
    /// `EXISTS (SELECT ... WHERE owner = models.id ...)`: one index probe
    /// per model looked at. Right when a query looks at a few hundred
    /// models at most (the head of a ranking index).
    Correlated,
}

struct Compiler {
    dialect: Dialect,
    membership: Membership,
    now_micros: i64,
    out: WhereSql,
}

/// Compiles `expr` for `dialect` with tests joined by `membership`;
/// `now()` is `now_micros`.
pub(crate) fn compile(
    expr: &Expr,
    dialect: Dialect,
    membership: Membership,
    now_micros: i64,
) -> Result<WhereSql> {
    let mut compiler = Compiler {
        dialect,
        membership,
        now_micros,
        out: WhereSql::default(),
    };
    compiler.expr(expr)?;
    Ok(compiler.out)
}

impl Compiler {
    fn expr(&mut self, expr: &Expr) -> Result<()> {
        match expr {
            Expr::Or(parts) => self.joined(parts, " OR "),
            Expr::And(parts) => self.joined(parts, " AND "),
            Expr::Not(inner) => {
                self.out.sql("(NOT ");
                self.expr(inner)?;
                self.out.sql(")");
                Ok(())
            }
            Expr::Pred(pred) => self.predicate(pred),
        }
    }

    fn joined(&mut self, parts: &[Expr], separator: &'static str) -> Result<()> {
        self.out.sql("(");
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                self.out.sql(separator);
            }
            self.expr(part)?;
        }
        self.out.sql(")");
        Ok(())
    }

    fn predicate(&mut self, pred: &Predicate) -> Result<()> {
        match pred {
            Predicate::Compare { field, op, value } => self.compare(field, *op, value),
            Predicate::In {
                field,
                negated,
                values,
            } => {
                // `in`: any `=`; `not in`: every `!=` (a missing value
                // matches neither, like every comparison).
                let (op, separator) = if *negated {
                    (CmpOp::Ne, " AND ")
                } else {
                    (CmpOp::Eq, " OR ")
                };
                self.out.sql("(");
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        self.out.sql(separator);
                    }
                    self.compare(field, op, value)?;
                }
                self.out.sql(")");
                Ok(())
            }
            Predicate::Like { field, pattern } => self.like(field, pattern),
            Predicate::Exists { field } => self.exists(field),
        }
    }

    /// The SQL of a field with one value per model (a column, or a scalar
    /// subquery of the model's project or components).
    fn scalar(field: &Field) -> Option<&'static str> {
        Some(match field {
            Field::Name => "models.name",
            Field::Class => "models.model_class_name",
            Field::Status => "models.status",
            Field::CreatedAt => "models.created_at",
            Field::StartedAt => "models.started_at",
            Field::EndedAt => "models.ended_at",
            Field::LastHeartbeatAt => "models.last_heartbeat_at",
            Field::Epochs => "models.epoch_count",
            Field::CurrentEpoch => "models.current_epoch",
            Field::Project => "(SELECT fp.name FROM projects fp WHERE fp.id = models.project_id)",
            Field::Datablob => "(SELECT fc.name FROM components fc WHERE fc.id = models.datablob_id)",
            Field::DatablobGroup => {
                "(SELECT fc.group_name FROM components fc WHERE fc.id = models.datablob_id)"
            }
            Field::Template => "(SELECT fc.name FROM components fc WHERE fc.id = models.model_template_id)",
            Field::TemplateGroup => {
                "(SELECT fc.group_name FROM components fc WHERE fc.id = models.model_template_id)"
            }
            Field::Json { .. } | Field::Tag(_) | Field::Metric { .. } => return None,
        })
    }

    /// Strings compare by bytes on both backends (the in-memory order).
    fn collate(&mut self, op: CmpOp) {
        if self.dialect == Dialect::Postgres && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
            self.out.sql(" COLLATE \"C\"");
        }
    }

    /// A field of the model's datablob or template: the model's id column
    /// and the component's column. Every model has exactly one of each, so
    /// a test of the field is a test of which components match, written
    /// as `<id> IN (components matching)`: one index read per query
    /// instead of a lookup per model.
    fn component(field: &Field) -> Option<(&'static str, &'static str)> {
        Some(match field {
            Field::Datablob => ("models.datablob_id", "fc.name"),
            Field::DatablobGroup => ("models.datablob_id", "fc.group_name"),
            Field::Template => ("models.model_template_id", "fc.name"),
            Field::TemplateGroup => ("models.model_template_id", "fc.group_name"),
            _ => return None,
        })
    }

    fn component_open(&mut self, id: &'static str, column: &'static str) {
        self.out
            .sql(id)
            .sql(" IN (SELECT fc.id FROM components fc WHERE ")
            .sql(column);
    }

    fn compare(&mut self, field: &Field, op: CmpOp, value: &Value) -> Result<()> {
        if let (Some((id, column)), Value::Str(text)) = (Self::component(field), value) {
            self.component_open(id, column);
            self.collate(op);
            self.out.sql(op_sql(op)).text(text.as_str()).sql(")");
            return Ok(());
        }
        if let Some(column) = Self::scalar(field) {
            self.out.sql("(").sql(column).sql(" IS NOT NULL AND ").sql(column);
            match value {
                Value::Str(text) => {
                    self.collate(op);
                    self.out.sql(op_sql(op)).text(text.as_str());
                }
                Value::Status(status) => {
                    self.out.sql(op_sql(op)).text(*status);
                }
                Value::Time(time) => {
                    self.out.sql(op_sql(op)).big_int(time.resolve(self.now_micros));
                }
                Value::Number(number) => self.number_against(op, number),
                Value::Bool(_) => {
                    return Err(Error::invalid(
                        "filter.where",
                        "booleans compare only with JSON values",
                    ));
                }
            }
            self.out.sql(")");
            return Ok(());
        }
        match field {
            Field::Json { source, path } => {
                self.json_open(*source, path);
                match value {
                    Value::Str(text) => {
                        self.out
                            .sql(" AND v.kind = '")
                            .sql(kind::STRING)
                            .sql("' AND v.text_value");
                        self.collate(op);
                        self.out.sql(op_sql(op)).text(text.as_str());
                    }
                    Value::Bool(b) => {
                        self.out
                            .sql(" AND v.kind = '")
                            .sql(kind::BOOLEAN)
                            .sql("' AND v.int_value")
                            .sql(op_sql(op))
                            .big_int(i64::from(*b));
                    }
                    Value::Number(number) => {
                        self.out.sql(" AND v.kind = '").sql(kind::NUMBER).sql("' AND ");
                        match number.int {
                            Some(int) => {
                                // A range on `num` that every match is in
                                // (rounding to a double is monotone), so
                                // that the index on (owner, path, kind,
                                // num) narrows the rows before the exact
                                // test below reads them.
                                if let Some(bound) = implied_num_bound(op) {
                                    self.out.sql("v.num").sql(bound).double(number.float).sql(" AND ");
                                }
                                // Exact when both are 64-bit integers, as
                                // doubles otherwise.
                                self.out
                                    .sql("((v.int_value IS NOT NULL AND v.int_value")
                                    .sql(op_sql(op))
                                    .big_int(int)
                                    .sql(") OR (v.int_value IS NULL AND v.num")
                                    .sql(op_sql(op))
                                    .double(number.float)
                                    .sql("))");
                            }
                            None => {
                                self.out.sql("v.num").sql(op_sql(op)).double(number.float);
                            }
                        }
                    }
                    Value::Time(_) | Value::Status(_) => {
                        return Err(Error::invalid(
                            "filter.where",
                            "JSON values compare with numbers, strings and booleans",
                        ));
                    }
                }
                self.out.sql(")");
            }
            Field::Tag(key) => {
                let Value::Str(text) = value else {
                    return Err(Error::invalid("filter.where", "tags hold strings"));
                };
                self.tag_open(key);
                self.out.sql(" AND t.value");
                self.collate(op);
                self.out.sql(op_sql(op)).text(text.as_str()).sql(")");
            }
            Field::Metric { function, metric } => {
                let Value::Number(number) = value else {
                    return Err(Error::invalid("filter.where", "metric summaries are numbers"));
                };
                self.metric_open(*function, metric);
                self.out.sql(" AND ").sql(metric_column(*function));
                if *function == MetricFn::Count {
                    self.number_against(op, number);
                } else {
                    self.out.sql(op_sql(op)).double(number.float);
                }
                self.out.sql(")");
            }
            _ => return Err(Error::Corrupt("where: a scalar field fell through".to_owned())),
        }
        Ok(())
    }

    /// `op number` after an integer column.
    fn number_against(&mut self, op: CmpOp, number: &Number) {
        self.out.sql(op_sql(op));
        match number.int {
            Some(int) => self.out.big_int(int),
            None => self.out.double(number.float),
        };
    }

    fn like(&mut self, field: &Field, pattern: &LikePattern) -> Result<()> {
        let (operator, bound) = match self.dialect {
            Dialect::Sqlite => (" GLOB ", pattern.to_glob()),
            Dialect::Postgres => (" LIKE ", pattern.to_sql_like()),
        };
        let escape = match self.dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => " ESCAPE '\\'",
        };
        if let Some((id, column)) = Self::component(field) {
            self.component_open(id, column);
            self.out.sql(operator).text(bound).sql(escape).sql(")");
            return Ok(());
        }
        if let Some(column) = Self::scalar(field) {
            self.out
                .sql("(")
                .sql(column)
                .sql(" IS NOT NULL AND ")
                .sql(column)
                .sql(operator)
                .text(bound)
                .sql(escape)
                .sql(")");
            return Ok(());
        }
        match field {
            Field::Json { source, path } => {
                self.json_open(*source, path);
                self.out
                    .sql(" AND v.kind = '")
                    .sql(kind::STRING)
                    .sql("' AND v.text_value")
                    .sql(operator)
                    .text(bound)
                    .sql(escape)
                    .sql(")");
            }
            Field::Tag(key) => {
                self.tag_open(key);
                self.out
                    .sql(" AND t.value")
                    .sql(operator)
                    .text(bound)
                    .sql(escape)
                    .sql(")");
            }
            _ => {
                return Err(Error::invalid(
                    "filter.where",
                    "'like' applies to string fields only",
                ));
            }
        }
        Ok(())
    }

    fn exists(&mut self, field: &Field) -> Result<()> {
        if let Some(column) = Self::scalar(field) {
            self.out.sql("(").sql(column).sql(" IS NOT NULL)");
            return Ok(());
        }
        match field {
            Field::Json { source, path } => self.json_open(*source, path),
            Field::Tag(key) => self.tag_open(key),
            Field::Metric { function, metric } => self.metric_open(*function, metric),
            _ => return Err(Error::Corrupt("where: a scalar field fell through".to_owned())),
        }
        self.out.sql(")");
        Ok(())
    }

    /// The opening of a test against rows of `table` (alias `alias`, the
    /// model's id in `owner_column`) for the model's id `model_id`:
    /// `<model_id> IN (SELECT <owner_column> FROM <table> WHERE ` or
    /// `EXISTS (SELECT 1 FROM <table> WHERE <owner_column> = <model_id> AND `
    /// (the caller adds conditions and the closing parenthesis).
    fn member_open(&mut self, model_id: &'static str, table: &'static str, owner_column: &'static str) {
        match self.membership {
            Membership::Uncorrelated => self
                .out
                .sql(model_id)
                .sql(" IN (SELECT ")
                .sql(owner_column)
                .sql(" FROM ")
                .sql(table)
                .sql(" WHERE "),
            Membership::Correlated => self
                .out
                .sql("EXISTS (SELECT 1 FROM ")
                .sql(table)
                .sql(" WHERE ")
                .sql(owner_column)
                .sql(" = ")
                .sql(model_id)
                .sql(" AND "),
        };
    }

    /// A test of the JSON value at `path` of `source` (the caller adds
    /// conditions on `v` and the closing parenthesis).
    fn json_open(&mut self, source: JsonSource, path: &[String]) {
        let (owner, owner_id) = match source {
            JsonSource::Datablob => (Owner::Component, "models.datablob_id"),
            JsonSource::Template => (Owner::Component, "models.model_template_id"),
            JsonSource::Params => (Owner::Model, "models.id"),
        };
        self.member_open(owner_id, "json_values v", "v.owner_id");
        self.out
            .sql("v.owner = ")
            .text(owner.as_column())
            .sql(" AND v.path = ")
            .text(stored_path(path));
    }

    /// A test of the model's tag `key` (the caller adds conditions on `t`
    /// and the closing parenthesis).
    fn tag_open(&mut self, key: &str) {
        self.member_open("models.id", "tags t", "t.target_id");
        self.out
            .sql("t.target_kind = ")
            .text(RecordKind::Model.as_column())
            .sql(" AND t.key = ")
            .text(key);
    }

    /// A test of the model's summary of `metric` (the caller adds
    /// conditions on `s` and the closing parenthesis). `max`/`min` read
    /// `metric_summaries`, which has a row once a non-NaN value came;
    /// `last`/`count` read `metric_latest`, which has one once any value
    /// came (NaN included).
    fn metric_open(&mut self, function: MetricFn, metric: &str) {
        let table = match function {
            MetricFn::Max | MetricFn::Min => "metric_summaries s",
            MetricFn::Last | MetricFn::Count => "metric_latest s",
        };
        self.member_open("models.id", table, "s.model_id");
        self.out.sql("s.metric_name = ").text(metric);
    }
}

/// The comparison of `num` with an integer literal's double that every
/// value satisfying `op` satisfies too (`None` for `!=`).
fn implied_num_bound(op: CmpOp) -> Option<&'static str> {
    match op {
        CmpOp::Eq => Some(" = "),
        CmpOp::Lt | CmpOp::Le => Some(" <= "),
        CmpOp::Gt | CmpOp::Ge => Some(" >= "),
        CmpOp::Ne => None,
    }
}

/// The summary column of `function` (`last_value` is NULL for NaN, which
/// no comparison matches).
fn metric_column(function: MetricFn) -> &'static str {
    match function {
        MetricFn::Max => "s.max_value",
        MetricFn::Min => "s.min_value",
        MetricFn::Last => "s.last_value",
        MetricFn::Count => "s.value_count",
    }
}
