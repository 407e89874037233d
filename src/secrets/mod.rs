//! Secrets at rest: the master key every other key is derived from or wrapped by.
//!
//! The master key is 32 random bytes, kept in `master.key` in the data dir (mode 0600, created
//! on first start) or given as `AGENTHQ_MASTER_KEY` (base64), in which case no file is written.
//! Purpose-specific keys are derived from it with HKDF-SHA256 (agent-run token signing, and the
//! wrapping of each tenant's [`DataKey`], which seals that tenant's secrets), so one secret
//! protects everything and no derived key can be turned back into another.

mod envelope;
mod keyring;
mod master_key;
pub mod rotation;
mod tenant_keys;
#[cfg(test)]
mod tests;

pub use envelope::{DataKey, SecretError, WrappedKey};
pub use keyring::{KeySource, Keyring};
pub use master_key::{MasterKey, MasterKeyError};
pub use tenant_keys::TenantKeys;
