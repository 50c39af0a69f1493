//! Opaque page tokens for keyset pagination: the sort key of the last row
//! returned, plus a fingerprint of the query so that a token cannot be
//! replayed against a different filter.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::error::Error;

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

/// Decodes a token from a request: `None` for the first page.
pub fn decode<K: DeserializeOwned>(query: u64, token: &str) -> Result<Option<K>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || Error::invalid("page_token", "is not a token returned by this listing");
    let json = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let envelope: Envelope<K> = serde_json::from_slice(&json).map_err(|_| invalid())?;
    if envelope.q != query {
        return Err(Error::invalid(
            "page_token",
            "was issued for a different filter; repeat the request with the same filter or start without a token",
        ));
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
        let token = encode(fingerprint("a"), &1_i64);
        assert!(decode::<i64>(fingerprint("b"), &token).is_err());
        assert!(decode::<i64>(fingerprint("a"), "!!!").is_err());
        assert!(decode::<i64>(fingerprint("a"), "e30").is_err());
    }

    #[test]
    fn fingerprint_is_stable() {
        assert_eq!(fingerprint(""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(fingerprint("a"), fingerprint("b"));
    }
}
