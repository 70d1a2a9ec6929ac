//! A circuit breaker per upstream: after `failures` consecutive failures it opens and refuses
//! for `cooldown`, then lets exactly one trial request through; the trial's outcome closes it
//! or opens it again.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// One upstream's breaker.
#[derive(Debug)]
pub struct Breaker {
    failures: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    consecutive: u32,
    open_until: Option<Instant>,
    trial_in_flight: bool,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(failures: u32, cooldown: Duration) -> Self {
        Self {
            failures,
            cooldown,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// May a request go to this upstream now?
    pub fn allow(&self) -> bool {
        let mut s = self.state();
        match s.open_until {
            None => true,
            Some(t) if Instant::now() < t || s.trial_in_flight => false,
            Some(_) => {
                s.trial_in_flight = true;
                true
            }
        }
    }

    /// Whether the breaker is refusing requests.
    pub fn is_open(&self) -> bool {
        self.state().open_until.is_some()
    }

    /// The upstream answered properly.
    pub fn success(&self) {
        *self.state() = State::default();
    }

    /// The upstream failed (transport error, timeout or 5xx).
    pub fn failure(&self) {
        let mut s = self.state();
        s.consecutive = s.consecutive.saturating_add(1);
        if s.consecutive >= self.failures || s.trial_in_flight {
            s.open_until = Some(Instant::now() + self.cooldown);
            s.trial_in_flight = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_failures_and_half_opens_after_cooldown() {
        let b = Breaker::new(2, Duration::from_secs(10));
        assert!(b.allow());
        b.failure();
        assert!(b.allow());
        b.failure();
        assert!(!b.allow(), "open after two failures");
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(b.allow(), "one trial after the cooldown");
        assert!(!b.allow(), "only one trial at a time");
        b.failure();
        assert!(!b.allow(), "a failed trial opens it again");
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(b.allow());
        b.success();
        assert!(b.allow() && b.allow(), "a good trial closes it");
    }
}
