//! The JSON rules of the API's `*_json` fields (hyperparameters), shared by
//! the server, which enforces them, and the tools that read JSON from
//! users, so that both refuse the same text with the same words.
//!
//! Stricter than `serde_json::from_str` in one way: a key repeated within
//! one object is an error. serde_json keeps the last value silently, so
//! `{"lr": 0.1, "lr": 0.01}` would store a value the user may not have
//! meant, and the stored record would not match the text they keep.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Why a text is not acceptable JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// A key appears twice in one object.
    #[error(
        "key {key:?} appears twice in one object (at line {line} column {column}); each key may appear once"
    )]
    DuplicateKey {
        /// The key's path from the top, nested keys joined with dots.
        key: String,
        /// Where the repeat was found.
        line: usize,
        /// Where the repeat was found.
        column: usize,
    },
    /// `NaN` or `Infinity` written as a bare value.
    #[error("JSON has no {token} (at line {line} column {column}): write it as a string, e.g. \"{token}\"")]
    NonFinite {
        /// The value as written (`NaN`, `Infinity`, `-Infinity`, …).
        token: String,
        /// Where it was found.
        line: usize,
        /// Where it was found.
        column: usize,
    },
    /// Not JSON at all.
    #[error("must be valid JSON: {0}")]
    Syntax(String),
}

/// Parses `text` as JSON, refusing repeated keys and explaining bare
/// non-finite numbers.
pub fn parse(text: &str) -> Result<Value, JsonError> {
    let value: Value = serde_json::from_str(text).map_err(|error| explain(text, &error))?;
    // A second pass over the text only looks at keys; it cannot fail on
    // syntax the first pass accepted.
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let duplicate = RefCell::new(None);
    let check = KeyCheck {
        path: "",
        duplicate: &duplicate,
    };
    if let Err(error) = check.deserialize(&mut deserializer) {
        return Err(match duplicate.into_inner() {
            Some(key) => JsonError::DuplicateKey {
                key,
                line: error.line(),
                column: error.column(),
            },
            None => JsonError::Syntax(error.to_string()),
        });
    }
    Ok(value)
}

fn explain(text: &str, error: &serde_json::Error) -> JsonError {
    if error.is_syntax()
        && let Some(token) = non_finite_at(text, error.line(), error.column())
    {
        return JsonError::NonFinite {
            token,
            line: error.line(),
            column: error.column(),
        };
    }
    JsonError::Syntax(error.to_string())
}

/// The bare `NaN`/`Infinity`-like word at serde_json's error position.
fn non_finite_at(text: &str, line: usize, column: usize) -> Option<String> {
    let line_text = text.lines().nth(line.checked_sub(1)?)?;
    // serde_json's column is 1-based and points at (or just past) the first
    // character it could not take; look at the word around it.
    let chars: Vec<char> = line_text.chars().collect();
    let mut start = column.saturating_sub(1).min(chars.len());
    while start > 0 && (chars[start - 1].is_ascii_alphabetic() || chars[start - 1] == '-') {
        start -= 1;
    }
    let word: String = chars[start..]
        .iter()
        .take_while(|c| c.is_ascii_alphabetic() || **c == '-')
        .collect();
    let bare = word.trim_start_matches('-').to_ascii_lowercase();
    matches!(bare.as_str(), "nan" | "infinity" | "inf").then_some(word)
}

/// Walks a JSON document without building it, failing on a repeated key.
struct KeyCheck<'p> {
    path: &'p str,
    /// Set to the repeated key's path when the walk stops at one.
    duplicate: &'p RefCell<Option<String>>,
}

impl<'p> KeyCheck<'p> {
    fn at<'q>(&self, path: &'q str) -> KeyCheck<'q>
    where
        'p: 'q,
    {
        KeyCheck {
            path,
            duplicate: self.duplicate,
        }
    }

    fn child(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }
}

impl<'de> DeserializeSeed<'de> for KeyCheck<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyCheck<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_i128<E>(self, _: i128) -> Result<(), E> {
        Ok(())
    }
    fn visit_u128<E>(self, _: u128) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            let path = format!("{}[{index}]", self.path);
            if seq.next_element_seed(self.at(&path))?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = self.child(&key);
            if !seen.insert(key) {
                let message = format!("duplicate key {path:?}");
                self.duplicate.replace(Some(path));
                return Err(de::Error::custom(message));
            }
            map.next_value_seed(self.at(&path))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn valid_json_parses_as_serde_json_does() {
        let text = r#"{"b": 1.0, "a": [1, {"x": 2}], "big": 123456789012345678901234567890}"#;
        assert_eq!(parse(text).unwrap(), serde_json::from_str::<Value>(text).unwrap());
        assert_eq!(parse("[1, 2]").unwrap(), json!([1, 2]));
        // The same key in different objects is fine.
        assert!(parse(r#"{"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}]}"#).is_ok());
    }

    #[test]
    fn repeated_keys_are_refused_with_their_path() {
        let error = parse(r#"{"a": 1, "a": 2}"#).unwrap_err();
        assert!(
            matches!(&error, JsonError::DuplicateKey { key, .. } if key == "a"),
            "{error}"
        );
        assert!(
            error.to_string().starts_with("key \"a\" appears twice"),
            "{error}"
        );
        let nested = parse(r#"{"opt": {"lr": 0.1, "lr": 0.01}}"#).unwrap_err();
        assert!(
            matches!(&nested, JsonError::DuplicateKey { key, .. } if key == "opt.lr"),
            "{nested}"
        );
        let in_list = parse(r#"{"l": [{"k": 1, "k": 1}]}"#).unwrap_err();
        assert!(
            matches!(&in_list, JsonError::DuplicateKey { key, .. } if key == "l[0].k"),
            "{in_list}"
        );
    }

    #[test]
    fn bare_non_finite_numbers_are_explained() {
        for (text, token) in [
            (r#"{"a": NaN}"#, "NaN"),
            (r#"{"a": Infinity}"#, "Infinity"),
            (r#"{"a": -Infinity}"#, "-Infinity"),
            ("{\n  \"x\": 1,\n  \"a\": nan\n}", "nan"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(
                matches!(&error, JsonError::NonFinite { token: t, .. } if t == token),
                "{text}: {error}"
            );
            assert!(error.to_string().contains("write it as a string"), "{error}");
        }
        assert!(matches!(parse("{").unwrap_err(), JsonError::Syntax(_)));
        assert!(matches!(
            parse(r#"{"a": nope}"#).unwrap_err(),
            JsonError::Syntax(_)
        ));
    }
}
