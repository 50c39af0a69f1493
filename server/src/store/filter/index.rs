//! The typed index of the filter language (`json_values`): every key path
//! of a datablob's or template's hyperparameters and of a model's params,
//! one row each with its JSON type and value, written in the transaction
//! that puts the record (records are immutable, so rows are only ever
//! added with their record and removed when it is purged).

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{components, json_values as jv, json_values_pending as pending, models};
use crate::error::Result;
use crate::store::{MAX_BINDS_PER_LIST, on_backend};
use mlmeta_proto::where_lang::path_key;
use sha2::{Digest, Sha256};

/// The `path` column of a key path: the SHA-256 (hex) of its canonical
/// text, a fixed size whatever the keys (PostgreSQL cannot index a text of
/// more than about 2.7 KB, and keys may be longer).
pub(crate) fn stored_path(path: &[String]) -> String {
    hex::encode(Sha256::digest(path_key(path).as_bytes()))
}

/// Which table `owner_id` is an id of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// `components` (hyperparameters).
    Component,
    /// `models` (params).
    Model,
}

impl Owner {
    pub(crate) fn as_column(self) -> &'static str {
        match self {
            Self::Component => "component",
            Self::Model => "model",
        }
    }
}

/// JSON types as the `kind` column names them.
pub(crate) mod kind {
    pub const NUMBER: &str = "number";
    pub const STRING: &str = "string";
    pub const BOOLEAN: &str = "boolean";
    pub const NULL: &str = "null";
    pub const OBJECT: &str = "object";
    pub const ARRAY: &str = "array";
}

/// One indexed value (a row without its owner).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IndexedValue {
    pub path: String,
    pub kind: &'static str,
    /// Numbers: the value as a double.
    pub num: Option<f64>,
    /// Numbers written as an integer that fits 64 bits; booleans as 0/1.
    pub int_value: Option<i64>,
    /// Strings.
    pub text_value: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = jv)]
#[diesel(treat_none_as_default_value = false)]
struct Row<'a> {
    owner: &'static str,
    owner_id: i64,
    path: &'a str,
    kind: &'static str,
    num: Option<f64>,
    int_value: Option<i64>,
    text_value: Option<&'a str>,
}

/// Every key path below the top of `json` with its value (objects and
/// arrays too, so that `exists` finds them; array elements are keyed by
/// their index). Text that is not JSON has no values.
pub(crate) fn flatten(json: &str) -> Vec<IndexedValue> {
    let mut out = Vec::new();
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(json) {
        children(&value, &mut Vec::new(), &mut out);
    }
    out
}

fn children(value: &serde_json::Value, path: &mut Vec<String>, out: &mut Vec<IndexedValue>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                path.push(key.clone());
                node(child, path, out);
                path.pop();
            }
        }
        serde_json::Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                path.push(index.to_string());
                node(child, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn node(value: &serde_json::Value, path: &mut Vec<String>, out: &mut Vec<IndexedValue>) {
    let mut row = IndexedValue {
        path: stored_path(path),
        kind: kind::NULL,
        num: None,
        int_value: None,
        text_value: None,
    };
    match value {
        serde_json::Value::Null => {}
        serde_json::Value::Bool(b) => {
            row.kind = kind::BOOLEAN;
            row.int_value = Some(i64::from(*b));
        }
        serde_json::Value::Number(number) => {
            row.kind = kind::NUMBER;
            let (num, int_value) = number_parts(number);
            row.num = Some(num);
            row.int_value = int_value;
        }
        serde_json::Value::String(s) => {
            row.kind = kind::STRING;
            // PostgreSQL text cannot hold NUL (JSON can, escaped): such a
            // string is indexed on both backends as a string without a
            // value, so only `exists` finds it (a `where` literal cannot
            // hold NUL anyway).
            row.text_value = Some(s.clone()).filter(|s| !s.contains('\0'));
        }
        serde_json::Value::Array(_) => row.kind = kind::ARRAY,
        serde_json::Value::Object(_) => row.kind = kind::OBJECT,
    }
    out.push(row);
    children(value, path, out);
}

/// A JSON number as a double and, when written as an integer that fits 64
/// bits, exactly (the same rule as number literals of the language).
pub(crate) fn number_parts(number: &serde_json::Number) -> (f64, Option<i64>) {
    let text = number.to_string();
    let integral = !text.contains(['.', 'e', 'E']);
    let float = text.parse::<f64>().unwrap_or(f64::NAN);
    let int = if integral { text.parse::<i64>().ok() } else { None };
    (float, int)
}

/// Indexes the JSON document `json` of record `owner_id`.
pub(crate) fn write(conn: &mut DbConnection, owner: Owner, owner_id: i64, json: &str) -> Result<()> {
    let values = flatten(json);
    let rows: Vec<Row<'_>> = values
        .iter()
        .map(|value| Row {
            owner: owner.as_column(),
            owner_id,
            path: &value.path,
            kind: value.kind,
            num: value.num,
            int_value: value.int_value,
            text_value: value.text_value.as_deref(),
        })
        .collect();
    // Seven binds a row, far below either backend's limit per statement.
    for chunk in rows.chunks(MAX_BINDS_PER_LIST / 8) {
        on_backend!(conn, |c| diesel::insert_into(jv::table)
            .values(chunk)
            .on_conflict_do_nothing()
            .execute(c))?;
    }
    Ok(())
}

/// Removes the index rows of records `ids` (their purge).
pub(crate) fn remove(conn: &mut DbConnection, owner: Owner, ids: &[i64]) -> Result<()> {
    for chunk in ids.chunks(MAX_BINDS_PER_LIST) {
        diesel::delete(
            jv::table
                .filter(jv::owner.eq(owner.as_column()))
                .filter(jv::owner_id.eq_any(chunk)),
        )
        .execute(conn)?;
    }
    Ok(())
}

/// Indexes up to `limit` records stored before the index existed (listed
/// by the migration in `json_values_pending`); returns how many it did.
pub(crate) fn backfill(conn: &mut DbConnection, limit: i64) -> Result<usize> {
    let batch: Vec<(String, i64)> = pending::table
        .select((pending::owner, pending::owner_id))
        .order((pending::owner, pending::owner_id))
        .limit(limit)
        .load(conn)?;
    for (owner, id) in &batch {
        let (owner, json) = if owner == Owner::Component.as_column() {
            let json: Option<String> = components::table
                .filter(components::id.eq(id))
                .select(components::hyperparams)
                .first(conn)
                .optional()?;
            (Owner::Component, json)
        } else {
            let json: Option<String> = models::table
                .filter(models::id.eq(id))
                .select(models::params)
                .first(conn)
                .optional()?;
            (Owner::Model, json)
        };
        remove(conn, owner, &[*id])?;
        if let Some(json) = json {
            write(conn, owner, *id, &json)?;
        }
        diesel::delete(
            pending::table
                .filter(pending::owner.eq(owner.as_column()))
                .filter(pending::owner_id.eq(id)),
        )
        .execute(conn)?;
    }
    Ok(batch.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_every_path_with_its_type() {
        let values = flatten(
            r#"{"lr": 0.01, "n": 9007199254740993, "big": 123456789012345678901234567890,
                "s": "x", "b": true, "z": null, "opt": {"beta": [1, "two"]}, "a.b": 1.0}"#,
        );
        let find = |path: &[&str]| {
            let key = stored_path(&path.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
            values.iter().find(|v| v.path == key).cloned()
        };
        let lr = find(&["lr"]).unwrap();
        assert_eq!((lr.kind, lr.num, lr.int_value), (kind::NUMBER, Some(0.01), None));
        assert_eq!(find(&["n"]).unwrap().int_value, Some(9_007_199_254_740_993));
        let big = find(&["big"]).unwrap();
        assert_eq!((big.int_value, big.num), (None, Some(1.2345678901234568e29)));
        assert_eq!(find(&["s"]).unwrap().text_value.as_deref(), Some("x"));
        assert_eq!(find(&["b"]).unwrap().int_value, Some(1));
        assert_eq!(find(&["z"]).unwrap().kind, kind::NULL);
        assert_eq!(find(&["opt"]).unwrap().kind, kind::OBJECT);
        assert_eq!(find(&["opt", "beta"]).unwrap().kind, kind::ARRAY);
        assert_eq!(
            find(&["opt", "beta", "1"]).unwrap().text_value.as_deref(),
            Some("two")
        );
        assert_eq!(find(&["a.b"]).unwrap().int_value, None);
        assert_eq!(values.len(), 11);
        assert!(flatten("not json").is_empty());
    }
}
