//! [`Throttle`]: at most one log line per period for events that can come
//! by the thousand (failed accepts, connections closed for silence), with
//! the count of those left out.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Lets one event in per period and counts the others.
#[derive(Debug)]
pub(crate) struct Throttle {
    every: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// Lets one event in per `every`.
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every,
            state: Mutex::default(),
        }
    }

    /// `Some(events left out since the last one let in)` when this event
    /// is to be logged, `None` when it is only counted.
    pub(crate) fn admit(&self) -> Option<u64> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match state.last {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                state.suppressed += 1;
                None
            }
            _ => {
                state.last = Some(now);
                Some(std::mem::take(&mut state.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_period_gets_through_with_the_count_of_the_others() {
        let throttle = Throttle::new(Duration::from_secs(1));
        let start = Instant::now();
        let at = |millis| start + Duration::from_millis(millis);
        assert_eq!(throttle.admit_at(at(0)), Some(0));
        assert_eq!(throttle.admit_at(at(10)), None);
        assert_eq!(throttle.admit_at(at(999)), None);
        assert_eq!(throttle.admit_at(at(1000)), Some(2));
        assert_eq!(throttle.admit_at(at(1500)), None);
        assert_eq!(throttle.admit_at(at(5000)), Some(1));
        assert_eq!(throttle.admit_at(at(7000)), Some(0));
    }
}
