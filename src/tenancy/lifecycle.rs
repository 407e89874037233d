//! The tenant lifecycle and its crash-safety rules.
//!
//! Provisioning order, and why it is crash safe:
//! 1. claim the new id (a lock a crash releases),
//! 2. insert the registry row as `provisioning` (the slug is now taken),
//! 3. build and migrate the database aside, then publish it atomically (rename),
//! 4. mark the row `active`, 5. release the claim.
//!
//! A tenant is only ever served when its row is `active`, which happens after its database is
//! complete. A crash anywhere leaves a `provisioning` row whose claim is free: recovery (run by
//! every command that opens the storage) removes its files and its row, so no half tenant
//! survives. Purging is the same in reverse: the row goes `purging`, the tenant's data key goes
//! (its secrets become unreadable everywhere), the files go, the row goes; recovery finishes an
//! interrupted purge.

use std::collections::HashSet;

use crate::domain::{Plan, Tenant, TenantId, TenantSlug, TenantStatus, tenant::parse_tenant_name};
use crate::failpoint::failpoint;
use crate::store::{Storage, StoreError};

use super::TenancyError;

/// A request to create a tenant.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub slug: TenantSlug,
    /// Display name; the slug when not given.
    pub name: Option<String>,
    pub plan: Plan,
}

/// What start-up recovery cleaned up.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Interrupted provisionings rolled back.
    pub rolled_back: Vec<TenantSlug>,
    /// Interrupted purges finished.
    pub purged: Vec<TenantSlug>,
    /// Leftover files of provisionings removed.
    pub swept_files: usize,
}

#[derive(Clone)]
pub struct TenantLifecycle {
    storage: Storage,
}

impl TenantLifecycle {
    pub fn new(storage: Storage) -> Self {
        Self { storage }
    }

    pub fn create(&self, new: NewTenant) -> Result<Tenant, TenancyError> {
        let name = match &new.name {
            Some(n) => parse_tenant_name(n).map_err(|message| TenancyError::Validation {
                field: "name",
                message,
            })?,
            None => new.slug.to_string(),
        };
        let now = crate::domain::now();
        let mut tenant = Tenant {
            id: TenantId::new(),
            slug: new.slug,
            name,
            status: TenantStatus::Provisioning,
            plan: new.plan,
            created_at: now,
            updated_at: now,
        };
        let claim = self.storage.tenants.claim(tenant.id)?.ok_or_else(|| {
            TenancyError::Store(StoreError::Internal(
                "fresh tenant id already claimed".into(),
            ))
        })?;
        self.storage
            .registry
            .insert_tenant(&tenant)
            .map_err(TenancyError::from_store)?;
        failpoint("provision.after_registry_insert");

        if let Err(e) = self.storage.tenants.create(&claim, &tenant) {
            // Roll back in-process; if this fails too, start-up recovery will.
            if let Err(cleanup) = self.rollback(tenant.id) {
                tracing::error!(tenant = %tenant.slug, error = %cleanup, "rollback failed");
            }
            return Err(e.into());
        }
        tenant = self.storage.registry.update_tenant_status(
            tenant.id,
            TenantStatus::Provisioning,
            TenantStatus::Active,
        )?;
        drop(claim);
        tracing::info!(tenant = %tenant.slug, tenant_id = %tenant.id, "tenant provisioned");
        Ok(tenant)
    }

    fn rollback(&self, id: TenantId) -> Result<(), StoreError> {
        self.storage.tenants.remove(id)?;
        self.storage.registry.delete_tenant(id)
    }

    pub fn list(&self) -> Result<Vec<Tenant>, TenancyError> {
        Ok(self.storage.registry.list_tenants()?)
    }

    /// A tenant by slug; tenants mid-provisioning or mid-purge do not exist yet / any more.
    pub fn get(&self, slug: &str) -> Result<Tenant, TenancyError> {
        match self.storage.registry.tenant_by_slug(slug)? {
            Some(t) if !matches!(t.status, TenantStatus::Provisioning | TenantStatus::Purging) => {
                Ok(t)
            }
            _ => Err(TenancyError::NotFound(slug.to_owned())),
        }
    }

    pub fn suspend(&self, slug: &str) -> Result<Tenant, TenancyError> {
        let t = self.get(slug)?;
        match t.status {
            TenantStatus::Active => self.transition(&t, TenantStatus::Suspended),
            TenantStatus::Suspended => {
                Err(conflict(format!("tenant '{slug}' is already suspended")))
            }
            _ => Err(conflict(format!(
                "tenant '{slug}' is {}; only an active tenant can be suspended",
                t.status
            ))),
        }
    }

    /// Brings a suspended or (soft-)deleted tenant back to `active`.
    pub fn resume(&self, slug: &str) -> Result<Tenant, TenancyError> {
        let t = self.get(slug)?;
        match t.status {
            TenantStatus::Suspended | TenantStatus::Deleted => {
                self.transition(&t, TenantStatus::Active)
            }
            _ => Err(conflict(format!("tenant '{slug}' is already active"))),
        }
    }

    /// Soft delete: the tenant stops being served, its data is kept and `resume` restores it.
    pub fn delete(&self, slug: &str) -> Result<Tenant, TenancyError> {
        let t = self.get(slug)?;
        match t.status {
            TenantStatus::Active | TenantStatus::Suspended => {
                self.transition(&t, TenantStatus::Deleted)
            }
            _ => Err(conflict(format!("tenant '{slug}' is already deleted"))),
        }
    }

    /// Removes a deleted tenant's data and row for good.
    pub fn purge(&self, slug: &str) -> Result<(), TenancyError> {
        let t = self.get(slug)?;
        if t.status != TenantStatus::Deleted {
            return Err(conflict(format!(
                "tenant '{slug}' is {}; delete it first (agenthq tenant delete {slug}), \
                 then purge it",
                t.status
            )));
        }
        self.transition(&t, TenantStatus::Purging)?;
        failpoint("purge.after_mark");
        self.finish_purge(t.id)?;
        tracing::info!(tenant = %slug, tenant_id = %t.id, "tenant purged");
        Ok(())
    }

    /// The data key goes first: from then on every secret of the tenant is unreadable,
    /// including copies of its database in backups, even if removing the files fails.
    fn finish_purge(&self, id: TenantId) -> Result<(), StoreError> {
        self.storage.registry.delete_tenant_data_key(id)?;
        failpoint("purge.after_delete_data_key");
        self.storage.tenants.remove(id)?;
        failpoint("purge.after_remove_files");
        self.storage.registry.delete_tenant(id)
    }

    fn transition(&self, t: &Tenant, to: TenantStatus) -> Result<Tenant, TenancyError> {
        let updated = self
            .storage
            .registry
            .update_tenant_status(t.id, t.status, to)
            .map_err(TenancyError::from_store)?;
        if to != TenantStatus::Active {
            // Not served any more: release its connections now (the server also notices).
            self.storage.tenants.close(t.id);
        }
        tracing::info!(tenant = %t.slug, from = %t.status, to = %to, "tenant status changed");
        Ok(updated)
    }

    /// Rolls back interrupted provisionings, finishes interrupted purges and removes leftover
    /// files. Provisionings still in progress in another live process are left alone.
    pub fn recover(&self) -> Result<RecoveryReport, TenancyError> {
        let mut report = RecoveryReport::default();
        let tenants = self.storage.registry.list_tenants()?;
        for t in &tenants {
            match t.status {
                TenantStatus::Provisioning => {
                    let Some(claim) = self.storage.tenants.claim(t.id)? else {
                        continue; // another process is provisioning it right now
                    };
                    // Re-read under the claim: the owner may have finished just before.
                    let current = self.storage.registry.tenant_by_slug(t.slug.as_str())?;
                    if current
                        .is_some_and(|c| c.id == t.id && c.status == TenantStatus::Provisioning)
                    {
                        self.rollback(t.id)?;
                        tracing::warn!(tenant = %t.slug, "rolled back an interrupted provisioning");
                        report.rolled_back.push(t.slug.clone());
                    }
                    drop(claim);
                }
                TenantStatus::Purging => {
                    self.finish_purge(t.id)?;
                    tracing::warn!(tenant = %t.slug, "finished an interrupted purge");
                    report.purged.push(t.slug.clone());
                }
                _ => {}
            }
        }
        let known: HashSet<TenantId> = self
            .storage
            .registry
            .list_tenants()?
            .into_iter()
            .map(|t| t.id)
            .collect();
        let known: Vec<TenantId> = known.into_iter().collect();
        report.swept_files = self.storage.tenants.sweep_abandoned(&known)?;
        Ok(report)
    }
}

fn conflict(msg: String) -> TenancyError {
    TenancyError::Conflict(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, Settings};

    fn storage(dir: &std::path::Path) -> Storage {
        let settings = Settings::load(Overrides {
            data_dir: Some(dir.to_owned()),
            ..Overrides::default()
        })
        .unwrap();
        Storage::open(&settings).unwrap()
    }

    fn new_tenant(slug: &str) -> NewTenant {
        NewTenant {
            slug: TenantSlug::parse(slug).unwrap(),
            name: None,
            plan: Plan::Free,
        }
    }

    #[test]
    fn a_created_tenant_is_active_with_its_database_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let lifecycle = TenantLifecycle::new(storage(dir.path()));
        let t = lifecycle.create(new_tenant("acme")).unwrap();
        assert_eq!(t.status, TenantStatus::Active);
        assert_eq!(t.name, "acme", "the slug is the default name");
        assert!(dir.path().join(format!("tenants/{}.db", t.id)).exists());
        assert!(matches!(
            lifecycle.create(new_tenant("acme")),
            Err(TenancyError::Conflict(msg)) if msg.contains("already exists")
        ));
    }

    #[test]
    fn a_blank_name_is_a_validation_error() {
        let dir = tempfile::tempdir().unwrap();
        let lifecycle = TenantLifecycle::new(storage(dir.path()));
        let mut req = new_tenant("acme");
        req.name = Some("   ".into());
        assert!(matches!(
            lifecycle.create(req),
            Err(TenancyError::Validation { field: "name", .. })
        ));
    }

    #[test]
    fn transitions_follow_the_lifecycle() {
        let dir = tempfile::tempdir().unwrap();
        let lifecycle = TenantLifecycle::new(storage(dir.path()));
        lifecycle.create(new_tenant("acme")).unwrap();
        assert!(matches!(
            lifecycle.resume("acme"),
            Err(TenancyError::Conflict(_))
        ));
        assert!(matches!(
            lifecycle.purge("acme"),
            Err(TenancyError::Conflict(_))
        ));
        assert_eq!(
            lifecycle.suspend("acme").unwrap().status,
            TenantStatus::Suspended
        );
        assert!(matches!(
            lifecycle.suspend("acme"),
            Err(TenancyError::Conflict(_))
        ));
        assert_eq!(
            lifecycle.delete("acme").unwrap().status,
            TenantStatus::Deleted
        );
        assert!(matches!(
            lifecycle.suspend("acme"),
            Err(TenancyError::Conflict(_))
        ));
        assert_eq!(
            lifecycle.resume("acme").unwrap().status,
            TenantStatus::Active
        );
        lifecycle.delete("acme").unwrap();
        lifecycle.purge("acme").unwrap();
        assert!(matches!(
            lifecycle.get("acme"),
            Err(TenancyError::NotFound(_))
        ));
        assert!(matches!(
            lifecycle.suspend("nope"),
            Err(TenancyError::NotFound(_))
        ));
    }

    #[test]
    fn purging_a_tenant_destroys_its_data_key() {
        let dir = tempfile::tempdir().unwrap();
        let storage = storage(dir.path());
        let lifecycle = TenantLifecycle::new(storage.clone());
        let (acme, other) = (
            lifecycle.create(new_tenant("acme")).unwrap(),
            lifecycle.create(new_tenant("other")).unwrap(),
        );
        let keys = crate::secrets::TenantKeys::open(
            storage.registry.clone(),
            &crate::data_dir::DataDir::new(dir.path()),
            None,
        )
        .unwrap();
        keys.data_key(acme.id).unwrap();
        keys.data_key(other.id).unwrap();
        assert!(storage.registry.tenant_data_key(acme.id).unwrap().is_some());

        lifecycle.delete("acme").unwrap();
        lifecycle.purge("acme").unwrap();

        assert!(storage.registry.tenant_data_key(acme.id).unwrap().is_none());
        assert!(
            storage
                .registry
                .tenant_data_key(other.id)
                .unwrap()
                .is_some(),
            "only the purged tenant's key"
        );
    }

    #[test]
    fn recovery_leaves_a_provisioning_alone_while_its_owner_holds_the_claim() {
        let dir = tempfile::tempdir().unwrap();
        let storage = storage(dir.path());
        let lifecycle = TenantLifecycle::new(storage.clone());
        let now = crate::domain::now();
        let tenant = Tenant {
            id: TenantId::new(),
            slug: TenantSlug::parse("acme").unwrap(),
            name: "acme".into(),
            status: TenantStatus::Provisioning,
            plan: Plan::Free,
            created_at: now,
            updated_at: now,
        };
        // Another "process" is mid-provisioning: it holds the claim and has inserted the row.
        let claim = storage.tenants.claim(tenant.id).unwrap().unwrap();
        assert!(
            storage.tenants.claim(tenant.id).unwrap().is_none(),
            "claims are exclusive"
        );
        storage.registry.insert_tenant(&tenant).unwrap();

        let report = lifecycle.recover().unwrap();
        assert!(report.rolled_back.is_empty());
        assert!(storage.registry.tenant_by_slug("acme").unwrap().is_some());

        // Its owner dies: the claim is released and the next recovery rolls it back.
        drop(claim);
        let report = lifecycle.recover().unwrap();
        assert_eq!(report.rolled_back, vec![tenant.slug.clone()]);
        assert!(storage.registry.tenant_by_slug("acme").unwrap().is_none());
    }
}
