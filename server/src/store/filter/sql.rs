//! [`SqlFragment`]: an SQL expression assembled from fixed fragments and
//! bound values only. It has no way to hold SQL text that is not a
//! `&'static str` of this crate, so nothing typed into `where`,
//! `order_by` or `columns` can become SQL. [`WhereSql`] is the boolean
//! one.

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping, is_aggregate};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Bool, Double, HasSqlType, SqlType, Text};

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

/// An SQL expression of type `ST` over the `models` table, usable in any
/// query that has the table in scope.
#[derive(Debug)]
pub(crate) struct SqlFragment<ST> {
    parts: Vec<Part>,
    sql_type: PhantomData<ST>,
}

/// A compiled `where` expression, usable as a diesel filter.
pub(crate) type WhereSql = SqlFragment<Bool>;

impl<ST> Default for SqlFragment<ST> {
    fn default() -> Self {
        Self {
            parts: Vec::new(),
            sql_type: PhantomData,
        }
    }
}

impl<ST> Clone for SqlFragment<ST> {
    fn clone(&self) -> Self {
        Self {
            parts: self.parts.clone(),
            sql_type: PhantomData,
        }
    }
}

impl<ST> SqlFragment<ST> {
    /// Appends the parts of `other` (of any type).
    pub(super) fn push<T>(&mut self, other: &SqlFragment<T>) -> &mut Self {
        self.parts.extend(other.parts.iter().cloned());
        self
    }

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

impl<ST: SqlType + diesel::sql_types::SingleValue> Expression for SqlFragment<ST> {
    type SqlType = ST;
}

impl<QS, ST: SqlType + diesel::sql_types::SingleValue> AppearsOnTable<QS> for SqlFragment<ST> {}

impl<QS, ST: SqlType + diesel::sql_types::SingleValue> SelectableExpression<QS> for SqlFragment<ST> {}

impl<ST> ValidGrouping<()> for SqlFragment<ST> {
    type IsAggregate = is_aggregate::Never;
}

impl<ST> QueryId for SqlFragment<ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB, ST> QueryFragment<DB> for SqlFragment<ST>
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
