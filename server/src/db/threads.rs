//! [`Threads`]: the store's background threads (epoch writers, watch
//! listener and notifier, sweeper, SQLite checkpointer), counted so that
//! shutdown can wait for them to finish.
//!
//! Each stops on its own once the last clone of the store is dropped; the
//! wait makes the SQLite checkpointer's last checkpoint and the closing of
//! every PostgreSQL connection happen before the server returns, not while
//! the process is exiting.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// A count of running background threads; clones share it.
#[derive(Clone, Default)]
pub struct Threads {
    running: Arc<(Mutex<usize>, Condvar)>,
}

impl Threads {
    /// Spawns `work` on a thread named `name`, counted until it returns
    /// (and has dropped what it owned: its connections).
    pub(crate) fn spawn(&self, name: String, work: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        let counted = Running::enter(self);
        thread::Builder::new().name(name).spawn(move || {
            let _counted = counted;
            work();
        })?;
        Ok(())
    }

    /// Waits at most `limit` for every thread to finish; `false` if some
    /// still run.
    pub fn wait(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let (count, finished) = &*self.running;
        let mut running = count.lock().unwrap_or_else(PoisonError::into_inner);
        while *running > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            running = finished
                .wait_timeout(running, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// Counts one thread while it lives. Taken before the thread is spawned
/// so that a wait never misses one that has not started yet; a thread that
/// fails to spawn drops it at once.
struct Running(Threads);

impl Running {
    fn enter(threads: &Threads) -> Self {
        *threads.running.0.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        Self(threads.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let (count, finished) = &*self.0.running;
        let mut running = count.lock().unwrap_or_else(PoisonError::into_inner);
        *running = running.saturating_sub(1);
        finished.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn wait_returns_once_every_thread_has_finished() {
        let threads = Threads::default();
        let (stop, stopped) = mpsc::channel::<()>();
        threads
            .spawn("t".to_owned(), move || {
                let _ = stopped.recv();
            })
            .unwrap();
        assert!(!threads.wait(Duration::from_millis(50)), "still running");
        drop(stop);
        assert!(threads.wait(Duration::from_secs(10)));
    }
}
