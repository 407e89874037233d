//! The master keys a process can unwrap data keys with: the current one, and during an
//! interrupted rotation also the new one (`master.key.next`).

use super::master_key::read_key_file;
use super::{DataKey, MasterKey, MasterKeyError, SecretError, WrappedKey};
use crate::data_dir::DataDir;

/// Where the master key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `master.key` (and `master.key.next` during a rotation) in the data dir.
    Files(DataDir),
    /// `AGENTHQ_MASTER_KEY`: one key, nothing on disk.
    Env(MasterKey),
}

/// The master keys known to this process. `primary` wraps new data keys; any of them unwraps
/// the data keys whose row names its id.
#[derive(Debug, Clone)]
pub struct Keyring {
    primary: MasterKey,
    others: Vec<MasterKey>,
}

impl Keyring {
    pub fn single(primary: MasterKey) -> Self {
        Self {
            primary,
            others: Vec::new(),
        }
    }

    /// Reads the keys of `source`; never creates a file (the server creates the first key
    /// with [`MasterKey::load_or_create`] before it loads the keyring).
    ///
    /// The states a rotation can leave behind, and the keyring each gives:
    /// - `master.key` only: that key;
    /// - `master.key` and `master.key.next`: the first as primary, the second known too
    ///   (the rows may be wrapped by either, depending on whether the re-wrap committed);
    /// - `master.key.next` only (stopped after retiring the old key): the new key.
    pub fn load(source: &KeySource) -> Result<Self, MasterKeyError> {
        let dir = match source {
            KeySource::Env(key) => return Ok(Self::single(key.clone())),
            KeySource::Files(dir) => dir,
        };
        // A rotation running right now renames `master.key.next` to `master.key` between
        // our two reads at worst: read again, and the key is where the second read looks.
        for _ in 0..3 {
            let current = read_key_file(&dir.master_key())?;
            let next = read_key_file(&dir.master_key_next())?;
            match (current, next) {
                (Some(primary), next) => {
                    return Ok(Self {
                        primary,
                        others: next.into_iter().collect(),
                    });
                }
                (None, Some(next)) => return Ok(Self::single(next)),
                (None, None) => continue,
            }
        }
        Err(MasterKeyError::Io {
            path: dir.master_key().display().to_string(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })
    }

    /// This keyring, also knowing `other`.
    pub fn with(mut self, other: MasterKey) -> Self {
        self.others.push(other);
        self
    }

    /// The key new data keys are wrapped with.
    pub fn primary(&self) -> &MasterKey {
        &self.primary
    }

    /// The key with this id, if known.
    pub fn find(&self, key_id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.primary)
            .chain(&self.others)
            .find(|k| k.key_id() == key_id)
    }

    /// Unwraps with whichever known key wrapped it.
    pub fn unwrap(&self, wrapped: &WrappedKey, tenant: &str) -> Result<DataKey, SecretError> {
        match self.find(&wrapped.master_key_id) {
            Some(key) => key.unwrap(wrapped, tenant),
            None => Err(SecretError::WrongMasterKey {
                found: wrapped.master_key_id.clone(),
                current: self.primary.key_id(),
            }),
        }
    }
}
