//! Hyperparameters as columns: `{"opt": {"lr": 0.1}}` under prefix
//! `template` becomes column `template.opt.lr` holding `0.1`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Cell;

/// The leaves of `value` as `prefix.key.key...` → cell. Nested objects are
/// joined with dots; arrays stay whole, as compact JSON; an empty nested
/// object is `{}`. A top-level value that is not an object (never stored
/// by the server) becomes one column named `prefix`.
pub fn flatten(prefix: &str, value: &Value) -> BTreeMap<String, Cell> {
    let mut columns = BTreeMap::new();
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                leaves(&format!("{prefix}.{key}"), value, &mut columns);
            }
        }
        Value::Null => {}
        other => leaves(prefix, other, &mut columns),
    }
    columns
}

fn leaves(name: &str, value: &Value, columns: &mut BTreeMap<String, Cell>) {
    let cell = match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, value) in map {
                leaves(&format!("{name}.{key}"), value, columns);
            }
            return;
        }
        Value::String(text) => Cell::Text(text.clone()),
        // The number's own text: exact even beyond 64 bits.
        Value::Number(n) => Cell::Number(n.to_string()),
        other => Cell::Text(other.to_string()),
    };
    columns.insert(name.to_owned(), cell);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nested_keys_join_with_dots() {
        let value = json!({
            "lr": 0.001,
            "opt": {"name": "adam", "betas": [0.9, 0.999], "decay": {"every": 10}},
            "big": 123456789012345678901234567890_u128,
            "none": null,
            "empty": {},
            "flag": true
        });
        let columns = flatten("template", &value);
        let text: BTreeMap<&str, String> = columns.iter().map(|(k, v)| (k.as_str(), v.text())).collect();
        let want: BTreeMap<&str, String> = [
            ("template.lr", "0.001"),
            ("template.opt.name", "adam"),
            ("template.opt.betas", "[0.9,0.999]"),
            ("template.opt.decay.every", "10"),
            ("template.big", "123456789012345678901234567890"),
            ("template.none", "null"),
            ("template.empty", "{}"),
            ("template.flag", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect();
        assert_eq!(text, want);
        assert!(flatten("datablob", &json!({})).is_empty());
    }
}
