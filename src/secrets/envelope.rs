//! Envelope encryption of tenant secrets (provider API keys).
//!
//! Each tenant has its own **data key** (256 random bits) that seals the tenant's secrets with
//! AES-256-GCM. The data key is stored only **wrapped**: sealed in turn by a key-encryption key
//! derived from the master key, together with the id of that master key. So:
//!
//! - rotating the master key re-wraps each tenant's data key (a few bytes per tenant); the
//!   secrets themselves are never re-encrypted;
//! - destroying a tenant's wrapped data key makes every secret of that tenant unreadable,
//!   wherever copies of its database went (backups included);
//! - a sealed secret is bound to its tenant and purpose (the AAD): a ciphertext copied into
//!   another tenant's row, or into another field, does not open.
//!
//! Formats (version byte first, so they can change later):
//! - sealed secret: `0x01 ‖ nonce (12) ‖ ciphertext ‖ tag (16)`, nonce random per seal;
//! - wrapped data key: the same, sealing the 32 key bytes under the wrapping key, plus the
//!   master key's id kept beside it.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use zeroize::Zeroizing;

use super::MasterKey;

const VERSION: u8 = 1;
const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;
const KEY_BYTES: usize = 32;

/// HKDF purposes of the keys derived from the master key here.
const WRAPPING_PURPOSE: &str = "tenant data key wrapping v1";
const KEY_ID_PURPOSE: &str = "master key id v1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Wrong key, wrong tenant or purpose, or damaged bytes: AES-GCM cannot tell these apart,
    /// and the message says nothing more on purpose.
    #[error("the secret cannot be decrypted (wrong key, or damaged)")]
    Undecryptable,
    #[error("the data key was wrapped by master key {found}, but the master key is {current}")]
    WrongMasterKey { found: String, current: String },
    #[error("no random numbers for a key or nonce: {0}")]
    Random(String),
    /// The data key row could not be read or written, or the master key not (re)loaded.
    #[error("the tenant key store is unavailable: {0}")]
    Unavailable(String),
}

impl MasterKey {
    /// A short public id of this master key (16 hex digits), stored beside every data key it
    /// wraps so that a wrong or rotated master key is reported as such.
    pub fn key_id(&self) -> String {
        hex::encode(&self.derive(KEY_ID_PURPOSE)[..8])
    }

    /// Wraps `key` (the data key of `tenant`) for storage.
    pub fn wrap(&self, key: &DataKey, tenant: &str) -> Result<WrappedKey, SecretError> {
        let kek = self.derive(WRAPPING_PURPOSE);
        Ok(WrappedKey {
            master_key_id: self.key_id(),
            bytes: seal(&kek, key.0.as_slice(), &wrap_aad(tenant))?,
        })
    }

    /// The data key of `tenant` from its wrapped form.
    pub fn unwrap(&self, wrapped: &WrappedKey, tenant: &str) -> Result<DataKey, SecretError> {
        let current = self.key_id();
        if wrapped.master_key_id != current {
            return Err(SecretError::WrongMasterKey {
                found: wrapped.master_key_id.clone(),
                current,
            });
        }
        let kek = self.derive(WRAPPING_PURPOSE);
        let bytes = open(&kek, &wrapped.bytes, &wrap_aad(tenant))?;
        let key: [u8; KEY_BYTES] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| SecretError::Undecryptable)?;
        Ok(DataKey(Zeroizing::new(key)))
    }
}

fn wrap_aad(tenant: &str) -> Vec<u8> {
    format!("agenthq data key|{tenant}").into_bytes()
}

/// A data key as stored: sealed by a master key, and that key's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub master_key_id: String,
    pub bytes: Vec<u8>,
}

/// A tenant's data key. Its bytes never leave this type (`Debug` is redacted) and are wiped
/// when it is dropped.
pub struct DataKey(Zeroizing<[u8; KEY_BYTES]>);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, SecretError> {
        let mut key = Zeroizing::new([0u8; KEY_BYTES]);
        getrandom::fill(key.as_mut_slice()).map_err(|e| SecretError::Random(e.to_string()))?;
        Ok(DataKey(key))
    }

    /// Seals `plaintext`; `context` names what it is (e.g. `provider:<id>:api_key`) and must be
    /// given again to open it.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, SecretError> {
        seal(&self.0, plaintext, context.as_bytes())
    }

    /// Opens what [`DataKey::seal`] sealed with the same `context`.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Zeroizing<Vec<u8>>, SecretError> {
        open(&self.0, sealed, context.as_bytes())
    }
}

fn cipher(key: &[u8; KEY_BYTES]) -> Result<Aes256Gcm, SecretError> {
    Aes256Gcm::new_from_slice(key).map_err(|_| SecretError::Undecryptable)
}

fn seal(key: &[u8; KEY_BYTES], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SecretError> {
    let mut nonce = [0u8; NONCE_BYTES];
    getrandom::fill(&mut nonce).map_err(|e| SecretError::Random(e.to_string()))?;
    let sealed = cipher(key)?
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| SecretError::Undecryptable)?;
    let mut out = Vec::with_capacity(1 + NONCE_BYTES + sealed.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn open(
    key: &[u8; KEY_BYTES],
    sealed: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SecretError> {
    if sealed.len() < 1 + NONCE_BYTES + TAG_BYTES || sealed[0] != VERSION {
        return Err(SecretError::Undecryptable);
    }
    let (nonce, body) = sealed[1..].split_at(NONCE_BYTES);
    let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SecretError::Undecryptable)?;
    cipher(key)?
        .decrypt(&Nonce::from(nonce), Payload { msg: body, aad })
        .map(Zeroizing::new)
        .map_err(|_| SecretError::Undecryptable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(byte: u8) -> MasterKey {
        use base64::Engine;
        let text = base64::engine::general_purpose::STANDARD.encode([byte; 32]);
        MasterKey::from_base64(&text).unwrap()
    }

    #[test]
    fn a_secret_opens_with_its_key_and_context_only() {
        let key = DataKey::generate().unwrap();
        let sealed = key.seal(b"sk-ant-secret", "provider:p1:api_key").unwrap();
        assert_eq!(
            key.open(&sealed, "provider:p1:api_key").unwrap().as_slice(),
            b"sk-ant-secret"
        );
        assert_eq!(
            key.open(&sealed, "provider:p2:api_key").unwrap_err(),
            SecretError::Undecryptable,
            "another row's context"
        );
        let other = DataKey::generate().unwrap();
        assert!(other.open(&sealed, "provider:p1:api_key").is_err());
        let mut damaged = sealed.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert!(key.open(&damaged, "provider:p1:api_key").is_err());
        assert!(key.open(&sealed[..10], "provider:p1:api_key").is_err());
    }

    #[test]
    fn sealing_twice_gives_different_bytes_and_hides_the_plaintext() {
        let key = DataKey::generate().unwrap();
        let a = key.seal(b"sk-same", "c").unwrap();
        let b = key.seal(b"sk-same", "c").unwrap();
        assert_ne!(a, b, "a fresh nonce per seal");
        assert!(!a.windows(7).any(|w| w == b"sk-same"));
        assert_eq!(a.len(), 1 + NONCE_BYTES + 7 + TAG_BYTES);
    }

    #[test]
    fn a_data_key_unwraps_for_its_tenant_under_its_master_key_only() {
        let (m1, m2) = (master(1), master(2));
        let key = DataKey::generate().unwrap();
        let sealed = key.seal(b"secret", "ctx").unwrap();
        let wrapped = m1.wrap(&key, "tenant-a").unwrap();
        assert_eq!(wrapped.master_key_id, m1.key_id());
        assert_ne!(m1.key_id(), m2.key_id());

        let back = m1.unwrap(&wrapped, "tenant-a").unwrap();
        assert_eq!(back.open(&sealed, "ctx").unwrap().as_slice(), b"secret");
        assert_eq!(
            m1.unwrap(&wrapped, "tenant-b").unwrap_err(),
            SecretError::Undecryptable,
            "bound to its tenant"
        );
        assert!(matches!(
            m2.unwrap(&wrapped, "tenant-a").unwrap_err(),
            SecretError::WrongMasterKey { .. }
        ));
    }

    #[test]
    fn rotating_the_master_key_rewraps_without_touching_secrets() {
        let (old, new) = (master(1), master(2));
        let key = DataKey::generate().unwrap();
        let sealed = key.seal(b"sk-live", "provider:p1:api_key").unwrap();
        let wrapped = old.wrap(&key, "t").unwrap();

        let rewrapped = new.wrap(&old.unwrap(&wrapped, "t").unwrap(), "t").unwrap();

        assert_eq!(rewrapped.master_key_id, new.key_id());
        let key = new.unwrap(&rewrapped, "t").unwrap();
        assert_eq!(
            key.open(&sealed, "provider:p1:api_key").unwrap().as_slice(),
            b"sk-live"
        );
    }

    #[test]
    fn keys_never_show_in_debug_output() {
        let key = DataKey::generate().unwrap();
        assert_eq!(format!("{key:?}"), "DataKey([redacted])");
        assert!(!format!("{:?}", master(7)).contains("7"));
    }
}
