//! Decoded curves of recently read models, so that a compare or model page
//! read again (reloaded, shared, refreshed while runs train) does not read
//! and decode every epoch again: that is nearly all of the server's time
//! for a compare of 20 models x 10,000 epochs.
//!
//! An entry holds every metric of one model as of its `epoch_seq`, which
//! every insert of the model's epochs moves in the same transaction, on
//! any replica (and a purged model's id is never reused). A request that
//! finds the model at another `epoch_seq` reads only the epochs after the
//! cached ones when that accounts for all the new epochs (a run that kept
//! training), and every epoch otherwise. The cache is bounded by the
//! points it holds; the least recently used models leave first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// One metric of one model: its epochs and values, by epoch, shared with
/// the answers that show them (no copy per request).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct MetricPoints {
    pub metric: String,
    pub epochs: Arc<Vec<i64>>,
    pub values: Arc<Vec<f64>>,
}

/// Every metric of one model (by name), with what identifies the state
/// they were read in.
#[derive(Debug, Clone, Default)]
pub(crate) struct ModelPoints {
    /// The model's `epoch_seq` when read.
    pub seq: i64,
    /// Epochs read (each with any number of metrics).
    pub epoch_count: i64,
    /// The highest epoch read.
    pub max_epoch: Option<i64>,
    pub metrics: Vec<MetricPoints>,
}

impl ModelPoints {
    /// Points held, the measure of the cache's bound.
    fn points(&self) -> usize {
        self.metrics.iter().map(|m| m.epochs.len()).sum::<usize>().max(1)
    }
}

/// Most points the cache holds (16 bytes each): 2,000,000 is a compare of
/// 25 models x 10,000 epochs x 8 metrics, in about 32 MB.
pub(crate) const MAX_POINTS: usize = 2_000_000;

/// The cache (see the module comment).
#[derive(Debug)]
pub(crate) struct CurveCache {
    max_points: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<i64, Entry>,
    points: usize,
    clock: u64,
}

#[derive(Debug)]
struct Entry {
    model: Arc<ModelPoints>,
    last_used: u64,
}

impl Default for CurveCache {
    fn default() -> Self {
        Self::with_max_points(MAX_POINTS)
    }
}

impl CurveCache {
    pub(crate) fn with_max_points(max_points: usize) -> Self {
        Self {
            max_points,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The cached points of model `id`, whatever their `epoch_seq`.
    pub(crate) fn get(&self, id: i64) -> Option<Arc<ModelPoints>> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.clock += 1;
        let now = inner.clock;
        let entry = inner.entries.get_mut(&id)?;
        entry.last_used = now;
        Some(entry.model.clone())
    }

    /// Keeps `model` as model `id`'s points (replacing older ones), then
    /// drops the least recently used models beyond the bound; a model
    /// larger than the whole bound is not kept.
    pub(crate) fn put(&self, id: i64, model: Arc<ModelPoints>) {
        let points = model.points();
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = inner.entries.remove(&id) {
            inner.points -= old.model.points();
        }
        if points > self.max_points {
            return;
        }
        inner.clock += 1;
        let last_used = inner.clock;
        inner.entries.insert(id, Entry { model, last_used });
        inner.points += points;
        while inner.points > self.max_points {
            let Some((&oldest, _)) = inner.entries.iter().min_by_key(|(_, e)| e.last_used) else {
                break;
            };
            if let Some(gone) = inner.entries.remove(&oldest) {
                inner.points -= gone.model.points();
            }
        }
    }

    /// Points held now.
    #[cfg(test)]
    fn points(&self) -> usize {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(seq: i64, points: usize) -> Arc<ModelPoints> {
        Arc::new(ModelPoints {
            seq,
            epoch_count: points as i64,
            max_epoch: Some(points as i64),
            metrics: vec![MetricPoints {
                metric: "m".to_owned(),
                epochs: Arc::new((0..points as i64).collect()),
                values: Arc::new(vec![0.0; points]),
            }],
        })
    }

    #[test]
    fn the_least_recently_used_leave_first_and_the_bound_holds() {
        let cache = CurveCache::with_max_points(100);
        cache.put(1, model(1, 40));
        cache.put(2, model(1, 40));
        assert!(cache.get(1).is_some());
        cache.put(3, model(1, 40));
        assert!(cache.get(2).is_none(), "2 was used least recently");
        assert!(cache.get(1).is_some() && cache.get(3).is_some());
        assert_eq!(cache.points(), 80);
        cache.put(1, model(2, 10));
        assert_eq!(cache.get(1).unwrap().seq, 2);
        assert_eq!(cache.points(), 50);
        cache.put(4, model(1, 101));
        assert!(cache.get(4).is_none());
        assert_eq!(cache.points(), 50);
    }
}
