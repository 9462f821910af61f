//! How long a worker waits before retrying a transient failure:
//! exponential backoff with full jitter (a uniformly random wait between
//! zero and the exponential bound), so workers that failed together do not
//! retry together. A `Retry-After` from the API is a floor.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with full jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The bound of the first retry's wait.
    pub base: Duration,
    /// The largest bound, however many attempts failed.
    pub max: Duration,
}

impl Default for Backoff {
    /// 1 s doubling to at most 5 min: Meta's pair rate limit allows one
    /// message to the same customer about every 6 s, its spam limit asks
    /// for minutes.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The bound for `attempt` (0 for the first retry): `base * 2^attempt`,
    /// at most `max`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(31));
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The wait before retry `attempt`: uniform in `[0, ceiling(attempt)]`,
    /// at least `retry_after` when the API gave one.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        self.delay_with(&mut rand::rng(), attempt, retry_after)
    }

    /// [`Backoff::delay`] with a given random source, for reproducible
    /// tests.
    pub fn delay_with<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        attempt: u32,
        retry_after: Option<Duration>,
    ) -> Duration {
        let ceiling = self.ceiling(attempt);
        let jittered = if ceiling.is_zero() {
            Duration::ZERO
        } else {
            ceiling.mul_f64(rng.random::<f64>())
        };
        jittered.max(retry_after.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn ceiling_doubles_up_to_max() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        assert_eq!(backoff.ceiling(0), Duration::from_millis(100));
        assert_eq!(backoff.ceiling(1), Duration::from_millis(200));
        assert_eq!(backoff.ceiling(3), Duration::from_millis(800));
        assert_eq!(backoff.ceiling(4), Duration::from_secs(1));
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn delays_stay_within_the_ceiling_and_vary() {
        let backoff = Backoff::default();
        let mut rng = StdRng::seed_from_u64(7);
        let delays: Vec<Duration> = (0..50).map(|_| backoff.delay_with(&mut rng, 3, None)).collect();
        assert!(delays.iter().all(|d| *d <= backoff.ceiling(3)));
        assert!(delays.windows(2).any(|w| w[0] != w[1]), "full jitter varies");
    }

    #[test]
    fn retry_after_is_a_floor() {
        let backoff = Backoff::default();
        let mut rng = StdRng::seed_from_u64(1);
        for attempt in 0..5 {
            let delay = backoff.delay_with(&mut rng, attempt, Some(Duration::from_secs(30)));
            assert!(delay >= Duration::from_secs(30));
        }
        // Even past max: the API knows best.
        assert_eq!(
            backoff.delay_with(&mut rng, 0, Some(Duration::from_secs(3600))),
            Duration::from_secs(3600)
        );
    }
}
