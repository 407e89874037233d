//! Tenant data keys across processes, rotations and crashes in the middle of one.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use super::rotation::{self, prepare_next, promote_next, retire_current, rewrap_all};
use super::{KeySource, Keyring, MasterKey, SecretError, TenantKeys};
use crate::config::{Overrides, Settings};
use crate::data_dir::DataDir;
use crate::domain::TenantId;
use crate::store::{RegistryStore, Storage};

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: DataDir,
    storage: Storage,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let settings = Settings::load(Overrides {
        data_dir: Some(tmp.path().to_owned()),
        ..Overrides::default()
    })
    .unwrap();
    let storage = Storage::open(&settings).unwrap();
    Fixture {
        dir: DataDir::new(tmp.path()),
        _tmp: tmp,
        storage,
    }
}

impl Fixture {
    /// A fresh process's view of the keys (no cache).
    fn keys(&self) -> TenantKeys {
        TenantKeys::open(self.storage.registry.clone(), &self.dir, None).unwrap()
    }

    fn registry(&self) -> &dyn RegistryStore {
        &*self.storage.registry
    }
}

/// Seals `secret` for each tenant; returns what to open later.
fn seal_for(keys: &TenantKeys, tenants: &[TenantId]) -> Vec<(TenantId, Vec<u8>)> {
    tenants
        .iter()
        .map(|t| {
            let sealed = keys
                .data_key(*t)
                .unwrap()
                .seal(b"sk-secret", "provider:p:api_key")
                .unwrap();
            (*t, sealed)
        })
        .collect()
}

fn assert_all_open(keys: &TenantKeys, sealed: &[(TenantId, Vec<u8>)]) {
    for (t, bytes) in sealed {
        let key = keys.data_key(*t).unwrap();
        assert_eq!(
            key.open(bytes, "provider:p:api_key").unwrap().as_slice(),
            b"sk-secret"
        );
    }
}

#[test]
fn a_tenant_gets_one_data_key_whichever_process_creates_it() {
    let f = fixture();
    let (a, b) = (f.keys(), f.keys());
    let tenant = TenantId::new();
    let sealed = a.data_key(tenant).unwrap().seal(b"x", "ctx").unwrap();
    assert_eq!(
        b.data_key(tenant)
            .unwrap()
            .open(&sealed, "ctx")
            .unwrap()
            .as_slice(),
        b"x"
    );
    let row = f.registry().tenant_data_key(tenant).unwrap().unwrap();
    assert_eq!(row.master_key_id, a.primary_master_key().key_id());
}

#[test]
fn concurrent_first_uses_agree_on_the_key() {
    let f = fixture();
    let tenant = TenantId::new();
    let keys: Vec<Arc<TenantKeys>> = (0..4).map(|_| Arc::new(f.keys())).collect();
    let sealed: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = keys
            .iter()
            .map(|k| s.spawn(move || k.data_key(tenant).unwrap().seal(b"v", "c").unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let key = f.keys().data_key(tenant).unwrap();
    for bytes in sealed {
        assert_eq!(key.open(&bytes, "c").unwrap().as_slice(), b"v");
    }
}

#[test]
fn rotation_rewraps_every_key_and_secrets_still_open() {
    let f = fixture();
    let keys = f.keys();
    let tenants: Vec<TenantId> = (0..3).map(|_| TenantId::new()).collect();
    let sealed = seal_for(&keys, &tenants);
    let old_id = keys.primary_master_key().key_id();

    let report = rotation::rotate_files(&f.dir, f.registry()).unwrap();

    assert_eq!(report.rewrapped, 3);
    assert_ne!(report.new_key_id, old_id);
    let retired = f.dir.master_key_retired(&old_id);
    assert_eq!(report.retired.as_deref(), Some(retired.as_path()));
    assert_eq!(
        fs::metadata(&retired).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(!f.dir.master_key_next().exists());
    let fresh = f.keys();
    assert_eq!(fresh.primary_master_key().key_id(), report.new_key_id);
    assert_all_open(&fresh, &sealed);
    for t in &tenants {
        let row = f.registry().tenant_data_key(*t).unwrap().unwrap();
        assert_eq!(row.master_key_id, report.new_key_id);
    }
    // The running process: cached keys stay valid, and a key it never cached (wrapped by the
    // new master key it does not know yet) is found by reloading the master key.
    assert_all_open(&keys, &sealed[..1]);
    keys.forget(tenants[2]);
    assert_all_open(&keys, &sealed[2..]);
    assert_eq!(keys.primary_master_key().key_id(), report.new_key_id);
}

#[test]
fn a_rotation_interrupted_at_any_step_loads_and_finishes_when_run_again() {
    // Stop after 1, 2 or 3 steps of the four, then: a fresh process must open every
    // secret, and running the rotation again must finish it.
    for steps_done in 1..=3 {
        let f = fixture();
        let tenants: Vec<TenantId> = (0..2).map(|_| TenantId::new()).collect();
        let sealed = seal_for(&f.keys(), &tenants);
        let old = MasterKey::load_or_create(&f.dir, None).unwrap();

        let new = prepare_next(&f.dir).unwrap();
        if steps_done >= 2 {
            rewrap_all(f.registry(), &[new.clone(), old.clone()], &new).unwrap();
        }
        if steps_done >= 3 {
            retire_current(&f.dir, &old).unwrap();
            assert!(!f.dir.master_key().exists());
        }

        let during = f.keys();
        assert_all_open(&during, &sealed);
        // A tenant's first key created meanwhile must survive the rest of the rotation.
        let late = TenantId::new();
        let late_sealed = seal_for(&during, &[late]);

        let report = rotation::rotate_files(&f.dir, f.registry()).unwrap();
        assert_eq!(
            report.new_key_id,
            new.key_id(),
            "step {steps_done}: same new key"
        );
        assert!(f.dir.master_key_retired(&old.key_id()).exists());
        assert!(!f.dir.master_key_next().exists());
        let after = f.keys();
        assert_eq!(after.primary_master_key().key_id(), new.key_id());
        assert_all_open(&after, &sealed);
        assert_all_open(&after, &late_sealed);
    }
}

#[test]
fn a_crash_between_promoting_and_the_next_start_loses_nothing() {
    let f = fixture();
    let sealed = seal_for(&f.keys(), &[TenantId::new()]);
    let old = MasterKey::load_or_create(&f.dir, None).unwrap();
    let new = prepare_next(&f.dir).unwrap();
    rewrap_all(f.registry(), &[new.clone(), old.clone()], &new).unwrap();
    retire_current(&f.dir, &old).unwrap();
    promote_next(&f.dir).unwrap();
    assert_all_open(&f.keys(), &sealed);
}

#[test]
fn an_environment_key_rotates_the_rows_only() {
    let f = fixture();
    use base64::Engine;
    let b64 = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
    let old = MasterKey::from_base64(&b64(1)).unwrap();
    let keys = TenantKeys::open(f.storage.registry.clone(), &f.dir, Some(&b64(1))).unwrap();
    let sealed = seal_for(&keys, &[TenantId::new()]);
    let new = MasterKey::from_base64(&b64(2)).unwrap();

    let report = rotation::rotate_env(f.registry(), &old, &new).unwrap();

    assert_eq!(report.rewrapped, 1);
    assert!(!f.dir.master_key().exists(), "no files in env mode");
    let after = TenantKeys::new(
        f.storage.registry.clone(),
        KeySource::Env(new.clone()),
        Keyring::single(new),
        8,
    );
    assert_all_open(&after, &sealed);
    // The old process cannot reload an environment key: its cached keys still work, a
    // key it did not cache is reported as wrapped by another master key.
    assert_all_open(&keys, &sealed);
    keys.forget(sealed[0].0);
    assert!(matches!(
        keys.data_key(sealed[0].0),
        Err(SecretError::WrongMasterKey { .. })
    ));
}

#[test]
fn deleting_a_data_key_makes_the_tenants_secrets_unreadable() {
    let f = fixture();
    let keys = f.keys();
    let tenant = TenantId::new();
    let sealed = seal_for(&keys, &[tenant]);
    f.registry().delete_tenant_data_key(tenant).unwrap();
    keys.forget(tenant);
    assert!(f.registry().tenant_data_key(tenant).unwrap().is_none());
    let key = keys.data_key(tenant).unwrap();
    assert_eq!(
        key.open(&sealed[0].1, "provider:p:api_key").unwrap_err(),
        SecretError::Undecryptable,
        "a new key does not open the old secrets"
    );
}
