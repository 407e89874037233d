//! API tokens: `ahq_` + 256 random bits (hex). Stored only as SHA-256; shown once.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{Role, UserId};
use crate::domain::TenantId;

pub const PREFIX: &str = "ahq_";

/// A token's secret value. `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

impl std::fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSecret([redacted])")
    }
}

impl TokenSecret {
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Self(format!("{PREFIX}{}", hex::encode(bytes))))
    }

    /// A bearer value presented by a client, if it has the shape of one of our tokens.
    pub fn presented(value: &str) -> Option<Self> {
        let hex_part = value.strip_prefix(PREFIX)?;
        (hex_part.len() == 64 && hex_part.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(value.to_ascii_lowercase()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()).as_slice())
    }
}

/// A stored token (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiToken {
    pub id: String,
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub tenant: String,
    pub user_id: UserId,
    pub name: String,
    pub role: Role,
    #[serde(serialize_with = "crate::domain::time::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "serialize_opt_time")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "serialize_opt_time")]
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "serialize_opt_time")]
    pub revoked_at: Option<DateTime<Utc>>,
}

fn serialize_opt_time<S: serde::Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => crate::domain::time::serialize(t, s),
        None => s.serialize_none(),
    }
}

impl ApiToken {
    /// Usable now: not revoked, not expired.
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_256_bit_values_recognised_by_shape() {
        let t = TokenSecret::generate().unwrap();
        assert!(t.expose().starts_with("ahq_"));
        assert_eq!(t.expose().len(), 4 + 64);
        assert_eq!(TokenSecret::presented(t.expose()), Some(t.clone()));
        assert_eq!(TokenSecret::presented("ahq_short"), None);
        assert_eq!(TokenSecret::presented("Bearer nonsense"), None);
        assert_ne!(t.hash(), t.expose());
        assert!(!format!("{t:?}").contains(t.expose()));
    }
}
