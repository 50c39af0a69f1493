//! [`AtomicHistogram`]: a Prometheus histogram recorded with atomic adds
//! only. prometheus-client's own `Histogram` takes a mutex per
//! observation; this one is on the path of every gRPC call and every
//! group-commit transaction, where 64 writers would queue on that lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// Upper bounds of latency histograms, in seconds: 0.5 ms to 10 s.
pub(crate) const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds of epochs-per-transaction histograms.
pub(crate) const EPOCHS: &[f64] = &[1.0, 10.0, 100.0, 1_000.0, 5_000.0, 20_000.0, 100_000.0];

/// A histogram over fixed bounds, recording integers in a unit of its own
/// (nanoseconds, epochs) that [`AtomicHistogram::scale`] turns into the
/// exposed one (seconds, epochs).
#[derive(Debug)]
pub(crate) struct AtomicHistogram {
    /// Upper bounds in the recorded unit, ascending.
    bounds: Box<[u64]>,
    /// Exposed bounds, ascending.
    exposed: &'static [f64],
    /// One count per bound, then the overflow (`+Inf`) bucket.
    counts: Box<[AtomicU64]>,
    /// Sum of the recorded values, in the recorded unit.
    sum: AtomicU64,
    /// Recorded units per exposed unit.
    scale: f64,
}

impl AtomicHistogram {
    /// A histogram of durations, exposed in seconds over `bounds`.
    pub(crate) fn seconds(bounds: &'static [f64]) -> Self {
        Self::new(bounds, 1e9)
    }

    /// A histogram of counts (epochs), exposed as they are.
    pub(crate) fn counts(bounds: &'static [f64]) -> Self {
        Self::new(bounds, 1.0)
    }

    fn new(exposed: &'static [f64], scale: f64) -> Self {
        Self {
            // Bounds are small constants: the casts are exact.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            bounds: exposed
                .iter()
                .map(|bound| (bound * scale).round() as u64)
                .collect(),
            exposed,
            counts: (0..=exposed.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            scale,
        }
    }

    /// Records `value` (in the recorded unit).
    pub(crate) fn observe(&self, value: u64) {
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Records a duration (for [`AtomicHistogram::seconds`]).
    pub(crate) fn observe_duration(&self, duration: Duration) {
        self.observe(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Observations so far.
    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.counts
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .sum()
    }
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // Read without a lock: a scrape racing an observation may see its
        // bucket without its sum, which the next scrape corrects.
        let buckets: Vec<(f64, u64)> = self
            .exposed
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.counts.iter().map(|count| count.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, count)| count).sum();
        #[allow(clippy::cast_precision_loss)]
        let sum = self.sum.load(Ordering::Relaxed) as f64 / self.scale;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::registry::Registry;

    use super::*;

    #[derive(Debug)]
    struct One(std::sync::Arc<AtomicHistogram>);

    impl prometheus_client::collector::Collector for One {
        fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder) -> std::fmt::Result {
            let metric =
                encoder.encode_descriptor("h_seconds", "A histogram.", None, MetricType::Histogram)?;
            self.0.encode(metric)
        }
    }

    #[test]
    fn buckets_are_cumulative_and_bounds_inclusive() {
        let histogram = std::sync::Arc::new(AtomicHistogram::seconds(&[0.001, 0.01]));
        histogram.observe_duration(Duration::from_micros(1_000));
        histogram.observe_duration(Duration::from_micros(5_000));
        histogram.observe_duration(Duration::from_secs(3));
        assert_eq!(histogram.count(), 3);
        let mut registry = Registry::default();
        registry.register_collector(Box::new(One(histogram)));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        for line in [
            "h_seconds_bucket{le=\"0.001\"} 1",
            "h_seconds_bucket{le=\"0.01\"} 2",
            "h_seconds_bucket{le=\"+Inf\"} 3",
            "h_seconds_sum 3.006",
            "h_seconds_count 3",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
