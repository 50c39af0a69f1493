//! The columnar form of epochs (`EpochColumns`): checks a column set and
//! turns it into the store's [`NewEpoch`] rows, so that the store sees the
//! same values whichever form a client sent.

use mlmeta_proto as pb;

use crate::error::Error;
use crate::store::records::{Metrics, NewEpoch};
use crate::validate;

type Result<T> = std::result::Result<T, Error>;

/// Most metric columns in one column set: the row form's limit of metrics
/// per epoch, applied to the set (every epoch may have every metric).
pub const MAX_METRIC_COLUMNS: usize = validate::MAX_METRICS_PER_EPOCH;

/// Appends the epochs of `columns` (the column set at `field`, such as
/// `columns[2]`) to `out`, in the order of its `epoch_nums`. Nothing is
/// appended unless the whole set is valid.
pub fn append_epochs(field: &str, columns: pb::EpochColumns, out: &mut Vec<NewEpoch>) -> Result<()> {
    let n = columns.epoch_nums.len();
    validate::name(|| format!("{field}.model_name"), &columns.model_name)?;
    for (i, &epoch_num) in columns.epoch_nums.iter().enumerate() {
        validate::non_negative(|| format!("{field}.epoch_nums[{i}]"), epoch_num)?;
    }
    let metrics = metric_columns(field, &columns.metrics, n)?;
    let steps = StepColumn::new(
        &format!("{field}.steps_per_epoch"),
        &columns.steps_per_epoch,
        &columns.steps_per_epoch_present,
        n,
    )?;
    let validation_steps = StepColumn::new(
        &format!("{field}.validation_steps_per_epoch"),
        &columns.validation_steps_per_epoch,
        &columns.validation_steps_per_epoch_present,
        n,
    )?;
    out.reserve(n);
    for (i, &epoch_num) in columns.epoch_nums.iter().enumerate() {
        out.push(NewEpoch {
            model_name: columns.model_name.clone(),
            epoch_num,
            metrics: metrics_of_epoch(&metrics, i),
            steps_per_epoch: steps.get(i),
            validation_steps_per_epoch: validation_steps.get(i),
            recorded_at: None,
        });
    }
    Ok(())
}

/// The metrics of epoch `i`: the value of each column that has one.
fn metrics_of_epoch(columns: &[Column<'_>], i: usize) -> Metrics {
    // The columns are sorted by name, so the map is built from a sorted
    // sequence (no rebalancing).
    columns
        .iter()
        .filter(|column| column.present.has(i))
        .map(|column| (column.name.to_owned(), column.values[i]))
        .collect()
}

/// A checked metric column.
struct Column<'a> {
    name: &'a str,
    values: &'a [f64],
    present: Present<'a>,
}

/// Checks the metric columns of a set of `n` epochs; returns them sorted
/// by name.
fn metric_columns<'a>(field: &str, metrics: &'a [pb::MetricColumn], n: usize) -> Result<Vec<Column<'a>>> {
    if metrics.len() > MAX_METRIC_COLUMNS {
        return Err(Error::invalid(
            format!("{field}.metrics"),
            format!(
                "must hold at most {MAX_METRIC_COLUMNS} metric columns, got {}",
                metrics.len()
            ),
        ));
    }
    let mut columns = Vec::with_capacity(metrics.len());
    for (j, metric) in metrics.iter().enumerate() {
        let at = || format!("{field}.metrics[{j}]");
        validate::name(|| format!("{}.name", at()), &metric.name)?;
        if metric.values.len() != n {
            return Err(Error::invalid(
                format!("{}.values", at()),
                format!(
                    "must hold one value per epoch ({n}, as epoch_nums), got {}",
                    metric.values.len()
                ),
            ));
        }
        let present = Present::new(&metric.present, n)
            .map_err(|rule| Error::invalid(format!("{}.present", at()), rule))?;
        columns.push((
            j,
            Column {
                name: &metric.name,
                values: &metric.values,
                present,
            },
        ));
    }
    columns.sort_by(|(_, a), (_, b)| a.name.cmp(b.name));
    if let Some(pair) = columns.windows(2).find(|pair| pair[0].1.name == pair[1].1.name) {
        let (first, second) = (pair[0].0.min(pair[1].0), pair[0].0.max(pair[1].0));
        return Err(Error::invalid(
            format!("{field}.metrics[{second}].name"),
            format!(
                "repeats the metric {} of metrics[{first}]; each metric has one column per column set",
                validate::echo(pair[0].1.name)
            ),
        ));
    }
    Ok(columns.into_iter().map(|(_, column)| column).collect())
}

/// A checked step-count column: no counts, or one per epoch with a
/// bitmap of which ones are set.
struct StepColumn<'a> {
    values: &'a [i64],
    present: Present<'a>,
}

impl<'a> StepColumn<'a> {
    fn new(field: &str, values: &'a [i64], present: &'a [u8], n: usize) -> Result<Self> {
        if values.is_empty() && n > 0 {
            if !present.is_empty() {
                return Err(Error::invalid(
                    format!("{field}_present"),
                    format!("must be empty when {field} is (no epoch has a count)"),
                ));
            }
            return Ok(Self {
                values,
                present: Present::Nowhere,
            });
        }
        if values.len() != n {
            return Err(Error::invalid(
                field,
                format!(
                    "must be empty or hold one count per epoch ({n}, as epoch_nums), got {}",
                    values.len()
                ),
            ));
        }
        let present =
            Present::new(present, n).map_err(|rule| Error::invalid(format!("{field}_present"), rule))?;
        for (i, &count) in values.iter().enumerate() {
            if present.has(i) {
                validate::non_negative(|| format!("{field}[{i}]"), count)?;
            }
        }
        Ok(Self { values, present })
    }

    fn get(&self, i: usize) -> Option<i64> {
        self.present.has(i).then(|| self.values[i])
    }
}

/// Which epochs of a column have a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Present<'a> {
    /// Every epoch (an empty bitmap).
    Everywhere,
    /// No epoch (a step column without counts).
    Nowhere,
    /// Bit i % 8 of byte i / 8, least significant bit first.
    Bits(&'a [u8]),
}

impl<'a> Present<'a> {
    /// Reads the bitmap of a column of `n` epochs; `Err` holds the rule it
    /// breaks.
    fn new(bitmap: &'a [u8], n: usize) -> std::result::Result<Self, String> {
        if bitmap.is_empty() {
            return Ok(Self::Everywhere);
        }
        let expected = n.div_ceil(8);
        if bitmap.len() != expected {
            return Err(format!(
                "must be empty (every epoch has a value) or a bitmap of one bit per epoch: {expected} bytes for {n} epochs, got {}",
                bitmap.len()
            ));
        }
        let used_bits = n % 8;
        if let Some(&last) = bitmap.last()
            && used_bits != 0
            && last >> used_bits != 0
        {
            return Err(format!(
                "bits past the last epoch (bit {used_bits} and up of the last byte) must be 0, got byte {last:#04x}"
            ));
        }
        Ok(Self::Bits(bitmap))
    }

    /// Whether epoch `i` (below the column's length) has a value.
    fn has(self, i: usize) -> bool {
        match self {
            Self::Everywhere => true,
            Self::Nowhere => false,
            Self::Bits(bits) => bits[i / 8] >> (i % 8) & 1 == 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(bitmap: &[u8], n: usize) -> String {
        match Present::new(bitmap, n) {
            Err(rule) => rule,
            Ok(present) => panic!("expected a broken rule, got {present:?}"),
        }
    }

    #[test]
    fn an_empty_bitmap_means_every_epoch() {
        let present = Present::new(&[], 20).unwrap();
        assert!((0..20).all(|i| present.has(i)));
    }

    #[test]
    fn bits_are_read_least_significant_first() {
        // Epochs 0, 2, 8 and 9 of 10.
        let present = Present::new(&[0b0000_0101, 0b0000_0011], 10).unwrap();
        let set: Vec<usize> = (0..10).filter(|&i| present.has(i)).collect();
        assert_eq!(set, [0, 2, 8, 9]);
    }

    #[test]
    fn a_full_last_byte_has_no_padding() {
        let present = Present::new(&[0xff, 0x80], 16).unwrap();
        assert!(present.has(15));
        assert!(!present.has(14));
    }

    #[test]
    fn the_bitmap_length_is_exact() {
        assert!(rule(&[0xff], 9).contains("2 bytes for 9 epochs, got 1"));
        assert!(rule(&[0xff, 0x01, 0], 9).contains("2 bytes for 9 epochs, got 3"));
        assert!(rule(&[0], 0).contains("0 bytes for 0 epochs, got 1"));
        assert!(Present::new(&[0xff, 0x01], 9).is_ok());
    }

    #[test]
    fn padding_bits_must_be_zero() {
        assert!(rule(&[0b0000_1000], 3).contains("bit 3 and up"));
        assert!(Present::new(&[0b0000_0111], 3).is_ok());
    }

    fn column(name: &str, values: Vec<f64>, present: Vec<u8>) -> pb::MetricColumn {
        pb::MetricColumn {
            name: name.into(),
            values,
            present,
        }
    }

    fn decode(columns: pb::EpochColumns) -> Result<Vec<NewEpoch>> {
        let mut out = Vec::new();
        append_epochs("columns[0]", columns, &mut out).map(|()| out)
    }

    #[test]
    fn columns_become_rows() {
        let epochs = decode(pb::EpochColumns {
            model_name: "m".into(),
            epoch_nums: vec![4, 5, 6],
            metrics: vec![
                column("loss", vec![0.5, f64::NAN, 0.25], vec![]),
                column("acc", vec![0.0, 0.9, f64::INFINITY], vec![0b110]),
            ],
            steps_per_epoch: vec![10, 0, 30],
            steps_per_epoch_present: vec![0b101],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(epochs.len(), 3);
        assert_eq!(epochs[0].epoch_num, 4);
        assert_eq!(epochs[0].metrics.keys().collect::<Vec<_>>(), ["loss"]);
        assert!(epochs[1].metrics["loss"].is_nan());
        assert_eq!(epochs[1].metrics["acc"], 0.9);
        assert_eq!(epochs[2].metrics["acc"], f64::INFINITY);
        let steps: Vec<_> = epochs.iter().map(|e| e.steps_per_epoch).collect();
        assert_eq!(steps, [Some(10), None, Some(30)]);
        assert!(epochs.iter().all(|e| e.validation_steps_per_epoch.is_none()));
    }

    #[test]
    fn a_repeated_metric_name_is_refused() {
        let error = decode(pb::EpochColumns {
            model_name: "m".into(),
            epoch_nums: vec![1],
            metrics: vec![
                column("loss", vec![1.0], vec![]),
                column("acc", vec![1.0], vec![]),
                column("loss", vec![2.0], vec![]),
            ],
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("columns[0].metrics[2].name: repeats the metric \"loss\" of metrics[0]"),
            "{error}"
        );
    }
}
