//! Pacing sends under the Cloud API's throughput limit (80 messages per
//! second per business number by default; more after an upgrade). A token
//! bucket in its GCRA form: one timestamp, no background task, on tokio's
//! clock so tests run under `tokio::time::pause()`.
//!
//! A small hand-written limiter rather than `governor`: that crate waits on
//! its own clock, which paused tokio time cannot drive, and the worker
//! needs nothing beyond "wait for a slot".

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// An async rate limiter: at most `per_second` acquisitions per second on
/// average, with bursts of up to `burst` after a quiet period. Share it
/// (behind an `Arc`) between the tasks sending from one business number.
#[derive(Debug)]
pub struct RateLimiter {
    /// Time between two slots.
    interval: Duration,
    /// How far ahead of the steady pace a burst may run.
    tolerance: Duration,
    /// The theoretical arrival time of the next slot at the steady pace.
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// `per_second` on average, bursts of `burst`.
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        let interval = Duration::from_secs(1) / per_second.get();
        Self {
            interval,
            tolerance: interval * (burst.get() - 1),
            next: Mutex::new(None),
        }
    }

    /// `per_second`, with bursts of one second's worth.
    pub fn per_second(per_second: NonZeroU32) -> Self {
        Self::new(per_second, per_second)
    }

    /// Waits for a slot. Slots are handed out in call order; a caller that
    /// gives up waiting (its future dropped) still used its slot, which
    /// only makes the pace slightly more conservative.
    pub async fn acquire(&self) {
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes the next slot and says how long to wait for it.
    fn reserve(&self, now: Instant) -> Duration {
        // A poisoned lock only means another task panicked between two
        // plain assignments; the timestamp is still sound.
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let at = next.map_or(now, |next| next.max(now));
        *next = Some(at + self.interval);
        at.checked_sub(self.tolerance)
            .map_or(Duration::ZERO, |start| start.saturating_duration_since(now))
    }
}
