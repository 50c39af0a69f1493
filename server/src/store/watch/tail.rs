//! The shared tail: the epochs this process committed lately, per model
//! and batch, kept in memory once for all of its watchers, so that a
//! thousand watchers of a model cost one copy of each new epoch instead of
//! a thousand reads of it from the database.
//!
//! The tail only ever answers for batches it holds contiguously from a
//! watcher's position on (batch numbers are a model's commit-ordered
//! `epoch_seq`, one apart), and only while no other replica committed
//! epochs since the watcher last read the database ([`Tail::remote`]): a
//! batch it never saw (another replica's, one committed while no watcher
//! was open, one evicted) sends the watcher back to the database, so the
//! tail costs nothing in correctness, only memory, which is bounded.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::store::records::Epoch;

/// Batches kept per model, the newest.
const BATCHES_PER_MODEL: usize = 128;

/// Epochs kept in all, at most; past it the tail starts over empty.
const MAX_EPOCHS: usize = 200_000;

/// Batches larger than this are not kept (bulk loads): watchers read them
/// from the database.
const MAX_BATCH_EPOCHS: usize = 5_000;

/// One model's committed batch.
#[derive(Debug, Clone)]
pub struct TailBatch {
    /// The model's `epoch_seq` of the batch.
    pub seq: i64,
    /// Its epochs, in epoch_num order.
    pub epochs: Arc<[Epoch]>,
}

/// The recent batches of this process's commits.
#[derive(Debug, Default)]
pub struct Tail {
    models: Mutex<Models>,
    /// Commits of other replicas announced so far.
    remote: AtomicU64,
}

#[derive(Debug, Default)]
struct Models {
    batches: HashMap<i64, VecDeque<TailBatch>>,
    epochs: usize,
}

impl Tail {
    /// Keeps the batch `seq` of model `model_id`. Writers may hand in one
    /// model's batches out of order (they commit in parallel): each goes to
    /// its place.
    pub fn push(&self, model_id: i64, seq: i64, epochs: Arc<[Epoch]>) {
        let mut models = self.models.lock().unwrap_or_else(PoisonError::into_inner);
        if epochs.len() > MAX_BATCH_EPOCHS {
            // Not kept, and the model's older batches go too: a watcher
            // told of this batch must not take "nothing newer" for an answer.
            if let Some(held) = models.batches.remove(&model_id) {
                models.epochs -= held.iter().map(|batch| batch.epochs.len()).sum::<usize>();
            }
            return;
        }
        if models.epochs + epochs.len() > MAX_EPOCHS {
            models.batches.clear();
            models.epochs = 0;
        }
        models.epochs += epochs.len();
        let held = models.batches.entry(model_id).or_default();
        let at = held.partition_point(|batch| batch.seq < seq);
        if held.get(at).is_some_and(|batch| batch.seq == seq) {
            models.epochs -= epochs.len();
            return;
        }
        held.insert(at, TailBatch { seq, epochs });
        let mut dropped = 0;
        while held.len() > BATCHES_PER_MODEL {
            dropped += held.pop_front().map_or(0, |batch| batch.epochs.len());
        }
        models.epochs -= dropped;
    }

    /// Every batch of `model_id` after batch `seq`, if the tail holds all
    /// of them from `seq + 1` on without a gap (an empty list: it holds
    /// none after `seq`, and none is missing before its newest); `None`
    /// when it cannot tell.
    pub fn after(&self, model_id: i64, seq: i64) -> Option<Vec<TailBatch>> {
        let models = self.models.lock().unwrap_or_else(PoisonError::into_inner);
        let held = models.batches.get(&model_id)?;
        let newer: Vec<TailBatch> = held.iter().filter(|batch| batch.seq > seq).cloned().collect();
        let contiguous = newer
            .iter()
            .zip(seq + 1..)
            .all(|(batch, expected)| batch.seq == expected);
        contiguous.then_some(newer)
    }

    /// Another replica committed epochs (its notification arrived).
    pub fn remote_commit(&self) {
        self.remote.fetch_add(1, Ordering::AcqRel);
    }

    /// How many commits of other replicas were announced so far: a watcher
    /// that last read the database at another count may lack some.
    pub fn remote(&self) -> u64 {
        self.remote.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(nums: &[i64]) -> Arc<[Epoch]> {
        nums.iter()
            .map(|&epoch_num| Epoch {
                model_name: "m".into(),
                epoch_num,
                metrics: Default::default(),
                steps_per_epoch: None,
                validation_steps_per_epoch: None,
                recorded_at: 0,
            })
            .collect()
    }

    fn seqs(batches: &[TailBatch]) -> Vec<i64> {
        batches.iter().map(|batch| batch.seq).collect()
    }

    #[test]
    fn answers_only_without_a_gap() {
        let tail = Tail::default();
        assert!(tail.after(1, 0).is_none(), "a model it never saw");
        tail.push(1, 2, batch(&[2]));
        tail.push(1, 4, batch(&[4]));
        assert!(tail.after(1, 0).is_none(), "batch 1 missing");
        assert!(tail.after(1, 2).is_none(), "batch 3 missing");
        assert_eq!(seqs(&tail.after(1, 4).unwrap()), Vec::<i64>::new());
        // Batch 3 arrives late (another writer thread).
        tail.push(1, 3, batch(&[3]));
        assert_eq!(seqs(&tail.after(1, 1).unwrap()), [2, 3, 4]);
        assert_eq!(seqs(&tail.after(1, 3).unwrap()), [4]);
        tail.push(1, 3, batch(&[3]));
        assert_eq!(
            seqs(&tail.after(1, 1).unwrap()),
            [2, 3, 4],
            "a repeat is kept once"
        );
    }

    #[test]
    fn keeps_the_newest_batches_within_bounds() {
        let tail = Tail::default();
        let pushed = 3 * BATCHES_PER_MODEL as i64;
        for seq in 1..=pushed {
            tail.push(7, seq, batch(&[seq]));
        }
        let first_held = pushed - BATCHES_PER_MODEL as i64 + 1;
        assert!(tail.after(7, first_held - 2).is_none(), "evicted");
        assert_eq!(tail.after(7, first_held - 1).unwrap().len(), BATCHES_PER_MODEL);
        tail.push(8, 1, batch(&[1]));
        tail.push(8, 2, batch(&(0..MAX_BATCH_EPOCHS as i64 + 1).collect::<Vec<_>>()));
        assert!(
            tail.after(8, 1).is_none(),
            "a bulk batch is not kept, nor are the model's older ones"
        );
        let held = tail.models.lock().unwrap().epochs;
        assert_eq!(held, BATCHES_PER_MODEL);
    }
}
