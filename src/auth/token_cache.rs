//! An in-memory cache of authenticated API tokens, so a request with a known token needs no
//! database round trip.
//!
//! Invalidation is by epoch: every entry records the epoch it was read in, and only entries of
//! the current epoch are used. The epoch moves (dropping every entry at once) when this process
//! changes anything a token's validity depends on (revocation, memberships), and when the
//! registry's access counter moves, which triggers bump on changes made by other processes
//! (the CLI) and which the server polls with the tenant counter.
//!
//! NOTE: so a change made in this process applies to the very next request; one made by
//! another process applies within the registry poll interval (250 ms by default).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};

use super::token::{ApiToken, Digest};

/// Entries kept at most; beyond it the cache starts over (a flood of distinct valid tokens is
/// bounded by the tokens that exist, but memory must be bounded regardless).
const MAX_ENTRIES: usize = 10_000;

/// Hashes a key by its first 8 bytes. The keys are SHA-256 digests, already uniformly
/// distributed, and only digests of valid tokens are ever inserted, so no one can crowd a
/// bucket; SipHash over 32 bytes would only cost time on every authenticated request.
#[derive(Clone, Default)]
struct DigestHash;

impl std::hash::BuildHasher for DigestHash {
    type Hasher = DigestHasher;
    fn build_hasher(&self) -> DigestHasher {
        DigestHasher(0)
    }
}

#[derive(Default)]
struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // A digest is written as its 32 bytes in one call; its first 8 are hash enough.
        // (Any input hashes consistently: equal bytes give equal words.)
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
    }
}

#[derive(Clone)]
struct Entry {
    token: Arc<ApiToken>,
    epoch: u64,
}

#[derive(Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<Digest, Entry, DigestHash>>,
    epoch: AtomicU64,
    /// The registry access counter last seen (`i64::MIN` before the first poll).
    seen_generation: AtomicI64,
}

impl TokenCache {
    pub fn new() -> Self {
        Self {
            seen_generation: AtomicI64::new(i64::MIN),
            ..Self::default()
        }
    }

    /// The epoch to pass to [`TokenCache::insert`]: read it *before* reading the database, so
    /// a change made during the read invalidates what the read returns.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The token for a secret's SHA-256 digest, if cached in the current epoch and usable at
    /// `now` and not due a `last_used_at` write (`touch_after`).
    pub fn get(
        &self,
        digest: &Digest,
        now: DateTime<Utc>,
        touch_after: chrono::Duration,
    ) -> Option<Arc<ApiToken>> {
        let epoch = self.epoch();
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(digest)?;
        let token = &entry.token;
        let fresh = entry.epoch == epoch
            && token.is_usable(now)
            && token.last_used_at.is_some_and(|t| now - t < touch_after);
        fresh.then(|| token.clone())
    }

    pub fn insert(&self, digest: Digest, token: Arc<ApiToken>, epoch: u64) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&digest) {
            entries.clear();
        }
        entries.insert(digest, Entry { token, epoch });
    }

    /// Drops every entry (something a token depends on changed).
    pub fn invalidate(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Invalidates when the registry's access counter moved since the last call.
    pub fn observe_generation(&self, generation: i64) {
        let previous = self.seen_generation.swap(generation, Ordering::AcqRel);
        if previous != generation {
            self.invalidate();
        }
    }

    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Role, UserId};
    use crate::domain::{TenantId, now};

    fn token(last_used: Option<DateTime<Utc>>) -> ApiToken {
        ApiToken {
            id: "t1".into(),
            tenant_id: TenantId::new(),
            tenant: "acme".into(),
            user_id: UserId::new(),
            name: "ci".into(),
            role: Role::Member,
            created_at: now(),
            expires_at: None,
            last_used_at: last_used,
            revoked_at: None,
        }
    }

    const MINUTE: chrono::Duration = chrono::Duration::minutes(1);

    #[test]
    fn a_cached_token_is_served_until_invalidated() {
        let cache = TokenCache::new();
        let at = now();
        cache.insert([b'h'; 32], Arc::new(token(Some(at))), cache.epoch());
        assert!(cache.get(&[b'h'; 32], at, MINUTE).is_some());
        cache.invalidate();
        assert!(cache.get(&[b'h'; 32], at, MINUTE).is_none());
    }

    #[test]
    fn an_entry_read_before_a_change_is_never_served_after_it() {
        let cache = TokenCache::new();
        let epoch = cache.epoch(); // a database read starts…
        cache.invalidate(); // …a revocation lands meanwhile…
        cache.insert([b'h'; 32], Arc::new(token(Some(now()))), epoch); // …the stale read is cached
        assert!(cache.get(&[b'h'; 32], now(), MINUTE).is_none());
    }

    #[test]
    fn expired_and_due_for_a_touch_entries_are_misses() {
        let cache = TokenCache::new();
        let at = now();
        let mut expiring = token(Some(at));
        expiring.expires_at = Some(at + chrono::Duration::seconds(1));
        cache.insert([b'e'; 32], Arc::new(expiring), cache.epoch());
        assert!(cache.get(&[b'e'; 32], at, MINUTE).is_some());
        assert!(
            cache
                .get(&[b'e'; 32], at + chrono::Duration::seconds(2), MINUTE)
                .is_none()
        );
        cache.insert(
            [b't'; 32],
            Arc::new(token(Some(at - MINUTE))),
            cache.epoch(),
        );
        assert!(
            cache.get(&[b't'; 32], at, MINUTE).is_none(),
            "a touch is due"
        );
    }

    #[test]
    fn the_registry_counter_invalidates_when_it_moves() {
        let cache = TokenCache::new();
        cache.observe_generation(5);
        cache.insert([b'h'; 32], Arc::new(token(Some(now()))), cache.epoch());
        cache.observe_generation(5);
        assert!(cache.get(&[b'h'; 32], now(), MINUTE).is_some());
        cache.observe_generation(6);
        assert!(cache.get(&[b'h'; 32], now(), MINUTE).is_none());
    }

    fn digest_of(i: usize) -> Digest {
        let mut d = [0u8; 32];
        d[..8].copy_from_slice(&(i as u64).to_le_bytes());
        d
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = TokenCache::new();
        for i in 0..(MAX_ENTRIES + 10) {
            cache.insert(digest_of(i), Arc::new(token(Some(now()))), cache.epoch());
        }
        assert!(cache.len() <= MAX_ENTRIES);
    }
}
