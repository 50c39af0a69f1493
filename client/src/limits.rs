//! The server's documented limits (see `mlmeta.proto`), and the splitting
//! of any number of epochs into requests that respect them.

use mlmeta_proto as pb;
use prost::Message;
use prost::encoding::encoded_len_varint;

use crate::error::{Error, Result};
use crate::types::NewEpoch;

/// Most epochs in one InsertEpochs request or StreamEpochs message.
pub const MAX_EPOCHS_PER_REQUEST: usize = 100_000;
/// Largest encoded message the server accepts or sends.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// Encoded bytes the client puts in one epoch-insert request at most
/// (unless a single epoch is larger): well under [`MAX_MESSAGE_BYTES`].
pub const REQUEST_BYTE_BUDGET: usize = 16 * 1024 * 1024;
/// Most rows in one page of a listing.
pub const MAX_PAGE_SIZE: u32 = 10_000;
/// Most models one best-model query returns.
pub const MAX_TOP_K: u32 = 1_000;
/// Longest name (of a record, group, class or metric), in bytes.
pub const MAX_NAME_BYTES: usize = 255;
/// Most metrics in one epoch.
pub const MAX_METRICS_PER_EPOCH: usize = 1_024;

/// Checks an epoch against the server's rules for epochs, so that the
/// epoch writer can refuse it when it is logged rather than fail a whole
/// batch later. The model name is the server's to check.
pub(crate) fn check_epoch(epoch: &NewEpoch) -> Result<()> {
    let invalid = |message: String| Err(Error::InvalidArgument { message });
    if epoch.epoch_num < 0 {
        return invalid(format!("epoch_num: must be >= 0, got {}", epoch.epoch_num));
    }
    for (field, steps) in [
        ("steps_per_epoch", epoch.steps_per_epoch),
        ("validation_steps_per_epoch", epoch.validation_steps_per_epoch),
    ] {
        if let Some(steps) = steps.filter(|s| *s < 0) {
            return invalid(format!(
                "epoch {}: {field}: must be >= 0, got {steps}",
                epoch.epoch_num
            ));
        }
    }
    if epoch.metrics.len() > MAX_METRICS_PER_EPOCH {
        return invalid(format!(
            "epoch {}: metrics: must hold at most {MAX_METRICS_PER_EPOCH} metrics, got {}",
            epoch.epoch_num,
            epoch.metrics.len()
        ));
    }
    for name in epoch.metrics.keys() {
        if let Some(rule) = name_rule(name) {
            return invalid(format!("epoch {}: metric name {name:?}: {rule}", epoch.epoch_num));
        }
    }
    Ok(())
}

/// The rule `name` breaks, if any: 1 to 255 bytes, no control characters.
fn name_rule(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".into());
    }
    if name.len() > MAX_NAME_BYTES {
        return Some(format!(
            "must be at most {MAX_NAME_BYTES} bytes, got {}",
            name.len()
        ));
    }
    name.chars().find(|c| c.is_control()).map(|c| {
        format!(
            "must not contain control characters, found U+{:04X}",
            u32::from(c)
        )
    })
}

/// Bytes `epoch` adds to an `InsertEpochsRequest` (field tag, length and
/// the message itself).
pub(crate) fn request_bytes(epoch: &pb::Epoch) -> usize {
    let len = epoch.encoded_len();
    1 + encoded_len_varint(len as u64) + len
}

/// Groups epochs, in order, into requests of at most `max_epochs` epochs
/// and `max_bytes` encoded bytes (an epoch larger than that alone goes
/// alone: the server then names the limit it breaks).
pub(crate) struct Requests<I: Iterator<Item = pb::Epoch>> {
    source: I,
    max_epochs: usize,
    max_bytes: usize,
    /// The epoch that did not fit in the previous request, with its size.
    carried: Option<(pb::Epoch, usize)>,
}

impl<I: Iterator<Item = pb::Epoch>> Requests<I> {
    /// Requests of `source` under the given limits (each at least 1).
    pub(crate) fn new(source: I, max_epochs: usize, max_bytes: usize) -> Self {
        Self {
            source,
            max_epochs: max_epochs.max(1),
            max_bytes: max_bytes.max(1),
            carried: None,
        }
    }
}

impl<I: Iterator<Item = pb::Epoch>> Iterator for Requests<I> {
    type Item = Vec<pb::Epoch>;

    fn next(&mut self) -> Option<Vec<pb::Epoch>> {
        let mut request = Vec::new();
        let mut bytes = 0;
        loop {
            let next = self.carried.take().or_else(|| {
                self.source.next().map(|epoch| {
                    let size = request_bytes(&epoch);
                    (epoch, size)
                })
            });
            let Some((epoch, size)) = next else {
                return (!request.is_empty()).then_some(request);
            };
            if !request.is_empty() && (request.len() >= self.max_epochs || bytes + size > self.max_bytes) {
                self.carried = Some((epoch, size));
                return Some(request);
            }
            bytes += size;
            request.push(epoch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(num: i64, metrics: usize) -> pb::Epoch {
        pb::Epoch {
            model_name: "model".into(),
            epoch_num: num,
            metrics: (0..metrics)
                .map(|i| (format!("metric_{i}"), i as f64 + 0.5))
                .collect(),
            ..pb::Epoch::default()
        }
    }

    #[test]
    fn request_bytes_match_the_encoded_request() {
        let epochs = vec![epoch(0, 0), epoch(1, 8), epoch(300, 1_000)];
        let total: usize = epochs.iter().map(request_bytes).sum();
        let request = pb::InsertEpochsRequest {
            columns: Vec::new(),
            project: String::new(),
            epochs,
        };
        assert_eq!(total, request.encoded_len());
        assert_eq!(total, request.encode_to_vec().len());
    }

    #[test]
    fn splits_by_count_keeping_order() {
        let requests: Vec<_> = Requests::new((0..25).map(|i| epoch(i, 1)), 10, usize::MAX).collect();
        let sizes: Vec<_> = requests.iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 5]);
        let nums: Vec<_> = requests.iter().flatten().map(|e| e.epoch_num).collect();
        assert_eq!(nums, (0..25).collect::<Vec<_>>());
    }

    #[test]
    fn splits_by_bytes() {
        let one = request_bytes(&epoch(5, 8));
        let requests: Vec<_> = Requests::new((5..15).map(|i| epoch(i, 8)), 1_000, one * 3).collect();
        assert!(requests.iter().all(|r| r.len() <= 3));
        for request in &requests {
            let bytes: usize = request.iter().map(request_bytes).sum();
            assert!(bytes <= one * 3);
        }
        assert_eq!(requests.iter().map(Vec::len).sum::<usize>(), 10);
    }

    #[test]
    fn an_oversized_epoch_goes_alone() {
        let big = epoch(1, 100);
        let limit = request_bytes(&big) / 2;
        let source = vec![epoch(0, 1), big, epoch(2, 1)];
        let sizes: Vec<_> = Requests::new(source.into_iter(), 10, limit)
            .map(|r| r.len())
            .collect();
        assert_eq!(sizes, [1, 1, 1]);
    }

    #[test]
    fn epochs_are_checked_like_the_server_does() {
        let ok = NewEpoch::new(0, [("loss", 1.0)])
            .with_steps(0)
            .with_validation_steps(10);
        assert!(check_epoch(&ok).is_ok());
        let message = |epoch: NewEpoch| match check_epoch(&epoch) {
            Err(Error::InvalidArgument { message }) => message,
            other => panic!("expected InvalidArgument, got {other:?}"),
        };
        assert!(message(NewEpoch::new(-1, [("loss", 1.0)])).contains("epoch_num: must be >= 0"));
        assert!(message(NewEpoch::new(1, [("loss", 1.0)]).with_steps(-2)).contains("steps_per_epoch"));
        assert!(message(NewEpoch::new(1, [("", 1.0)])).contains("must not be empty"));
        assert!(message(NewEpoch::new(1, [("a\u{7}", 1.0)])).contains("U+0007"));
        assert!(message(NewEpoch::new(1, [("x".repeat(256), 1.0)])).contains("at most 255 bytes"));
        assert!(check_epoch(&NewEpoch::new(1, [("x".repeat(255), 1.0)])).is_ok());
        let many = NewEpoch::new(2, (0..1_025).map(|i| (format!("m{i}"), 0.0)));
        assert!(message(many).contains("at most 1024 metrics"));
    }

    #[test]
    fn nothing_gives_no_request() {
        assert_eq!(Requests::new(std::iter::empty(), 10, 10).count(), 0);
    }
}
