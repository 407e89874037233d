//! The in-memory directory of tenants a server resolves requests against.
//!
//! It holds every tenant row, so resolving a request never touches the registry: unknown slugs
//! are answered from memory too. It stays current two ways: changes made in this process call
//! [`TenantDirectory::reload`] directly, and a watcher polls the registry's change counter
//! (one integer read) so changes made by other processes — the CLI against a running server —
//! take effect within the poll interval.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::domain::{Tenant, TenantId, TenantStatus};
use crate::store::{RegistryStore, StoreError};

type Map = HashMap<String, Arc<Tenant>>;

#[derive(Default)]
pub struct TenantDirectory {
    state: RwLock<State>,
}

#[derive(Default)]
struct State {
    by_slug: Arc<Map>,
    by_id: Arc<HashMap<TenantId, Arc<Tenant>>>,
    generation: Option<i64>,
}

/// A tenant that stopped being served (or vanished) in a reload: its open database, if any,
/// should be closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryChange {
    pub id: TenantId,
    pub status: Option<TenantStatus>,
}

impl TenantDirectory {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, slug: &str) -> Option<Arc<Tenant>> {
        self.read().by_slug.get(slug).cloned()
    }

    pub fn get_by_id(&self, id: TenantId) -> Option<Arc<Tenant>> {
        self.read().by_id.get(&id).cloned()
    }

    /// A snapshot of every tenant.
    pub fn all(&self) -> Arc<Map> {
        self.read().by_slug.clone()
    }

    /// The ids of the active tenants (what background work goes over).
    pub fn active_ids(&self) -> Vec<TenantId> {
        self.read()
            .by_slug
            .values()
            .filter(|t| t.status == TenantStatus::Active)
            .map(|t| t.id)
            .collect()
    }

    pub fn generation(&self) -> Option<i64> {
        self.read().generation
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // Writers only swap in a fully built map, so a poisoned lock still holds a valid one.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Reloads every tenant row from the registry (blocking). Returns the tenants that were
    /// served before and are not any more.
    pub fn reload(&self, registry: &dyn RegistryStore) -> Result<Vec<DirectoryChange>, StoreError> {
        // Read the counter first: a change racing with the listing bumps it again, so the next
        // poll reloads once more rather than missing it.
        let generation = registry.generation()?;
        let tenants = registry.list_tenants()?;
        let by_slug: Map = tenants
            .into_iter()
            .map(|t| (t.slug.to_string(), Arc::new(t)))
            .collect();

        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let mut changes = Vec::new();
        for (slug, old) in state.by_slug.iter() {
            if old.status != TenantStatus::Active {
                continue;
            }
            match by_slug.get(slug) {
                Some(new) if new.id == old.id && new.status == TenantStatus::Active => {}
                Some(new) if new.id == old.id => changes.push(DirectoryChange {
                    id: old.id,
                    status: Some(new.status),
                }),
                _ => changes.push(DirectoryChange {
                    id: old.id,
                    status: None,
                }),
            }
        }
        state.by_id = Arc::new(by_slug.values().map(|t| (t.id, t.clone())).collect());
        state.by_slug = Arc::new(by_slug);
        state.generation = Some(generation);
        Ok(changes)
    }
}
