//! Latency percentiles, computed by sorting the measured durations.

use std::time::Duration;

/// Durations of individual calls.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    samples: Vec<Duration>,
}

impl Latencies {
    /// An empty set with room for `n` samples.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            samples: Vec::with_capacity(n),
        }
    }

    /// Adds one call's duration.
    pub fn push(&mut self, sample: Duration) {
        self.samples.push(sample);
    }

    /// Adds all samples of `other`.
    pub fn extend(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
    }

    /// Every sample in nanoseconds, in the order added.
    pub fn to_nanos(&self) -> Vec<u64> {
        self.samples
            .iter()
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .collect()
    }

    /// A set of samples given in nanoseconds.
    pub fn from_nanos(nanos: &[u64]) -> Self {
        Self {
            samples: nanos.iter().map(|&n| Duration::from_nanos(n)).collect(),
        }
    }

    /// The `p`-th percentile (0 < p <= 100, nearest rank); zero when empty.
    pub fn percentile(&mut self, p: f64) -> Duration {
        if self.samples.is_empty() {
            return Duration::ZERO;
        }
        self.samples.sort_unstable();
        let n = self.samples.len();
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        self.samples[rank.clamp(1, n) - 1]
    }
}

/// A duration in microseconds, as a float.
pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A duration in milliseconds, as a float.
pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `count` per second of `elapsed` (zero when nothing elapsed).
pub fn rate(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

/// Server CPU time per item, in µs, from two readings in seconds (`None`
/// when either is missing: the server was not spawned).
pub fn cpu_micros_per(before: Option<f64>, after: Option<f64>, items: u64) -> Option<f64> {
    Some((after? - before?) * 1e6 / items.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut l = Latencies::default();
        for ms in (1..=100).rev() {
            l.push(Duration::from_millis(ms));
        }
        assert_eq!(l.percentile(50.0), Duration::from_millis(50));
        assert_eq!(l.percentile(99.0), Duration::from_millis(99));
        assert_eq!(l.percentile(100.0), Duration::from_millis(100));
        assert_eq!(Latencies::default().percentile(50.0), Duration::ZERO);
    }
}
