//! Downsampling of metric curves for the page: largest-triangle-three-
//! buckets (Steinarsson, 2013) that also keeps each bucket's lowest and
//! highest point, so that spikes survive, and keeps non-finite values
//! (NaN, ±inf) as gap markers.
//!
//! A chart a thousand pixels wide cannot show 100,000 epochs; sending them
//! costs bandwidth and draw time for nothing. The page asks for about as
//! many points as it has pixels (`points`), and for every point
//! (`exact=1`) when it needs the exact values.

/// The indexes of the points of `(xs[i], ys[i])` to keep so that about
/// `target` remain (at most `target` finite points, plus one marker per
/// run of non-finite values), in increasing order. The first and last
/// points are always kept; a series of at most `target` points is kept
/// whole. `xs` must be increasing (epoch numbers are).
pub(crate) fn downsample(xs: &[f64], ys: &[f64], target: usize) -> Vec<usize> {
    let n = xs.len().min(ys.len());
    if n <= target.max(3) {
        return (0..n).collect();
    }
    let mut kept = Vec::with_capacity(target + 16);
    kept.push(0);
    // Up to three points per bucket (triangle winner, min, max): a third
    // of the target as buckets lands near `target` points.
    let buckets = (target.saturating_sub(2) / 3).max(1);
    let interior = n - 2;
    let bounds = |b: usize| 1 + b * interior / buckets;
    let mut previous = 0usize;
    for b in 0..buckets {
        let (start, end) = (bounds(b), bounds(b + 1));
        if start >= end {
            continue;
        }
        // The third vertex: the average of the next bucket's finite points
        // (the last point after the last bucket).
        let next = if b + 1 < buckets {
            average(xs, ys, bounds(b + 1), bounds(b + 2))
        } else {
            None
        }
        .unwrap_or((xs[n - 1], finite_or(ys[n - 1], ys[previous])));
        let mut bucket = Bucket::default();
        let mut in_gap = false;
        for i in start..end {
            if !ys[i].is_finite() {
                if !in_gap {
                    bucket.gaps.push(i);
                }
                in_gap = true;
                continue;
            }
            in_gap = false;
            bucket.consider(i, ys[i], area(xs, ys, previous, i, next));
        }
        let chosen = bucket.chosen();
        if let Some(&last_finite) = chosen.iter().rev().find(|&&i| ys[i].is_finite()) {
            previous = last_finite;
        }
        kept.extend(chosen);
    }
    kept.push(n - 1);
    kept.dedup();
    kept
}

/// What one bucket keeps.
#[derive(Default)]
struct Bucket {
    /// (index, area) of the point making the largest triangle.
    best: Option<(usize, f64)>,
    /// (index, value) of the lowest and highest finite points.
    min: Option<(usize, f64)>,
    max: Option<(usize, f64)>,
    /// The first index of each run of non-finite values.
    gaps: Vec<usize>,
}

impl Bucket {
    fn consider(&mut self, i: usize, y: f64, area: f64) {
        if self.best.is_none_or(|(_, best)| area > best) {
            self.best = Some((i, area));
        }
        if self.min.is_none_or(|(_, min)| y < min) {
            self.min = Some((i, y));
        }
        if self.max.is_none_or(|(_, max)| y > max) {
            self.max = Some((i, y));
        }
    }

    /// The kept indexes, increasing, without repeats.
    fn chosen(self) -> Vec<usize> {
        let mut chosen: Vec<usize> = [
            self.best.map(|b| b.0),
            self.min.map(|m| m.0),
            self.max.map(|m| m.0),
        ]
        .into_iter()
        .flatten()
        .chain(self.gaps)
        .collect();
        chosen.sort_unstable();
        chosen.dedup();
        chosen
    }
}

/// Twice the area of the triangle (a, i, next); twice is enough to compare.
fn area(xs: &[f64], ys: &[f64], a: usize, i: usize, (cx, cy): (f64, f64)) -> f64 {
    let (ax, ay) = (xs[a], ys[a]);
    ((ax - cx) * (ys[i] - ay) - (ax - xs[i]) * (cy - ay)).abs()
}

/// The average point of the finite values in `start..end`.
fn average(xs: &[f64], ys: &[f64], start: usize, end: usize) -> Option<(f64, f64)> {
    let (mut sx, mut sy, mut count) = (0.0, 0.0, 0u32);
    for i in start..end.min(xs.len()) {
        if ys[i].is_finite() {
            sx += xs[i];
            sy += ys[i];
            count += 1;
        }
    }
    (count > 0).then(|| (sx / f64::from(count), sy / f64::from(count)))
}

fn finite_or(value: f64, fallback: f64) -> f64 {
    if value.is_finite() { value } else { fallback }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize, f: impl Fn(usize) -> f64) -> (Vec<f64>, Vec<f64>) {
        ((0..n).map(|i| i as f64).collect(), (0..n).map(f).collect())
    }

    #[test]
    fn short_series_are_kept_whole() {
        let (xs, ys) = series(50, |i| i as f64);
        assert_eq!(downsample(&xs, &ys, 100), (0..50).collect::<Vec<_>>());
        assert_eq!(downsample(&xs, &ys, 50).len(), 50);
        assert!(downsample(&[], &[], 10).is_empty());
    }

    #[test]
    fn long_series_shrink_to_about_the_target_with_ends_and_order() {
        let (xs, ys) = series(100_000, |i| ((i as f64) / 500.0).sin());
        let kept = downsample(&xs, &ys, 2_000);
        assert!(kept.len() <= 2_000 && kept.len() >= 1_000, "{}", kept.len());
        assert_eq!(kept.first(), Some(&0));
        assert_eq!(kept.last(), Some(&99_999));
        assert!(kept.windows(2).all(|w| w[0] < w[1]), "increasing, no repeats");
    }

    #[test]
    fn spikes_survive_as_bucket_extremes() {
        let (xs, mut ys) = series(10_000, |_| 1.0);
        ys[4_321] = 1e6;
        ys[7_777] = -1e6;
        let kept = downsample(&xs, &ys, 300);
        assert!(kept.contains(&4_321) && kept.contains(&7_777), "{kept:?}");
    }

    #[test]
    fn non_finite_runs_are_kept_as_one_gap_marker_each() {
        let (xs, mut ys) = series(10_000, |i| i as f64);
        for y in &mut ys[5_000..5_500] {
            *y = f64::NAN;
        }
        ys[8_000] = f64::INFINITY;
        let kept = downsample(&xs, &ys, 200);
        let gaps: Vec<usize> = kept.iter().copied().filter(|&i| !ys[i].is_finite()).collect();
        // A run crossing bucket edges leaves one marker per bucket it
        // touches; each marker starts a run within its bucket.
        assert!(gaps.contains(&5_000) && gaps.contains(&8_000), "{gaps:?}");
        assert!(gaps.len() < 10, "{gaps:?}");
        assert!(gaps.iter().all(|&i| i == 8_000 || (5_000..5_500).contains(&i)));
    }

    #[test]
    fn all_nan_series_stay_small() {
        let (xs, ys) = series(10_000, |_| f64::NAN);
        let kept = downsample(&xs, &ys, 100);
        assert!(kept.len() <= 100, "{}", kept.len());
        assert_eq!((kept[0], kept[kept.len() - 1]), (0, 9_999));
    }

    #[test]
    fn a_straight_line_keeps_its_shape() {
        // Every kept point lies on the line: nothing is invented.
        let (xs, ys) = series(5_000, |i| 2.0 * i as f64 + 1.0);
        for i in downsample(&xs, &ys, 100) {
            assert_eq!(ys[i], 2.0 * xs[i] + 1.0);
        }
    }
}
