//! The columnar form of epochs (`EpochColumns`) for bulk writes: turning
//! epochs into column sets within the request limits, and back into rows
//! for a server that does not know columns.

use std::collections::HashSet;

use mlmeta_proto as pb;

use crate::limits::{MAX_EPOCHS_PER_REQUEST, Requests};
use crate::types::NewEpoch;

/// Epochs a request must hold at least to go as columns: a single epoch
/// goes as a row (the form every server knows, and as small).
pub(crate) const MIN_COLUMN_EPOCHS: usize = 2;

/// The epochs of one request, in either form.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Payload {
    /// One message per epoch.
    Rows(Vec<pb::Epoch>),
    /// One column set (one model).
    Columns(pb::EpochColumns),
}

impl Payload {
    /// The epochs of one request: as columns when `columns` allows it and
    /// there are enough of them, else as rows.
    pub(crate) fn new(model_name: &str, epochs: Vec<NewEpoch>, columns: bool) -> Self {
        if columns && epochs.len() >= MIN_COLUMN_EPOCHS {
            Self::Columns(to_columns(model_name, &epochs))
        } else {
            Self::Rows(
                epochs
                    .into_iter()
                    .map(|e| crate::convert::epoch_to_pb(model_name, e))
                    .collect(),
            )
        }
    }

    /// How many epochs it carries.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Rows(rows) => rows.len(),
            Self::Columns(columns) => columns.epoch_nums.len(),
        }
    }

    /// Whether it is in columnar form.
    pub(crate) fn is_columns(&self) -> bool {
        matches!(self, Self::Columns(_))
    }

    /// The rows and column sets of a request carrying it.
    pub(crate) fn into_parts(self) -> (Vec<pb::Epoch>, Vec<pb::EpochColumns>) {
        match self {
            Self::Rows(rows) => (rows, Vec::new()),
            Self::Columns(columns) => (Vec::new(), vec![columns]),
        }
    }

    /// The same epochs as rows, in requests of at most `max_bytes` each
    /// (columns are smaller than rows, so one request may become several).
    pub(crate) fn into_row_requests(self, max_bytes: usize) -> Vec<Vec<pb::Epoch>> {
        let rows = match self {
            Self::Rows(rows) => rows,
            Self::Columns(columns) => to_rows(&columns),
        };
        Requests::new(rows.into_iter(), MAX_EPOCHS_PER_REQUEST, max_bytes).collect()
    }
}

/// `epochs` of model `model_name` as one column set: a column per metric
/// name (in order of first appearance), with a presence bitmap only where
/// some epoch lacks the metric.
pub(crate) fn to_columns(model_name: &str, epochs: &[NewEpoch]) -> pb::EpochColumns {
    let n = epochs.len();
    let mut metrics: Vec<pb::MetricColumn> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, epoch) in epochs.iter().enumerate() {
        for (name, &value) in &epoch.metrics {
            let j = *index.entry(name.as_str()).or_insert_with(|| {
                metrics.push(pb::MetricColumn {
                    name: name.clone(),
                    values: vec![0.0; n],
                    present: vec![0; n.div_ceil(8)],
                });
                metrics.len() - 1
            });
            let column = &mut metrics[j];
            column.values[i] = value;
            column.present[i / 8] |= 1 << (i % 8);
        }
    }
    for column in &mut metrics {
        if is_full(&column.present, n) {
            column.present.clear();
        }
    }
    let (steps_per_epoch, steps_per_epoch_present) = step_column(epochs.iter().map(|e| e.steps_per_epoch));
    let (validation_steps_per_epoch, validation_steps_per_epoch_present) =
        step_column(epochs.iter().map(|e| e.validation_steps_per_epoch));
    pb::EpochColumns {
        model_name: model_name.to_owned(),
        epoch_nums: epochs.iter().map(|e| e.epoch_num).collect(),
        metrics,
        steps_per_epoch,
        steps_per_epoch_present,
        validation_steps_per_epoch,
        validation_steps_per_epoch_present,
    }
}

/// Whether a bitmap of `n` epochs has every bit set.
fn is_full(bitmap: &[u8], n: usize) -> bool {
    (0..n).all(|i| bitmap[i / 8] >> (i % 8) & 1 == 1)
}

/// A step-count column and its bitmap: empty when no epoch has a count,
/// the bitmap empty when every epoch has one.
fn step_column(counts: impl ExactSizeIterator<Item = Option<i64>>) -> (Vec<i64>, Vec<u8>) {
    let n = counts.len();
    let mut values = Vec::with_capacity(n);
    let mut present = vec![0_u8; n.div_ceil(8)];
    for (i, count) in counts.enumerate() {
        if count.is_some() {
            present[i / 8] |= 1 << (i % 8);
        }
        values.push(count.unwrap_or(0));
    }
    if present.iter().all(|&b| b == 0) {
        return (Vec::new(), Vec::new());
    }
    if is_full(&present, n) {
        present.clear();
    }
    (values, present)
}

/// The rows of a column set (for a server without columns).
pub(crate) fn to_rows(columns: &pb::EpochColumns) -> Vec<pb::Epoch> {
    let has = |bitmap: &[u8], i: usize| bitmap.is_empty() || bitmap[i / 8] >> (i % 8) & 1 == 1;
    let count =
        |values: &[i64], bitmap: &[u8], i: usize| (!values.is_empty() && has(bitmap, i)).then(|| values[i]);
    columns
        .epoch_nums
        .iter()
        .enumerate()
        .map(|(i, &epoch_num)| pb::Epoch {
            model_name: columns.model_name.clone(),
            epoch_num,
            metrics: columns
                .metrics
                .iter()
                .filter(|m| has(&m.present, i))
                .map(|m| (m.name.clone(), m.values[i]))
                .collect(),
            steps_per_epoch: count(&columns.steps_per_epoch, &columns.steps_per_epoch_present, i),
            validation_steps_per_epoch: count(
                &columns.validation_steps_per_epoch,
                &columns.validation_steps_per_epoch_present,
                i,
            ),
            recorded_at: None,
        })
        .collect()
}

/// Groups epochs, in order, into requests of at most `max_epochs` epochs
/// whose column sets stay within `max_bytes` encoded bytes (an upper
/// estimate: a column holds a value for every epoch of its request, so
/// metrics that few epochs have make requests smaller).
pub(crate) struct Chunks<I: Iterator<Item = NewEpoch>> {
    source: I,
    max_epochs: usize,
    max_bytes: usize,
    carried: Option<NewEpoch>,
}

impl<I: Iterator<Item = NewEpoch>> Chunks<I> {
    /// Chunks of `source` under the given limits (each at least 1).
    pub(crate) fn new(source: I, max_epochs: usize, max_bytes: usize) -> Self {
        Self {
            source,
            max_epochs: max_epochs.max(1),
            max_bytes: max_bytes.max(1),
            carried: None,
        }
    }
}

/// Bytes of a column set of `n` epochs and `columns` metric columns whose
/// names take `name_bytes`, at most: varint epoch numbers and step counts
/// (10 bytes each), a double and a bit per epoch per column, field
/// overhead.
fn column_bytes(n: usize, columns: usize, name_bytes: usize) -> usize {
    let per_epoch = 3 * 10 + 2;
    let per_column = 8 * n + n.div_ceil(8) + 24;
    64 + 3 * n.div_ceil(8) + n * per_epoch + columns * per_column + name_bytes
}

impl<I: Iterator<Item = NewEpoch>> Iterator for Chunks<I> {
    type Item = Vec<NewEpoch>;

    fn next(&mut self) -> Option<Vec<NewEpoch>> {
        let mut chunk: Vec<NewEpoch> = Vec::new();
        let mut names: HashSet<String> = HashSet::new();
        let mut name_bytes = 0;
        loop {
            let Some(epoch) = self.carried.take().or_else(|| self.source.next()) else {
                return (!chunk.is_empty()).then_some(chunk);
            };
            let new_names: Vec<&String> = epoch.metrics.keys().filter(|k| !names.contains(*k)).collect();
            let new_bytes: usize = new_names.iter().map(|k| k.len()).sum();
            let bytes = column_bytes(
                chunk.len() + 1,
                names.len() + new_names.len(),
                name_bytes + new_bytes,
            );
            if !chunk.is_empty() && (chunk.len() >= self.max_epochs || bytes > self.max_bytes) {
                self.carried = Some(epoch);
                return Some(chunk);
            }
            names.extend(new_names.into_iter().cloned());
            name_bytes += new_bytes;
            chunk.push(epoch);
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    fn epochs() -> Vec<NewEpoch> {
        vec![
            NewEpoch::new(0, [("loss", 1.0), ("acc", 0.5)]).with_steps(10),
            NewEpoch::new(1, [("loss", f64::NAN)]),
            NewEpoch::new(2, [("loss", f64::NEG_INFINITY), ("acc", 0.75)]).with_validation_steps(3),
        ]
    }

    #[test]
    fn columns_and_back_give_the_same_rows() {
        let columns = to_columns("m", &epochs());
        let loss = &columns.metrics[columns.metrics.iter().position(|m| m.name == "loss").unwrap()];
        assert!(loss.present.is_empty(), "every epoch has a loss");
        let acc = &columns.metrics[columns.metrics.iter().position(|m| m.name == "acc").unwrap()];
        assert_eq!(acc.present, [0b101]);
        assert_eq!(columns.steps_per_epoch_present, [0b001]);
        let rows = to_rows(&columns);
        let expected: Vec<pb::Epoch> = epochs()
            .into_iter()
            .map(|e| crate::convert::epoch_to_pb("m", e))
            .collect();
        assert_eq!(rows.len(), 3);
        for (row, want) in rows.iter().zip(&expected) {
            assert_eq!(row.epoch_num, want.epoch_num);
            assert_eq!(row.steps_per_epoch, want.steps_per_epoch);
            assert_eq!(row.validation_steps_per_epoch, want.validation_steps_per_epoch);
            assert_eq!(row.metrics.len(), want.metrics.len());
            for (name, value) in &want.metrics {
                assert_eq!(row.metrics[name].to_bits(), value.to_bits());
            }
        }
    }

    #[test]
    fn epochs_without_steps_send_no_step_column() {
        let columns = to_columns(
            "m",
            &[NewEpoch::new(0, [("a", 1.0)]), NewEpoch::new(1, [("a", 2.0)])],
        );
        assert!(columns.steps_per_epoch.is_empty() && columns.steps_per_epoch_present.is_empty());
        assert!(columns.validation_steps_per_epoch.is_empty());
    }

    #[test]
    fn the_byte_estimate_bounds_the_encoding() {
        let many: Vec<NewEpoch> = (0..1_000)
            .map(|i| {
                NewEpoch::new(i, (0..8).map(|j| (format!("metric_{j}"), i as f64)))
                    .with_steps(i64::MAX)
                    .with_validation_steps(i64::MAX)
            })
            .collect();
        let columns = to_columns("m", &many);
        let names: usize = columns.metrics.iter().map(|m| m.name.len()).sum();
        assert!(columns.encoded_len() <= column_bytes(1_000, 8, names + 1));
    }

    #[test]
    fn chunks_respect_both_limits() {
        let source = (0..25).map(|i| NewEpoch::new(i, [("loss", 1.0)]));
        let sizes: Vec<usize> = Chunks::new(source, 10, usize::MAX).map(|c| c.len()).collect();
        assert_eq!(sizes, [10, 10, 5]);
        let budget = column_bytes(4, 1, 4);
        let source = (0..10).map(|i| NewEpoch::new(i, [("loss", 1.0)]));
        let sizes: Vec<usize> = Chunks::new(source, 1_000, budget).map(|c| c.len()).collect();
        assert_eq!(sizes, [4, 4, 2]);
    }

    #[test]
    fn a_single_epoch_goes_as_a_row() {
        let one = Payload::new("m", vec![NewEpoch::new(0, [("a", 1.0)])], true);
        assert!(!one.is_columns());
        let two = Payload::new("m", epochs(), true);
        assert!(two.is_columns());
        assert_eq!(two.len(), 3);
        assert!(!Payload::new("m", epochs(), false).is_columns());
    }
}
