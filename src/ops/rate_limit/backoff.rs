//! Per-account backoff after failed sign-ins.
//!
//! The per-address limit slows one client down; this slows down guessing one account's password
//! from many addresses. After `free_failures` consecutive failures each further failure locks
//! the account name for `base × 2^k` (capped). While locked, attempts are refused before the
//! password is checked (no argon2 work for an attacker to trigger). The key is the email as
//! typed, normalised, whether or not such a user exists, so the answer reveals nothing about
//! which accounts exist.

use std::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, Reference};
use lru::LruCache;

use super::RateLimitSettings;

/// Longest account key kept (an email is at most 254 characters).
const MAX_KEY_CHARS: usize = 320;

struct Failures<I> {
    count: u32,
    last: I,
    locked_until: Option<I>,
}

pub struct LoginBackoff<C: Clock = DefaultClock> {
    accounts: Mutex<LruCache<String, Failures<C::Instant>>>,
    free_failures: u32,
    base: Duration,
    max: Duration,
    clock: C,
}

impl LoginBackoff<DefaultClock> {
    pub fn new(settings: &RateLimitSettings) -> Self {
        Self::with_clock(settings, DefaultClock::default())
    }
}

/// The key of an account name: trimmed, lower-cased, bounded in length.
fn account_key(email: &str) -> String {
    email
        .trim()
        .to_lowercase()
        .chars()
        .take(MAX_KEY_CHARS)
        .collect()
}

impl<C: Clock> LoginBackoff<C> {
    pub fn with_clock(settings: &RateLimitSettings, clock: C) -> Self {
        let capacity = NonZeroUsize::new(settings.max_tracked_keys).unwrap_or(NonZeroUsize::MIN);
        Self {
            accounts: Mutex::new(LruCache::new(capacity)),
            free_failures: settings.login_free_failures,
            base: Duration::from_secs(settings.login_backoff_base_secs),
            max: Duration::from_secs(settings.login_backoff_max_secs),
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, Failures<C::Instant>>> {
        // Each critical section is a few map operations that cannot leave the map half-updated.
        self.accounts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `Err(wait)` while the account is locked.
    pub fn check(&self, email: &str) -> Result<(), Duration> {
        let now = self.clock.now();
        let accounts = self.lock();
        match accounts
            .peek(&account_key(email))
            .and_then(|f| f.locked_until)
        {
            Some(until) if until > now => Err(until.duration_since(now).into()),
            _ => Ok(()),
        }
    }

    /// Records a failed attempt; returns the lock it caused, if any.
    pub fn failed(&self, email: &str) -> Option<Duration> {
        let now = self.clock.now();
        let mut accounts = self.lock();
        let key = account_key(email);
        let failures = match accounts.get_mut(&key) {
            // A quiet spell as long as the longest lock forgives earlier failures.
            Some(f) if Duration::from(now.duration_since(f.last)) < self.max => {
                f.count = f.count.saturating_add(1);
                f.last = now;
                f
            }
            _ => {
                accounts.put(
                    key.clone(),
                    Failures {
                        count: 1,
                        last: now,
                        locked_until: None,
                    },
                );
                accounts.get_mut(&key)?
            }
        };
        let beyond = failures.count.checked_sub(self.free_failures)?;
        let lock = self
            .base
            .saturating_mul(2u32.saturating_pow(beyond.min(31)))
            .min(self.max);
        failures.locked_until = Some(now + lock.into());
        Some(lock)
    }

    /// A successful sign-in clears the account's record.
    pub fn succeeded(&self, email: &str) {
        self.lock().pop(&account_key(email));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn backoff(clock: &FakeRelativeClock) -> LoginBackoff<FakeRelativeClock> {
        let settings = RateLimitSettings {
            login_free_failures: 3,
            login_backoff_base_secs: 2,
            login_backoff_max_secs: 60,
            max_tracked_keys: 100,
            ..RateLimitSettings::default()
        };
        LoginBackoff::with_clock(&settings, clock.clone())
    }

    #[test]
    fn failures_beyond_the_free_ones_lock_the_account_for_doubling_times() {
        let clock = FakeRelativeClock::default();
        let b = backoff(&clock);
        assert_eq!(b.failed("a@x.io"), None);
        assert_eq!(b.failed("a@x.io"), None);
        assert_eq!(b.failed("a@x.io"), Some(Duration::from_secs(2)));
        assert_eq!(b.check("A@X.io "), Err(Duration::from_secs(2)));
        clock.advance(Duration::from_secs(2));
        assert_eq!(b.check("a@x.io"), Ok(()));
        assert_eq!(b.failed("a@x.io"), Some(Duration::from_secs(4)));
        clock.advance(Duration::from_secs(4));
        assert_eq!(b.failed("a@x.io"), Some(Duration::from_secs(8)));
        for _ in 0..10 {
            clock.advance(Duration::from_secs(30));
            b.failed("a@x.io");
        }
        assert_eq!(b.check("a@x.io"), Err(Duration::from_secs(60)), "capped");
    }

    #[test]
    fn success_clears_the_record_and_other_accounts_are_unaffected() {
        let clock = FakeRelativeClock::default();
        let b = backoff(&clock);
        for _ in 0..3 {
            b.failed("a@x.io");
        }
        assert!(b.check("a@x.io").is_err());
        assert_eq!(b.check("b@x.io"), Ok(()));
        b.succeeded("a@x.io");
        assert_eq!(b.check("a@x.io"), Ok(()));
        assert_eq!(b.failed("a@x.io"), None, "the count starts again");
    }

    #[test]
    fn a_quiet_spell_forgives_old_failures() {
        let clock = FakeRelativeClock::default();
        let b = backoff(&clock);
        b.failed("a@x.io");
        b.failed("a@x.io");
        clock.advance(Duration::from_secs(61));
        assert_eq!(b.failed("a@x.io"), None);
    }

    #[test]
    fn the_number_of_accounts_remembered_is_bounded() {
        let clock = FakeRelativeClock::default();
        let b = backoff(&clock);
        for i in 0..1_000 {
            b.failed(&format!("user{i}@x.io"));
        }
        assert_eq!(b.lock().len(), 100);
    }
}
