//! The rules of artifact references (PutArtifact), as pure functions. Each
//! failure is an INVALID_ARGUMENT naming the field and the rule.

use super::{Field, echo};
use crate::error::Error;

/// Longest artifact URI, in bytes.
pub const MAX_URI_BYTES: usize = 4_096;
/// Longest media type, in bytes (RFC 6838: 127 + `/` + 127).
pub const MAX_MEDIA_TYPE_BYTES: usize = 255;
/// Most artifacts one model holds: all of them fit one ListArtifacts (and
/// GetModel) answer, at most about 1.2 MB.
pub const MAX_ARTIFACTS_PER_MODEL: usize = 256;

/// An artifact URI: at most [`MAX_URI_BYTES`], a scheme of two or more
/// characters (RFC 3986: a letter, then letters, digits, `+`, `-`, `.`),
/// `:` and something after it; no whitespace or control characters
/// (percent-encode them). Any scheme is accepted: mlmeta never opens it.
pub fn uri(field: impl Field, value: &str) -> Result<(), Error> {
    match uri_rule(value) {
        None => Ok(()),
        Some(rule) => Err(Error::invalid(field.path(), rule)),
    }
}

/// The rule `value` breaks as a URI, if any.
fn uri_rule(value: &str) -> Option<String> {
    if value.is_empty() {
        return Some("must not be empty: a URI such as s3://bucket/key".to_owned());
    }
    if value.len() > MAX_URI_BYTES {
        return Some(format!(
            "must be at most {MAX_URI_BYTES} bytes, got {}",
            value.len()
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Some(format!(
            "must not contain whitespace or control characters (percent-encode them), found U+{:04X}",
            u32::from(c)
        ));
    }
    let Some((scheme, rest)) = value.split_once(':') else {
        return Some(format!(
            "must be a URI with a scheme, such as s3://bucket/key or file:///path, got {}",
            echo(value)
        ));
    };
    let valid_scheme = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid_scheme {
        return Some(format!(
            "must start with a scheme (a letter, then letters, digits, '+', '-' or '.') and ':', got {}",
            echo(value)
        ));
    }
    if scheme.len() == 1 {
        return Some(format!(
            "a one-letter scheme looks like a Windows drive: use a file:/// URI (file:///C:/dir/file), got {}",
            echo(value)
        ));
    }
    if rest.is_empty() {
        return Some(format!(
            "must have something after {scheme}:, got {}",
            echo(value)
        ));
    }
    None
}

/// A SHA-256 digest: exactly 64 hexadecimal digits, either case; returns
/// it in lower case (the stored form).
pub fn sha256(field: impl Field, value: &str) -> Result<String, Error> {
    if value.len() != 64 {
        return Err(Error::invalid(
            field.path(),
            format!(
                "must be 64 hexadecimal digits (a SHA-256 digest), got {} bytes",
                value.len()
            ),
        ));
    }
    if let Some(c) = value.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(Error::invalid(
            field.path(),
            format!("must be 64 hexadecimal digits (0-9, a-f), found {c:?}"),
        ));
    }
    Ok(value.to_ascii_lowercase())
}

/// A size in bytes: at most `i64::MAX` (what the databases store).
pub fn size_bytes(field: impl Field, value: u64) -> Result<i64, Error> {
    i64::try_from(value).map_err(|_| {
        Error::invalid(
            field.path(),
            format!("must be at most {} (2^63 - 1), got {value}", i64::MAX),
        )
    })
}

/// A media type `type/subtype` of RFC 6838 names (a letter or digit, then
/// up to 126 of letters, digits and `!#$&-^_.+`), without parameters;
/// returns it in lower case (media types are case-insensitive).
pub fn media_type(field: impl Field, value: &str) -> Result<String, Error> {
    let rule = || {
        format!(
            "must be a media type type/subtype such as application/octet-stream, got {}",
            echo(value)
        )
    };
    if value.len() > MAX_MEDIA_TYPE_BYTES {
        return Err(Error::invalid(
            field.path(),
            format!(
                "must be at most {MAX_MEDIA_TYPE_BYTES} bytes, got {}",
                value.len()
            ),
        ));
    }
    if value.contains(';') {
        return Err(Error::invalid(
            field.path(),
            format!(
                "parameters (after ';') are not stored: give type/subtype only, got {}",
                echo(value)
            ),
        ));
    }
    let Some((kind, subtype)) = value.split_once('/') else {
        return Err(Error::invalid(field.path(), rule()));
    };
    if !restricted_name(kind) || !restricted_name(subtype) {
        return Err(Error::invalid(field.path(), rule()));
    }
    Ok(value.to_ascii_lowercase())
}

/// RFC 6838 `restricted-name`.
fn restricted_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 127
        && chars.all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '!' | '#' | '$' | '&' | '-' | '^' | '_' | '.' | '+')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn uris_need_a_scheme() {
        for good in [
            "s3://bucket/key",
            "gs://b/o.ckpt",
            "file:///data/run-7/model.pt",
            "https://example.com/a?b=c#d",
            "hf:org/model",
            "x-my+scheme.v1://thing",
            "s3://bücket/模型",
            &format!("s3://b/{}", "k".repeat(MAX_URI_BYTES - 7)),
        ] {
            assert!(uri("artifact.uri", good).is_ok(), "{good}");
        }
        let cases: &[(&str, &str)] = &[
            ("", "must not be empty"),
            ("model.pt", "must be a URI with a scheme"),
            ("/data/model.pt", "must be a URI with a scheme"),
            ("1s3://b", "must start with a scheme"),
            ("s 3://b", "whitespace"),
            ("s3://b/a b", "found U+0020"),
            ("s3://b/\0", "found U+0000"),
            ("s3://b/\n", "control"),
            (":foo", "must start with a scheme"),
            ("s_3://b", "must start with a scheme"),
            ("C:\\models\\x.pt", "Windows drive"),
            ("s3:", "something after s3:"),
        ];
        for (bad, needle) in cases {
            let text = message(uri("artifact.uri", bad));
            assert!(text.starts_with("artifact.uri: "), "{bad:?}: {text}");
            assert!(text.contains(needle), "{bad:?}: {text}");
        }
        let long = format!("s3://b/{}", "k".repeat(MAX_URI_BYTES));
        assert!(message(uri("u", &long)).contains("at most 4096 bytes"));
        // A long URI is echoed cut short.
        assert!(message(uri("u", &"x".repeat(4_000))).len() < 300);
    }

    #[test]
    fn sha256_is_64_hex_digits_stored_lower_case() {
        let lower = "ab".repeat(32);
        assert_eq!(sha256("s", &lower).unwrap(), lower);
        assert_eq!(sha256("s", &"AB".repeat(32)).unwrap(), lower);
        assert!(message(sha256("artifact.sha256", "abc")).starts_with("artifact.sha256: must be 64"));
        assert!(message(sha256("s", &"g".repeat(64))).contains("found 'g'"));
        assert!(message(sha256("s", &"é".repeat(32))).contains("found 'é'"));
        assert!(message(sha256("s", "")).contains("got 0 bytes"));
    }

    #[test]
    fn sizes_fit_a_signed_column() {
        assert_eq!(size_bytes("s", 0).unwrap(), 0);
        assert_eq!(size_bytes("s", i64::MAX as u64).unwrap(), i64::MAX);
        let text = message(size_bytes("artifact.size_bytes", i64::MAX as u64 + 1));
        assert!(
            text.starts_with("artifact.size_bytes: must be at most 9223372036854775807"),
            "{text}"
        );
    }

    #[test]
    fn media_types_are_type_slash_subtype() {
        for (good, stored) in [
            ("application/octet-stream", "application/octet-stream"),
            ("Application/X-HDF5", "application/x-hdf5"),
            ("application/vnd.onnx+protobuf", "application/vnd.onnx+protobuf"),
            ("text/csv", "text/csv"),
        ] {
            assert_eq!(media_type("m", good).unwrap(), stored);
        }
        for bad in [
            "",
            "text",
            "text/",
            "/csv",
            "a/b/c",
            "te xt/csv",
            "-x/y",
            "text/csv\0",
        ] {
            let text = message(media_type("artifact.media_type", bad));
            assert!(
                text.starts_with("artifact.media_type: must be a media type"),
                "{bad:?}: {text}"
            );
        }
        assert!(message(media_type("m", "text/plain; charset=utf-8")).contains("parameters"));
        assert!(message(media_type("m", &format!("a/{}", "b".repeat(300)))).contains("at most 255"));
        assert!(media_type("m", &format!("a/{}", "b".repeat(128))).is_err());
    }
}
