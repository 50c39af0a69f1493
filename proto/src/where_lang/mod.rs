//! The `where` filter language (issue 16): a small, typed expression over
//! a model's fields, hyperparameters, params, tags and metric summaries.
//! [`parse`] turns the text into an [`Expr`] or a [`WhereError`] at a
//! column; the server compiles the `Expr` to SQL with every literal and key
//! path bound, and a test evaluates it in memory with the same rules.
//!
//! ```
//! use mlmeta_proto::where_lang::parse;
//!
//! let expr = parse("params.lr < 0.01 and (tags.team = 'a' or template.group = 'cnn') and max(val_accuracy) > 0.5");
//! assert!(expr.is_ok());
//! let error = parse("epochs <").unwrap_err();
//! assert_eq!(error.to_string(), "column 9: expected a value after '<'");
//! ```

mod ast;
mod parse;
mod time;

pub use ast::{
    CmpOp, Expr, Field, FieldKind, JsonSource, LikePart, LikePattern, MetricFn, Number, OrderBy, Predicate,
    TimeValue, Value,
};
pub use parse::{parse, parse_column, parse_order_by};
pub use time::parse_timestamp;

/// Deepest nesting of parentheses and `not`.
pub const MAX_DEPTH: usize = 32;
/// Most conditions (comparisons, `in`, `like`, `exists`) in one expression.
pub const MAX_PREDICATES: usize = 64;
/// Most values in all `in` lists of one expression together.
pub const MAX_IN_VALUES: usize = 1_000;

/// Why an expression does not parse: the 1-based column (in characters)
/// and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct WhereError {
    /// 1-based column, in characters.
    pub column: usize,
    /// What was expected, in words.
    pub message: String,
}

impl WhereError {
    fn new(column: usize, message: impl Into<String>) -> Self {
        Self {
            column,
            message: message.into(),
        }
    }
}

/// Splits a `--columns` list at the commas outside backquotes (a metric
/// name written `` `a,b` `` keeps its comma); entries are trimmed, empty
/// ones dropped.
pub fn split_columns(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '`' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    out.push(current);
    out.into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The canonical text of a JSON key path, as the server's typed index
/// stores it: the keys as a JSON array of strings (unambiguous whatever
/// characters the keys hold).
pub fn path_key(path: &[String]) -> String {
    serde_json::to_string(path).unwrap_or_default()
}

#[cfg(test)]
mod tests;
