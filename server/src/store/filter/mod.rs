//! The filter language on the server: the typed index of JSON values
//! (`index`), and the compiler of parsed `where` expressions
//! (`mlmeta_proto::where_lang`) to bound SQL (`compile`, `sql`).

mod compile;
pub(crate) mod index;
pub(crate) mod order;
mod sql;

pub(crate) use compile::{Dialect, Membership};
pub(crate) use sql::WhereSql;

use crate::db::DbConnection;
use crate::error::{Error, Result};

/// The SQL of `where` expression `text` for the backend of `conn`, its
/// tests joined by `membership`, with `now()` the current time.
pub(crate) fn compile_where(text: &str, conn: &DbConnection, membership: Membership) -> Result<WhereSql> {
    let expr =
        mlmeta_proto::where_lang::parse(text).map_err(|error| Error::invalid("filter.where", error))?;
    compile::compile(&expr, dialect(conn), membership, super::records::now_micros())
}

/// The SQL dialect of `conn`'s backend.
pub(crate) fn dialect(conn: &DbConnection) -> Dialect {
    match conn {
        DbConnection::Sqlite(_) => Dialect::Sqlite,
        DbConnection::Postgres(_) => Dialect::Postgres,
    }
}

#[cfg(test)]
mod tests;
