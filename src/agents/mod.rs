//! Agents at work: the providers they think with (`providers`), the platform tools they act
//! through, the prompt they are given, and the runner that drives a task's tool loop as a
//! `run_task` job, with budgets, usage and durable delegation.

pub mod budget_gate;
pub mod dispatch;
pub mod pricing;
pub mod prompt;
pub mod providers;
pub mod runner;
pub mod sweep;
pub mod tools;

use crate::domain::provider::ProviderAccess;
use crate::services::{Scope, ServiceError};

/// Where the runtime gets a provider's settings and decrypted key.
pub trait ProviderSource: Send + Sync {
    fn access(&self, scope: &Scope, provider_id: &str) -> Result<ProviderAccess, ServiceError>;
}

/// Providers as stored in the tenant's database, their keys opened with the tenant's data key.
pub struct StoredProviders(pub std::sync::Arc<crate::secrets::TenantKeys>);

impl ProviderSource for StoredProviders {
    fn access(&self, scope: &Scope, provider_id: &str) -> Result<ProviderAccess, ServiceError> {
        crate::services::providers::access(scope, &self.0, provider_id)
    }
}
