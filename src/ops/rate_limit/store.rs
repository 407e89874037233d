//! A governor state store with a fixed capacity: the least recently seen keys are forgotten.
//!
//! governor's own keyed stores (a `DashMap`) grow with every distinct key until someone calls
//! `retain_recent`, so a flood of distinct client addresses would grow memory without bound.
//! Here the bound holds at all times. Forgetting a key resets its limit (it starts again with a
//! full burst): the trade-off of any bounded limiter, acceptable because the keys forgotten
//! first are those seen least recently, and per-account backoff still guards each account.

use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};

use governor::nanos::Nanos;
use governor::state::StateStore;
use lru::LruCache;

pub struct LruStateStore<K: Hash + Eq> {
    states: Mutex<LruCache<K, Nanos>>,
}

impl<K: Hash + Eq> LruStateStore<K> {
    pub fn new(capacity: NonZeroUsize) -> Self {
        Self {
            states: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// Keys currently remembered.
    pub fn len(&self) -> usize {
        self.states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: Hash + Eq + Clone> StateStore for LruStateStore<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        // The lock makes read-decide-write atomic (governor's atomic stores use a CAS loop
        // instead). It is held for a few hash-map operations; nothing inside can panic half-way
        // through an update, so a poisoned lock still guards consistent data.
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        match states.get_mut(key) {
            Some(state) => {
                let (outcome, new) = f(Some(*state))?;
                *state = new;
                Ok(outcome)
            }
            None => {
                let (outcome, new) = f(None)?;
                states.put(key.clone(), new);
                Ok(outcome)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;
    use governor::middleware::NoOpMiddleware;
    use governor::nanos::Nanos;
    use governor::{Quota, RateLimiter};
    use std::num::NonZeroU32;

    type TestLimiter<K> =
        RateLimiter<K, LruStateStore<K>, FakeRelativeClock, NoOpMiddleware<Nanos>>;

    #[test]
    fn the_store_never_holds_more_keys_than_its_capacity() {
        let clock = FakeRelativeClock::default();
        let limiter = TestLimiter::new(
            Quota::per_minute(NonZeroU32::new(10).unwrap()),
            LruStateStore::new(NonZeroUsize::new(100).unwrap()),
            clock,
        );
        for key in 0..10_000u32 {
            assert!(limiter.check_key(&key).is_ok());
        }
        assert_eq!(limiter.into_state_store().len(), 100);
    }

    #[test]
    fn a_key_keeps_its_state_while_it_is_remembered() {
        let clock = FakeRelativeClock::default();
        let limiter = TestLimiter::new(
            Quota::per_minute(NonZeroU32::new(2).unwrap()),
            LruStateStore::new(NonZeroUsize::new(100).unwrap()),
            clock,
        );
        assert!(limiter.check_key(&"a").is_ok());
        assert!(limiter.check_key(&"a").is_ok());
        assert!(limiter.check_key(&"a").is_err(), "burst of 2 used up");
        assert!(
            limiter.check_key(&"b").is_ok(),
            "other keys are independent"
        );
    }
}
