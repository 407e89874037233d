//! Loading, creating and deriving from the master key.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::data_dir::DataDir;

pub const KEY_BYTES: usize = 32;

/// HKDF salt: fixed and public; it only separates AgentHQ's derivations from any other use of
/// the same key material.
const SALT: &[u8] = b"agenthq master key v1";

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("AGENTHQ_MASTER_KEY must be the base64 encoding of {KEY_BYTES} random bytes")]
    BadEnvironmentKey,
    #[error(
        "{path} is not a master key (base64 of {KEY_BYTES} bytes); restore it from a backup, \
         or all encrypted secrets are lost"
    )]
    BadFile { path: String },
    #[error("cannot read or create the master key {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("cannot create the master key: no random numbers: {0}")]
    Random(String),
}

/// The master key. Its bytes never leave this type: `Debug` is redacted and only derived keys
/// are handed out.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; KEY_BYTES]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

fn decode(text: &str) -> Option<MasterKey> {
    let bytes = Zeroizing::new(BASE64.decode(text.trim()).ok()?);
    let key: [u8; KEY_BYTES] = bytes.as_slice().try_into().ok()?;
    Some(MasterKey(Zeroizing::new(key)))
}

impl MasterKey {
    /// Parses a base64 key (the `AGENTHQ_MASTER_KEY` form).
    pub fn from_base64(text: &str) -> Result<Self, MasterKeyError> {
        decode(text).ok_or(MasterKeyError::BadEnvironmentKey)
    }

    /// The key from the environment if given, else the data dir's `master.key`, created with
    /// fresh random bytes when there is none yet.
    pub fn load_or_create(
        data_dir: &DataDir,
        from_env: Option<&str>,
    ) -> Result<Self, MasterKeyError> {
        if let Some(text) = from_env {
            return Self::from_base64(text);
        }
        let path = data_dir.master_key();
        let io_error = |source| MasterKeyError::Io {
            path: path.display().to_string(),
            source,
        };
        match fs::read_to_string(&path) {
            Ok(text) => {
                warn_if_readable_by_others(&path);
                decode(&text).ok_or_else(|| MasterKeyError::BadFile {
                    path: path.display().to_string(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // A rotation that stopped between retiring the old key and promoting the new
                // one: the new key is the master key (every data key is wrapped by it).
                if let Some(next) = read_key_file(&data_dir.master_key_next())? {
                    return Ok(next);
                }
                let key = Self::generate()?;
                match write_new(&path, &key) {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), "created the master key; back it up with the data");
                        Ok(key)
                    }
                    // Another process (a CLI command and the server starting together) won
                    // the race: use its key.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(data_dir, None)
                    }
                    Err(e) => Err(io_error(e)),
                }
            }
            Err(e) => Err(io_error(e)),
        }
    }

    pub(crate) fn generate() -> Result<Self, MasterKeyError> {
        let mut key = Zeroizing::new([0u8; KEY_BYTES]);
        getrandom::fill(key.as_mut_slice()).map_err(|e| MasterKeyError::Random(e.to_string()))?;
        Ok(MasterKey(key))
    }

    /// A 32-byte key for one purpose (e.g. `"agent-run-token/v1"`). Distinct purposes give
    /// unrelated keys.
    pub fn derive(&self, purpose: &str) -> Zeroizing<[u8; KEY_BYTES]> {
        let hkdf = Hkdf::<Sha256>::new(Some(SALT), self.0.as_slice());
        let mut out = Zeroizing::new([0u8; KEY_BYTES]);
        // Infallible: 32 bytes is far below HKDF-SHA256's limit of 255 × 32.
        if hkdf.expand(purpose.as_bytes(), out.as_mut_slice()).is_err() {
            unreachable!("HKDF output length is fixed and valid");
        }
        out
    }
}

/// Creates `path` with mode 0600 holding the key, never replacing an existing file: the key is
/// written and synced to a temporary file that is then hard-linked into place (atomic, and
/// fails with `AlreadyExists` if another process got there first).
pub(crate) fn write_new(path: &Path, key: &MasterKey) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        let text = Zeroizing::new(BASE64.encode(key.0.as_slice()) + "\n");
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::hard_link(&tmp, path)?;
        if let Some(dir) = path.parent() {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    let _ = fs::remove_file(&tmp);
    result
}

/// The key in `path`, or `None` when there is no such file. Never creates anything.
pub(crate) fn read_key_file(path: &Path) -> Result<Option<MasterKey>, MasterKeyError> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            warn_if_readable_by_others(path);
            decode(&text)
                .map(Some)
                .ok_or_else(|| MasterKeyError::BadFile {
                    path: path.display().to_string(),
                })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(MasterKeyError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

fn warn_if_readable_by_others(path: &Path) {
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "the master key is readable by other users; chmod 600 it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_data_dir_gets_a_private_key_file_that_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = DataDir::new(dir.path());
        let first = MasterKey::load_or_create(&data_dir, None).unwrap();
        let mode = fs::metadata(data_dir.master_key())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = MasterKey::load_or_create(&data_dir, None).unwrap();
        assert_eq!(first.derive("x")[..], again.derive("x")[..]);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp files left"
        );
    }

    #[test]
    fn a_key_from_the_environment_writes_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = DataDir::new(dir.path());
        let text = BASE64.encode([7u8; KEY_BYTES]);
        let key = MasterKey::load_or_create(&data_dir, Some(&text)).unwrap();
        assert!(!data_dir.master_key().exists());
        assert_eq!(
            key.derive("x")[..],
            MasterKey::from_base64(&text).unwrap().derive("x")[..]
        );
    }

    #[test]
    fn malformed_keys_are_refused_without_echoing_them() {
        for bad in ["", "c2hvcnQ=", "not base64 at all!"] {
            let err = MasterKey::from_base64(bad).unwrap_err().to_string();
            assert!(err.contains("32"), "{err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let data_dir = DataDir::new(dir.path());
        fs::write(data_dir.master_key(), "garbage").unwrap();
        let err = MasterKey::load_or_create(&data_dir, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("master.key") && !err.contains("garbage"),
            "{err}"
        );
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_debug_is_redacted() {
        let key = MasterKey::from_base64(&BASE64.encode([1u8; KEY_BYTES])).unwrap();
        assert_ne!(key.derive("a")[..], key.derive("b")[..]);
        assert_eq!(format!("{key:?}"), "MasterKey([redacted])");
    }
}
