//! The rules every request must follow, as pure functions. Each failure is
//! an INVALID_ARGUMENT whose message names the field and the rule.

use crate::error::Error;

pub mod artifacts;

pub use mlmeta_proto::rules::{MAX_FILTER_VALUES, echo, is_name};

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

/// A name: 1 to 255 bytes, no control characters (which includes NUL).
pub fn name(field: impl Field, value: &str) -> Result<(), Error> {
    if is_name(value) {
        return Ok(());
    }
    mlmeta_proto::rules::name_rule(value).map_err(|rule| Error::invalid(field.path(), rule))
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
    let value = mlmeta_proto::json::parse(text).map_err(|e| Error::invalid(field, e))?;
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

// --- Model metadata: tags and descriptions ---

/// Prefix of the tags the server sets (run context such as `mlmeta.host`);
/// requests cannot set or unset them.
pub const SYSTEM_TAG_PREFIX: &str = "mlmeta.";
pub use mlmeta_proto::rules::MAX_TAG_VALUE_BYTES;
/// Most tags on one record, and most keys one UpdateTags call names.
pub const MAX_TAGS: usize = 1_000;
/// Longest description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 65_536;

/// A tag key a request may set or unset: a name, outside the system prefix.
pub fn tag_key(field: impl Field, key: &str) -> Result<(), Error> {
    if !is_name(key) {
        return name(field, key);
    }
    if key.starts_with(SYSTEM_TAG_PREFIX) {
        return Err(Error::invalid(
            field.path(),
            format!(
                "tag keys starting with {SYSTEM_TAG_PREFIX:?} are reserved for the server, got {}",
                echo(key)
            ),
        ));
    }
    Ok(())
}

/// A tag value: at most [`MAX_TAG_VALUE_BYTES`], no NUL (PostgreSQL text
/// cannot hold it).
pub fn tag_value(field: impl Field, value: &str) -> Result<(), Error> {
    text(field, value, MAX_TAG_VALUE_BYTES)
}

/// A description: at most [`MAX_DESCRIPTION_BYTES`], no NUL.
pub fn description(field: impl Field, value: &str) -> Result<(), Error> {
    text(field, value, MAX_DESCRIPTION_BYTES)
}

fn text(field: impl Field, value: &str, max_bytes: usize) -> Result<(), Error> {
    mlmeta_proto::rules::text_rule(value, max_bytes).map_err(|rule| Error::invalid(field.path(), rule))
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

/// Generators of adversarial input for the property tests of this crate.
#[cfg(test)]
pub(crate) mod strategies {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed, contextualize_config};

    /// Seed of every property test, so a CI failure reproduces;
    /// `PROPTEST_RNG_SEED` and `PROPTEST_CASES` override it and `cases`.
    const SEED: u64 = 0x6d6c_6d65_7461;

    /// A reproducible configuration of `cases` cases.
    pub(crate) fn config(cases: u32) -> Config {
        contextualize_config(Config {
            cases,
            rng_seed: RngSeed::Fixed(SEED),
            failure_persistence: None,
            ..Config::default()
        })
    }

    /// Strings aimed at SQL, paths, placeholders and encodings.
    pub(crate) const HOSTILE: &[&str] = &[
        "",
        "\0",
        "a\0b",
        "x' OR '1'='1",
        "'; DROP TABLE models; --",
        "\"",
        "$1",
        "$$",
        "..",
        "../../etc/passwd",
        "%",
        "_",
        "\\",
        "\n",
        "\u{7f}",
        "\u{85}",
        "\u{2028}",
        "\u{feff}",
        "模型-ß-😀",
        "e\u{301}",
        "\u{10ffff}",
    ];

    /// Any string, weighted towards hostile ones and lengths near the
    /// 255-byte name limit.
    pub(crate) fn hostile_string() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => prop::sample::select(HOSTILE).prop_map(str::to_owned),
            3 => any::<String>(),
            2 => "[a-c'\"$%_.;\\\\ -]{1,8}",
            2 => (prop::sample::select(vec!['x', '\'', '$', '模', '😀']), 240_usize..270)
                .prop_map(|(c, bytes)| std::iter::repeat_n(c, bytes / c.len_utf8()).collect()),
            1 => Just("'".repeat(100_000)),
        ]
    }

    /// Any f64, weighted towards the values that databases mangle.
    pub(crate) fn metric_value() -> impl Strategy<Value = f64> {
        prop_oneof![
            3 => any::<f64>(),
            1 => prop::sample::select(vec![
                f64::NAN,
                -f64::NAN,
                f64::from_bits(0x7ff8_dead_beef_0001),
                f64::INFINITY,
                f64::NEG_INFINITY,
                -0.0,
                0.0,
                f64::MIN_POSITIVE / 2.0,
                f64::MAX,
                f64::MIN,
            ]),
        ]
    }

    /// A JSON value of hostile strings and numbers, nested a few levels.
    pub(crate) fn json_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("JSON has no NaN or infinities", |f| f.is_finite())
                .prop_map(Value::from),
            hostile_string().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(hostile_string(), inner, 0..6)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    /// A JSON object (the shape hyperparams must have).
    pub(crate) fn json_object() -> impl Strategy<Value = serde_json::Value> {
        prop::collection::btree_map(hostile_string(), json_value(), 0..6)
            .prop_map(|map| serde_json::Value::Object(map.into_iter().collect()))
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::strategies::{config, hostile_string, json_object};
    use super::*;
    use mlmeta_proto::rules::{MAX_ECHOED_CHARS, MAX_NAME_BYTES};

    fn invalid_message(error: Error) -> String {
        match error {
            Error::InvalidArgument(message) => message,
            other => panic!("not INVALID_ARGUMENT: {other:?}"),
        }
    }

    proptest! {
        #![proptest_config(config(512))]

        #[test]
        fn names_follow_the_documented_rule(value in hostile_string()) {
            let valid = (1..=MAX_NAME_BYTES).contains(&value.len())
                && !value.chars().any(|c| c.is_control());
            prop_assert_eq!(is_name(&value), valid);
            match name("filter.names[3]", &value) {
                Ok(()) => prop_assert!(valid),
                Err(error) => {
                    prop_assert!(!valid);
                    let message = invalid_message(error);
                    prop_assert!(message.starts_with("filter.names[3]: "), "{}", message);
                    prop_assert!(message.len() < 200, "{}", message);
                }
            }
        }

        #[test]
        fn echo_is_short_and_lossless_when_short(value in hostile_string()) {
            let echoed = echo(&value);
            prop_assert!(echoed.chars().count() <= 10 * MAX_ECHOED_CHARS + 40, "{}", echoed);
            if value.chars().count() <= MAX_ECHOED_CHARS {
                prop_assert_eq!(echoed, format!("{value:?}"));
            }
        }

        #[test]
        fn arbitrary_hyperparams_text_is_canonical_or_invalid(text in hostile_string()) {
            match hyperparams("datablob.hyperparams_json", &text) {
                Ok(canonical) => {
                    let value: serde_json::Value = serde_json::from_str(&canonical)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert!(value.is_object());
                    prop_assert!(!canonical.contains('\0'));
                    prop_assert_eq!(hyperparams("h", &canonical).ok(), Some(canonical.clone()));
                }
                Err(error) => {
                    let message = invalid_message(error);
                    prop_assert!(message.starts_with("datablob.hyperparams_json: "), "{}", message);
                }
            }
        }

        #[test]
        fn hyperparams_objects_round_trip(value in json_object()) {
            let text = value.to_string();
            match hyperparams("h", &text) {
                Ok(canonical) => {
                    prop_assert!(text.len() <= MAX_HYPERPARAMS_BYTES);
                    // NUL and other control characters stay escaped, so the
                    // text fits a PostgreSQL column.
                    prop_assert!(!canonical.contains('\0'));
                    let back: serde_json::Value = serde_json::from_str(&canonical)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(back, value);
                }
                Err(error) => {
                    prop_assert!(text.len() > MAX_HYPERPARAMS_BYTES, "{}", invalid_message(error));
                }
            }
        }

        #[test]
        fn numbers_page_sizes_and_filters_never_panic(
            number in any::<i64>(),
            size in any::<u32>(),
            values in prop::collection::vec(hostile_string(), 0..4),
        ) {
            prop_assert_eq!(non_negative("e", number).is_ok(), number >= 0);
            let size_ok = size as usize <= MAX_PAGE_SIZE;
            prop_assert_eq!(page_size("page_size", size).is_ok(), size_ok);
            let all_names = values.iter().all(|v| is_name(v));
            match filter_values("filter.names", &values) {
                Ok(()) => prop_assert!(all_names),
                Err(error) => {
                    prop_assert!(!all_names);
                    prop_assert!(invalid_message(error).starts_with("filter.names["));
                }
            }
        }
    }
}
