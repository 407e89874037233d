//! API tokens: `ahq_` + 256 random bits (hex). Stored only as SHA-256; shown once.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};

use super::{Role, UserId};
use crate::domain::TenantId;

pub const PREFIX: &str = "ahq_";

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// The length of a token: `ahq_` and 64 hex digits.
const TOKEN_LEN: usize = PREFIX.len() + 64;

/// A token's secret value, in canonical form (lower-case hex). `Debug` redacts it.
///
/// NOTE: held inline rather than in a `String`: a presented token is parsed on every
/// authenticated request, and this way that costs no allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret([u8; TOKEN_LEN]);

impl std::fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSecret([redacted])")
    }
}

impl TokenSecret {
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut random = [0u8; 32];
        getrandom::fill(&mut random)?;
        let mut text = [0u8; TOKEN_LEN];
        text[..PREFIX.len()].copy_from_slice(PREFIX.as_bytes());
        // Infallible: the output slice is exactly twice the input's length.
        let _ = hex::encode_to_slice(random, &mut text[PREFIX.len()..]);
        Ok(Self(text))
    }

    /// A bearer value presented by a client, if it has the shape of one of our tokens (the
    /// prefix and 64 hex digits in either case). Takes bytes: header values need not be
    /// UTF-8, and anything that is not ASCII is refused here anyway.
    pub fn presented(value: &[u8]) -> Option<Self> {
        let text: &[u8; TOKEN_LEN] = value.try_into().ok()?;
        let (prefix, digits) = text.split_at(PREFIX.len());
        if prefix != PREFIX.as_bytes() || !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let mut text = *text;
        text.make_ascii_lowercase();
        Some(Self(text))
    }

    pub fn expose(&self) -> &str {
        // Always ASCII: built from the prefix and hex digits only.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The SHA-256 of the secret: what identifies it in memory.
    pub fn digest(&self) -> Digest {
        Sha256::digest(self.0).into()
    }

    /// The digest in hex: what the registry stores.
    pub fn hash(&self) -> String {
        hex::encode(self.digest())
    }
}

/// A stored token (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ApiToken {
    pub id: String,
    #[serde(skip)]
    pub tenant_id: TenantId,
    /// The tenant's slug (shared: every authenticated request hands it to tenant resolution).
    #[schema(value_type = String)]
    pub tenant: Arc<str>,
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    pub name: String,
    pub role: Role,
    #[serde(serialize_with = "crate::domain::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::domain::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::domain::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<DateTime<Utc>>,
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
        assert_eq!(
            TokenSecret::presented(t.expose().as_bytes()),
            Some(t.clone())
        );
        assert_eq!(TokenSecret::presented(b"ahq_short"), None);
        assert_eq!(TokenSecret::presented(b"Bearer nonsense"), None);
        assert_ne!(t.hash(), t.expose());
        assert!(!format!("{t:?}").contains(t.expose()));
        let upper = t.expose().replacen("ahq_", "", 1).to_ascii_uppercase();
        assert_eq!(
            TokenSecret::presented(format!("ahq_{upper}").as_bytes()),
            Some(t.clone()),
            "hex digits in either case"
        );
        assert_eq!(
            t.hash(),
            hex::encode(Sha256::digest(t.expose().as_bytes())),
            "the stored hash is the SHA-256 of the text"
        );
    }
}
