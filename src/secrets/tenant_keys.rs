//! Each tenant's data key, as the server and the CLI use it: read from the registry and
//! unwrapped, or created on first use, and kept in memory (bounded) so a secret costs one
//! AES-GCM operation, not a registry read.
//!
//! Rotation and running servers: `agenthq keys rotate` re-wraps the rows under a new master
//! key but never changes a data key, so what is cached stays valid. A row wrapped by a key id
//! this process does not know means the master key was rotated meanwhile: the keyring is
//! reloaded from disk once and the unwrap retried.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, RwLock};

use lru::LruCache;

use super::{DataKey, KeySource, Keyring, MasterKey, MasterKeyError, SecretError};
use crate::data_dir::DataDir;
use crate::domain::TenantId;
use crate::store::RegistryStore;

/// Data keys kept unwrapped in memory (32 bytes each, plus bookkeeping).
pub const DEFAULT_CACHE_CAPACITY: usize = 4096;

pub struct TenantKeys {
    registry: Arc<dyn RegistryStore>,
    source: KeySource,
    keyring: RwLock<Arc<Keyring>>,
    cache: Mutex<LruCache<TenantId, Arc<DataKey>>>,
}

impl std::fmt::Debug for TenantKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantKeys([redacted])")
    }
}

impl TenantKeys {
    pub fn new(
        registry: Arc<dyn RegistryStore>,
        source: KeySource,
        keyring: Keyring,
        capacity: usize,
    ) -> Self {
        Self {
            registry,
            source,
            keyring: RwLock::new(Arc::new(keyring)),
            cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    /// The keys of a data dir: the environment's master key when given, else `master.key`,
    /// created on first use. Blocking (file I/O).
    pub fn open(
        registry: Arc<dyn RegistryStore>,
        data_dir: &DataDir,
        from_env: Option<&str>,
    ) -> Result<Self, MasterKeyError> {
        let source = match from_env {
            Some(text) => KeySource::Env(MasterKey::from_base64(text)?),
            None => {
                MasterKey::load_or_create(data_dir, None)?;
                KeySource::Files(data_dir.clone())
            }
        };
        let keyring = Keyring::load(&source)?;
        Ok(Self::new(registry, source, keyring, DEFAULT_CACHE_CAPACITY))
    }

    /// The master key new data keys are wrapped with (and run tokens are signed with).
    pub fn primary_master_key(&self) -> MasterKey {
        self.keyring().primary().clone()
    }

    /// The data key of `tenant`, created (and stored wrapped) on first use. Blocking: may read
    /// and write the registry and read the master key files.
    pub fn data_key(&self, tenant: TenantId) -> Result<Arc<DataKey>, SecretError> {
        if let Some(key) = self.cached(tenant) {
            return Ok(key);
        }
        let name = tenant.to_string();
        let wrapped = match self.registry.tenant_data_key(tenant).map_err(unavailable)? {
            Some(wrapped) => wrapped,
            None => {
                let fresh = DataKey::generate()?;
                let wrapped = self.keyring().primary().wrap(&fresh, &name)?;
                // Another process (or thread) may have stored a key first: use the stored one.
                self.registry
                    .insert_tenant_data_key_if_absent(tenant, &wrapped)
                    .map_err(unavailable)?
            }
        };
        let key = match self.keyring().unwrap(&wrapped, &name) {
            Err(SecretError::WrongMasterKey { .. }) => {
                self.reload()?;
                self.keyring().unwrap(&wrapped, &name)?
            }
            other => other?,
        };
        let key = Arc::new(key);
        self.cache_lock().put(tenant, key.clone());
        Ok(key)
    }

    /// Drops a tenant's key from memory (its row is deleted by the purge).
    pub fn forget(&self, tenant: TenantId) {
        self.cache_lock().pop(&tenant);
    }

    fn cached(&self, tenant: TenantId) -> Option<Arc<DataKey>> {
        self.cache_lock().get(&tenant).cloned()
    }

    fn keyring(&self) -> Arc<Keyring> {
        match self.keyring.read() {
            Ok(guard) => guard.clone(),
            // Poisoned only if a writer panicked mid-assignment of an Arc: the value is whole.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn reload(&self) -> Result<(), SecretError> {
        let fresh =
            Keyring::load(&self.source).map_err(|e| SecretError::Unavailable(e.to_string()))?;
        tracing::info!(
            master_key_id = %fresh.primary().key_id(),
            "reloaded the master key (rotated while running)"
        );
        match self.keyring.write() {
            Ok(mut guard) => *guard = Arc::new(fresh),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(fresh),
        }
        Ok(())
    }

    fn cache_lock(&self) -> std::sync::MutexGuard<'_, LruCache<TenantId, Arc<DataKey>>> {
        // The cache holds no invariant a panic could break half-way.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn unavailable(e: crate::store::StoreError) -> SecretError {
    SecretError::Unavailable(e.to_string())
}
