//! Retry delays: exponential backoff with full jitter. Attempt `n` (1-based) waits a uniform
//! random time in `[0, min(cap, base × 2^(n-1))]`. Full jitter spreads the retries of jobs
//! that failed together (a provider outage) instead of bringing them back in one wave.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(3600),
        }
    }
}

impl Backoff {
    /// The longest delay after failed attempt `attempt` (1-based; 0 counts as 1).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(63);
        let factor = 1u64 << doublings;
        let base_ms = u64::try_from(self.base.as_millis()).unwrap_or(u64::MAX);
        let cap_ms = u64::try_from(self.cap.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(base_ms.saturating_mul(factor).min(cap_ms))
    }

    /// The delay before retrying after failed attempt `attempt`, drawn from `rng`.
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let ceiling_ms = u64::try_from(self.ceiling(attempt).as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rng.random_range(0..=ceiling_ms))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    const BACKOFF: Backoff = Backoff {
        base: Duration::from_millis(100),
        cap: Duration::from_secs(10),
    };

    #[test]
    fn the_ceiling_doubles_with_each_attempt() {
        let ceilings: Vec<_> = (1..=5).map(|a| BACKOFF.ceiling(a).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1600]);
    }

    #[test]
    fn the_ceiling_is_capped_even_for_absurd_attempts() {
        assert_eq!(BACKOFF.ceiling(8), Duration::from_secs(10));
        assert_eq!(BACKOFF.ceiling(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn delays_are_jittered_over_the_whole_range() {
        let mut rng = StdRng::seed_from_u64(7);
        let delays: Vec<_> = (0..200).map(|_| BACKOFF.delay(4, &mut rng)).collect();
        let ceiling = BACKOFF.ceiling(4);
        assert!(delays.iter().all(|d| *d <= ceiling));
        let min = delays.iter().min().copied().unwrap_or_default();
        let max = delays.iter().max().copied().unwrap_or_default();
        assert!(min < ceiling / 4, "min {min:?}");
        assert!(max > ceiling * 3 / 4, "max {max:?}");
    }

    #[test]
    fn delays_grow_on_average() {
        let mut rng = StdRng::seed_from_u64(11);
        let mean = |attempt, rng: &mut StdRng| {
            (0..500)
                .map(|_| BACKOFF.delay(attempt, rng).as_millis())
                .sum::<u128>()
                / 500
        };
        let early = mean(1, &mut rng);
        let late = mean(5, &mut rng);
        assert!(late > early * 8, "early {early} late {late}");
    }

    #[test]
    fn the_same_seed_gives_the_same_delays() {
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (1..10)
                .map(|a| BACKOFF.delay(a, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
    }
}
