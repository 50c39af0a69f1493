//! Opaque page tokens for keyset pagination: the sort key of the last row
//! returned, plus a fingerprint of the query so that a token cannot be
//! replayed against a different filter.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::error::Error;
use crate::validate;

#[derive(Serialize, Deserialize)]
struct Envelope<K> {
    /// Fingerprint of the listing and its filter.
    q: u64,
    /// Sort key of the last row of the previous page.
    k: K,
}

/// A stable 64-bit fingerprint (FNV-1a) of a query description; stable
/// across processes and builds, so replicas accept each other's tokens.
pub fn fingerprint(query: &str) -> u64 {
    query.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Encodes the sort key of the last row of a page.
pub fn encode<K: Serialize>(query: u64, key: &K) -> String {
    let json = serde_json::to_vec(&Envelope { q: query, k: key }).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// A sort key that tokens carry. Anyone can forge a token (the fingerprint
/// is no secret), so a decoded key must be one that a listing could have
/// issued before it goes into a query: a NUL in a key made PostgreSQL fail
/// (INTERNAL) where SQLite answered, and a NaN value compares differently
/// on the two backends.
pub trait PageKey: DeserializeOwned {
    /// Whether a listing can have issued this key.
    fn is_plausible(&self) -> bool;
}

/// A name (components and models).
impl PageKey for String {
    fn is_plausible(&self) -> bool {
        validate::is_name(self)
    }
}

/// A model name and an epoch_num (epochs).
impl PageKey for (String, i64) {
    fn is_plausible(&self) -> bool {
        validate::is_name(&self.0) && self.1 >= 0
    }
}

/// A metric value's bits, an epoch_num and a model name (leaderboards,
/// which never rank NaN).
impl PageKey for (u64, i64, String) {
    fn is_plausible(&self) -> bool {
        !f64::from_bits(self.0).is_nan() && self.1 >= 0 && validate::is_name(&self.2)
    }
}

/// A sort key (missing: `None`) and a model name (sorted model listings).
impl PageKey for (Option<crate::store::filter::order::SortValue>, String) {
    fn is_plausible(&self) -> bool {
        use crate::store::filter::order::SortValue;
        let value = match &self.0 {
            None | Some(SortValue::I(_)) => true,
            Some(SortValue::T(text)) => !text.contains('\0') && text.len() <= 1024,
            Some(SortValue::F(bits)) => !f64::from_bits(*bits).is_nan(),
        };
        value && validate::is_name(&self.1)
    }
}

/// Decodes a token from a request: `None` for the first page.
pub fn decode<K: PageKey>(query: u64, token: &str) -> Result<Option<K>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || Error::invalid("page_token", "is not a token returned by this listing");
    let json = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let envelope: Envelope<K> = serde_json::from_slice(&json).map_err(|_| invalid())?;
    if envelope.q != query {
        return Err(Error::invalid(
            "page_token",
            "was issued for a different filter or order; repeat the request with the same filter and order_by or start without a token",
        ));
    }
    if !envelope.k.is_plausible() {
        return Err(invalid());
    }
    Ok(Some(envelope.k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let q = fingerprint("models|a");
        let token = encode(q, &("name".to_owned(), 7_i64));
        assert_eq!(
            decode::<(String, i64)>(q, &token).unwrap(),
            Some(("name".to_owned(), 7))
        );
        assert_eq!(decode::<(String, i64)>(q, "").unwrap(), None);
    }

    #[test]
    fn foreign_or_garbage_tokens_are_rejected() {
        let token = encode(fingerprint("a"), &"name".to_owned());
        assert!(decode::<String>(fingerprint("b"), &token).is_err());
        assert!(decode::<String>(fingerprint("a"), "!!!").is_err());
        assert!(decode::<String>(fingerprint("a"), "e30").is_err());
    }

    fn rejected<K>(result: Result<Option<K>, Error>) -> bool {
        matches!(result, Err(Error::InvalidArgument(m)) if m.starts_with("page_token: "))
    }

    /// Regression: a forged token with a NUL in its key was INTERNAL on
    /// PostgreSQL and a valid position on SQLite.
    #[test]
    fn forged_keys_that_no_listing_issues_are_rejected() {
        let q = fingerprint("q");
        for name in ["", "\0", "a\0b", "a\nb", "x".repeat(256).as_str()] {
            assert!(rejected(decode::<String>(q, &encode(q, &name))), "{name:?}");
            assert!(
                rejected(decode::<(String, i64)>(q, &encode(q, &(name, 0)))),
                "{name:?}"
            );
            assert!(rejected(decode::<(u64, i64, String)>(
                q,
                &encode(q, &(1.5_f64.to_bits(), 0, name))
            )));
        }
        assert!(rejected(decode::<(String, i64)>(q, &encode(q, &("a", -1)))));
        assert!(rejected(decode::<(u64, i64, String)>(
            q,
            &encode(q, &(f64::NAN.to_bits(), 0, "a"))
        )));
        assert!(rejected(decode::<(u64, i64, String)>(
            q,
            &encode(q, &(1_u64, -1, "a"))
        )));
        let inf = f64::INFINITY.to_bits();
        assert_eq!(
            decode::<(u64, i64, String)>(q, &encode(q, &(inf, 0, "a"))).unwrap(),
            Some((inf, 0, "a".to_owned()))
        );
    }

    #[test]
    fn fingerprint_is_stable() {
        assert_eq!(fingerprint(""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(fingerprint("a"), fingerprint("b"));
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;
        use crate::validate::strategies::{config, hostile_string};

        /// `decode` of `token` as every key type: never a panic, and any
        /// error INVALID_ARGUMENT about the token.
        fn decodes_or_rejects(query: u64, token: &str) -> Result<(), TestCaseError> {
            for ok in [
                decode::<String>(query, token).map(|k| k.is_some()),
                decode::<(String, i64)>(query, token).map(|k| k.is_some()),
                decode::<(u64, i64, String)>(query, token).map(|k| k.is_some()),
            ] {
                if let Err(error) = ok {
                    prop_assert!(rejected::<()>(Err(error)));
                }
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(config(512))]

            #[test]
            fn arbitrary_strings_are_rejected_not_panics(token in hostile_string()) {
                decodes_or_rejects(fingerprint("q"), &token)?;
            }

            #[test]
            fn arbitrary_bytes_are_rejected_not_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
                decodes_or_rejects(fingerprint("q"), &URL_SAFE_NO_PAD.encode(bytes))?;
            }

            /// Forged tokens with the right fingerprint: plausible keys
            /// decode to themselves, all others are INVALID_ARGUMENT.
            #[test]
            fn forged_keys_decode_only_when_plausible(
                name in hostile_string(),
                epoch_num in any::<i64>(),
                bits in prop_oneof![any::<u64>(), Just(f64::NAN.to_bits())],
            ) {
                let q = fingerprint("leaderboard");
                let valid_name = crate::validate::is_name(&name);
                let token = encode(q, &name);
                match decode::<String>(q, &token) {
                    Ok(key) => prop_assert_eq!(key, Some(name.clone()).filter(|_| valid_name)),
                    Err(error) => prop_assert!(!valid_name && rejected::<()>(Err(error))),
                }
                let key = (name.clone(), epoch_num);
                let plausible = valid_name && epoch_num >= 0;
                match decode::<(String, i64)>(q, &encode(q, &key)) {
                    Ok(decoded) => prop_assert_eq!(decoded, Some(key).filter(|_| plausible)),
                    Err(error) => prop_assert!(!plausible && rejected::<()>(Err(error))),
                }
                let key = (bits, epoch_num, name);
                let plausible = plausible && !f64::from_bits(bits).is_nan();
                match decode::<(u64, i64, String)>(q, &encode(q, &key)) {
                    Ok(decoded) => prop_assert_eq!(decoded, Some(key).filter(|_| plausible)),
                    Err(error) => prop_assert!(!plausible && rejected::<()>(Err(error))),
                }
                prop_assert!(decode::<String>(q ^ 1, &token).is_err());
            }
        }
    }
}
