//! Browser sessions: 256-bit random ids, stored hashed, with absolute and idle expiry, and a
//! CSRF token derived from the id.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

/// Name of the session cookie.
pub const COOKIE: &str = "agenthq_session";
/// A session ends this long after sign-in, whatever happens.
pub const ABSOLUTE_LIFETIME: Duration = Duration::days(7);
/// A session ends after this long without a request.
pub const IDLE_TIMEOUT: Duration = Duration::hours(24);
/// `last_seen_at` is written at most this often (not one write per request).
pub const TOUCH_INTERVAL: Duration = Duration::minutes(1);

/// A new session's secret id (goes to the browser only, in the cookie).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionSecret(String);

impl std::fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSecret([redacted])")
    }
}

impl SessionSecret {
    /// 256 bits from the OS random generator, hex-encoded.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Self(hex::encode(bytes)))
    }

    /// A secret presented by a client (the cookie value); `None` if it cannot be one of ours.
    pub fn presented(value: &str) -> Option<Self> {
        (value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(value.to_ascii_lowercase()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the registry stores: SHA-256 of the secret.
    pub fn id_hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()).as_slice())
    }

    /// The CSRF token of this session: a hash of the secret under another label, so it
    /// reveals nothing about the secret and needs no storage.
    pub fn csrf_token(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"agenthq csrf v1\0");
        h.update(self.0.as_bytes());
        hex::encode(h.finalize().as_slice())
    }
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl SessionRecord {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            created_at: now,
            last_seen_at: now,
            expires_at: now + ABSOLUTE_LIFETIME,
        }
    }

    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at && now - self.last_seen_at < IDLE_TIMEOUT
    }

    pub fn needs_touch(&self, now: DateTime<Utc>) -> bool {
        now - self.last_seen_at >= TOUCH_INTERVAL
    }
}

/// Compares without an early exit.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_256_bit_unique_and_only_their_hash_is_kept() {
        let a = SessionSecret::generate().unwrap();
        let b = SessionSecret::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 64);
        assert_ne!(a.id_hash(), a.expose());
        assert_ne!(a.csrf_token(), a.id_hash());
        assert_eq!(SessionSecret::presented(a.expose()), Some(a.clone()));
        assert_eq!(SessionSecret::presented("nope"), None);
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn sessions_expire_absolutely_and_when_idle() {
        let t0 = Utc::now();
        let mut s = SessionRecord::new(t0);
        assert!(s.is_live(t0 + Duration::hours(23)));
        assert!(!s.is_live(t0 + Duration::hours(25)), "idle");
        s.last_seen_at = t0 + Duration::days(7) - Duration::minutes(1);
        assert!(!s.is_live(t0 + Duration::days(7)), "absolute");
    }
}
