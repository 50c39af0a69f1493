//! The state an [`EpochWriter`](crate::EpochWriter) shares with its
//! background task: epochs waiting to be sent, cut into batches, and the
//! room left in the buffer.

use std::collections::VecDeque;
use std::mem;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::{Notify, Semaphore};

use crate::error::{Error, Result};
use crate::types::NewEpoch;

/// Epochs to send together, in the order they were logged.
pub(super) struct Batch {
    /// The epochs.
    pub epochs: Vec<NewEpoch>,
    /// How many epochs had been logged when the last of them was: once
    /// this batch is stored, every epoch logged up to then is.
    pub end: u64,
}

/// What the background task should do next.
pub(super) enum Next {
    /// Send this batch.
    Send(Batch),
    /// Nothing to send yet: wait for a wake-up or the next tick.
    Wait,
    /// The writer was closed or dropped and everything has been sent.
    Finish,
}

struct State {
    /// Epochs logged since the last cut.
    current: Vec<NewEpoch>,
    /// Batches cut and not yet taken by the background task.
    ready: VecDeque<Batch>,
    /// Epochs logged since the start.
    logged: u64,
    /// The permanent error that stopped the writer.
    failed: Option<Error>,
    /// Whether `close` was called or the writer dropped.
    closing: bool,
}

/// See the module documentation.
pub(super) struct Buffer {
    state: Mutex<State>,
    /// Wakes the background task: a batch is ready, or a flush or close
    /// was asked for.
    pub wake: Notify,
    /// One permit per epoch that may still be logged before the buffer is
    /// full; given back once the epoch is stored. Closed on failure.
    pub room: Semaphore,
    batch_size: usize,
}

impl Buffer {
    pub(super) fn new(batch_size: usize, capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                current: Vec::with_capacity(batch_size),
                ready: VecDeque::new(),
                logged: 0,
                failed: None,
                closing: false,
            }),
            wake: Notify::new(),
            room: Semaphore::new(capacity),
            batch_size,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding the lock; if some did, the state is
        // still consistent (every change is a single push or swap).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Buffers `epoch`, whose room was already taken from
    /// [`Buffer::room`]; wakes the background task when a batch is full.
    pub(super) fn push(&self, epoch: NewEpoch) -> Result<()> {
        let mut state = self.lock();
        if let Some(error) = &state.failed {
            return Err(error.clone());
        }
        state.current.push(epoch);
        state.logged += 1;
        if state.current.len() >= self.batch_size {
            Self::cut(&mut state, self.batch_size);
            drop(state);
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Moves the epochs logged since the last cut into a ready batch.
    fn cut(state: &mut State, batch_size: usize) {
        if state.current.is_empty() {
            return;
        }
        let epochs = mem::replace(&mut state.current, Vec::with_capacity(batch_size));
        let end = state.logged;
        state.ready.push_back(Batch { epochs, end });
    }

    /// Cuts what was logged so far into a batch to send now; returns how
    /// many epochs have been logged (what a flush waits for).
    pub(super) fn flush(&self) -> Result<u64> {
        let mut state = self.lock();
        if let Some(error) = &state.failed {
            return Err(error.clone());
        }
        Self::cut(&mut state, self.batch_size);
        let logged = state.logged;
        drop(state);
        self.wake.notify_one();
        Ok(logged)
    }

    /// Sends what is left and lets the background task finish.
    pub(super) fn close(&self) {
        let mut state = self.lock();
        state.closing = true;
        Self::cut(&mut state, self.batch_size);
        drop(state);
        self.wake.notify_one();
    }

    /// Cuts a partial batch (the flush interval passed).
    pub(super) fn tick(&self) {
        Self::cut(&mut self.lock(), self.batch_size);
    }

    /// The next batch to send: the oldest ready one, merged with those
    /// after it while the total stays within `max_epochs` (when the
    /// server is slower than the trainer, fewer and larger requests).
    pub(super) fn next(&self, max_epochs: usize) -> Next {
        let mut state = self.lock();
        let Some(mut batch) = state.ready.pop_front() else {
            return if state.closing && state.current.is_empty() {
                Next::Finish
            } else {
                Next::Wait
            };
        };
        while let Some(following) = state.ready.front() {
            if batch.epochs.len() + following.epochs.len() > max_epochs {
                break;
            }
            if let Some(following) = state.ready.pop_front() {
                batch.epochs.extend(following.epochs);
                batch.end = following.end;
            }
        }
        Next::Send(batch)
    }

    /// Stops the writer for good: drops every buffered epoch and wakes
    /// whoever waits for room, all of whom get `error`.
    pub(super) fn fail(&self, error: Error) {
        let mut state = self.lock();
        state.failed = Some(error);
        state.current = Vec::new();
        state.ready.clear();
        drop(state);
        self.room.close();
    }

    /// The error that stopped the writer ([`Error::WriterStopped`] if
    /// none was recorded).
    pub(super) fn failure(&self) -> Error {
        self.lock().failed.clone().unwrap_or(Error::WriterStopped)
    }

    /// Epochs logged since the start.
    pub(super) fn logged(&self) -> u64 {
        self.lock().logged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(num: i64) -> NewEpoch {
        NewEpoch::new(num, [("m", 1.0)])
    }

    fn send(next: Next) -> Batch {
        match next {
            Next::Send(batch) => batch,
            Next::Wait => panic!("expected a batch, got Wait"),
            Next::Finish => panic!("expected a batch, got Finish"),
        }
    }

    #[test]
    fn full_batches_are_cut_and_merged_up_to_the_limit() {
        let buffer = Buffer::new(3, 100);
        for i in 0..10 {
            buffer.push(epoch(i)).unwrap();
        }
        assert!(matches!(buffer.next(0), Next::Send(_)));
        let batch = send(buffer.next(6));
        let nums: Vec<_> = batch.epochs.iter().map(|e| e.epoch_num).collect();
        assert_eq!(nums, [3, 4, 5, 6, 7, 8]);
        assert_eq!(batch.end, 9);
        assert!(matches!(buffer.next(100), Next::Wait));
        assert_eq!(buffer.flush().unwrap(), 10);
        let last = send(buffer.next(100));
        assert_eq!(last.epochs.len(), 1);
        assert_eq!(last.end, 10);
    }

    #[test]
    fn closing_finishes_after_the_last_batch() {
        let buffer = Buffer::new(10, 100);
        buffer.push(epoch(0)).unwrap();
        buffer.close();
        assert_eq!(send(buffer.next(100)).end, 1);
        assert!(matches!(buffer.next(100), Next::Finish));
    }

    #[test]
    fn ticks_cut_partial_batches() {
        let buffer = Buffer::new(10, 100);
        buffer.tick();
        assert!(matches!(buffer.next(100), Next::Wait));
        buffer.push(epoch(0)).unwrap();
        buffer.push(epoch(1)).unwrap();
        buffer.tick();
        assert_eq!(send(buffer.next(100)).epochs.len(), 2);
    }

    #[test]
    fn failure_drops_everything_and_is_reported() {
        let buffer = Buffer::new(2, 100);
        for i in 0..5 {
            buffer.push(epoch(i)).unwrap();
        }
        let error = Error::NotFound {
            message: "model".into(),
        };
        buffer.fail(error.clone());
        assert_eq!(buffer.push(epoch(9)), Err(error.clone()));
        assert_eq!(buffer.flush(), Err(error.clone()));
        assert_eq!(buffer.failure(), error);
        assert!(buffer.room.try_acquire().is_err());
        buffer.close();
        assert!(matches!(buffer.next(100), Next::Finish));
    }
}
