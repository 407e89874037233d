//! The one-time setup link of a fresh install: when no platform admin exists (and none is
//! given by `AGENTHQ_ADMIN_EMAIL` + `AGENTHQ_ADMIN_PASSWORD`), the server prints a link holding
//! a 256-bit secret; whoever opens it first chooses the first admin's email and password.
//!
//! NOTE: the secret lives only in this process's memory (as a SHA-256), so a restart makes a
//! new link and the old one stops working; it is never stored or logged, only printed once.

use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::session::constant_time_eq;
use super::users::{UserError, Users};
use super::{Email, Password, User};

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// No link is pending (set-up is done) or the presented secret is not the link's.
    #[error("this setup link is not valid (set-up may already be complete)")]
    InvalidLink,
    #[error(transparent)]
    User(#[from] UserError),
}

#[derive(Default)]
pub struct SetupLink {
    /// SHA-256 of the pending link's secret.
    pending: Mutex<Option<[u8; 32]>>,
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl SetupLink {
    /// Makes a new link secret (replacing any pending one) and returns it, to print once.
    pub fn issue(&self) -> Result<String, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let secret = hex::encode(bytes);
        *self.lock() = Some(digest(&secret));
        Ok(secret)
    }

    /// Whether a link is waiting to be used.
    pub fn is_pending(&self) -> bool {
        self.lock().is_some()
    }

    /// Creates the first platform admin if `secret` is the pending link's. The link is taken
    /// before the user is created, so two racing requests cannot both succeed; it is put back
    /// if creating the user fails, so a typo in the form does not burn the link.
    pub fn complete(
        &self,
        secret: &str,
        users: &Users,
        email: Email,
        password: &Password,
    ) -> Result<User, SetupError> {
        let presented = digest(secret);
        let taken = {
            let mut pending = self.lock();
            match *pending {
                Some(expected) if constant_time_eq(&expected, &presented) => pending.take(),
                _ => None,
            }
        };
        let Some(link) = taken else {
            return Err(SetupError::InvalidLink);
        };
        let restore = |e: UserError| {
            self.lock().get_or_insert(link);
            SetupError::User(e)
        };
        // An admin made meanwhile by other means (the CLI) ends the link for good.
        if users.platform_admin_exists().map_err(restore)? {
            return Err(SetupError::InvalidLink);
        }
        users.create(email, password, true).map_err(restore)
    }

    /// Withdraws the link (a platform admin was made some other way).
    pub fn withdraw(&self) {
        self.lock().take();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<[u8; 32]>> {
        // A poisoned lock only means another thread panicked between two plain assignments;
        // the Option inside is always whole.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_pending_until_withdrawn_and_secrets_are_fresh() {
        let link = SetupLink::default();
        assert!(!link.is_pending());
        let a = link.issue().unwrap();
        assert!(link.is_pending());
        assert_eq!(a.len(), 64);
        let b = link.issue().unwrap();
        assert_ne!(a, b);
        link.withdraw();
        assert!(!link.is_pending());
    }
}
