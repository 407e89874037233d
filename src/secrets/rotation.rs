//! `agenthq keys rotate`: a new master key, and every tenant data key re-wrapped under it.
//! The secrets themselves are not touched (they are sealed by the data keys, which stay).
//!
//! Steps, each durable before the next, and what a crash after each leaves:
//! 1. the new key is written to `master.key.next` (0600, fsynced): rows are still wrapped by
//!    the old key, which is still `master.key`; loaders know both keys;
//! 2. every row is re-wrapped in one registry transaction: rows are wrapped by the new key,
//!    which loaders know from `master.key.next`;
//! 3. `master.key` moves to `master.key.retired-<old id>`: loaders take `master.key.next`;
//! 4. `master.key.next` is renamed to `master.key`, and the directory fsynced: done.
//!
//! Running the command again after a crash finishes the rotation it finds (it re-uses
//! `master.key.next` rather than making another key; rows already under the new key are left
//! as they are).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::master_key::{read_key_file, write_new};
use super::{Keyring, MasterKey, MasterKeyError, SecretError, WrappedKey};
use crate::data_dir::DataDir;
use crate::failpoint::failpoint;
use crate::store::{RegistryStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error(transparent)]
    Key(#[from] MasterKeyError),
    #[error("cannot re-wrap the tenant data keys: {0}")]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "there is no master key in {0} (neither master.key nor master.key.next); nothing to rotate"
    )]
    NoKey(String),
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationReport {
    /// Data keys re-wrapped by this run.
    pub rewrapped: usize,
    pub new_key_id: String,
    /// Where the replaced key went (file rotations), for the operator to back up and delete.
    pub retired: Option<PathBuf>,
}

/// Rotates the master key kept in the data dir's files (the whole procedure of the module
/// docs, or what is left of it after a crash).
pub fn rotate_files(
    dir: &DataDir,
    registry: &dyn RegistryStore,
) -> Result<RotationReport, RotationError> {
    let current = read_key_file(&dir.master_key())?;
    let new = prepare_next(dir)?;
    let mut known = vec![new.clone()];
    known.extend(current.clone());
    let rewrapped = rewrap_all(registry, &known, &new)?;
    failpoint("keys.rotate.after_rewrap");
    let retired = match &current {
        Some(old) if old.key_id() != new.key_id() => Some(retire_current(dir, old)?),
        _ => None,
    };
    failpoint("keys.rotate.after_retire");
    promote_next(dir)?;
    Ok(RotationReport {
        rewrapped,
        new_key_id: new.key_id(),
        retired,
    })
}

/// Rotates a master key given in the environment to `new` (which the operator then sets as
/// `AGENTHQ_MASTER_KEY`): only the rows change, there are no files.
pub fn rotate_env(
    registry: &dyn RegistryStore,
    current: &MasterKey,
    new: &MasterKey,
) -> Result<RotationReport, RotationError> {
    let rewrapped = rewrap_all(registry, &[new.clone(), current.clone()], new)?;
    Ok(RotationReport {
        rewrapped,
        new_key_id: new.key_id(),
        retired: None,
    })
}

/// Step 1: the key in `master.key.next`, written now (fresh) unless an interrupted rotation
/// left one, which is re-used.
pub(crate) fn prepare_next(dir: &DataDir) -> Result<MasterKey, RotationError> {
    let path = dir.master_key_next();
    if let Some(existing) = read_key_file(&path)? {
        return Ok(existing);
    }
    if read_key_file(&dir.master_key())?.is_none() {
        return Err(RotationError::NoKey(dir.root().display().to_string()));
    }
    let key = MasterKey::generate()?;
    match write_new(&path, &key) {
        Ok(()) => {}
        // Another rotation wrote it between our read and write: use that one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return read_key_file(&path)?
                .ok_or_else(|| RotationError::NoKey(dir.root().display().to_string()));
        }
        Err(source) => return Err(io(&path, source)),
    }
    failpoint("keys.rotate.after_next");
    Ok(key)
}

/// Step 2: every row not yet wrapped by `new` is unwrapped with the key it names (one of
/// `known`) and wrapped by `new`, all in one transaction.
pub(crate) fn rewrap_all(
    registry: &dyn RegistryStore,
    known: &[MasterKey],
    new: &MasterKey,
) -> Result<usize, RotationError> {
    let new_id = new.key_id();
    let keyring = keyring_of(known);
    let count = registry.rewrap_tenant_data_keys(&mut |tenant, wrapped: &WrappedKey| {
        if wrapped.master_key_id == new_id {
            return Ok(None);
        }
        let key = keyring.unwrap(wrapped, tenant).map_err(|e| match e {
            SecretError::WrongMasterKey { found, .. } => StoreError::Corrupt(format!(
                "the data key of tenant {tenant} is wrapped by master key {found}, which is \
                 neither master.key nor master.key.next; restore that key and run again"
            )),
            other => StoreError::Corrupt(format!("data key of tenant {tenant}: {other}")),
        })?;
        new.wrap(&key, tenant)
            .map(Some)
            .map_err(|e| StoreError::Internal(e.to_string()))
    })?;
    Ok(count)
}

fn keyring_of(known: &[MasterKey]) -> Keyring {
    let mut keys = known.iter().cloned();
    let Some(first) = keys.next() else {
        unreachable!("rewrap_all always gets the new key");
    };
    keys.fold(Keyring::single(first), Keyring::with)
}

/// Step 3: `master.key` moves aside as `master.key.retired-<id>` (0600).
pub(crate) fn retire_current(dir: &DataDir, old: &MasterKey) -> Result<PathBuf, RotationError> {
    let from = dir.master_key();
    let to = dir.master_key_retired(&old.key_id());
    fs::rename(&from, &to).map_err(|e| io(&from, e))?;
    fs::set_permissions(&to, fs::Permissions::from_mode(0o600)).map_err(|e| io(&to, e))?;
    sync_dir(dir)?;
    Ok(to)
}

/// Step 4: `master.key.next` becomes `master.key`.
pub(crate) fn promote_next(dir: &DataDir) -> Result<(), RotationError> {
    let from = dir.master_key_next();
    fs::rename(&from, dir.master_key()).map_err(|e| io(&from, e))?;
    sync_dir(dir)
}

fn sync_dir(dir: &DataDir) -> Result<(), RotationError> {
    fs::File::open(dir.root())
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir.root(), e))
}

fn io(path: &std::path::Path, source: std::io::Error) -> RotationError {
    RotationError::Io {
        path: path.display().to_string(),
        source,
    }
}
