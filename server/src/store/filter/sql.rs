//! [`WhereSql`]: a boolean SQL expression assembled from fixed fragments
//! and bound values only. It has no way to hold SQL text that is not a
//! `&'static str` of this crate, so nothing typed into `where` can become
//! SQL.

use diesel::backend::Backend;
use diesel::expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping, is_aggregate};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Bool, Double, HasSqlType, Text};

/// One piece of the expression.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    /// SQL text of the fixed grammar.
    Sql(&'static str),
    /// A bound string.
    Text(String),
    /// A bound double.
    Double(f64),
    /// A bound 64-bit integer.
    BigInt(i64),
}

/// A compiled `where` expression, usable as a diesel filter on any query
/// that has the `models` table in scope.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct WhereSql {
    parts: Vec<Part>,
}

impl WhereSql {
    pub(super) fn sql(&mut self, sql: &'static str) -> &mut Self {
        self.parts.push(Part::Sql(sql));
        self
    }

    pub(super) fn text(&mut self, value: impl Into<String>) -> &mut Self {
        self.parts.push(Part::Text(value.into()));
        self
    }

    pub(super) fn double(&mut self, value: f64) -> &mut Self {
        self.parts.push(Part::Double(value));
        self
    }

    pub(super) fn big_int(&mut self, value: i64) -> &mut Self {
        self.parts.push(Part::BigInt(value));
        self
    }

    /// The SQL text with `?` for each bound value, and the number of bound
    /// values (for tests).
    #[cfg(test)]
    pub(super) fn text_and_binds(&self) -> (String, usize) {
        let mut text = String::new();
        let mut binds = 0;
        for part in &self.parts {
            match part {
                Part::Sql(sql) => text.push_str(sql),
                _ => {
                    text.push('?');
                    binds += 1;
                }
            }
        }
        (text, binds)
    }
}

impl Expression for WhereSql {
    type SqlType = Bool;
}

impl<QS> AppearsOnTable<QS> for WhereSql {}

impl<QS> SelectableExpression<QS> for WhereSql {}

impl ValidGrouping<()> for WhereSql {
    type IsAggregate = is_aggregate::Never;
}

impl QueryId for WhereSql {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB> QueryFragment<DB> for WhereSql
where
    DB: Backend + HasSqlType<Text> + HasSqlType<Double> + HasSqlType<BigInt>,
    String: ToSql<Text, DB>,
    f64: ToSql<Double, DB>,
    i64: ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> diesel::QueryResult<()> {
        for part in &self.parts {
            match part {
                Part::Sql(sql) => out.push_sql(sql),
                Part::Text(value) => out.push_bind_param::<Text, String>(value)?,
                Part::Double(value) => out.push_bind_param::<Double, f64>(value)?,
                Part::BigInt(value) => out.push_bind_param::<BigInt, i64>(value)?,
            }
        }
        Ok(())
    }
}
