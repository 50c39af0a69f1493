//! The rules every request must follow, as pure functions. Each failure is
//! an INVALID_ARGUMENT whose message names the field and the rule.

use crate::error::Error;

/// Longest name (datablob, template, model, group, class, metric), in bytes.
pub const MAX_NAME_BYTES: usize = 255;
/// Longest hyperparams JSON text, in bytes.
pub const MAX_HYPERPARAMS_BYTES: usize = 65_536;
/// Most epochs in one InsertEpochs request or one StreamEpochs message.
pub const MAX_EPOCHS_PER_REQUEST: usize = 100_000;
/// Most metrics in one epoch.
pub const MAX_METRICS_PER_EPOCH: usize = 1_024;
/// Rows per page when the request does not say.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Most rows per page.
pub const MAX_PAGE_SIZE: usize = 10_000;
/// Most values in one filter list.
pub const MAX_FILTER_VALUES: usize = 1_000;
/// Most results of one best-model query.
pub const MAX_TOP_K: usize = 1_000;

/// Names the field an error is about. Built only when a rule is broken, so
/// that validating 100,000 valid epochs formats no field paths.
pub trait Field {
    /// The field's path, e.g. `epochs[3].epoch_num`.
    fn path(self) -> String;
}

impl Field for &str {
    fn path(self) -> String {
        self.to_owned()
    }
}

impl<F: FnOnce() -> String> Field for F {
    fn path(self) -> String {
        self()
    }
}

/// Most characters of a client's string that an error message repeats:
/// the message travels in an HTTP/2 header, and a 100 KB metric name there
/// made the client see RESOURCE_EXHAUSTED instead of the error.
pub const MAX_ECHOED_CHARS: usize = 64;

/// Whether `value` is a valid name (see [`name`]).
pub fn is_name(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_NAME_BYTES && !value.chars().any(char::is_control)
}

/// `value` quoted for an error message, cut after [`MAX_ECHOED_CHARS`]
/// characters.
pub fn echo(value: &str) -> String {
    match value.char_indices().nth(MAX_ECHOED_CHARS) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!("{:?}... ({} bytes)", &value[..cut], value.len()),
    }
}

/// A name: 1 to 255 bytes, no control characters (which includes NUL).
pub fn name(field: impl Field, value: &str) -> Result<(), Error> {
    if is_name(value) {
        return Ok(());
    }
    let field = field.path();
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(Error::invalid(
            field,
            format!("must be at most {MAX_NAME_BYTES} bytes, got {}", value.len()),
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(Error::invalid(
            field,
            format!(
                "must not contain control characters, found U+{:04X}",
                u32::from(c)
            ),
        ));
    }
    Ok(())
}

/// Hyperparams: a JSON object of at most 64 KiB; empty text means `{}`.
/// Returns the canonical text (keys sorted, numbers as given: integers stay
/// integers and floats stay floats), so equal objects compare equal.
pub fn hyperparams(field: &str, text: &str) -> Result<String, Error> {
    if text.trim().is_empty() {
        return Ok("{}".to_owned());
    }
    if text.len() > MAX_HYPERPARAMS_BYTES {
        return Err(Error::invalid(
            field,
            format!(
                "must be at most {MAX_HYPERPARAMS_BYTES} bytes of JSON, got {}",
                text.len()
            ),
        ));
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Error::invalid(field, format!("must be valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(Error::invalid(field, "must be a JSON object ({...})"));
    }
    serde_json::to_string(&value).map_err(|e| Error::invalid(field, format!("cannot be stored: {e}")))
}

/// An epoch number or step count: not negative.
pub fn non_negative(field: impl Field, value: i64) -> Result<(), Error> {
    if value < 0 {
        return Err(Error::invalid(field.path(), format!("must be >= 0, got {value}")));
    }
    Ok(())
}

/// A page size: 0 means the default, at most [`MAX_PAGE_SIZE`].
pub fn page_size(field: &str, value: u32) -> Result<usize, Error> {
    match usize::try_from(value) {
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(size) if size <= MAX_PAGE_SIZE => Ok(size),
        _ => Err(Error::invalid(
            field,
            format!("must be at most {MAX_PAGE_SIZE}, got {value}"),
        )),
    }
}

/// A filter list: at most [`MAX_FILTER_VALUES`] names, each a valid name.
pub fn filter_values(field: &str, values: &[String]) -> Result<(), Error> {
    if values.len() > MAX_FILTER_VALUES {
        return Err(Error::invalid(
            field,
            format!(
                "must hold at most {MAX_FILTER_VALUES} values, got {}",
                values.len()
            ),
        ));
    }
    values
        .iter()
        .enumerate()
        .try_for_each(|(i, value)| name(|| format!("{field}[{i}]"), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<impl std::fmt::Debug, Error>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn names() {
        assert!(name("n", "a").is_ok());
        assert!(name("n", &"x".repeat(255)).is_ok());
        assert!(name("n", "模型-ß-😀 '; DROP TABLE models; --").is_ok());
        assert_eq!(message(name("model.name", "")), "model.name: must not be empty");
        assert!(message(name("n", &"x".repeat(256))).contains("at most 255 bytes, got 256"));
        for bad in ["a\nb", "a\0b", "a\u{7f}", "\t"] {
            assert!(message(name("n", bad)).contains("control characters"), "{bad:?}");
        }
    }

    #[test]
    fn hyperparams_are_canonical_objects() {
        assert_eq!(hyperparams("h", "").unwrap(), "{}");
        assert_eq!(
            hyperparams("h", r#"{"b": 1.0, "a": 3, "n": {"z": [1, 2.5]}}"#).unwrap(),
            r#"{"a":3,"b":1.0,"n":{"z":[1,2.5]}}"#
        );
        for bad in ["[1]", "3", "\"s\"", "{", "NaN", "{\"a\": NaN}"] {
            assert!(
                message(hyperparams("datablob.hyperparams_json", bad))
                    .starts_with("datablob.hyperparams_json: "),
                "{bad}"
            );
        }
        // NUL is escaped in the stored text, so it round-trips.
        assert_eq!(
            hyperparams("h", r#"{"a\u0000": "\u0000"}"#).unwrap(),
            r#"{"a\u0000":"\u0000"}"#
        );
        let big = format!("{{\"k\": \"{}\"}}", "x".repeat(MAX_HYPERPARAMS_BYTES));
        assert!(message(hyperparams("h", &big)).contains("at most 65536 bytes"));
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size("p", 0).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size("p", 1_000).unwrap(), 1_000);
        assert_eq!(page_size("p", 10_000).unwrap(), 10_000);
        assert!(page_size("p", 10_001).is_err());
    }

    #[test]
    fn numbers_and_filters() {
        assert!(non_negative("e", 0).is_ok());
        assert!(
            message(non_negative("epochs[2].epoch_num", -1)).contains("epochs[2].epoch_num: must be >= 0")
        );
        assert!(filter_values("f", &["a".into()]).is_ok());
        assert!(message(filter_values("f", &["a".into(), String::new()])).starts_with("f[1]"));
        assert!(filter_values("f", &vec!["a".to_owned(); 1_001]).is_err());
    }
}
