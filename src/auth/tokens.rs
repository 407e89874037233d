//! Issuing and checking API tokens.

use std::sync::Arc;

use chrono::Duration;

use super::token::{ApiToken, TokenSecret};
use super::token_cache::TokenCache;
use super::{Email, Role, UserId};
use crate::domain::{TenantId, TenantStatus, now};
use crate::store::{Storage, StoreError};

/// A token's `last_used_at` is written at most this often.
const TOUCH_INTERVAL: Duration = Duration::minutes(1);

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("cannot generate a token: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What to issue.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub tenant: String,
    pub email: Email,
    pub name: String,
    /// Defaults to the creator's role; may not exceed it.
    pub role: Option<Role>,
    pub expires_in_days: Option<u32>,
}

/// What to issue, for a creator already known to be a member.
#[derive(Debug, Clone)]
pub struct Issue {
    pub tenant_id: TenantId,
    pub tenant: String,
    pub user_id: UserId,
    /// The creator's role in the tenant now: the ceiling of the token's role.
    pub creator_role: Role,
    pub name: String,
    pub role: Option<Role>,
    pub expires_in_days: Option<u32>,
}

/// The longest a token can be issued for.
pub const MAX_DAYS: u32 = 3650;

#[derive(Clone)]
pub struct Tokens {
    storage: Storage,
    cache: Arc<TokenCache>,
}

impl Tokens {
    pub fn new(storage: Storage) -> Self {
        Self {
            storage,
            cache: Arc::new(TokenCache::new()),
        }
    }

    /// The token a bearer secret stands for when that is known without any I/O (cached and
    /// still valid); `None` means: ask [`Tokens::authenticate`].
    pub fn cached(&self, secret: &TokenSecret) -> Option<Arc<ApiToken>> {
        // Full clock precision: this is only compared, never stored (and skips the rounding
        // `domain::now` does, on every authenticated request).
        self.cache
            .get(&secret.digest(), chrono::Utc::now(), TOUCH_INTERVAL)
    }

    /// Forgets every cached token: call after changing anything a token's validity or role
    /// depends on (revocation, memberships).
    pub fn invalidate(&self) {
        self.cache.invalidate();
    }

    /// Feeds the registry's access counter (polled by the server) to the cache.
    pub fn observe_access_generation(&self, generation: i64) {
        self.cache.observe_generation(generation);
    }

    /// Issues a token for a member named by tenant slug and email (the CLI's way in).
    pub fn create(&self, new: NewToken) -> Result<(ApiToken, TokenSecret), TokenError> {
        let registry = &self.storage.registry;
        let tenant = registry
            .tenant_by_slug(&new.tenant)?
            .filter(|t| matches!(t.status, TenantStatus::Active | TenantStatus::Suspended))
            .ok_or_else(|| TokenError::NotFound(format!("no tenant with slug '{}'", new.tenant)))?;
        let (user, _) = registry
            .user_by_email(&new.email)?
            .ok_or_else(|| TokenError::NotFound(format!("no user with email '{}'", new.email)))?;
        let creator_role = registry
            .membership_role(tenant.id, user.id)?
            .ok_or_else(|| {
                TokenError::Forbidden(format!(
                    "{} is not a member of tenant '{}'",
                    user.email, tenant.slug
                ))
            })?;
        self.issue(Issue {
            tenant_id: tenant.id,
            tenant: tenant.slug.to_string(),
            user_id: user.id,
            creator_role,
            name: new.name,
            role: new.role,
            expires_in_days: new.expires_in_days,
        })
    }

    /// Issues a token; the secret is returned once and only its hash is stored.
    pub fn issue(&self, new: Issue) -> Result<(ApiToken, TokenSecret), TokenError> {
        let name = new.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(TokenError::Invalid {
                field: "name",
                message: "must be 1 to 100 characters".into(),
            });
        }
        if new
            .expires_in_days
            .is_some_and(|d| !(1..=MAX_DAYS).contains(&d))
        {
            return Err(TokenError::Invalid {
                field: "expires_in_days",
                message: format!("must be between 1 and {MAX_DAYS}"),
            });
        }
        let role = new.role.unwrap_or(new.creator_role);
        if role > new.creator_role {
            return Err(TokenError::Forbidden(format!(
                "a token cannot have a higher role ({role}) than its creator ({})",
                new.creator_role
            )));
        }
        let created_at = now();
        let token = ApiToken {
            id: uuid::Uuid::now_v7().to_string(),
            tenant_id: new.tenant_id,
            tenant: new.tenant.into(),
            user_id: new.user_id,
            name,
            role,
            created_at,
            expires_at: new
                .expires_in_days
                .map(|d| created_at + Duration::days(i64::from(d))),
            last_used_at: None,
            revoked_at: None,
        };
        let secret = TokenSecret::generate().map_err(|e| TokenError::Random(e.to_string()))?;
        self.storage
            .registry
            .insert_api_token(&token, &secret.hash())?;
        tracing::info!(token_id = %token.id, tenant = %token.tenant, %role, "API token issued");
        Ok((token, secret))
    }

    /// The token a bearer secret stands for, if it is usable now and its creator is still a
    /// member (the effective role is the lower of the token's and the creator's current one).
    pub fn authenticate(&self, secret: &TokenSecret) -> Result<Option<Arc<ApiToken>>, StoreError> {
        let registry = &self.storage.registry;
        let digest = secret.digest();
        let hash = hex::encode(digest);
        let epoch = self.cache.epoch();
        let Some(mut token) = registry.api_token_by_hash(&hash)? else {
            return Ok(None);
        };
        let at = now();
        if !token.is_usable(at) {
            return Ok(None);
        }
        let Some(member_role) = registry.membership_role(token.tenant_id, token.user_id)? else {
            return Ok(None);
        };
        token.role = token.role.min(member_role);
        if token.last_used_at.is_none_or(|t| at - t >= TOUCH_INTERVAL) {
            registry.touch_api_token(&token.id, at)?;
            token.last_used_at = Some(at);
        }
        let token = Arc::new(token);
        self.cache.insert(digest, Arc::clone(&token), epoch);
        Ok(Some(token))
    }
}
