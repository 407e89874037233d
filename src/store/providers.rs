//! LLM providers: the repository interface (SQL lives in the backend, e.g. `sqlite/providers.rs`).
//!
//! The repository only ever sees API keys sealed (by the service, with the tenant's data key).

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::audit::AuditEntry;
use crate::domain::PageRequest;
use crate::domain::provider::{Prices, Provider, ProviderKind};

/// What to do with a provider's stored key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChange {
    Keep,
    Clear,
    /// A sealed key and the last characters responses may show.
    Set {
        sealed: Vec<u8>,
        last4: Option<String>,
    },
}

/// A validated change of a provider, its key already sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderChanges {
    pub kind: Option<ProviderKind>,
    pub name: Option<String>,
    pub base_url: Option<Option<String>>,
    pub key: KeyChange,
    pub default_model: Option<Option<String>>,
    pub prices: Option<Prices>,
    pub config: Option<serde_json::Value>,
}

/// LLM providers of one tenant. Mutations take the audit entry and record it in the same
/// transaction.
pub trait ProviderRepo {
    /// Inserts a provider (`api_key_set`/`api_key_last4` must match `sealed_key`); a taken
    /// name is [`StoreError::Conflict`].
    fn insert_provider(
        &self,
        provider: &Provider,
        sealed_key: Option<&[u8]>,
        audit: &AuditEntry,
    ) -> Result<(), StoreError>;
    /// One provider; [`StoreError::NotFound`] if there is none with this id.
    fn provider(&self, id: &str) -> Result<Provider, StoreError>;
    /// One provider and its sealed key.
    fn provider_with_sealed_key(&self, id: &str)
    -> Result<(Provider, Option<Vec<u8>>), StoreError>;
    /// Up to `page.fetch()` providers by name, after the page's cursor (a name).
    fn providers(&self, page: &PageRequest) -> Result<Vec<Provider>, StoreError>;
    /// Applies a change; a taken name is [`StoreError::Conflict`].
    fn update_provider(
        &self,
        id: &str,
        changes: &ProviderChanges,
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<Provider, StoreError>;
    /// Deletes a provider: agents using it are left without one, and the workspace default
    /// is cleared if it was this provider.
    fn delete_provider(&self, id: &str, audit: &AuditEntry) -> Result<(), StoreError>;
}
