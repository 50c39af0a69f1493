//! The `epochs.metrics` blob: an epoch's metrics in one compact value, so a
//! bulk insert writes one row per epoch, and NaN/±Inf keep their exact bits
//! on both backends (SQLite turns a NaN REAL into NULL).
//!
//! Layout, all little-endian: a version byte (1); then per metric, in name
//! order: the name's length (u16), the name (UTF-8), the value's bits (u64).

use super::records::Metrics;

const VERSION: u8 = 1;

/// Encodes `metrics` (names are at most 255 bytes, checked by validation).
pub fn encode(metrics: &Metrics) -> Vec<u8> {
    let size = 1 + metrics.keys().map(|name| 2 + name.len() + 8).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.push(VERSION);
    for (name, value) in metrics {
        let len = u16::try_from(name.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&name.as_bytes()[..usize::from(len)]);
        out.extend_from_slice(&value.to_bits().to_le_bytes());
    }
    out
}

/// Decodes a blob written by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<Metrics, String> {
    let mut metrics = Metrics::new();
    for_each(bytes, |name, value| {
        metrics.insert(name.to_owned(), value);
    })?;
    Ok(metrics)
}

/// Calls `f` with each (name, value) of a blob written by [`encode`], in
/// name order, without allocating (for reads of many epochs: curves).
pub fn for_each(bytes: &[u8], mut f: impl FnMut(&str, f64)) -> Result<(), String> {
    let (&version, mut rest) = bytes
        .split_first()
        .ok_or_else(|| "empty metrics blob".to_owned())?;
    if version != VERSION {
        return Err(format!("unknown metrics blob version {version}"));
    }
    while !rest.is_empty() {
        let (len, tail) = take::<2>(rest)?;
        let len = usize::from(u16::from_le_bytes(len));
        if tail.len() < len {
            return Err("truncated metric name".to_owned());
        }
        let (name, tail) = tail.split_at(len);
        let name = std::str::from_utf8(name).map_err(|e| format!("metric name: {e}"))?;
        let (bits, tail) = take::<8>(tail)?;
        f(name, f64::from_bits(u64::from_le_bytes(bits)));
        rest = tail;
    }
    Ok(())
}

fn take<const N: usize>(bytes: &[u8]) -> Result<([u8; N], &[u8]), String> {
    if bytes.len() < N {
        return Err("truncated metrics blob".to_owned());
    }
    let (head, tail) = bytes.split_at(N);
    let mut array = [0; N];
    array.copy_from_slice(head);
    Ok((array, tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_value_bit_for_bit() {
        let values = [
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
            0.1,
        ];
        let metrics: Metrics = values
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("m{i}-é"), *v))
            .collect();
        let decoded = decode(&encode(&metrics)).unwrap();
        assert_eq!(decoded.len(), metrics.len());
        for (name, value) in &metrics {
            assert_eq!(decoded[name].to_bits(), value.to_bits(), "{name}");
        }
    }

    #[test]
    fn empty_metrics_round_trip() {
        assert_eq!(decode(&encode(&Metrics::new())).unwrap(), Metrics::new());
    }

    #[test]
    fn corrupt_blobs_are_errors_not_panics() {
        for blob in [
            &[][..],
            &[2],
            &[1, 5, 0, b'a'],
            &[1, 1, 0, b'a', 0, 0],
            &[1, 1, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0],
        ] {
            assert!(decode(blob).is_err(), "{blob:?}");
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;
        use crate::validate::strategies::{config, hostile_string, metric_value};

        /// Metric names as validation lets them through: 1..=255 bytes.
        fn metrics() -> impl Strategy<Value = Metrics> {
            let name = hostile_string().prop_filter("a valid name", |n| crate::validate::is_name(n));
            prop::collection::btree_map(name, metric_value(), 0..16)
        }

        proptest! {
            #![proptest_config(config(512))]

            #[test]
            fn every_value_round_trips_bit_for_bit(metrics in metrics()) {
                let decoded = decode(&encode(&metrics)).map_err(TestCaseError::fail)?;
                let bits = |m: &Metrics| m.iter().map(|(k, v)| (k.clone(), v.to_bits())).collect::<Vec<_>>();
                prop_assert_eq!(bits(&decoded), bits(&metrics));
            }

            #[test]
            fn arbitrary_blobs_decode_or_fail_without_panicking(
                metrics in metrics(),
                cut in any::<prop::sample::Index>(),
                noise in prop::collection::vec(any::<u8>(), 0..32),
            ) {
                let blob = encode(&metrics);
                let _ = decode(&blob[..cut.index(blob.len() + 1).min(blob.len())]);
                let _ = decode(&noise);
                let mut tampered = blob;
                tampered.extend_from_slice(&noise);
                let _ = decode(&tampered);
            }
        }
    }
}
